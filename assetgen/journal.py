"""The journal of submitted tasks: what makes "never pay twice" true.

One small JSON file per key in ``.assetgen/journal/``, written atomically and fsynced *before* the build
waits on the task. A build that dies for any reason leaves the file; the next build finds it and
collects the task (polls it, or downloads its saved result URLs) instead of submitting again. The file
is removed only once the images are safely in the cache, or the task is known to be gone.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .fsutil import atomic_write

JOURNAL_VERSION = 1


@dataclass
class JournalRecord:
    key: str
    task_id: str
    model: str
    targets: list[str]
    n: int
    submitted_at: float = field(default_factory=time.time)
    images: list[dict[str, Any]] | None = None     # [{"url", "expires_at"}] once completed

    def to_json(self) -> bytes:
        return json.dumps({"version": JOURNAL_VERSION, **asdict(self)}, sort_keys=True).encode()


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def write(self, record: JournalRecord) -> None:
        atomic_write(self._path(record.key), record.to_json(), durable=True)

    def remove(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def pending(self) -> dict[str, JournalRecord]:
        """Every recorded task, by key. Unreadable files are skipped, not deleted (they may be newer)."""
        found: dict[str, JournalRecord] = {}
        if not self.folder.exists():
            return found
        for path in sorted(self.folder.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.pop("version") != JOURNAL_VERSION:
                    continue
                record = JournalRecord(**data)
            except (OSError, ValueError, TypeError, KeyError):
                continue
            found[record.key] = record
        return found
