"""The stat cache, ``.assetgen/stat.json``: content hashes of files, re-read only when they changed.

    path → [size, mtime_ns, inode, sha256]

make's cheap check (and doit's): a file whose size, mtime and inode are as recorded is not read again.
A hash taken within ``RACY_NS`` of the file's mtime is trusted in this process only (git's "racy clean"
rule). A missing or damaged stat.json only costs re-hashing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..errors import StateError
from .atomic import atomic_write, not_a_file

STAT_VERSION = 1
_CHUNK = 1 << 20
# File times tick coarsely (a kernel jiffy, or seconds on some file systems): a file changed this
# recently could change again, same size, without its mtime moving. Such hashes are not persisted.
RACY_NS = 2_000_000_000


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StatCache:
    """Content hashes of files, re-read only when size, mtime or inode changed (make's cheap check)."""

    def __init__(self, file: Path) -> None:
        self._file = file
        self._entries: dict[str, list[Any]] = {}
        self._recent: dict[str, list[Any]] = {}     # racy entries: trusted in this process only
        self._dirty = False
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
            if raw.get("version") == STAT_VERSION and isinstance(raw["files"], dict):
                # Entries are checked when used (``_hit``), not all 10,000 here: a damaged one must cost
                # a re-hash, never a crash (and is not written back).
                self._entries = raw["files"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # a missing or damaged stat cache only costs re-hashing

    def sha256(self, path: Path | str, st: os.stat_result | None = None) -> str:
        """SHA-256 of the file at ``path``; raises ``OSError`` if it cannot be read."""
        name = os.fspath(path)
        st = st or os.stat(name)
        kind = not_a_file(st)
        if kind:         # a folder is an error; a FIFO or device would block the read
            raise StateError(f"{name} should be a file, but it is {kind}; move it away and run the command again")
        signature = [st.st_size, st.st_mtime_ns, st.st_ino]
        for cached in (self._entries.get(name), self._recent.get(name)):
            if cached is not None and _hit(cached, signature):
                return str(cached[3])
        digest = sha256_file(path)
        if time.time_ns() - st.st_mtime_ns < RACY_NS:
            # git's "racy clean" rule: a later same-size write in the same clock tick would keep this
            # signature, so the next run must read the file again rather than trust this hash.
            self._recent[name] = [*signature, digest]
        else:
            self._entries[name] = [*signature, digest]
            self._dirty = True
        return digest

    def prefetch(self, paths: list[str], *, workers: int = 4) -> int:
        """Hash, in ``workers`` threads, the files of ``paths`` this cache knows nothing about, when
        that is most of them (a fresh clone: no stat.json). ``hashlib`` and file reads release the GIL,
        so the hashes are taken in parallel; ``sha256`` then finds them. Returns how many were hashed.

        A warm cache is left alone: checking it here would only stat every file twice."""
        if len(self._entries) + len(self._recent) >= len(paths) // 2 or len(paths) < 2 * workers:
            return 0
        from concurrent.futures import ThreadPoolExecutor

        def hash_all(names: list[str]) -> list[tuple[str, os.stat_result, str]]:
            done = []
            for name in names:
                try:
                    st = os.stat(name)
                    if not not_a_file(st):       # (else ``sha256`` says what is wrong, in order)
                        done.append((name, st, sha256_file(name)))
                except OSError:
                    pass
            return done
        # One slice per thread (a future per file costs more than the threads save).
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = [r for part in pool.map(hash_all, [paths[i::workers] for i in range(workers)]) for r in part]
        now = time.time_ns()
        for name, st, digest in found:
            entry = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
            if now - st.st_mtime_ns < RACY_NS:
                self._recent[name] = entry
            else:
                self._entries[name] = entry
                self._dirty = True
        return len(found)

    def remember(self, path: Path, digest: str) -> None:
        """Record the hash of a file we just wrote, so the next run need not read it back."""
        st = path.stat()
        self._entries[str(path)] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
        self._dirty = True

    def probe(self, path: Path | str) -> str | None:
        """Hash of the file, or None if it does not exist."""
        try:
            return self.sha256(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def save(self) -> None:
        if self._dirty:
            files = {name: entry for name, entry in self._entries.items() if _well_formed(entry)}
            data = json.dumps({"version": STAT_VERSION, "files": files}, separators=(",", ":"))
            atomic_write(self._file, data.encode(), durable=False)
            self._dirty = False


def _well_formed(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) == 4 and all(type(v) is int for v in entry[:3]) \
        and isinstance(entry[3], str)


def _hit(entry: Any, signature: list[int]) -> bool:
    """``entry`` is well formed and records ``signature`` (size, mtime, inode)."""
    return isinstance(entry, list) and len(entry) == 4 and entry[:3] == signature and _well_formed(entry)
