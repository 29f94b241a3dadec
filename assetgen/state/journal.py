"""The journal of submissions: what makes "never pay twice" true, and says so when it cannot.

One small JSON file per key in ``.assetgen/journal/``, written atomically and fsynced at each step of a
submission's life, so a build that dies at any moment leaves a record the next build understands:

    intent (fsynced *before* the POST) → submitted (task id) → completed (result URLs) → removed

The file is removed only once the images are safely in the cache, or the task is known to be gone.

An ``intent`` without a task id after a crash, or a submission whose answer was lost (timeout, 5xx,
unreadable 2xx: state ``uncertain``), may have been accepted and paid for: the gateway has neither
idempotency keys nor a task listing, so nobody can tell. Such a key is *uncertain*: builds name it and
never submit it again unless told to (``--retry-uncertain``). So is a record closed after repeated
failed downloads, and a file that cannot be read (damaged, or written by a newer assetgen).

Format (version 2), one record per key::

    {"version": 2, "key", "targets": [...], "model", "aspect_ratio", "resolution",
     "download_attempts": builds whose download of a completed task failed,
     "closed": why the record was given up (then the key is uncertain) | null,
     "submissions": [{"intent_at", "request_digest", "n", "seed", "task_id" | null,
                      "state": intent|submitted|completed|failed|uncertain,
                      "images": [{"url", "expires_at"}] | null, "note"}]}

Several submissions serve one key when a gateway takes only ``n = 1`` (their images in order make the
key's candidates). A batch job covering many keys would appear as one submission, with the same task
id, in each of its keys' records; readers ignore submission fields they do not know. Version 1 files
(one task per key) are migrated on reading; newer versions are refused, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..catalog import MAX_IMAGES_PER_TASK, safe_task_id
from ..errors import JournalUnwritable
from .atomic import atomic_write

JOURNAL_VERSION = 2


class SubmissionState(StrEnum):
    """Where a submission is in its life (the ``state`` field of the file)."""

    INTENT = "intent"               # written before the POST: may have been accepted
    SUBMITTED = "submitted"         # its task id is known
    COMPLETED = "completed"         # its result URLs are known
    FAILED = "failed"               # not written by this version; read as a plain, settled submission
    UNCERTAIN = "uncertain"         # its answer was lost: may have been accepted


STATES = tuple(SubmissionState)
MAX_DOWNLOAD_ATTEMPTS = 3           # builds that may fail to download a completed task's images
_PROBE_BYTES = 64 * 1024            # "room for a record": far above a real record (~1 KB)
_MAX_TIME = 1e11                    # unix seconds (the year 5138): beyond it a time is damage, not a date
_MAX_TEXT = 10_000                  # characters of a note, a closing reason, a URL


@dataclass
class Submission:
    """One POST to the gateway, from the intent written before it to its outcome."""

    intent_at: float
    request_digest: str
    n: int
    seed: int | None = None
    task_id: str | None = None
    state: SubmissionState = SubmissionState.INTENT
    images: list[dict[str, Any]] | None = None      # [{"url", "expires_at"}] once completed
    note: str = ""                                  # why it is uncertain, in words

    @property
    def unknown(self) -> bool:
        """May have been accepted, but its task id was never received."""
        return self.task_id is None and self.state in (SubmissionState.INTENT, SubmissionState.UNCERTAIN)

    def describe(self) -> str:
        when = _clock(self.intent_at)
        text = f"a submission at {when} may have been accepted; its task id was never received"
        return f"{text} ({self.note})" if self.note else text


@dataclass
class JournalRecord:
    key: str
    targets: list[str]
    model: str
    aspect_ratio: str | None = None
    resolution: str | None = None
    submissions: list[Submission] = field(default_factory=list)
    download_attempts: int = 0
    closed: str | None = None

    @property
    def task_ids(self) -> list[str]:
        return [s.task_id for s in self.submissions if s.task_id]

    @property
    def task_id(self) -> str:
        """The record's task ids as shown to people (and stored in the lock)."""
        return ",".join(self.task_ids)

    @property
    def n(self) -> int:
        return sum(s.n for s in self.submissions if s.task_id)

    @property
    def uncertain(self) -> str | None:
        """Why this key must not be submitted again without ``--retry-uncertain``, or None."""
        if self.closed:
            return self.closed
        unknown = [s for s in self.submissions if s.unknown]
        return "; ".join(s.describe() for s in unknown) if unknown else None

    def to_json(self) -> bytes:
        return json.dumps({"version": JOURNAL_VERSION, **asdict(self)}, sort_keys=True).encode()


