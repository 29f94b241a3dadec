"""Atomic, durable file writes: the only way assetgen replaces a file it cares about.

Temporary files are named ``.NAME.assetgen-<pid>-<random>.tmp`` beside their target, so they are
recognisably ours and say which process owns them. A process killed between creating one and renaming
it leaves it behind; the next write into that folder by any assetgen process removes the stale ones
(their owner is no longer alive), so a kill never leaves litter in an output folder for good.

It also owns the checks that a path holds the kind of thing assetgen expects (``expect_file``,
``expect_folder``): a folder, FIFO or device where a file should be is an error naming the path, never
a blocked read or a traceback.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path

from ..errors import StateError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temp files are created 0600; outputs and the lock are ordinary project files (0666 & ~umask).
_FILE_MODE = 0o666 & ~_umask()
_TEMP_RE = re.compile(r"^\..*\.assetgen-(\d+)-[0-9a-f]+\.tmp$")
_swept: set[str] = set()          # folders this process has cleaned of stale temporaries already


def temp_name(name: str) -> str:
    """A temporary name for a file about to become ``name``: ours, with our pid, within 255 bytes."""
    stem = name.encode("utf-8")[:120].decode("utf-8", "ignore")
    return f".{stem}.assetgen-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a torn one.

    ``durable`` also fsyncs the file and its folder, so the new content survives power loss: used for
    the lock, the journal and outputs; skipped for caches that can be rebuilt.
    """
    atomic_write_all([(path, data)], durable=durable)


def atomic_write_all(files: Sequence[tuple[Path, bytes]], *, durable: bool = True) -> None:
    """``atomic_write`` of several files, with one fsync per folder rather than one per file.

    Each file's content is written and fsynced under its temporary name first, then all are renamed,
    then each folder is fsynced once: when this returns (``durable``), every file is durable, and no
    file was ever torn under its own name (a crash leaves the old file or the new one, as for one)."""
    done: list[tuple[Path, Path]] = []          # (temporary, final) written, not yet renamed
    try:
        for path, data in files:
            _prepare(path)
            tmp = path.parent / temp_name(path.name)
            done.append((tmp, path))
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                os.fchmod(handle.fileno(), _FILE_MODE)
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
        while done:
            tmp, path = done[0]
            os.replace(tmp, path)
            done.pop(0)
    except BaseException:
        for tmp, _path in done:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    if durable:
        for folder in dict.fromkeys(path.parent for path, _data in files):
            fsync_dir(folder)


def _prepare(path: Path) -> None:
    """Make ``path``'s folder (or say what stands in its way) and sweep stale temporaries from it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), path.parent)
        raise StateError(f"{blocker} should be a folder (to hold {path.name}), but it is "
                         f"{kind_of(os.stat(blocker).st_mode)}; move it away and run the command again") from None
    if path.is_dir():
        raise StateError(f"{path} should be a file, but it is a folder; move it away and run the command again")
    sweep_stale_temps(path.parent)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True          # someone else's process (or a pid we cannot ask about): leave it be
    return True


def forget_sweeps() -> None:
    """Let the next writes sweep their folders again (a new command in a long-lived process)."""
    _swept.clear()


def sweep_stale_temps(folder: Path) -> int:
    """Remove our temporaries in ``folder`` whose process is gone (once per folder per process).

    Returns how many were removed. Only names ``temp_name`` makes are touched, never a user's files.
    """
    key = os.fspath(folder)
    if key in _swept:
        return 0
    _swept.add(key)
    removed = 0
    try:
        with os.scandir(folder) as entries:
            stale = [e.path for e in entries if e.name.endswith(".tmp")
                     and (m := _TEMP_RE.match(e.name)) and not _alive(int(m.group(1)))]
    except OSError:
        return 0
    for name in stale:
        try:
            os.unlink(name)
            removed += 1
        except OSError:
            pass
    return removed


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform can open a folder; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
          (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """'a folder', 'a FIFO (named pipe)', … for a mode that is not a regular file; 'a file' otherwise."""
    return next((name for test, name in _KINDS if test(mode)), "a file")


def not_a_file(st: os.stat_result) -> str | None:
    """What is there instead of a regular file ('a folder', 'a FIFO (named pipe)', …), or None."""
    return None if stat.S_ISREG(st.st_mode) else kind_of(st.st_mode)


def _stat_if_there(path: Path, what: str) -> os.stat_result | None:
    """``path``'s stat, None if nothing is there; ``StateError`` if it cannot be looked at."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot use {what} here: {exc.strerror}") from None
    except ValueError:
        raise StateError(f"{path!r}: not a usable path for {what} (it contains a NUL character)") from None


def expect_file(path: Path, what: str) -> None:
    """Raise ``StateError`` if ``path`` exists and is not a regular file (never open a FIFO to find out)."""
    st = _stat_if_there(path, what)
    kind = not_a_file(st) if st is not None else None
    if kind:
        raise StateError(f"{path} should be {what}, but it is {kind}; move it away and run the command again")


def expect_folder(path: Path, what: str) -> None:
    """Raise ``StateError`` if ``path`` exists and is not a folder."""
    st = _stat_if_there(path, what)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise StateError(f"{path} should be {what} (a folder), but it is {kind_of(st.st_mode)}; move it "
                         f"away and run the command again")
