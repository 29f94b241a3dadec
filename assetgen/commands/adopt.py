"""``adopt``: take the files on disk as the outputs of the current spec (an artist's retouch).

The lock entry keeps what it was built from (source image, derivation, task, cost) and records, per
output, the hash of the file assetgen wrote (``generated``) beside the hash of the file now there. From
then on ``plan`` reports the target up to date (retouched), a spec change blocks it instead of paying
for it (``plan._keep_retouch``), and ``@target`` references key on the retouched bytes, which are what
they send (``keys.compute_keys``). The retouched bytes are also put in the object store, so a later
``--force`` or a lost file never loses them before ``gc``. Nothing is submitted or written but the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..engine.project import Project
from ..errors import UsageError
from ..state.lockfile import LockedOutput


@dataclass
class Adopted:
    name: str
    outputs: list[str]          # the outputs now recorded as the artist's
    changed: list[str]          # those whose bytes differ from what assetgen generated
    spec_changed: bool          # adopted for a spec other than the one it was generated for


def modified_targets(project: Project) -> list[str]:
    """Targets with an output modified by hand (what ``adopt --all-modified`` adopts)."""
    return [i.name for i in project.plan().items if any(r.kind == "hand" for r in i.reasons)]


def adopt(project: Project, names: list[str]) -> list[Adopted]:
    """Record the outputs of ``names`` as they are on disk; saves the lock. The caller holds the
    build lock (a build writing the lock meanwhile would lose this)."""
    root = project.root
    done: list[Adopted] = []
    for name in names:
        keyed = project.keyed[name]
        locked = project.lock.entries.get(name)
        if locked is None:
            raise UsageError(f"target '{name}' was never built, so there is no generated image to adopt "
                             f"from; run `assetgen build {name}` first")
        by_path = {o.path: o for o in locked.outputs}
        outputs: list[LockedOutput] = []
        changed: list[str] = []
        for out in keyed.target.outputs:
            previous = by_path.get(out.path)
            file = root / out.path
            if previous is None:
                raise UsageError(f"target '{name}': output {out.path} was never built by assetgen; run "
                                 f"`assetgen build {name}` first, then retouch and adopt it")
            try:
                data = file.read_bytes()
            except FileNotFoundError:
                raise UsageError(f"target '{name}': output {out.path} is missing; put the retouched file "
                                 f"there (or restore it with `assetgen build {name}`) and adopt again") from None
            except OSError as exc:
                raise UsageError(f"target '{name}': cannot read {out.path}: {exc.strerror}") from None
            image = project.store.put_image(data)          # kept until gc, whatever happens to the file
            generated = previous.generated or previous.sha256
            if image.sha256 != generated:
                changed.append(out.path)
            outputs.append(replace(previous, sha256=image.sha256, size=image.size, generated=generated))
        spec_changed = locked.key != keyed.key
        project.lock.entries[name] = replace(locked, key=keyed.key, spec=keyed.spec, outputs=tuple(outputs),
                                             placeholder=False, model=keyed.target.model)
        done.append(Adopted(name, [o.path for o in outputs], changed, spec_changed))
    project.lock.save()
    return done


def adopt_command(path: Path, names: list[str], *, all_modified: bool, profile: str | None,
                  tags: tuple[str, ...] = (), timeout: float = 600.0) -> list[Adopted]:
    """``assetgen adopt``: open the project, take the build lock, adopt the named (names, globs,
    ``tags``) or modified targets."""
    if not names and not tags and not all_modified:
        raise UsageError("name the targets to adopt (globs and --tag work), or pass --all-modified")
    project = Project.open(path, profile=profile)
    try:
        held = project.build_lock(timeout=timeout)
        try:
            project.reload_lock()
            manifest = project.manifest
            chosen = manifest.expand(manifest.selection(names, tags)) if names or tags else []
            if all_modified:
                chosen += [n for n in modified_targets(project) if n not in chosen]
            if not chosen:
                return []
            return adopt(project, chosen)
        finally:
            held.release()
    finally:
        project.close()
