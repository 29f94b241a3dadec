"""``prune``: delete the output files of targets removed from the manifest (``engine.orphans``).

Only a file that still has the hash the lock recorded is deleted: one changed by hand is an artist's
work and stays unless ``force``. Their images stay in the cache until ``gc``, so a pruned output of a
target put back is restored for free. The lock entries go too (as a build would drop them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.orphans import OrphanOutput, drop_orphan_entries, forget
from ..engine.project import Project


@dataclass
class PruneReport:
    deleted: list[OrphanOutput] = field(default_factory=list)    # (or, dry run: would be)
    kept: list[OrphanOutput] = field(default_factory=list)       # modified by hand, without --force
    dry_run: bool = False


def prune(path: Path, *, dry_run: bool = False, force: bool = False, profile: str | None = None,
          timeout: float = 600.0) -> PruneReport:
    project = Project.open(path, profile=profile)
    try:
        held = project.build_lock(timeout=timeout)
        try:
            project.reload_lock()
            report = PruneReport(dry_run=dry_run)
            for orphan in project.orphans():
                if orphan.state == "missing":
                    continue
                if orphan.state == "modified" and not force:
                    report.kept.append(orphan)
                    continue
                report.deleted.append(orphan)
                if not dry_run:
                    try:
                        os.unlink(project.root / orphan.path)
                    except FileNotFoundError:
                        pass
            if not dry_run:
                if drop_orphan_entries(project.manifest.targets, project.lock, project.orphans_record):
                    project.lock.save()
                forget(project.orphans_record, report.deleted)
            return report
        finally:
            held.release()
    finally:
        project.close()