@dataclass
class Damaged:
    """A journal file that cannot be read: its key is uncertain until someone decides."""

    path: Path
    key: str
    problem: str

    def describe(self) -> str:
        return (f"journal file {self.path} {self.problem}; a task may have been paid for under this key. "
                f"Check the gateway's dashboard, then run `assetgen build --retry-uncertain` to submit "
                f"again (the file is moved to {self.path.parent / 'damaged'}/)")


@dataclass
class JournalScan:
    records: dict[str, JournalRecord] = field(default_factory=dict)
    damaged: dict[str, Damaged] = field(default_factory=dict)

    @property
    def collectable(self) -> set[str]:
        """Keys whose tasks a build collects without paying (nothing uncertain about them)."""
        return {k for k, r in self.records.items() if r.uncertain is None}

    @property
    def paid_images(self) -> dict[str, int]:
        """Collectable key → images its tasks were asked for (fewer than the target's ``n`` after an
        interrupted ``n = 1`` fallback: the build pays for the rest)."""
        return {k: self.records[k].n for k in self.collectable}

    def uncertain(self) -> dict[str, str]:
        """Key → why it is uncertain, in words."""
        found = {k: r.uncertain for k, r in self.records.items() if r.uncertain is not None}
        found.update({k: d.describe() for k, d in self.damaged.items()})
        return found


class Journal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def write(self, record: JournalRecord) -> None:
        atomic_write(self._path(record.key), record.to_json(), durable=True)

    def remove(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def set_aside(self, key: str) -> None:
        """Move a damaged file out of the way (kept for a person to look at), once retried."""
        path = self._path(key)
        if path.exists():
            aside = self.folder / "damaged" / f"{key}.{int(time.time())}.json"
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, aside)

    def check_writable(self) -> None:
        """Before the first paid submit: the folder exists, takes a record-sized durable file, and lets
        it be removed. A journal that cannot be written would lose the task ids of paid tasks."""
        probe = self.folder / f".probe-{os.getpid()}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as handle:
                handle.write(b"\0" * _PROBE_BYTES)
                handle.flush()
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            try:
                probe.unlink(missing_ok=True)
            except OSError:
                pass
            raise JournalUnwritable(
                f"the journal folder {self.folder} cannot be written ({exc.strerror or exc}); nothing was "
                f"submitted and nothing was paid. Make it writable (and free some disk space), then build "
                f"again") from exc

    def pending(self) -> dict[str, JournalRecord]:
        """Every readable record, by key (damaged files: see ``scan``)."""
        return self.scan().records

    def scan(self) -> JournalScan:
        """Every record, and every file that cannot be read (never skipped silently, never deleted)."""
        found = JournalScan()
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = parse(path.read_bytes())
            except OSError as exc:
                found.damaged[path.stem] = Damaged(path, path.stem, f"cannot be read ({exc.strerror})")
                continue
            except JournalDamage as exc:
                found.damaged[path.stem] = Damaged(path, path.stem, str(exc))
                continue
            if record.key != path.stem:
                found.damaged[path.stem] = Damaged(path, path.stem, f"names another key ({record.key[:16]}…)")
                continue
            found.records[record.key] = record
        return found


class JournalDamage(ValueError):
    """What is wrong with one journal file, in words."""


def parse(raw: bytes) -> JournalRecord:
    """A record from a file's bytes, migrating version 1; ``JournalDamage`` says what is wrong."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise JournalDamage("is not UTF-8 text (damaged)") from None
    except json.JSONDecodeError as exc:
        what = "is empty" if not raw.strip() else f"is not valid JSON (truncated or damaged at byte {exc.pos})"
        raise JournalDamage(what) from None
    except RecursionError:
        raise JournalDamage("is nested too deeply to be a journal record") from None
    if not isinstance(data, dict):
        raise JournalDamage("does not hold a JSON object")
    version = data.get("version")
    if version == 1:
        data = _migrate_v1(data)
    elif isinstance(version, int) and not isinstance(version, bool) and version > JOURNAL_VERSION:
        raise JournalDamage(f"was written by a newer assetgen (journal format {version}; this one reads up "
                            f"to {JOURNAL_VERSION}); upgrade assetgen to collect it")
    elif version != JOURNAL_VERSION:
        raise JournalDamage(f"has an unknown format version {version!r}")
    return _record(data)


def _migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1: one task per key, written only once its id was known."""
    images = data.get("images")
    submission = {"intent_at": data.get("submitted_at", 0.0), "request_digest": "", "n": data.get("n"),
                  "seed": None, "task_id": data.get("task_id"),
                  "state": "completed" if images else "submitted", "images": images}
    return {"key": data.get("key"), "targets": data.get("targets"), "model": data.get("model"),
            "submissions": [submission]}


