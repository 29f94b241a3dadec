"""Output writing: a target's files from its generation, its lock entry, and the lock saved, throttled.

    writer = OutputWriter(project)
    await writer.write(item, entry)     # every output of the target, then its lock entry
    writer.flush()                      # at the end of a build: the lock as it stands

An output is written only from an image already in the cache (the scheduler's durability order: cache
objects and index, then outputs, then the lock). A derived output is looked up by the hash of the very
image it is made from, never by the generation key alone (a placeholder and the real image share it).

Derived outputs are not cached as images: they are remade from their generation, which is (a pure
function, so the same bytes), and the cache keeps only their hashes (``index/derived``), for ``plan``.
All outputs of one generated image are made from one decode (``derive_all``), on a pool of one worker
per core with as many in flight, so memory stays bounded; a target's files are written together, with
one fsync per folder, before its lock entry.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..errors import AssetgenError
from ..images.derive import Derivation, derive_all, is_jpeg
from ..state.atomic import atomic_write_all
from ..state.index import CachedImage
from ..state.lockfile import LockedOutput, LockEntry
from ..state.statcache import sha256_bytes
from .plan import output_key

if TYPE_CHECKING:
    from ..manifest.model import Output
    from ..state.index import IndexEntry
    from .plan import TargetPlan
    from .project import Project


_POOL: Executor | None = None


def derive_workers() -> int:
    """Derivations run at once: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                  # not Linux
        return max(1, os.cpu_count() or 1)


