"""Sprite sheets (``[sheets.NAME]``) and grid targets (``grid = [cols, rows]``) in the manifest.

A sheet is resolved after the targets (its members are target names, globs, matrix or grid names and
tags, like the command line's selection) into a ``Sheet``: the member rows in name order, which output
of each it packs, and the files it writes. Every problem is reported with its line: an unknown member,
a sheet file that another target or sheet writes, a metadata format that does not exist, members that
cannot fit in ``max_size`` (when their sizes are known before building: ``resize``, the model's size).

A grid target's cells are rows ``<target>.r<row>c<col>`` (1-based) with the *same* generation spec
(same key: one task pays for all of them, the engine's identical-key sharing), a prompt that begins
with the layout sentence, and outputs whose derivation cuts their cell first (``images.grid``).
"""

from __future__ import annotations

import fnmatch
import math
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import Problem, did_you_mean, listing
from ..images import sheets as packer
from ..images.check import SIZE_TOLERANCE
from ..images.derive import Cell
from ..images.grid import layout_sentence, least_cell_size
from ..images.sheets import METADATA, SUFFIXES

if TYPE_CHECKING:
    from .model import Target
    from .positions import LineIndex

MAX_GRID = 16            # cells per side: more is smaller than a usable icon even at 4K


@dataclass(frozen=True)
class Sheet:
    name: str
    members: tuple[str, ...]                   # target (row) names, sorted: the frames
    output: str                                # the sheet image, manifest-relative posix path (.png)
    metadata: tuple[tuple[str, str], ...]      # (format, manifest-relative path) written beside it
    member_output: int | str = 0               # which output of each member: index or path glob
    padding: int = 0
    power_of_two: bool = False
    max_size: int = 4096
    res_root: str = ""                         # Godot: res:// is this manifest-relative folder

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.output, *(path for _f, path in self.metadata))

    def fields(self) -> dict[str, Any]:
        """What the sheet's key is made of besides its members' hashes."""
        return {"output": self.output, "metadata": [list(m) for m in self.metadata],
                "member_output": self.member_output, "padding": self.padding,
                "power_of_two": self.power_of_two, "max_size": self.max_size, "res_root": self.res_root,
                "v": 1}


def resolve_sheets(raw: Mapping[str, Any], targets: Mapping[str, Target], groups: Mapping[str, list[str]],
                   out_dir: str, lines: LineIndex, problems: list[Problem]) -> dict[str, Sheet]:
    """The ``[sheets.*]`` tables (validated ``SheetModel``s) against the resolved targets."""
    owners = {path: f"target '{t.name}'" for t in targets.values() for path in t.output_paths}
    sheets: dict[str, Sheet] = {}
    for name, spec in raw.items():
        def report(message: str, fieldname: str | None, _name: str = name) -> None:
            problems.append(Problem(f"[sheets.{_name}] {message}", field=fieldname,
                                    line=lines.line(("sheets", _name) + ((fieldname,) if fieldname else ()))
                                    or lines.line(("sheets", _name))))
        members = _members(spec, targets, groups, report)
        output = posixpath.normpath(posixpath.join(out_dir, spec.output.replace("\\", "/")))
        if not output.lower().endswith(".png") or spec.output.startswith("/") or \
                posixpath.normpath(spec.output).startswith(".."):
            report(f"'{spec.output}' must be a .png path inside out_dir ('{out_dir}')", "output")
            continue
        stem = output[:-4]
        formats = list(dict.fromkeys(spec.metadata))
        unknown = [f for f in formats if f not in METADATA]
        if unknown:
            report(f"unknown metadata format '{unknown[0]}'{did_you_mean(unknown[0], list(METADATA))}; "
                   f"formats: {', '.join(METADATA)}", "metadata")
            continue
        sheet = Sheet(name=name, members=members or (), output=output,
                      metadata=tuple((f, stem + SUFFIXES[f]) for f in formats),
                      member_output=spec.member_output, padding=spec.padding, power_of_two=spec.power_of_two,
                      max_size=spec.max_size, res_root=(spec.res_root or "").replace("\\", "/").strip("/"))
        clash = False
        for path in sheet.paths:
            other = owners.setdefault(path, f"sheet '{name}'")
            if other != f"sheet '{name}'":
                report(f"writes '{path}', which {other} also writes; give the sheet another output", "output")
                clash = True
        if members is None or clash:
            continue
        if isinstance(spec.member_output, int):
            short = [m for m in members if spec.member_output >= len(targets[m].outputs)]
            if short:
                report(f"member_output = {spec.member_output}, but target '{short[0]}' has only "
                       f"{len(targets[short[0]].outputs)} output(s) (0-based)", "member_output")
                continue
        else:
            missing = [m for m in members if not any(fnmatch.fnmatchcase(p, f"*{spec.member_output}")
                                                     for p in targets[m].output_paths)]
            if missing:
                report(f"member_output = '{spec.member_output}' matches no output of target '{missing[0]}'; "
                       f"its outputs: {', '.join(targets[missing[0]].output_paths)}", "member_output")
                continue
        too_big = _too_big(sheet, [targets[m] for m in members])
        if too_big:
            report(too_big, "max_size")
            continue
        sheets[name] = sheet
    return sheets


