"""A manifest together with its lock, cache and journal: the library's entry point.

    project = Project.open("assets.toml")
    plan = project.plan()
    report = build(project, offline=True)      # see assetgen.commands.build

``Project`` owns the paths beside the manifest (``X.lock`` for ``X.toml``, ``.assetgen/``), the registry
of manifests that share one cache, and the one-build-at-a-time file lock; it knows nothing about
providers or output formats.

Several manifests in one folder share one cache (``.assetgen/``) but never a lock: ``icons.toml``
records in ``icons.lock``, its profiles in ``.assetgen/profiles/icons/NAME.lock`` (``assets.toml``
keeps ``assets.lock`` and ``.assetgen/profiles/NAME.lock``, where they always were). Each one that
builds is registered in ``.assetgen/manifests/`` so ``gc`` keeps what any of them references. The build
lock belongs to the cache, not to one manifest: one build (or watch, or gc) at a time per cache, so
builds of different manifests never share the journal at once and gc never runs beside any of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AssetgenError, BuildLocked
from ..manifest.model import Manifest
from ..state.atomic import atomic_write, expect_file, expect_folder, sweep_stale_temps
from ..state.journal import Journal
from ..state.lockfile import Lock
from ..state.memos import no_gc
from ..state.store import Store
from .keys import KeyedTarget, compute_keys
from .orphans import OrphanOutput, find_orphans, prunable, record_path
from .plan import Plan, make_plan
from .snapshot import open_manifest

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from ..remote.cache import RemoteCache

DEFAULT_MANIFEST = "assets.toml"
LOCK_NAME = "assets.lock"            # the default manifest's lock; ``lock_path`` says which for any
CACHE_DIR = ".assetgen"


class Project:
    def __init__(self, manifest: Manifest, *, store: Store | None = None, lock: Lock | None = None,
                 use_remote: bool = True, warn: Callable[[str], None] | None = None) -> None:
        """``store`` and ``lock`` let a watch session keep one of each across manifest reloads;
        ``use_remote=False`` ignores ``[cache] remote``; ``warn`` is told when the remote misbehaves."""
        self.manifest = manifest
        self.use_remote = use_remote
        self.warnings: list[str] = []
        self.warn = warn or self.warnings.append
        self._remote: RemoteCache | None | bool = False      # False: not opened yet
        self.root = manifest.root
        self.cache_dir = self.root / CACHE_DIR
        self.store = store or Store(self.cache_dir)
        self.journal = Journal(self.cache_dir / "journal")
        self.lock_path = lock_path(manifest.path, manifest.profile)
        with no_gc():
            self.lock = lock or Lock.load(self.lock_path, memo=self.store.memos)
        self._keyed: dict[str, KeyedTarget] | None = None
        self._keyed_from: dict[str, Any] | None = None        # the targets they were computed for
        self._remember: Callable[[], None] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str] = "assets.toml", *, profile: str | None = None,
             store: Store | None = None, lock: Lock | None = None, use_remote: bool = True,
             warn: Callable[[str], None] | None = None) -> Project:
        expect_folder(Path(path).resolve().parent / CACHE_DIR, "assetgen's cache")
        store = store or Store(Path(path).resolve().parent / CACHE_DIR)
        manifest, keyed, remember = open_manifest(path, profile=profile, memos=store.memos,
                                                  hash_file=_hasher(store))
        project = cls(manifest, store=store, lock=lock, use_remote=use_remote, warn=warn)
        project._keyed, project._keyed_from = keyed, manifest.targets
        if retouched_outputs(project.lock):
            project._keyed = compute_keys(manifest, _hasher(store), keyed, retouched_outputs(project.lock))
        project._remember = remember
        return project

    @property
    def remote(self) -> RemoteCache | None:
        """The shared remote cache of ``[cache] remote``, or None (not configured, or ``--no-remote``)."""
        if self._remote is False:
            url = self.manifest.cache.remote
            if not (self.use_remote and url):
                self._remote = None
            else:
                from ..remote.cache import RemoteCache   # fsspec is only imported when a remote is configured
                self._remote = RemoteCache(url, options=self.manifest.cache.remote_options, warn=self.warn)
        return None if isinstance(self._remote, bool) else self._remote

    @property
    def keyed(self) -> dict[str, KeyedTarget]:
        if self._keyed is None or self._keyed_from is not self.manifest.targets:
            # (Computed again if a caller replaced the manifest's targets since.)
            self._keyed = compute_keys(self.manifest, _hasher(self.store), retouched=retouched_outputs(self.lock))
            self._keyed_from = self.manifest.targets
        return self._keyed

    def reload_lock(self) -> None:
        """Read the lock again if another process changed it (after waiting for its build)."""
        if not self.lock.unchanged_on_disk():
            self.lock = Lock.load(self.lock_path, memo=self.store.memos)

    def is_offline(self, requested: bool | None = None) -> bool:
        """Whether a build renders placeholders: as ``requested`` (``--offline``), else as the
        manifest's ``provider`` setting says."""
        return self.manifest.settings.provider == "offline" if requested is None else requested

    def plan(self, targets: list[str] | tuple[str, ...] = (), *, offline: bool | None = None,
             force: bool = False, retry_uncertain: bool | frozenset[str] = False) -> Plan:
        """What a build would do. ``offline`` defaults to the manifest's ``provider`` setting;
        ``retry_uncertain`` (True or target names): price those uncertain targets as a retry would."""
        offline = self.is_offline(offline)
        selection = self.manifest.select(list(targets)) if targets else None
        remote = self.remote if not offline else None      # placeholders are never shared
        journal = self.journal.scan()
        with no_gc():
            plan = make_plan(self.manifest, self.keyed, self.lock, self.store, selection=selection,
                             offline=offline, force=force, in_flight=journal.paid_images,
                             uncertain=journal.uncertain(), remote_lookup=remote.get_entry if remote else None,
                             retry_uncertain=retry_uncertain)
        plan.orphans = self.orphans()
        return plan

    @property
    def orphans_record(self) -> Path:
        return record_path(self.cache_dir, self.lock_path)

    def orphans(self) -> list[OrphanOutput]:
        """Outputs of targets no longer in the manifest (``orphans``)."""
        targets = self.manifest.targets
        if all(name in targets for name in self.lock.entries) and not self.orphans_record.exists():
            return []
        in_use = {path for t in targets.values() for path in t.output_paths} | \
            {path for sheet in self.manifest.sheets.values() for path in sheet.paths}
        settings = self.manifest.settings
        allowed = prunable(self.root, [settings.out_dir] if settings.allow_outside else [])
        return find_orphans(targets, in_use, self.lock, self.store, self.root, self.orphans_record, allowed)

    def build_lock(self, *, timeout: float, on_wait: Any = None) -> BaseFileLock:
        return acquire_build_lock(self.manifest.path, timeout=timeout, on_wait=on_wait)

    def sweep_temporaries(self) -> None:
        """Remove temporaries a killed assetgen left where a build writes (outputs, the lock, the
        journal), even where it has nothing to write: one left in an output folder could be committed."""
        root = self.manifest.root
        folders = {out.path.rpartition("/")[0] for t in self.manifest.targets.values() for out in t.outputs}
        for folder in sorted(folders) + [self.lock_path.parent.as_posix()]:
            sweep_stale_temps(root / folder)
        # The cache's own folders too (objects/ab/, index/gen/, journal/…): a kill between a temporary file
        # and its rename leaves one there. A few hundred scandirs: ~5 ms at 10,000 targets.
        cache = self.cache_dir
        for sub in [cache, *cache.glob("*/"), *cache.glob("objects/*/"), *cache.glob("index/*/")]:
            sweep_stale_temps(sub)

    def remember(self) -> None:
        """Leave the next run the resolved manifest and the parsed lock (``snapshot``, stat cache):
        at 10,000 targets, loading them from scratch takes seconds."""
        if self._remember is not None:
            self._remember()
            self._remember = None
        self.lock.remember()

    def close(self) -> None:
        self.remember()
        self.store.close()


