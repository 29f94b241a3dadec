"""The resolved manifest and its keys, remembered between runs (``.assetgen/stat-parsed/*.resolved``).

Loading 10,000 targets from scratch (TOML, pydantic, resolving every target, hashing its spec) takes
about a second, and a build system's no-op must not pay that. So the result is kept with what it was
made from, and reused as far as that is unchanged:

* the manifest's text (compared whole, which costs a millisecond and, unlike a file signature,
  cannot miss an edit): unchanged, the whole result is reused, and pydantic is not even imported;
* the manifest's text cut at its table headers (``manifest.positions.split_runs``): when some ``[targets.X]``
  tables changed and nothing outside them did, only those tables are parsed, validated and resolved;
  the other targets are reused, and what spans targets (``@`` references, shared outputs, cycles,
  order) is checked again over all of them;
* every reference file's signature (size, mtime, inode: the stat cache's rule): one that changed is
  checked again (exists, size, format), and one changed in the last two seconds is not remembered;
* the code that made it all (its files' signatures, the Python version): an upgrade starts afresh.

Keys are recomputed from the stat cache's file hashes as usual, and a target's key is reused only for
the same target object with the same reference digests. Anything unexpected (a damaged snapshot, a run
of text that does not parse alone, a problem in the manifest) falls back to loading the whole text,
which is also what reports errors: this module never decides that a manifest is valid, it remembers
that the full load said so. Every cut is proved by parsing each run alone and checking what it holds
(a run that parses alone ends outside any value, so the next one starts at a real header): a changed
run now, an unchanged one when it was first parsed (the full load that made the first snapshot parses
every run alone, or does not cut at all).
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ManifestError
from ..manifest import loader as manifest_mod
from ..manifest.model import Manifest, Target
from ..manifest.positions import LineIndex, split_runs
from ..manifest.resolve import check_reference_file
from ..state import fasttoml
from ..state.memos import Memos, no_gc
from ..state.statcache import RACY_NS
from .keys import KeyedTarget, compute_keys

SNAPSHOT_VERSION = 1
SECTION = "targets"

Signature = tuple[int, int, int]
Runs = list[tuple[str | None, str]]


@dataclass
class Snapshot:
    text: str                            # the manifest it was made from
    cut: bool                            # whether that text could be cut into runs (split_runs)
    manifest: Manifest                   # with an empty LineIndex: the text is read again on load
    keyed: dict[str, KeyedTarget]
    refs: dict[str, Signature]           # every reference file, when resolve checked it


def open_manifest(path: str | os.PathLike[str], *, profile: str | None, memos: Memos,
                  hash_file: Callable[[Path], str]
                  ) -> tuple[Manifest, dict[str, KeyedTarget], Callable[[], None] | None]:
    """``manifest.loader.load`` then ``keys.compute_keys``, reusing what an earlier run remembered.

    The third value, if not None, writes what this run would leave for the next: the caller calls it
    when done (``Project.close``), so a command that stops at an error leaves nothing behind."""
    file = Path(path).resolve()
    shown = str(path)
    memo = memos.memo(file, f".{profile or '-'}.resolved",
                      head=[SNAPSHOT_VERSION, sys.version_info[:2], str(file), profile])
    with no_gc():
        text = manifest_mod.read_text(file, shown)
        previous = memo.load() if memo is not None else None
        if not isinstance(previous, Snapshot) or not _references_hold(previous):
            previous = None
        if previous is not None and previous.text == text:     # compared whole: ~1 ms for 2 MB
            manifest, cut = replace(previous.manifest, lines=LineIndex(text)), previous.cut
        else:
            manifest, cut = _load(text, file, shown, profile, previous)
        keyed = compute_keys(manifest, hash_file, previous.keyed if previous else None)
    same = previous is not None and previous.text == text and len(keyed) == len(previous.keyed) \
        and all(previous.keyed.get(name) is kt for name, kt in keyed.items())
    # Signatures now, right after resolve checked the files: one changed since has a newer mtime,
    # and one changed in between is too recent to be trusted (then nothing is remembered).
    refs = None if same or memo is None else _reference_signatures(manifest)
    if refs is None or memo is None:
        return manifest, keyed, None

    kept_memo, kept_refs = memo, refs

    def remember() -> None:
        kept_memo.save(Snapshot(text, cut, replace(manifest, lines=LineIndex("")), keyed, kept_refs))
    return manifest, keyed, remember


def _load(text: str, file: Path, shown: str, profile: str | None,
          previous: Snapshot | None) -> tuple[Manifest, bool]:
    """The manifest from ``text``, and whether the text could be cut into runs (then the next load
    can be incremental)."""
    lines = LineIndex(text)
    runs = split_runs(text, SECTION)
    tables = [name for name, _text in runs if name is not None]
    unchanged = _unchanged_tables(runs, previous) if len(set(tables)) == len(tables) else None
    loads = fasttoml.loader_for(text)
    data = _parse_runs(runs, skip=unchanged, loads=loads) if unchanged is not None else None
    if data is None:             # not cut cleanly (or a table in two places): the whole text, as ever
        return manifest_mod.assemble(manifest_mod.parse_toml(text, shown), lines, file, shown, profile), False
    if not unchanged or previous is None:
        return manifest_mod.assemble(data, lines, file, shown, profile), True
    reused: dict[str, list[Target]] = {}
    for target in previous.manifest.targets.values():
        if target.base in unchanged:
            reused.setdefault(target.base, []).append(target)
    try:
        return manifest_mod.assemble(data, lines, file, shown, profile, reused=reused, tables=tables), True
    except ManifestError:
        # A problem may lie between a changed table and a reused one: the full load names it as ever.
        data = _parse_runs(runs, skip=set(), loads=loads) or manifest_mod.parse_toml(text, shown)
        return manifest_mod.assemble(data, lines, file, shown, profile), True


def _unchanged_tables(runs: Runs, previous: Snapshot | None) -> set[str]:
    """Target tables whose text is as it was, when nothing outside target tables changed."""
    if previous is None or not previous.cut:
        return set()
    before_runs = split_runs(previous.text, SECTION)     # (cut again: cheaper than remembering it)
    if _rest(runs) != _rest(before_runs):
        return set()                     # [defaults], [styles.*], [settings]…: every target may change
    before = {name: text for name, text in before_runs if name is not None}
    return {name for name, text in runs if name is not None and before.get(name) == text}


def _rest(runs: Runs) -> str:
    return "".join(text for name, text in runs if name is None)


def _parse_runs(runs: Runs, skip: set[str],
                loads: Callable[[str], dict[str, Any]] = tomllib.loads) -> dict[str, Any] | None:
    """What parsing the whole text gives, minus the tables in ``skip``, from each run parsed alone;
    None unless every run parses alone into exactly the part of the document its header says.
    ``loads``: ``state.fasttoml.loader_for`` the whole text (``tomllib.loads``'s results, faster)."""
    targets: dict[str, Any] = {}
    rest: list[str] = []
    data: dict[str, Any] = {}
    try:
        for name, text in runs:
            if name in skip:
                continue
            part = loads(text)
            if name is None:
                if SECTION in part:
                    return None                  # targets defined outside [targets.X] headers
                rest.append(text)
                data = part
                continue
            tables = part.get(SECTION)
            if list(part) != [SECTION] or not isinstance(tables, dict) or list(tables) != [name]:
                return None
            targets[name] = tables[name]
        if len(rest) > 1:
            data = loads("".join(rest))      # together: a table defined in two of them is an error
    except (tomllib.TOMLDecodeError, RecursionError):
        return None
    data[SECTION] = targets
    return data


def _signature(file: Path) -> Signature | None:
    try:
        st = file.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _references_hold(previous: Snapshot) -> bool:
    """Every reference file is unchanged, or still passes resolve's check (the same one: a file
    replaced by a link to outside the project is refused here as in a full load)."""
    settings = previous.manifest.settings
    inside = None if settings.allow_outside else previous.manifest.root
    return all(_signature(Path(name)) == sig or check_reference_file(Path(name), inside) is None
               for name, sig in previous.refs.items())


def _reference_signatures(manifest: Manifest) -> dict[str, Signature] | None:
    """Signatures of the reference files; None if one is missing or too recent to trust (racy)."""
    refs: dict[str, Signature] = {}
    now = time.time_ns()
    for target in manifest.targets.values():
        for ref in target.references:
            if ref.path is not None and str(ref.path) not in refs:
                sig = _signature(ref.path)
                if sig is None or now - sig[1] < RACY_NS:
                    return None
                refs[str(ref.path)] = sig
    return refs