def _too_big(sheet: Sheet, members: list[Target]) -> str | None:
    """Why the members cannot fit in ``max_size``, known before anything is generated (so nothing is
    paid for a sheet that cannot be made); None if they fit or a frame's size is not known yet. Sizes
    are the least each frame can have, so a sheet refused here is refused by the build too."""
    frames = []
    for target in members:
        size = least_frame_size(target, member_output_index(sheet, target))
        if size is None:
            return None
        frames.append(packer.Frame(target.name, *size))
    if packer.fits(frames, padding=sheet.padding, power_of_two=sheet.power_of_two, max_size=sheet.max_size):
        return None
    try:
        packer.pack(frames, padding=sheet.padding, power_of_two=sheet.power_of_two, max_size=sheet.max_size)
    except packer.TooBig as exc:
        return (f"cannot hold its frames: {packer.describe(frames, sheet.padding)} need at least "
                f"{exc.need}×{exc.need}, more than max_size = {sheet.max_size}; raise max_size or reduce "
                f"frames (fewer members, a smaller member_output, less padding)")
    return None


def least_frame_size(target: Target, index: int) -> tuple[int, int] | None:
    """The least pixel size output ``index`` of ``target`` can have, before it is built: its ``resize``;
    else the model's size for its ratio and resolution (less the tolerance a served image may differ
    by, unless the model's sizes are fixed), cut to its grid cell less the most a trim may take.
    None when the model's size is not known."""
    derivation = target.outputs[index].derivation
    if derivation.resize is not None:
        return derivation.resize
    try:
        model = target.spec_model
        width, height = target.size
    except (KeyError, ValueError):
        return None
    if target.aspect_ratio not in dict(model.sizes):
        width, height = (math.ceil(side * (1 - SIZE_TOLERANCE)) for side in (width, height))
    if derivation.cell is not None:
        cell = derivation.cell
        return least_cell_size(width, height, cell.cols, cell.rows, cell.trim)
    return width, height


def _members(spec: Any, targets: Mapping[str, Target], groups: Mapping[str, list[str]],
             report: Any) -> tuple[str, ...] | None:
    """The rows ``members`` and ``tags`` name, sorted; None (reported) if one names nothing."""
    found: list[str] = []
    ok = True
    known, shown = _known(targets, groups)
    for pattern in spec.members:
        if pattern.startswith("@"):
            pattern = pattern[1:]
        if pattern in groups:
            found += groups[pattern]
        elif pattern in targets:
            found.append(pattern)
        else:
            matched = [t for t in targets if fnmatch.fnmatchcase(t, pattern)]
            if not matched:
                report(f"member '{pattern}' is not a target{did_you_mean(pattern, known)} and matches "
                       f"none (names, matrix or grid names, globs like 'icon.*'); known targets: "
                       f"{listing(shown)}", "members")
                ok = False
            found += matched
    for tag in spec.tags:
        tagged = [n for n, t in targets.items() if tag in t.tags]
        if not tagged:
            report(f"no target has tag '{tag}'", "tags")
            ok = False
        found += tagged
    if ok and not found:
        report("has no members; set members = [\"icon.*\"] (names, globs) and/or tags = [\"ui\"]", "members")
        ok = False
    return tuple(sorted(set(found))) if ok else None