def retouched_outputs(lock: Lock) -> dict[str, str]:
    """Target → SHA-256 of its first output where the lock records it as retouched (``adopt``)."""
    return {name: entry.outputs[0].sha256 for name, entry in lock.entries.items()
            if entry.outputs and entry.outputs[0].generated}


def _hasher(store: Store) -> Callable[[Path], str]:
    # One look per file per load: a few hundred reference files serve thousands of targets (2,500
    # stats and paths for 300 files at 10,000 targets).
    seen: dict[Path, str] = {}

    def hash_file(path: Path) -> str:
        if path in seen:
            return seen[path]
        try:
            seen[path] = digest = store.stat.sha256(path)
        except OSError as exc:
            raise AssetgenError(f"cannot read reference file {path}: {exc.strerror}") from exc
        return digest
    return hash_file


def lock_path(manifest_path: Path, profile: str | None) -> Path:
    """``X.lock`` beside ``X.toml`` for final builds; a profile's builds (drafts) are recorded in the
    local cache, apart per manifest (``assets.toml``'s where they always were: nothing to migrate)."""
    if profile is None:
        path = manifest_path.with_suffix(".lock")
        return path if path != manifest_path else manifest_path.with_name(manifest_path.name + ".lock")
    return profiles_dir(manifest_path) / f"{profile}.lock"


