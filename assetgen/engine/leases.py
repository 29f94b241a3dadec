"""The remote cache in a build: read-through, write-through, and a lease per key being generated.

    leases = Leases(remote, store, emit=builder.emit, poll_interval=1.0)
    entry = await leases.fetch(key)                   # someone paid for it already: into the local cache
    lease, entry = await leases.claim(item, collect)  # ours to generate, or the images a peer made
    ...; await leases.put(entry, images); await leases.release(lease)

A lease tells other machines "this key is being paid for, wait"; it names its holder (``HOLDER``) and,
once submitted, the task id, so a machine on the same gateway account can collect the task itself
(``collect``, the scheduler's). A remote that is down only costs the sharing: builds go on alone.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .events import EventKind

if TYPE_CHECKING:
    from ..remote.cache import Lease, RemoteCache
    from ..state.index import IndexEntry
    from ..state.store import Store
    from .plan import TargetPlan

# The scheduler's: try a peer's task by its id (None: our account cannot see it, wait for its images).
CollectPeer = Callable[["TargetPlan", "Lease"], Awaitable["IndexEntry | None"]]


def _holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):      # no login name in some containers
        user = "someone"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


HOLDER = _holder()   # who holds a remote lease, as other machines are told


class Leases:
    def __init__(self, remote: RemoteCache, store: Store, *, emit: Callable[..., None],
                 poll_interval: float) -> None:
        self.remote, self.store, self.emit, self.poll_interval = remote, store, emit, poll_interval

    async def fetch(self, key: str) -> IndexEntry | None:
        """The key's images from the remote cache, verified and copied into the local cache."""
        fetched = await asyncio.to_thread(self.remote.fetch, key)
        if fetched is None:
            return None
        entry, images = fetched
        for data in images:
            self.store.put_image(data)
        self.store.index.record(entry)
        return entry

    async def put(self, entry: IndexEntry, images: list[bytes]) -> None:
        await asyncio.to_thread(self.remote.put, entry, images)

    async def claim(self, item: TargetPlan, collect: CollectPeer) -> tuple[Lease | None, IndexEntry | None]:
        """A lease on the key, so no other machine pays for it meanwhile; or the images another machine
        that held the lease produced. (None, None) when the remote is down."""
        while True:
            lease = await asyncio.to_thread(self.remote.acquire_lease, item.key, task_id=None, holder=HOLDER)
            if lease is not None or not self.remote.available:
                return lease, None
            entry = await self._wait_for_peer(item, collect)
            if entry is not None:
                return None, entry

    def update(self, lease: Lease, *, task_id: str) -> None:
        """Lets a machine waiting on this key poll our task instead of only waiting for images."""
        self.remote.update_lease(lease, task_id=task_id)

    async def release(self, lease: Lease) -> None:
        await asyncio.to_thread(self.remote.release_lease, lease)

    async def _wait_for_peer(self, item: TargetPlan, collect: CollectPeer) -> IndexEntry | None:
        """Another machine holds the key's lease: collect its task if our account can see it, else wait
        for its images to appear in the remote. None once its lease is gone without images."""
        tried_task = False
        said = False
        while True:
            lease = await asyncio.to_thread(self.remote.read_lease, item.key)
            if lease is None or not self.remote.available:
                return await self.fetch(item.key)
            if not said:
                self.emit(EventKind.NOTICE, item.name, f"{lease.holder} is generating this image; waiting for it "
                                               f"instead of paying again")
                said = True
            if lease.task_id and not tried_task:
                tried_task = True
                entry = await collect(item, lease)
                if entry is not None:
                    return entry
            entry = await self.fetch(item.key)
            if entry is not None:
                return entry
            await asyncio.sleep(self.poll_interval)