def _known(targets: Mapping[str, Target], groups: Mapping[str, list[str]]) -> tuple[list[str], list[str]]:
    """The names a sheet's member may be (plain targets, matrix and grid names, not their rows: those
    are globs away), and the same as a person reads them: ``potions (grid, 16 cells)``, ``walk (matrix,
    4 rows)``; in the manifest's order."""
    group_of = {row: base for base, rows in groups.items() for row in rows}
    names: list[str] = []
    for name in targets:
        name = group_of.get(name, name)
        if name not in names:
            names.append(name)
    shown = []
    for name in names:
        if name in groups:
            rows = groups[name]
            grid = targets[rows[0]].grid is not None
            unit = ("cell" if grid else "row") + ("s" if len(rows) != 1 else "")
            shown.append(f"{name} ({'grid' if grid else 'matrix'}, {len(rows)} {unit})")
        else:
            shown.append(name)
    return names, shown


def member_output_index(sheet: Sheet, target: Target) -> int:
    """Which of ``target``'s outputs the sheet packs."""
    if isinstance(sheet.member_output, int):
        return sheet.member_output
    return next(i for i, p in enumerate(target.output_paths) if fnmatch.fnmatchcase(p, f"*{sheet.member_output}"))


# -- grids ---------------------------------------------------------------------------------------------

def grid_rows(base: str, spec: Any, report: Any, placeholders_ok: Any) -> list[tuple[str, dict[str, str]]]:
    """(row name, placeholder values) of every cell of a grid target, row by row, 1-based; none (reported)
    if the grid is wrong. ``placeholders_ok(axes)`` checks the target's texts against ``{row}``…"""
    problem = grid_problem(spec)
    if problem is not None:
        report(problem[1], problem[0])
        return []
    if not placeholders_ok({"row", "col", "name"}):
        return []
    cols, rows = spec.grid
    return [(f"{base}.r{r}c{c}", {"row": str(r), "col": str(c), "name": f"{base}.r{r}c{c}"})
            for r in range(1, rows + 1) for c in range(1, cols + 1)]


def grid_problem(spec: Any) -> tuple[str, str] | None:
    """(field, what is wrong) with a target's ``grid``, or None."""
    if spec.grid is None:
        if spec.grid_trim is not None:
            return "grid_trim", "grid_trim applies to a grid target; set grid = [cols, rows]"
        return None
    cols, rows = spec.grid
    if spec.matrix is not None:
        return "grid", ("a target is a grid or a matrix, never both; make the matrix's rows targets of "
                        "their own, or drop grid")
    if spec.rows:
        return "rows", "a grid's cells share one generation, so they cannot override its fields"
    if cols * rows < 2:
        return "grid", f"grid = [{cols}, {rows}] is one cell; a grid needs at least 2"
    if spec.n not in (None, 1):
        return "n", "a grid is one image; use candidates = N to choose among several grids"
    if "{row}" in spec.prompt or "{col}" in spec.prompt or "{name}" in spec.prompt:
        return "prompt", ("a grid's cells share one prompt (one generation); {row}, {col} and {name} are "
                          "for output paths")
    return None


def grid_cell(target: Target, grid: list[int], trim: str | int | None, subs: dict[str, str]) -> Target:
    """The row of one grid cell: the layout sentence before the prompt, each output cut to its cell."""
    cols, rows = grid
    cell = Cell(cols=cols, rows=rows, col=int(subs["col"]), row=int(subs["row"]),
                trim="auto" if trim is None else trim)
    outputs = tuple(replace(o, derivation=replace(o.derivation, cell=cell)) for o in target.outputs)
    return replace(target, prompt=f"{layout_sentence(cols, rows)} {target.prompt}", outputs=outputs,
                   grid=(cols, rows))