def _record(data: dict[str, Any]) -> JournalRecord:
    key = _typed(data, "key", str)
    submissions = _typed(data, "submissions", list)
    targets = _typed(data, "targets", list)
    if not all(isinstance(t, str) for t in targets):
        raise JournalDamage("has a wrongly typed field 'targets' (expected a list of names)")
    record = JournalRecord(
        key=key, targets=targets, model=_typed(data, "model", str),
        aspect_ratio=_typed(data, "aspect_ratio", str, optional=True),
        resolution=_typed(data, "resolution", str, optional=True),
        download_attempts=_typed(data, "download_attempts", int, optional=True) or 0,
        closed=_typed(data, "closed", str, optional=True),
        submissions=[_submission(s, i) for i, s in enumerate(submissions)])
    if record.download_attempts < 0:
        raise JournalDamage("has an impossible count in field 'download_attempts'")
    if record.closed is not None and len(record.closed) > _MAX_TEXT:
        raise JournalDamage("has an impossibly long field 'closed'")
    return record


def _submission(data: Any, index: int) -> Submission:
    if not isinstance(data, dict):
        raise JournalDamage(f"has a wrongly typed submission #{index + 1} (expected an object)")
    where = f"submissions[{index}]."
    intent_at = _time(_typed(data, "intent_at", float, where=where), f"{where}intent_at")
    state = _typed(data, "state", str, where=where)
    if state not in STATES:
        raise JournalDamage(f"has an unknown state {state[:40]!r} in field '{where}state' "
                            f"(valid: {', '.join(STATES)})")
    n = _typed(data, "n", int, where=where)
    if not 1 <= n <= MAX_IMAGES_PER_TASK:
        raise JournalDamage(f"has an impossible image count {n} in field '{where}n' (a task makes 1 to "
                            f"{MAX_IMAGES_PER_TASK} images)")
    task_id = _typed(data, "task_id", str, where=where, optional=True)
    if task_id is not None:
        if not safe_task_id(task_id):
            raise JournalDamage(f"has an unusable task id in field '{where}task_id' (letters, digits and "
                                f"'._:-', at most 200 characters)")
    images = _typed(data, "images", list, where=where, optional=True)
    if images is not None:
        images = [_image(image, f"{where}images[{i}]") for i, image in enumerate(images)]
    note = _typed(data, "note", str, where=where, optional=True) or ""
    if len(note) > _MAX_TEXT:
        raise JournalDamage(f"has an impossibly long field '{where}note'")
    return Submission(intent_at=intent_at, request_digest=_typed(data, "request_digest", str, where=where),
                      n=n, seed=_typed(data, "seed", int, where=where, optional=True),
                      task_id=task_id, state=SubmissionState(state), images=images, note=note)


def _image(data: Any, where: str) -> dict[str, Any]:
    """One saved result URL: ``{"url": text, "expires_at": unix seconds | null}``."""
    if not isinstance(data, dict):
        raise JournalDamage(f"has a wrongly typed field '{where}' (expected {{url, expires_at}})")
    url = _typed(data, "url", str, where=f"{where}.")
    if not url or len(url) > _MAX_TEXT:
        raise JournalDamage(f"has an unusable URL in field '{where}.url'")
    expires_at = _typed(data, "expires_at", float, where=f"{where}.", optional=True)
    if expires_at is not None:
        expires_at = _time(expires_at, f"{where}.expires_at")
    return {"url": url, "expires_at": expires_at}


def _time(value: float, where: str) -> float:
    """A unix time as written by assetgen: finite, not before 1970, not absurdly far ahead."""
    if not (math.isfinite(value) and 0 <= value < _MAX_TIME):
        raise JournalDamage(f"has an impossible time in field '{where}'")
    return value


def _typed(data: dict[str, Any], name: str, kind: type, *, where: str = "", optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        label = {str: "a string", int: "an integer", float: "a number", list: "a list"}[kind]
        missing = "is missing field" if name not in data else "has a wrongly typed field"
        raise JournalDamage(f"{missing} '{where}{name}' (expected {label})")
    return value


def request_digest(body: dict[str, Any]) -> str:
    """SHA-256 of the submit body as sent (references included), to tell submissions apart."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _clock(when: float) -> str:
    moment = datetime.fromtimestamp(when)
    today = datetime.now().date() == moment.date()
    return moment.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S")
