"""Remembered results in ``.assetgen/stat-parsed/``: a parse or resolution kept with what it came from.

    memos = Memos(cache_dir / "stat-parsed")
    memo = memos.memo(lock_path, ".parsed", head=...)   # None when nothing may be remembered
    value = memo.load()                                 # None: absent, other head or code, damaged
    memo.save(value)

The one speed-cache interface of the state layer: every memo is a pickle headed by ``MEMO_VERSION``,
the caller's ``head`` (what the value depends on: a version, a path, a profile…) and ``code_stamp()``
(assetgen's own sources), so a value made by other code, or from other input, is never trusted. The
cache is local, written by this user's own runs only, never shared. ``no_gc`` pauses the cyclic
garbage collector around loads of many objects.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .atomic import atomic_write

MEMO_VERSION = 3          # of the files in stat-parsed/ (1: JSON copies of TOML parses; 2: no code stamp in the head)

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # assetgen/


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that hold no cycles.

    Each collection walks every live container: loading 10,000 targets triggered hundreds of them
    for nothing (measured: 15 % of a no-op `plan` at 10,000 targets). (The CLI then freezes what it
    loaded, ``cli.runtime.Context.project``, so no full collection walks it afterwards either.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def code_stamp() -> tuple[Any, ...] | None:
    """The identity of assetgen's own source files (every ``.py`` file of the package, sorted by path:
    path, size, mtime): remembered results made by other code (an upgrade, an edit in a checkout) are
    not trusted. The whole package, not a hand-kept list of modules, so no edit can be missed (~60
    stats). None when the sources are not there to look at (a zip or frozen install): then nothing is
    remembered."""
    stamp: list[tuple[str, int, int]] = []
    folders = [""]
    try:
        while folders:
            folder = folders.pop()
            with os.scandir(os.path.join(_PACKAGE, folder)) as entries:
                for entry in entries:
                    if entry.name.endswith(".py"):
                        st = entry.stat()
                        stamp.append((folder + entry.name, st.st_size, st.st_mtime_ns))
                    elif entry.is_dir() and entry.name != "__pycache__":
                        folders.append(f"{folder}{entry.name}/")
    except OSError:
        return None
    return tuple(sorted(stamp)) or None


class Memo:
    """One remembered value: valid while its head (and assetgen's code) is what it was when saved."""

    def __init__(self, file: Path, head: list[Any]) -> None:
        self.file = file
        self._head = head

    def load(self) -> Any | None:
        """The value ``save`` stored under an equal head, or None (absent, other, damaged)."""
        try:
            with open(self.file, "rb") as handle, no_gc():
                if pickle.load(handle) != self._head:
                    return None
                return pickle.load(handle)
        except Exception:      # noqa: BLE001 — any damage (or a class that changed) costs a re-parse
            return None

    def save(self, value: Any) -> None:
        with no_gc():
            data = pickle.dumps(self._head, pickle.HIGHEST_PROTOCOL) + pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        atomic_write(self.file, data, durable=False)


class Memos:
    """The folder of memos; one memo per (source file, suffix)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, source: Path, suffix: str = ".parsed") -> Path:
        """Where what was made from the file at ``source`` is remembered."""
        name = hashlib.sha256(str(source).encode()).hexdigest()[:24]
        return self.folder / f"{name}{suffix}"

    def memo(self, source: Path, suffix: str = ".parsed", *, head: Any = None) -> Memo | None:
        """The memo of what is made from ``source``; None when assetgen's sources cannot be stamped
        (a zip or frozen install): then nothing is remembered."""
        code = code_stamp()
        if code is None:
            return None
        return Memo(self.path(source, suffix), [MEMO_VERSION, code, head])
