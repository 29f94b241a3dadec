"""``assetgen export``: an index of the built outputs for code (JSON, TypeScript, GDScript).

Every output the lock records for the manifest's targets, with its pixel size and format (read from the
file's header), alt text (``meta.alt``, else the first sentence of the target's own prompt) and tags.
Outputs not built yet, or missing on disk, are skipped and named (``ExportIndex.skipped``).

TypeScript and GDScript nest by the target's name: the matrix row ``icon.sword.wood`` is
``assets.icon.sword.wood``; a target with several outputs nests one level more, by each file's stem
(``icons-1.jpg`` → ``icons.icons_1``; stems that collide within a target take the folders that differ,
``small/coin-1.png`` → ``coin.small_coin_1``). Each name part becomes an identifier (anything but letters, digits
and ``_`` → ``_``; a leading digit gets a ``_``); two names that land on the same key are an error
naming both. Output is deterministic: sorted keys, no timestamps; rewritten only when it changed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..engine.project import Project
from ..errors import UsageError
from ..images.size import image_size
from ..manifest.model import Target
from ..manifest.resolve import own_prompt
from ..state.atomic import atomic_write

FORMATS = ("json", "ts", "gdscript")
ALT_CHARS = 120


@dataclass(frozen=True)
class ExportedOutput:
    target: str
    path: str                 # relative to the manifest's folder, '/' separators
    width: int
    height: int
    format: str               # png | jpeg | webp (from the file's header)
    alt: str
    tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "path": self.path, "width": self.width, "height": self.height,
                "format": self.format, "alt": self.alt, "tags": list(self.tags)}


@dataclass
class ExportIndex:
    manifest: str                                          # the manifest's file name, for the header
    outputs: list[ExportedOutput] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (target, why)


def collect(project: Project) -> ExportIndex:
    """Every built output of the manifest's targets as the lock records it, sorted by target and path."""
    root = project.root
    index = ExportIndex(project.manifest.path.name)
    for name in sorted(project.manifest.targets):
        target = project.manifest.targets[name]
        entry = project.lock.entries.get(name)
        if entry is None or not entry.outputs:
            index.skipped.append((name, "not built yet"))
            continue
        for out in sorted(entry.outputs, key=lambda o: o.path):
            try:
                width, height, fmt = image_size(root / out.path)
            except OSError as exc:
                index.skipped.append((name, f"{out.path}: {'missing' if not (root / out.path).exists() else exc}"))
                continue
            index.outputs.append(ExportedOutput(name, out.path, width, height, fmt, alt_text(target),
                                                tuple(sorted(target.tags))))
    return index


