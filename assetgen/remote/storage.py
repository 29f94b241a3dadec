"""Storage adapters behind ``cache.RemoteCache``: fsspec in general, S3 and local folders in particular.

Each adapter reads, writes, lists, and does the conditional writes that leases need. Every storage
exception is translated at ``boundary()``: "missing" stays ``FileNotFoundError``, a failed condition is
``Refused``, S3's 409 is ``Conflict``, and anything else is ``Unreachable`` with a short reason built
from exception types and error codes only (their text can carry endpoints or signed URLs).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..state.atomic import atomic_write, fsync_dir

# S3 error codes that mean "the storage is fine, the condition of a conditional request did not hold".
_PRECONDITION_CODES = {"PreconditionFailed", "412"}
_CONFLICT_CODES = {"ConditionalRequestConflict", "409"}
_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                 "InvalidToken", "AccountProblem", "AllAccessDisabled", "403"}

class Unreachable(Exception):
    """The storage failed in a way that is not "missing": ``reason`` is short and free of secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Refused(Exception):
    """A conditional request's condition did not hold (the object exists / changed)."""


class _Conflict(Exception):
    """S3's 409: another conditional write on the same name is in flight."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchBucket``, ``PreconditionFailed``…) behind ``exc``, if any."""
    for err in _chain(exc):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason: built from exception types and error codes, never their text."""
    code = _error_code(exc)
    if code == "NoSuchBucket":
        return "no such bucket"
    if code in _ACCESS_CODES:
        return f"access denied: {code}"
    names = [type(err).__name__ for err in _chain(exc)]
    if any("Credential" in name or name == "NoAuthTokenError" for name in names):
        return "no credentials"
    if any("Timeout" in name for name in names) or any(isinstance(e, TimeoutError) for e in _chain(exc)):
        return "timed out"
    if any(name in ("EndpointConnectionError", "ClientConnectorError") for name in names) or any(
            isinstance(e, ConnectionError) for e in _chain(exc)):
        return "cannot connect"
    if isinstance(exc, PermissionError):
        return "access denied"
    return code or type(exc).__name__


@contextmanager
def _boundary() -> Iterator[None]:
    """Translate the storage's exceptions: missing passes, a failed condition is ``_Refused``,
    a 409 is ``_Conflict``, and everything else makes the remote unreachable."""
    try:
        yield
    except (_Refused, _Conflict, Unreachable):
        raise
    except Exception as exc:
        code = _error_code(exc)
        if code in _PRECONDITION_CODES or isinstance(exc, FileExistsError):
            raise _Refused() from exc
        if code in _CONFLICT_CODES:
            raise _Conflict() from exc
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)) and code != "NoSuchBucket":
            raise FileNotFoundError() from None  # drop the storage's text: it may carry a signed URL
        raise Unreachable(_reason(exc)) from exc


def open_storage(url: str, options: dict[str, Any], connect_timeout: float) -> Storage:
    try:
        import fsspec.core  # here, not at the top: a project without a remote never pays for it
    except ImportError:
        raise Unreachable("fsspec is not installed") from None
    with _boundary():
        protocol = urlsplit(url).scheme.lower() or "file"
        kwargs = dict(options)
        if protocol in ("s3", "s3a"):
            # Fail fast: a short connect timeout and one botocore retry at most (s3fs' own retry loop
            # is cut to a single attempt below). The manifest's config_kwargs win over these defaults.
            config = {"connect_timeout": connect_timeout, "read_timeout": 10, "retries": {"max_attempts": 1}}
            config.update(kwargs.get("config_kwargs") or {})
            kwargs["config_kwargs"] = config
            # Other machines write here: a cached listing would hide their entries and leases.
            kwargs.setdefault("use_listings_cache", False)
        # Our own instance: we change its retry count, and fsspec otherwise shares instances.
        kwargs["skip_instance_cache"] = True
        try:
            fs, root = fsspec.core.url_to_fs(url, **kwargs)
        except ImportError:
            raise Unreachable(f"the package for {protocol}:// is not installed") from None
        except ValueError:
            raise Unreachable(f"unknown protocol {protocol}:// or bad options") from None
        root = str(root).rstrip("/")
        if "file" in _protocols(fs):
            return _LocalStorage(Path(root))
        if protocol in ("s3", "s3a"):
            fs.retries = 1
            return _S3Storage(fs, root)
        return Storage(fs, root)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


class Storage:
    """A few operations on any fsspec filesystem, paths relative to the remote's root.

    Generic backends get the best fsspec offers: ``mode="create"`` is atomic only where the backend
    implements it, and replace/delete compare then write (a narrow race between two machines).
    """

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root

    def full(self, path: str) -> str:
        return f"{self.root}/{path}" if self.root else path

    def read(self, path: str) -> bytes | None:
        try:
            with _boundary():
                return bytes(self.fs.cat_file(self.full(path)))
        except FileNotFoundError:
            return None

    def size(self, path: str) -> int | None:
        info = self._info(path)
        return None if info is None else int(info["size"])

    def _info(self, path: str) -> dict[str, Any] | None:
        try:
            with _boundary():
                return dict(self.fs.info(self.full(path)))
        except FileNotFoundError:
            return None

    def holds(self, path: str, data: bytes) -> bool:
        """Whether the object at ``path`` is exactly ``data``: size, then ETag, then the bytes."""
        info = self._info(path)
        if info is None or int(info.get("size", -1)) != len(data):
            return False
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        if etag and etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
            return True  # a single-part upload's ETag is its MD5; any other ETag proves nothing
        return self.read(path) == data

    def write(self, path: str, data: bytes) -> None:
        with _boundary():
            self.fs.pipe_file(self.full(path), data)

    def create(self, path: str, data: bytes) -> bool:
        """Write ``data`` only if nothing is at ``path``; False if something is."""
        try:
            with _boundary():
                self.fs.pipe_file(self.full(path), data, mode="create")
        except _Refused:
            return False
        return True

    def read_versioned(self, path: str) -> tuple[bytes, object] | None:
        """The object and a version token for ``replace``/``delete``; None if absent."""
        data = self.read(path)
        return None if data is None else (data, data)

    def replace(self, path: str, data: bytes, version: object) -> bool:
        """Write ``data`` if the object is still at ``version``."""
        if self.read(path) != version:
            return False
        self.write(path, data)
        return True

    def delete(self, path: str, version: object) -> bool:
        if self.read(path) != version:
            return False
        try:
            with _boundary():
                self.fs.rm_file(self.full(path))
        except FileNotFoundError:
            return False
        return True

    def list(self, folder: str) -> list[str]:
        try:
            with _boundary():
                names = self.fs.ls(self.full(folder), detail=False)
        except FileNotFoundError:
            return []
        return [str(name).rstrip("/").rpartition("/")[2] for name in names]


class _S3Storage(Storage):
    """S3 (and S3-compatible stores): true conditional writes, versions are ETags."""

    def create(self, path: str, data: bytes) -> bool:
        # s3fs sends PutObject with If-None-Match: * for mode="create"; S3 answers 412 if the object
        # exists, and 409 if another conditional write on it is in flight (retry once: it may fail).
        for attempt in range(2):
            try:
                with _boundary():
                    self.fs.pipe_file(self.full(path), data, mode="create")
                return True
            except _Refused:
                return False
            except _Conflict:
                time.sleep(0.05 * (attempt + 1))
        return False

    def read_versioned(self, path: str) -> tuple[bytes, object] | None:
        # ETag first, then the bytes: if the object changed in between, the If-Match on the older
        # ETag fails, so we can only ever act on the version whose bytes we judged.
        info = self._info(path)
        if info is None or not info.get("ETag"):
            return None
        data = self.read(path)
        return None if data is None else (data, info["ETag"])

    def replace(self, path: str, data: bytes, version: object) -> bool:
        try:
            with _boundary():
                self.fs.pipe_file(self.full(path), data, IfMatch=version)
        except (_Refused, _Conflict, FileNotFoundError):
            return False
        return True

    def delete(self, path: str, version: object) -> bool:
        bucket, key, _ = self.fs.split_path(self.full(path))
        try:
            with _boundary():
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=version)
        except (_Refused, _Conflict, FileNotFoundError):
            return False
        return True


class _LocalStorage(Storage):
    """A folder (file://, often a network share): atomic renames, exclusive hard links, flock."""

    def __init__(self, root: Path) -> None:
        super().__init__(None, str(root))
        self.base = root

    def _path(self, path: str) -> Path:
        return self.base / path

    def read(self, path: str) -> bytes | None:
        try:
            with _boundary():
                return self._path(path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _info(self, path: str) -> dict[str, Any] | None:
        try:
            with _boundary():
                return {"size": self._path(path).stat().st_size}
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, data: bytes) -> None:
        with _boundary():
            atomic_write(self._path(path), data, durable=True)

    def create(self, path: str, data: bytes) -> bool:
        # Link a complete temporary file to the name: link() fails if the name exists, and unlike
        # O_CREAT|O_EXCL then write, no reader ever sees an empty or half-written lease.
        target = self._path(path)
        with _boundary():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    return False
                except OSError:
                    return self._create_excl(target, data)  # a filesystem without hard links
            finally:
                os.unlink(tmp)
            fsync_dir(target.parent)
            return True

    @staticmethod
    def _create_excl(target: Path, data: bytes) -> bool:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True

    def replace(self, path: str, data: bytes, version: object) -> bool:
        target = self._path(path)
        with _boundary(), _locked(target.parent / ".lock"):
            # Under the lock nobody else replaces or deletes; a plain create() cannot slip in either,
            # because the name exists from before the check until after the rename.
            if self.read(path) != version:
                return False
            atomic_write(target, data, durable=True)
            return True

    def delete(self, path: str, version: object) -> bool:
        target = self._path(path)
        with _boundary(), _locked(target.parent / ".lock"):
            if self.read(path) != version:
                return False
            target.unlink(missing_ok=True)
            return True

    def list(self, folder: str) -> list[str]:
        try:
            with _boundary():
                return [p.name for p in self._path(folder).iterdir() if not p.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """An exclusive lock between processes (and machines, on NFS/SMB) held for a few file operations."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
