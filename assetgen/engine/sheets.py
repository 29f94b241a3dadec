"""Sprite sheets after a build: which are stale, and (re)making them from the members' outputs. Free.

A sheet's key is the SHA-256 of its settings and, for each member in name order, the hash the lock
records for the output it packs. So a member whose output changed (a new image, another ``resize``, an
adopted retouch) changes the key and the next build — online, ``--offline``, or one that submits
nothing — repacks the sheet from the files on disk. The lock records each sheet's key and the
hashes of the files it wrote (``[sheets.NAME]``): ``plan`` says when a sheet is stale, and a sheet
removed from the manifest leaves its files to ``prune`` (remembered like a removed target's).
Sheets are never cached: they are remade from the outputs in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AssetgenError
from ..images import sheets as packer
from ..images.size import decode_problem
from ..manifest.sheets import Sheet, member_output_index
from ..state.atomic import atomic_write
from ..state.statcache import sha256_bytes

if TYPE_CHECKING:
    from pathlib import Path

    from .plan import Plan
    from .project import Project


@dataclass(frozen=True)
class SheetState:
    name: str
    stale: bool
    why: str                 # "" when up to date


def _frame_hashes(project: Project, sheet: Sheet) -> list[tuple[str, str, str]] | str:
    """(member, output path, locked hash) for every member; or why there is none yet."""
    found = []
    for member in sheet.members:
        target = project.manifest.targets[member]
        path = target.output_paths[member_output_index(sheet, target)]
        entry = project.lock.entries.get(member)
        locked = next((o for o in entry.outputs if o.path == path), None) if entry else None
        if locked is None:
            return f"member {member} not built yet"
        found.append((member, path, locked.sha256))
    return found


def sheet_key(sheet: Sheet, frames: list[tuple[str, str, str]]) -> str:
    blob = json.dumps({"sheet": sheet.fields(), "frames": frames}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def sheet_states(project: Project, plan: Plan | None = None) -> list[SheetState]:
    """Each sheet of the manifest: up to date, or stale and why (what the next build will remake)."""
    stale_targets = {item.name for item in plan.items if item.stale} if plan is not None else set()
    states = []
    for name, sheet in project.manifest.sheets.items():
        changing = [m for m in sheet.members if m in stale_targets]
        if changing:
            states.append(SheetState(name, True, f"member {changing[0]} will be built"
                                     + (f" (and {len(changing) - 1} more)" if len(changing) > 1 else "")))
            continue
        states.append(SheetState(name, *_why_stale(project, sheet)))
    return states


def _why_stale(project: Project, sheet: Sheet) -> tuple[bool, str]:
    frames = _frame_hashes(project, sheet)
    if isinstance(frames, str):
        return True, frames
    record = project.lock.sheets.get(sheet.name)
    if record is None:
        return True, "new sheet"
    if record.get("key") != sheet_key(sheet, frames):
        return True, "members or sheet settings changed"
    written = {o["path"]: o["sha256"] for o in record.get("outputs", [])}
    for path in sheet.paths:
        current = project.store.stat.probe(str(project.root / path))
        if current is None:
            return True, f"{path} missing"
        if written.get(path) != current:
            return True, f"{path} changed on disk"
    return False, ""


def build_sheets(project: Project) -> tuple[list[str], list[str]]:
    """Remake the stale sheets from the members' outputs on disk and record them in the lock (saved).
    Returns (sheets made, problems). A sheet whose members are not all built waits (a problem only if
    the member is in the lock but its file is not as locked)."""
    made: list[str] = []
    problems: list[str] = []
    lock = project.lock
    for name, sheet in project.manifest.sheets.items():
        stale, why = _why_stale(project, sheet)
        if not stale:
            continue
        frames = _frame_hashes(project, sheet)
        if isinstance(frames, str):
            problems.append(f"sheet '{name}' not made: {frames}")
            continue
        try:
            record = _make(project, sheet, frames)
        except AssetgenError as exc:
            problems.append(str(exc))
            continue
        lock.sheets[name] = record
        made.append(name)
    _drop_removed(project)
    lock.save()
    return made, problems


def _make(project: Project, sheet: Sheet, frames: list[tuple[str, str, str]]) -> dict[str, object]:
    from ..images.size import decode_errors, image_size

    root = project.root
    unreadable = decode_errors()        # (Pillow imported only when a sheet is made)
    images: dict[str, bytes] = {}
    placed: list[packer.Frame] = []
    for member, path, sha in frames:
        try:
            data = (root / path).read_bytes()
        except OSError as exc:
            raise AssetgenError(f"sheet '{sheet.name}': cannot read {path} (member {member}): {exc.strerror}; "
                                f"run `assetgen build {member}`") from None
        if sha256_bytes(data) != sha:
            raise AssetgenError(f"sheet '{sheet.name}': {path} (member {member}) is not the file the lock "
                                f"records (modified by hand?): `assetgen adopt {member}` keeps it, "
                                f"replace that file with a smaller image, or leave {member} out of the sheet's members")
        try:
            width, height, _fmt = image_size(root / path)
        except unreadable as exc:
            raise _unreadable(sheet, member, path, exc) from None
        images[member] = data
        placed.append(packer.Frame(member, width, height, project.manifest.targets[member].base or member))
    try:
        packing = packer.pack(placed, padding=sheet.padding, power_of_two=sheet.power_of_two,
                              max_size=sheet.max_size)
    except packer.TooBig as exc:       # sizes the manifest could not know (trims, served sizes)
        line = project.manifest.lines.line(("sheets", sheet.name, "max_size")) \
            or project.manifest.lines.line(("sheets", sheet.name))
        where = f" ({_shown(project.manifest.path)}:{line})" if line else ""
        raise AssetgenError(f"sheet '{sheet.name}' not made: {packer.describe(placed, sheet.padding)} need at "
                            f"least {exc.need}×{exc.need}, more than max_size = {sheet.max_size}{where}; raise "
                            f"max_size or reduce frames (fewer members, a smaller member_output, less padding); "
                            f"its members are built") from None
    try:
        files = {sheet.output: packer.compose(packing, images)}
    except unreadable as exc:
        raise AssetgenError(f"sheet '{sheet.name}' not made: a member's image could not be decoded "
                            f"({decode_problem(exc)})") from None
    image_name = posixpath.basename(sheet.output)
    res_path = "res://" + posixpath.relpath(sheet.output, sheet.res_root or ".")
    for fmt, path in sheet.metadata:
        text = {"texturepacker-hash": lambda: packer.texturepacker_hash(packing, image_name),
                "texturepacker-array": lambda: packer.texturepacker_array(packing, image_name),
                "godot": lambda: packer.godot_sprite_frames(packing, res_path),
                "json": lambda: packer.plain_json(packing, image_name)}[fmt]()
        files[path] = text.encode("utf-8")
    outputs = []
    for path, data in files.items():
        atomic_write(root / path, data, durable=True)
        sha = sha256_bytes(data)
        project.store.stat.remember(root / path, sha)
        outputs.append({"path": path, "sha256": sha, "size": len(data)})
    return {"key": sheet_key(sheet, frames), "outputs": outputs, "members": len(frames),
            "size": [packing.width, packing.height]}


def _unreadable(sheet: Sheet, member: str, path: str, exc: BaseException) -> AssetgenError:
    return AssetgenError(f"sheet '{sheet.name}': {path} (member {member}) cannot be packed: {decode_problem(exc)}; "
                         f"replace that file with a smaller image, or leave {member} out of the sheet's members")


def _shown(path: Path) -> str:
    """The manifest's path as a person here would type it (relative when it can be)."""
    try:
        return os.path.relpath(path)
    except ValueError:                  # another drive
        return str(path)


def _drop_removed(project: Project) -> None:
    """A sheet removed from the manifest: its record leaves the lock, its files are remembered for
    ``prune`` (as ``[sheets.NAME]`` in the orphans record, a name no target can have)."""
    from .orphans import _recorded

    gone = [name for name in project.lock.sheets if name not in project.manifest.sheets]
    if not gone:
        return
    record = project.orphans_record
    kept = _recorded(record)
    for name in gone:
        kept.setdefault(f"[sheets.{name}]", {}).update(
            {o["path"]: o["sha256"] for o in project.lock.sheets[name].get("outputs", [])})
        del project.lock.sheets[name]
    atomic_write(record, json.dumps(kept, indent=1, sort_keys=True).encode("utf-8"), durable=True)
