"""Output writing: a target's files from its generation, its lock entry, and the lock saved, throttled.

    writer = OutputWriter(project)
    await writer.write(item, entry)     # every output of the target, then its lock entry
    writer.flush()                      # at the end of a build: the lock as it stands

An output is written only from an image already in the cache (the scheduler's durability order: cache
objects and index, then outputs, then the lock). A derived output is looked up by the hash of the very
image it is made from, never by the generation key alone (a placeholder and the real image share it).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..errors import AssetgenError
from ..images.derive import derive, is_jpeg
from ..state.atomic import atomic_write
from ..state.lockfile import LockedOutput, LockEntry
from ..state.statcache import sha256_bytes
from .plan import output_key

if TYPE_CHECKING:
    from ..manifest.model import Output
    from ..state.index import CachedImage, IndexEntry
    from .plan import TargetPlan
    from .project import Project


class OutputWriter:
    """Writes targets' outputs and their lock entries for one build."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._pruned = False
        self._lock_dirty = False
        self._lock_saved_at = 0.0
        self._lock_save_cost = 0.0

    async def write(self, item: TargetPlan, entry: IndexEntry) -> None:
        """Write every output of ``item`` from the generation ``entry``, then record it in the lock.

        An image that is not a JPEG is never copied to a .jpg: it is converted."""
        if len(entry.images) < item.target.n:
            raise AssetgenError(f"got {len(entry.images)} images where {item.target.n} were asked for")
        outputs = []
        sources: dict[str, bytes] = {}
        notes: dict[str, str] = {}
        for out in item.target.outputs:
            source = entry.images[out.source]
            data, image, dkey = await self._output_image(item, out, source, sources)
            path = self.project.root / out.path
            atomic_write(path, data, durable=True)
            self.project.store.stat.remember(path, image.sha256)
            outputs.append(LockedOutput(path=out.path, sha256=image.sha256, size=image.size,
                                        source=source.sha256, derivation=dkey,
                                        size_note=self._size_note(item, entry, source.sha256, notes)))
        self._record(item, entry, tuple(outputs))

    async def _output_image(self, item: TargetPlan, out: Output, source: CachedImage,
                            sources: dict[str, bytes]) -> tuple[bytes, CachedImage, str]:
        """(the output's bytes, its image in the cache, its derivation key or "")."""
        store = self.project.store
        data: bytes | None = None
        converted = False
        if out.derivation.passthrough:          # the output is the image itself, if it is a JPEG
            data = self._source_bytes(item, source, sources)
            converted = not is_jpeg(data)
        dkey = output_key(source.sha256, out, converted=converted)
        image: CachedImage | None = source
        if dkey:
            image = store.index.derived(dkey)
            data = store.read_image(image) if image is not None else None
            if data is None or image is None:
                original = self._source_bytes(item, source, sources)
                data = await asyncio.to_thread(derive, original, out.derivation)
                image = store.put_image(data)
                store.index.record_derived(dkey, image)
        assert data is not None and image is not None
        return data, image, dkey

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