def profiles_dir(manifest_path: Path) -> Path:
    folder = manifest_path.parent / CACHE_DIR / "profiles"
    return folder if manifest_path.name == DEFAULT_MANIFEST else folder / manifest_path.stem


def profile_locks(manifest_path: Path) -> dict[str, Path]:
    """Every profile lock of this manifest, by profile name."""
    folder = profiles_dir(manifest_path)
    return {p.stem: p for p in sorted(folder.glob("*.lock"))} if folder.is_dir() else {}


# -- the manifests that share a cache -----------------------------------------------------------------
# One small file per manifest (``.assetgen/manifests/<name>.json``), written once, atomically: two
# manifests registering at the same moment write different files, so none is ever lost.

REGISTRY_DIR = "manifests"
REGISTRY_VERSION = 1


def register_manifest(manifest_path: Path) -> None:
    """Record that the manifest at ``manifest_path`` uses the cache beside it (once; cheap after)."""
    entry = manifest_path.parent / CACHE_DIR / REGISTRY_DIR / f"{manifest_path.name}.json"
    if not entry.exists():
        data = {"version": REGISTRY_VERSION, "manifest": manifest_path.name}
        atomic_write(entry, json.dumps(data, sort_keys=True).encode("utf-8"), durable=True)


def registered_manifests(cache_dir: Path) -> list[str]:
    """File names (in the cache's folder) of every manifest that registered; damaged entries are named
    by their file name, so a damaged entry never makes gc forget a manifest."""
    folder = cache_dir / REGISTRY_DIR
    names: set[str] = set()
    for entry in folder.glob("*.json") if folder.is_dir() else []:
        try:
            name = json.loads(entry.read_text(encoding="utf-8"))["manifest"]
        except (OSError, ValueError, KeyError, TypeError):
            name = entry.name[:-len(".json")]
        if isinstance(name, str) and name and "/" not in name and name not in (".", ".."):
            names.add(name)
    return sorted(names)


def forget_manifest(cache_dir: Path, name: str) -> None:
    (cache_dir / REGISTRY_DIR / f"{name}.json").unlink(missing_ok=True)


def acquire_build_lock(manifest_path: Path, *, timeout: float, on_wait: Any = None) -> BaseFileLock:
    """Take the one-build-at-a-time lock beside ``manifest_path``, waiting up to ``timeout`` seconds
    (``on_wait`` is called once if we have to wait). The OS releases it if the process dies."""
    import filelock

    lock = _build_lock_file(manifest_path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if on_wait is not None and timeout > 0:
            on_wait()
        try:
            lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise _locked(manifest_path, timeout) from None
    register_manifest(manifest_path)
    return lock


# noqa below: ``timeout`` is the lock's own wait limit, named in its error like ``acquire_build_lock``'s
async def wait_for_build_lock(manifest_path: Path, *, timeout: float, on_wait: Any = None,  # noqa: ASYNC109
                              stopped: Callable[[], bool] = lambda: False) -> BaseFileLock:
    """``acquire_build_lock`` inside an event loop: it polls rather than blocks, so signal handlers run
    while it waits, and it raises ``CancelledError`` once ``stopped()`` (a Ctrl-C): nothing was done."""
    import asyncio
    import time

    import filelock

    lock = _build_lock_file(manifest_path)
    deadline = time.monotonic() + timeout
    said = False
    while True:
        if stopped():
            raise asyncio.CancelledError()
        try:
            lock.acquire(timeout=0)
            break
        except filelock.Timeout:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _locked(manifest_path, timeout) from None
            if not said and on_wait is not None:
                on_wait()
            said = True
            await asyncio.sleep(min(0.1, left))
    register_manifest(manifest_path)
    return lock


def _build_lock_file(manifest_path: Path) -> BaseFileLock:
    import filelock   # here: only builds take the lock, and `plan` should not pay for the import

    cache_dir = manifest_path.parent / CACHE_DIR
    expect_folder(cache_dir, "assetgen's cache")
    expect_file(cache_dir / "build.lock", "the build lock file")
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One lock per cache, shared by every manifest beside it (see the module's docstring).
    return filelock.FileLock(str(cache_dir / "build.lock"))


def _locked(manifest_path: Path, timeout: float) -> BuildLocked:
    cache_dir = manifest_path.parent / CACHE_DIR
    return BuildLocked(f"another assetgen build, watch or gc using {cache_dir} (of {manifest_path} or "
                       f"a manifest beside it) is still running; gave up waiting after {timeout:.0f} s. "
                       f"Wait for it to finish (or pass --wait SECONDS)")
