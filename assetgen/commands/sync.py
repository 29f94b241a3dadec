"""``assetgen push`` / ``pull``: explicit sync between the local cache and the remote cache.

Builds already read through and write through the remote; these commands are for seeding a new
bucket from a team's existing local caches, and for warming a machine's cache before going offline.
"""

from __future__ import annotations

from ..engine.project import Project
from ..errors import UsageError
from ..remote.cache import RemoteCache


def _remote(project: Project) -> RemoteCache:
    remote = project.remote
    if remote is None:
        raise UsageError(f"{project.manifest.path} has no remote cache: add [cache] remote = \"s3://bucket/prefix\"")
    return remote


def _locked_keys(project: Project) -> list[str]:
    return sorted({entry.key for entry in project.lock.entries.values() if not entry.placeholder})


def push(project: Project) -> tuple[int, int]:
    """Upload each locked key's cached images the remote lacks. Returns (uploaded, already there)."""
    remote = _remote(project)
    sent = already = 0
    for key in _locked_keys(project):
        entry = project.store.index.lookup(key)
        if entry is None:
            continue                             # not in this machine's cache: nothing to share from here
        if remote.has_entry(key):
            already += 1
            continue
        images = [project.store.read_image(i) for i in entry.images]
        if any(data is None for data in images) or not remote.available:
            continue
        remote.put(entry, [data for data in images if data is not None])
        sent += remote.available
    return sent, already


def pull(project: Project) -> tuple[int, int]:
    """Download each locked key the local cache lacks. Returns (downloaded, not in the remote)."""
    remote = _remote(project)
    got = missing = 0
    for key in _locked_keys(project):
        if project.store.index.lookup(key) is not None:
            continue
        fetched = remote.fetch(key)
        if fetched is None:
            missing += remote.available
            continue
        entry, images = fetched
        for data in images:
            project.store.put_image(data)
        project.store.index.record(entry)
        got += 1
    return got, missing
