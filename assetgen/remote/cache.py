"""The remote cache: the local cache's images and index shared through object storage (fsspec).

    <remote>/                        any fsspec URL: s3://team-assets/assetgen, file:///shared/dir, gs://…
      objects/ab/abcdef….jpg         images by SHA-256, named as in the local cache; verified on read
      keys/<key>.json                key → images (``IndexEntry.to_json()``), written after its images
      leases/<key>.json              {"key", "task_id", "holder", "created_at", "expires_at"}: who is
                                     generating <key> right now, so a second machine waits, not pays

fsspec is imported only by its storage adapters (``storage``). Three rules shape it:

* A remote that is down must never fail a build. Every storage error is caught at this boundary; the
  first one that is not "object missing" warns once, sets ``available = False`` and the remote is not
  tried again in this process (fail fast: a short connect timeout and at most one retry).
* Readers never trust what they read: an image must match its SHA-256 (a torn or damaged upload is
  as good as absent: the reader deletes that version where it may, and the next ``put`` replaces it)
  and an index entry is written only after all its images, so an entry never points at images that
  are not there yet.
* Messages may name the URL but never credentials: userinfo and query strings are stripped, the
  storage options are never shown, and no storage exception text reaches a message (it can carry
  endpoints and signed URLs). Credentials come from each storage's own environment and config files.

Leases need a write that only one machine can win. On S3 that is a conditional PUT (``If-None-Match:
*`` to create, ``If-Match: <ETag>`` to replace an expired lease and to delete one's own); on file://
it is a hard link of a complete temporary file (fails if the name exists), with takeovers done under
an flock. Other backends get fsspec's ``mode="create"``, which is atomic only where the backend makes
it so.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..state.index import INDEX_VERSION, CachedImage, IndexEntry
from ..state.statcache import sha256_bytes
from .storage import Storage, Unreachable, open_storage

__all__ = ["Lease", "RemoteCache", "redact_url"]

T = TypeVar("T")

# A key becomes a file name on every storage: refuse anything that could climb out of its folder.
_LEDGER_NAME = re.compile(r"\d{4}-\d{2}-\d{2}\.[0-9a-f]{32}\.json")
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Lease:
    """A claim on one key while its images are being generated; stale after ``expires_at``."""

    key: str
    task_id: str | None
    holder: str
    created_at: float
    expires_at: float

    def live(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at

    def _to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def _from_bytes(cls, data: bytes) -> Lease | None:
        """The lease in ``data``, or None if it is not one (a damaged lease is as good as expired)."""
        try:
            raw = json.loads(data)
            lease = cls(key=str(raw["key"]), task_id=raw["task_id"], holder=str(raw["holder"]),
                        created_at=float(raw["created_at"]), expires_at=float(raw["expires_at"]))
        except (ValueError, TypeError, KeyError):
            return None
        return lease if lease.task_id is None or isinstance(lease.task_id, str) else None

    def _same_claim(self, other: Lease | None) -> bool:
        # A lease is identified by who took it and when: its task id changes once submitted.
        return (other is not None and other.key == self.key and other.holder == self.holder
                and other.created_at == self.created_at)


def redact_url(url: str) -> str:
    """``url`` fit for a message: without userinfo (``key:secret@``), query or fragment (SAS tokens)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<remote>"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class RemoteCache:
    """Images and index entries on shared storage, in front of the local cache.

    Every public method catches the storage's errors: it returns None/False/empty instead of raising,
    and the first failure (other than a missing object) disables the remote for this process.
    Safe to call from several threads.
    """

    def __init__(self, url: str, *, options: dict[str, Any] | None = None,
                 warn: Callable[[str], None] | None = None, connect_timeout: float = 3.0) -> None:
        self.url = url
        self.display_url = redact_url(url).rstrip("/")
        self.available = True
        self._options = dict(options or {})
        self._warn = warn if warn is not None else (lambda message: None)
        self._connect_timeout = connect_timeout
        self._storage: Storage | None = None
        self._lock = threading.Lock()
        # Objects seen corrupt in this process: ``put`` replaces them without asking the storage again.
        self._corrupt: set[str] = set()

    def __repr__(self) -> str:
        # Never the options: they are the manifest's, but a user may have put a secret there anyway.
        return f"RemoteCache({self.display_url!r}, available={self.available})"

    # -- index entries and images -----------------------------------------------------------------

    def get_entry(self, key: str) -> IndexEntry | None:
        """The remote index entry for ``key``; None if absent, damaged or unreachable."""
        path = self._entry_path(key)

        def op(storage: Storage) -> IndexEntry | None:
            data = storage.read(path)
            return None if data is None else self._parse_entry(key, data)

        return self._run(None, op)

    def get_image(self, image: CachedImage) -> bytes | None:
        """The image's bytes if present and intact; a corrupt object is reported and ignored."""
        path = self._object_path(image.sha256)

        def op(storage: Storage) -> bytes | None:
            data = storage.read(path)
            if data is None:
                return None
            if not _intact(data, image):
                self._corrupt.add(image.sha256)
                removed = self._remove_corrupt(storage, path, image)
                self._warn(f"remote object {self._where(path)} is corrupt (SHA-256 mismatch); ignored"
                           + (" and removed" if removed else ""))
                return None
            return data

        return self._run(None, op)

    @staticmethod
    def _remove_corrupt(storage: Storage, path: str, image: CachedImage) -> bool:
        """Delete a corrupt object, so no one trips over it again; whether it was deleted.

        The rebuild that follows usually produces other images (under other names), so without this
        the damaged object would stay in the bucket for good. Only the damaged version is deleted (a
        conditional delete on the version just read): good bytes uploaded meanwhile stay. A storage that
        refuses (read-only credentials, as CI often has) leaves it in place; that is not a failure.
        """
        try:
            current = storage.read_versioned(path)
            if current is None or _intact(current[0], image):
                return False
            return storage.delete(path, current[1])
        except Unreachable:
            return False

    def fetch(self, key: str) -> tuple[IndexEntry, list[bytes]] | None:
        """The entry for ``key`` and all its images, verified; None unless every image is good."""
        entry = self.get_entry(key)
        if entry is None:
            return None
        images: list[bytes] = []
        for image in entry.images:
            data = self.get_image(image)
            if data is None:
                return None
            images.append(data)
        return entry, images

    def put(self, entry: IndexEntry, images: list[bytes]) -> None:
        """Write-through: the images (those not already there intact), then the entry."""
        if len(images) != len(entry.images):
            raise ValueError(f"entry {entry.key} lists {len(entry.images)} images, {len(images)} given")
        for meta, data in zip(entry.images, images, strict=True):
            if sha256_bytes(data) != meta.sha256 or len(data) != meta.size:
                raise ValueError(f"image bytes do not match entry {entry.key} ({meta.sha256})")
        entry_path = self._entry_path(entry.key)

        def op(storage: Storage) -> None:
            for meta, data in zip(entry.images, images, strict=True):
                path = self._object_path(meta.sha256)
                # Cheap check first (size, ETag), bytes only when needed; a known-corrupt object is
                # replaced outright, since its size may well be right.
                if meta.sha256 in self._corrupt or not storage.holds(path, data):
                    storage.write(path, data)
                    self._corrupt.discard(meta.sha256)
            # Last: a reader that sees the entry finds its images already in place.
            storage.write(entry_path, entry.to_json().encode("utf-8"))

        self._run(None, op)

    def has_entry(self, key: str) -> bool:
        path = self._entry_path(key)
        return self._run(False, lambda storage: storage.size(path) is not None)

    def keys(self) -> set[str]:
        """Every key with a remote entry (entries are not read or verified)."""
        def op(storage: Storage) -> set[str]:
            stems = (name[: -len(".json")] for name in storage.list("keys") if name.endswith(".json"))
            return {stem for stem in stems if _KEY.fullmatch(stem)}

        return self._run(set(), op)

    # -- the team ledger: one object per entry, never a shared file to rewrite --------------------------

    def put_ledger_entry(self, name: str, data: bytes) -> None:
        """``ledger/<name>``: one spend entry (``state.ledger``); writing it again writes the same bytes."""
        if not _LEDGER_NAME.fullmatch(name):
            raise ValueError(f"not a ledger object name: {name!r}")
        self._run(None, lambda storage: storage.write(f"ledger/{name}", data))

    def ledger_names(self) -> set[str] | None:
        """The names of the ledger objects (a listing, nothing read); None if the remote is down."""
        def op(storage: Storage) -> set[str] | None:
            return {name for name in storage.list("ledger") if _LEDGER_NAME.fullmatch(name)}

        return self._run(None, op)

    def ledger_entries(self) -> dict[str, bytes]:
        """Every ledger object, by name (unreadable ones left out; a remote that is down gives none)."""
        def op(storage: Storage) -> dict[str, bytes]:
            found = {}
            for name in storage.list("ledger"):
                if _LEDGER_NAME.fullmatch(name):
                    data = storage.read(f"ledger/{name}")
                    if data is not None:
                        found[name] = data
            return found

        return self._run({}, op)

    # -- leases -------------------------------------------------------------------------------------

    def acquire_lease(self, key: str, *, task_id: str | None, holder: str,
                      ttl: float = 900.0) -> Lease | None:
        """Claim ``key``: the new Lease, or None if someone else holds a live one (or unreachable).

        An expired or damaged lease is replaced with a compare-and-swap on the version we read, so of
        several machines racing for the same stale lease exactly one wins.
        """
        path = self._lease_path(key)

        def op(storage: Storage) -> Lease | None:
            # A second round only when the lease vanished (was released) between our tries.
            for _ in range(2):
                now = time.time()
                lease = Lease(key=key, task_id=task_id, holder=holder, created_at=now, expires_at=now + ttl)
                if storage.create(path, lease._to_bytes()):
                    return lease
                current = storage.read_versioned(path)
                if current is None:
                    continue
                data, version = current
                existing = Lease._from_bytes(data)
                if existing is not None and existing.live():
                    return None
                return lease if storage.replace(path, lease._to_bytes(), version) else None
            return None

        return self._run(None, op)

    def read_lease(self, key: str) -> Lease | None:
        """The live lease on ``key``, or None if there is none (absent, expired or damaged)."""
        path = self._lease_path(key)

        def op(storage: Storage) -> Lease | None:
            data = storage.read(path)
            lease = None if data is None else Lease._from_bytes(data)
            return lease if lease is not None and lease.live() else None

        return self._run(None, op)

    def update_lease(self, lease: Lease, *, task_id: str) -> None:
        """Record the task id on our lease; nothing happens if the lease is no longer ours."""
        path = self._lease_path(lease.key)

        def op(storage: Storage) -> None:
            current = storage.read_versioned(path)
            if current is not None and lease._same_claim(Lease._from_bytes(current[0])):
                storage.replace(path, replace(lease, task_id=task_id)._to_bytes(), current[1])

        self._run(None, op)

    def release_lease(self, lease: Lease) -> None:
        """Drop our lease; a lease that expired and was taken over by someone else is left alone."""
        path = self._lease_path(lease.key)

        def op(storage: Storage) -> None:
            current = storage.read_versioned(path)
            if current is not None and lease._same_claim(Lease._from_bytes(current[0])):
                storage.delete(path, current[1])

        self._run(None, op)

    # -- internals ----------------------------------------------------------------------------------

    def _run(self, default: T, op: Callable[[Storage], T]) -> T:
        """Run ``op`` against the storage; an unreachable storage gives ``default``, once warned."""
        if not self.available:
            return default
        try:
            return op(self._open())
        except Unreachable as exc:
            self._disable(exc.reason)
            return default

    def _open(self) -> Storage:
        # Lazily: a build that finds everything in the local cache never touches the network.
        with self._lock:
            if self._storage is None:
                self._storage = open_storage(self.url, self._options, self._connect_timeout)
            return self._storage

    def _disable(self, reason: str) -> None:
        with self._lock:
            if not self.available:
                return  # another thread already warned
            self.available = False
        self._warn(f"remote cache {self.display_url} unreachable ({reason}); "
                   "continuing with the local cache only")

    def _parse_entry(self, key: str, data: bytes) -> IndexEntry | None:
        try:
            raw = json.loads(data)
            if isinstance(raw, dict) and raw.get("version") != INDEX_VERSION:
                return None  # written by another assetgen version: not ours to read, not damaged
            entry = IndexEntry.from_json(data.decode("utf-8"))
        except (ValueError, TypeError, KeyError):
            entry = None
        if entry is None or entry.key != key:
            self._warn(f"remote entry {self._where(self._entry_path(key))} is damaged; ignored")
            return None
        return entry

    # Paths are relative to the remote's root, which is known only once the storage is open.

    @staticmethod
    def _entry_path(key: str) -> str:
        return f"keys/{_check_key(key)}.json"

    @staticmethod
    def _lease_path(key: str) -> str:
        return f"leases/{_check_key(key)}.json"

    @staticmethod
    def _object_path(sha: str) -> str:
        return f"objects/{_check_key(sha)[:2]}/{sha}.jpg"

    def _where(self, path: str) -> str:
        return f"{self.display_url}/{path}"


def _intact(data: bytes, image: CachedImage) -> bool:
    return len(data) == image.size and sha256_bytes(data) == image.sha256


def _check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a cache key: {key!r}")
    return key