def _pool() -> Executor:
    """The derivation workers, shared by every build of this process. Threads: Pillow and numpy release
    the GIL while they decode, resize, key out and encode, which is nearly all of a derivation's time."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=derive_workers(), thread_name_prefix="assetgen-derive")
    return _POOL


class OutputWriter:
    """Writes targets' outputs and their lock entries for one build."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._pruned = False
        self._lock_dirty = False
        self._lock_saved_at = 0.0
        self._lock_save_cost = 0.0
        # Derivations in flight: each holds a decoded image (64 MB at 4K), so no more than the workers.
        self._slots = asyncio.Semaphore(derive_workers())

    async def write(self, item: TargetPlan, entry: IndexEntry) -> None:
        """Write every output of ``item`` from the generation ``entry``, then record it in the lock.

        An image that is not a JPEG is never copied to a .jpg: it is converted."""
        if len(entry.images) < item.target.n:
            raise AssetgenError(f"got {len(entry.images)} images where {item.target.n} were asked for")
        sources: dict[str, bytes] = {}
        made = await self._make(item, entry, sources)
        root = self.project.root
        atomic_write_all([(root / out.path, data) for out, _source, _dkey, data in made], durable=True)
        store = self.project.store
        notes: dict[str, str] = {}
        outputs = []
        for out, source, dkey, data in made:
            image = CachedImage(sha256_bytes(data), len(data)) if dkey else source
            if dkey and store.index.derived(dkey) != image:
                store.index.record_derived(dkey, image, source=source)
            store.stat.remember(root / out.path, image.sha256)
            outputs.append(LockedOutput(path=out.path, sha256=image.sha256, size=image.size,
                                        source=source.sha256, derivation=dkey,
                                        size_note=self._size_note(item, entry, source.sha256, notes)))
        self._record(item, entry, tuple(outputs))

    async def _make(self, item: TargetPlan, entry: IndexEntry, sources: dict[str, bytes]
                    ) -> list[tuple[Output, CachedImage, str, bytes]]:
        """Each output's (output, source image, derivation key or "", bytes): copies of the generated
        image as they are, the rest derived, every output of one image from one decode."""
        rows: list[tuple[Output, CachedImage, str, bytes | None]] = []
        todo: dict[str, list[int]] = {}            # source image → the outputs to derive from it
        for out in item.target.outputs:
            source = entry.images[out.source]
            data: bytes | None = None
            converted = False
            if out.derivation.passthrough:          # the output is the image itself, if it is a JPEG
                data = self._source_bytes(item, source, sources)
                converted = not is_jpeg(data)
            dkey = output_key(source.sha256, out, converted=converted)
            if dkey:
                data = self._kept_derived(dkey)
                if data is None:
                    todo.setdefault(source.sha256, []).append(len(rows))
            rows.append((out, source, dkey, data))
        for indexes in todo.values():
            source = rows[indexes[0]][1]
            original = self._source_bytes(item, source, sources)
            results = await self._derive(original, [rows[i][0].derivation for i in indexes])
            for i, data in zip(indexes, results, strict=True):
                rows[i] = (*rows[i][:3], data)
        done = [(out, source, dkey, data) for out, source, dkey, data in rows if data is not None]
        assert len(done) == len(rows), "every output was copied or derived"
        return done

    def _kept_derived(self, dkey: str) -> bytes | None:
        """A derived output's bytes if a cache made by an older assetgen kept them as an object."""
        store = self.project.store
        image = store.index.derived(dkey)
        return store.read_image(image) if image is not None and store.has_image(image) else None

    async def _derive(self, original: bytes, derivations: list[Derivation]) -> list[bytes]:
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_pool(), derive_all, original, derivations)

    def _record(self, item: TargetPlan, entry: IndexEntry, outputs: tuple[LockedOutput, ...]) -> None:
        lock = self.project.lock
        lock.entries[item.name] = LockEntry(
            key=item.key, model=entry.model, outputs=outputs, spec=item.spec, cost=entry.cost,
            task_id=entry.task_id, built_at=entry.built_at, placeholder=entry.placeholder,
            review=item.locked.review if item.locked is not None else None)   # lapses if outputs changed
        if not self._pruned:                        # once per build: targets removed from the manifest
            self._pruned = True                     # leave the lock with the first write
            for name in [n for n in lock.entries if n not in self.project.manifest.targets]:
                del lock.entries[name]
        self.save_lock()

    def _size_note(self, item: TargetPlan, entry: IndexEntry, sha: str, notes: dict[str, str]) -> str:
        """The lock's note on a served image whose size differs from the catalogue's (within 5 %): from
        the cache (the download's check wrote it), else as the lock had it for the same image."""
        if entry.placeholder:
            return ""
        if sha not in notes:
            notes[sha] = self.project.store.index.size_note(sha) or next(
                (o.size_note for o in (item.locked.outputs if item.locked else ()) if o.source == sha
                 and o.size_note), "")
        return notes[sha]

    def _source_bytes(self, item: TargetPlan, source: CachedImage, read: dict[str, bytes]) -> bytes:
        """The generated image's bytes: from the cache, or from an output on disk that is that image
        byte for byte (a fresh clone remaking a derived output); such a file is put into the cache."""
        if source.sha256 in read:
            return read[source.sha256]
        store = self.project.store
        data = store.read_image(source)
        if data is None and item.locked is not None:
            data = self._from_locked_output(item, source)
        if data is None:
            raise AssetgenError(f"cached image {source.sha256[:12]} vanished from {store.objects}; "
                                f"run the build again")
        read[source.sha256] = data
        return data

    def _from_locked_output(self, item: TargetPlan, source: CachedImage) -> bytes | None:
        assert item.locked is not None
        for locked in item.locked.outputs:
            if locked.sha256 == source.sha256 and not locked.derivation:
                try:
                    found = (self.project.root / locked.path).read_bytes()
                except OSError:
                    continue
                if sha256_bytes(found) == source.sha256:
                    self.project.store.put_image(found)
                    return found
        return None

    def save_lock(self, *, final: bool = False) -> None:
        """Write the lock after a finished target, at most so often that writing it takes a tenth of
        the time: a 10,000-entry lock rewritten after every target made cold builds quadratic (and wrote
        gigabytes). Nothing finished is lost in between: its images are in the cache and its output on
        disk, so a build after a crash restores it into the lock for free."""
        lock = self.project.lock
        now = time.monotonic()
        if not final and now - self._lock_saved_at < 10 * self._lock_save_cost:
            self._lock_dirty = True
            return
        started = time.monotonic()
        lock.save()
        self._lock_saved_at = time.monotonic()
        self._lock_save_cost = self._lock_saved_at - started
        self._lock_dirty = False

    def flush(self) -> None:
        """Save the lock if a throttled save left it behind (the end of a build, even a failed one)."""
        if self._lock_dirty:
            self.save_lock(final=True)