def alt_text(target: Target) -> str:
    """``meta.alt`` if set, else the target's own prompt with its placeholders filled (no style
    fragment, template or grid layout sentence), cut to its first sentence and at most ``ALT_CHARS``
    characters."""
    alt = (target.meta or {}).get("alt")
    if isinstance(alt, str) and alt.strip():
        return " ".join(alt.split())
    own = " ".join(own_prompt(target).split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(?:\s|$)", own)
    sentence = match.group(1) if match else own
    if len(sentence) <= ALT_CHARS:
        return sentence
    cut = sentence[:ALT_CHARS - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


# -- the tree of names (TypeScript, GDScript) --------------------------------------------------------

def identifier(part: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_]", "_", part) or "_"
    return "_" + ident if ident[0].isdigit() else ident


def tree(index: ExportIndex) -> dict[str, Any]:
    """Outputs nested by their targets' name parts (see the module's docstring); leaves are outputs."""
    counts: dict[str, int] = {}
    for out in index.outputs:
        counts[out.target] = counts.get(out.target, 0) + 1
    leaves: dict[tuple[str, ...], str] = {}        # key path → what it came from (for the error)
    found: dict[str, Any] = {}
    stems = _output_keys(index.outputs)
    for out in index.outputs:
        key = tuple(identifier(p) for p in out.target.split("."))
        what = f"target '{out.target}'"
        if counts[out.target] > 1:
            key += (stems[(out.target, out.path)],)
            what += f" output '{out.path}'"
        leaves[_claim(leaves, key, what)] = what
        node = found
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = out
    return found


def _output_keys(outputs: list[ExportedOutput]) -> dict[tuple[str, str], str]:
    """(target, path) → the key of that output within its target: its file stem as an identifier; where
    stems collide within a target (``coin-1.png`` and ``small/coin-1.png``, or ``icons/64/shield.png``
    and ``icons/256/shield.png``), each colliding path's folders after the ones they all share come
    first (``small_coin_1``, ``_64_shield``), and its extension last if that still collides."""
    groups: dict[tuple[str, str], list[PurePosixPath]] = {}
    for out in outputs:
        path = PurePosixPath(out.path)
        groups.setdefault((out.target, identifier(path.stem)), []).append(path)
    keys: dict[tuple[str, str], str] = {}
    for (target, stem), paths in groups.items():
        if len(paths) == 1:
            keys[(target, str(paths[0]))] = stem
            continue
        folders = [p.parent.parts for p in paths]
        shared = 0
        while all(len(f) > shared and f[shared] == folders[0][shared] for f in folders):
            shared += 1
        named = {p: "_".join([*p.parent.parts[shared:], p.stem]) for p in paths}
        if len({identifier(n) for n in named.values()}) < len(paths):
            named = {p: f"{n}_{p.suffix.lstrip('.')}" for p, n in named.items()}
        keys.update({(target, str(p)): identifier(n) for p, n in named.items()})
    return keys


def _claim(leaves: dict[tuple[str, ...], str], key: tuple[str, ...], what: str) -> tuple[str, ...]:
    """``key``, unless it collides with a key already taken: the same key, or one inside the other
    (``leaves`` also records every branch taken, keyed ``(_BRANCH, *prefix)``)."""
    clash = leaves.get(key) or leaves.get((_BRANCH,) + key)
    clash_key = key
    for n in range(1, len(key)):
        if key[:n] in leaves:
            clash, clash_key = leaves[key[:n]], key[:n]
            break
    if clash:
        raise UsageError(f"export: {what} and {clash} both become the key '{'.'.join(clash_key)}' "
                         f"(names are made identifiers: anything but letters, digits and _ becomes _, "
                         f"dots nest); rename one of the targets or outputs")
    for n in range(1, len(key)):
        leaves.setdefault((_BRANCH,) + key[:n], what)
    return key


_BRANCH = "\0branch"     # marks a prefix in ``_claim``'s table (no identifier holds a NUL)


# -- rendering ----------------------------------------------------------------------------------------

def render(index: ExportIndex, fmt: str, *, root: Path, res_root: Path | None = None) -> str:
    """The index as ``fmt`` (json | ts | gdscript). Paths are manifest-relative; GDScript's are
    ``res://`` paths relative to ``res_root`` (default: the manifest's folder)."""
    header = f"Generated by assetgen from {index.manifest} (assetgen export --format {fmt}). Do not edit by hand."
    if fmt == "json":
        doc = {"$comment": header, "assets": [o.to_json() for o in index.outputs]}
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "ts":
        return (f"// {header}\n\nexport interface Asset {{\n  readonly path: string;\n  readonly width: number;\n"
                f"  readonly height: number;\n  readonly format: string;\n  readonly alt: string;\n"
                f"  readonly tags: readonly string[];\n}}\n\n"
                f"export const assets = {_nested(tree(index), '  ', 0, _ts_leaf)} as const;\n\n"
                f"export type Assets = typeof assets;\n")
    if fmt == "gdscript":
        base = (res_root or root).resolve()

        def leaf(out: ExportedOutput) -> str:
            return _gd_leaf(out, _res_path(root / out.path, base, out))
        return f"# {header}\n\nconst ASSETS := {_nested(tree(index), chr(9), 0, leaf)}\n"
    raise UsageError(f"export: unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


def _nested(node: dict[str, Any], indent: str, depth: int, leaf: Any) -> str:
    if not node:
        return "{}"
    inner = indent * (depth + 1)
    lines = []
    for key in sorted(node):
        value = node[key]
        shown = leaf(value) if isinstance(value, ExportedOutput) else _nested(value, indent, depth + 1, leaf)
        lines.append(f"{inner}{json.dumps(key)}: {shown},")
    return "{\n" + "\n".join(lines) + "\n" + indent * depth + "}"


def _ts_leaf(out: ExportedOutput) -> str:
    return (f"{{ path: {_str(out.path)}, width: {out.width}, height: {out.height}, format: {_str(out.format)}, "
            f"alt: {_str(out.alt)}, tags: [{', '.join(_str(t) for t in out.tags)}] }}")


def _gd_leaf(out: ExportedOutput, path: str) -> str:
    return (f'{{"path": {_str(path)}, "width": {out.width}, "height": {out.height}, "format": {_str(out.format)}, '
            f'"alt": {_str(out.alt)}, "tags": [{", ".join(_str(t) for t in out.tags)}]}}')


def _str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _res_path(file: Path, res_root: Path, out: ExportedOutput) -> str:
    rel = Path(os.path.relpath(file.resolve(), res_root)).as_posix()
    if rel == ".." or rel.startswith("../"):
        raise UsageError(f"export: target '{out.target}' output '{out.path}' is outside the Godot project's "
                         f"folder {res_root} (--res-root); pass the folder that holds project.godot")
    return "res://" + rel


# -- writing ------------------------------------------------------------------------------------------

def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically, only if its content differs. True if it wrote."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data)
    return True


def export_configured(project: Project) -> list[str]:
    """Write every ``[settings] export`` index whose content changed; the paths written."""
    settings = project.manifest.settings.exports
    if not settings:
        return []
    index = collect(project)
    written = []
    for setting in settings:
        res_root = project.root / setting.res_root if setting.res_root else None
        text = render(index, setting.format, root=project.root, res_root=res_root)
        if write_if_changed(project.root / setting.output, text):
            written.append(setting.output)
    return written
