"""``assets.toml`` → a validated ``Manifest`` of resolved ``Target``s in dependency order.

Loading has three passes, and every problem from every pass is reported together (``ManifestError``):

1. shape: the standard library's TOML parser, then pydantic models with unknown keys forbidden;
2. meaning (``resolve``): matrix rows expanded, fields merged (defaults < style < target < profile) and
   checked against the model catalog, references (files, ``@targets``, URLs) and output paths;
3. graph: ``@target`` references form a DAG (cycles are named) and targets are ordered topologically.

Every problem carries the target, the field and the TOML line (``positions``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ManifestError, Problem
from .model import CacheSettings, Manifest, Target, check_depth, parse_toml, read_text
from .positions import LineIndex

# Reading the text is ``model``'s; it is loading's API too (``engine.snapshot`` calls both through here).
__all__ = ["assemble", "check_depth", "load", "parse", "parse_toml", "read_text"]


# --- loading ---------------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, profile: str | None = None) -> Manifest:
    """Read, validate and resolve a manifest. Raises ``ManifestError`` listing every problem.

    (``engine.snapshot.open_manifest`` does the same, faster, for a manifest it has seen before.)
    """
    return parse(read_text(Path(path), str(path)), Path(path).resolve(), shown=str(path), profile=profile)


def parse(text: str, path: Path, *, shown: str | None = None, profile: str | None = None) -> Manifest:
    """Validate manifest ``text`` as if it were the file at ``path`` (references resolve beside it).

    With ``profile``, the fields of ``[profiles.<profile>]`` override every target's, and outputs go
    to the profile's own folder.
    """
    shown = shown or str(path)
    return assemble(parse_toml(text, shown), LineIndex(text), path, shown, profile)


def assemble(data: dict[str, Any], lines: LineIndex, path: Path, shown: str, profile: str | None, *,
             reused: dict[str, list[Target]] | None = None, tables: list[str] | None = None) -> Manifest:
    """Passes 1–3 over parsed ``data``. An incremental load (``snapshot``) passes only the changed
    target tables in ``data``, the targets of the unchanged ones in ``reused`` (by table) and every
    table's name in file order in ``tables``; the result is what the whole document would give."""
    from .resolve import check_self_references, resolve   # (pydantic: only when text is validated)
    from .schema import SettingsModel, check_cache, settings_from, validate_shape

    check_depth(data, shown)
    problems: list[Problem] = []
    doc, broken = validate_shape(data, lines, problems)
    settings = settings_from(doc.settings if doc else SettingsModel(), lines, problems)
    elsewhere = {t.name: t for rows in (reused or {}).values() for t in rows}
    targets, groups = resolve(doc, data, broken, path.parent, settings, lines, problems, profile,
                              elsewhere=elsewhere)
    if reused:
        fresh: dict[str, list[Target]] = {}
        for target in targets.values():
            fresh.setdefault(target.base, []).append(target)
        targets = {t.name: t for table in tables or []
                   for t in (reused[table] if table in reused else fresh.get(table, []))}
        groups = {}
        for target in targets.values():
            if target.base != target.name:                 # a matrix row
                groups.setdefault(target.base, []).append(target.name)
        for table in reused:
            for target in reused[table]:
                gone = [up for up in target.upstream if up not in targets]
                if gone:       # resolve checked only the new tables' references
                    problems.append(Problem(f"'@{gone[0]}' is not a target", target=target.name,
                                            field="references"))
    ordered = _order(targets, lines, problems)
    if not problems:
        check_self_references(ordered, path.parent, lines, problems)
    if problems:
        raise ManifestError(shown, problems)
    assert doc is not None
    check_cache(doc.cache, lines, problems)
    if problems:
        raise ManifestError(shown, problems)
    cache = CacheSettings(remote=doc.cache.remote, remote_options=dict(doc.cache.remote_options))
    sheets = _sheets(doc, ordered, groups, settings.out_dir, profile, lines, shown)
    return Manifest(path=path, settings=settings, targets=ordered, lines=lines, groups=groups,
                    profile=profile, profiles=tuple(doc.profiles), cache=cache, sheets=sheets)


def _sheets(doc: Any, targets: dict[str, Target], groups: dict[str, list[str]], out_dir: str,
            profile: str | None, lines: LineIndex, shown: str) -> dict[str, Any]:
    """The ``[sheets.*]`` (``manifest.sheets``), beside the targets' outputs: a profile's sheets go to
    its folder. Raises ``ManifestError`` for every problem."""
    if not doc.sheets:
        return {}
    from .sheets import resolve_sheets

    chosen = doc.profiles.get(profile) if profile else None
    if profile:
        out_dir = chosen.out_dir if chosen and chosen.out_dir else f"{out_dir}/{profile}"
    problems: list[Problem] = []
    sheets = resolve_sheets(doc.sheets, targets, groups, out_dir, lines, problems)
    if problems:
        raise ManifestError(shown, problems)
    return sheets


# --- pass 3: graph ---------------------------------------------------------------------------------

def _order(targets: dict[str, Target], lines: LineIndex, problems: list[Problem]) -> dict[str, Target]:
    """Topological order (stable: manifest order among peers); every cycle is reported by name."""
    state: dict[str, int] = {}          # 1 = on the stack, 2 = done
    order: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for up in targets[name].upstream:
            if up not in targets:
                continue                 # reported already (unknown or broken upstream)
            if state.get(up) == 1:
                cycle = stack[stack.index(up):] + [up]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    problems.append(Problem(
                        f"dependency cycle: {' -> '.join('@' + c for c in cycle)}; a target cannot "
                        f"depend on its own output", target=name, field="references",
                        line=lines.line(("targets", name, "references"))))
            elif up not in state:
                visit(up, stack)
        stack.pop()
        state[name] = 2
        order.append(name)

    for name in targets:
        if name not in state:
            visit(name, [])
    return {name: targets[name] for name in order}
