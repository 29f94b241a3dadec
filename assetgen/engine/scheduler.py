"""The scheduler: runs a ``Plan`` through a provider, in dependency order, ``jobs`` tasks at a time.

Order of writes for one generation, each step durable before the next, so that a crash at any point
loses nothing and pays nothing twice:

    intent (fsync) → submit → task id (fsync) → poll → download → cache objects + index → outputs → lock
    → drop journal

A key whose journal record is *uncertain* (a submission that may have been paid for without its task id
reaching us, a record closed after repeated failed downloads, a damaged file) is never submitted again
unless the build was asked to (``retry_uncertain``): it ends as an ``uncertain`` result (exit 1).

Per-target outcomes are values (``TargetResult``), not exceptions; the exit code is derived from them.
The remote cache's read-through, write-through and leases are ``leases``'s; writing outputs and saving
the lock, ``outputs``'.
Only a 401 (nothing can succeed) and a second Ctrl-C end the run early; the journal is intact then.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..errors import (AssetgenError, AuthenticationFailed, BatchPending, DownloadFailed, GatewayError,
                      ImageSizeMismatch, IncompleteResult, InsufficientBalance, JournalUnwritable, StateError,
                      SubmissionUncertain, TaskFailed, TaskNotFound, UncertainSubmission)
from ..images import check as imagecheck
from ..providers.base import Generation, Job, Provider, durably
from ..providers.request import submit_body
from ..state.journal import (MAX_DOWNLOAD_ATTEMPTS, Journal, JournalRecord, JournalScan, Submission, SubmissionState,
                             request_digest)
from ..state.index import IndexEntry
from ..state.statcache import sha256_bytes
from .events import Event, EventKind, Reporter, utc_now
from .gridlines import GridLines
from .leases import Leases
from .outputs import OutputWriter
from .plan import Action, Plan, ReasonKind, TargetPlan, price
from .project import Project
from .spending import note as note_spend
from .spending import note_lost_intents

if TYPE_CHECKING:
    from ..remote.cache import Lease



class Status(StrEnum):
    """How a target's build ended; the value is what ``--json`` and the reporters show."""

    BUILT = "built"
    RESTORED = "restored"
    SHARED = "shared"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"       # a watch's newer spec replaced it (not a failure: the newer build runs)
    UNCERTAIN = "uncertain"
    PENDING = "pending"             # in a batch job not waited for (--no-wait): the next build collects it


FAILED_STATES = (Status.FAILED, Status.BLOCKED, Status.SKIPPED, Status.UNCERTAIN)
SUCCEEDED_STATES = (Status.BUILT, Status.RESTORED, Status.SHARED)
RETRY_HINT = "`assetgen build --retry-uncertain{}` submits it again (and may pay twice)"


@dataclass
class TargetResult:
    name: str
    status: Status
    message: str = ""
    cost: float = 0.0      # paid in this build
    saved: float = 0.0     # what reuse spared (cache, lock, shared key)
    task_id: str | None = None


@dataclass
class BuildReport:
    plan: Plan
    results: list[TargetResult] = field(default_factory=list)
    resumed: int = 0
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)   # e.g. a journal write that failed after paying
    sheets: list[str] = field(default_factory=list)     # sprite sheets remade after the build (engine.sheets)

    @property
    def spent(self) -> float:
        return sum(r.cost for r in self.results)

    @property
    def saved(self) -> float:
        return sum(r.saved for r in self.results)

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if r.status in FAILED_STATES]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.interrupted or self.problems else 0

    @property
    def uncertain(self) -> list[TargetResult]:
        return [r for r in self.results if r.status == Status.UNCERTAIN]

    def __repr__(self) -> str:
        # Short on purpose: asyncio formats a finished task's result into messages (Python 3.11 does
        # it on every asyncio.run), and the full dataclass repr of 10,000 plan items took 0.4 s.
        return (f"BuildReport({len(self.plan.items)} targets, {len(self.results)} results, "
                f"{len(self.failed)} failed, interrupted={self.interrupted})")

    def to_json(self) -> dict[str, Any]:
        return {
            "results": [vars(r) for r in self.results], "spent": round(self.spent, 6),
            "saved": round(self.saved, 6), "resumed": self.resumed, "interrupted": self.interrupted,
            "problems": self.problems, "exit_code": self.exit_code,
        }


class Controller:
    """Stops a running build from outside (Ctrl-C, a watch superseding it)."""

    def __init__(self) -> None:
        self.stop_submitting = False
        self.reason = ""

    def stop(self, reason: str) -> None:
        if not self.stop_submitting:
            self.stop_submitting, self.reason = True, reason


@dataclass
class Session:
    """What the builds of one session share: one ``assetgen build``, or every build of a watch.

    Sharing the in-flight generations means a second build in the same session awaits a key the first
    is already generating instead of paying for it again; sharing the spend makes ``--budget`` cap the
    whole session.
    """

    budget: float | None = None
    limit: float | None = None                      # what [settings] limits leave (from the ledger)
    committed: float = 0.0                          # upper bound of what submitted tasks may cost
    spent: float = 0.0
    generations: dict[str, asyncio.Task[IndexEntry]] = field(default_factory=dict)
    tasks: dict[str, tuple[str, str]] = field(default_factory=dict)   # key → (task id, last status)

    def can_afford(self, bound: float) -> bool:
        return ((self.budget is None or self.committed + bound <= self.budget + 1e-9)
                and (self.limit is None or self.committed + bound <= self.limit + 1e-9))


class _Events:
    """TaskEvents for one generation: journals each submission (intent, task id, result URLs, end)."""

    def __init__(self, builder: Builder, job: Job, name: str, record: JournalRecord | None = None, *,
                 lease: Lease | None = None) -> None:
        self.builder, self.job, self.name, self.record, self.lease = builder, job, name, record, lease
        self.started = time.monotonic()
        self.status = ""                # the last polled status (a cancelled task is refunded)

    def _record(self) -> JournalRecord:
        if self.record is None:
            target = self.job.target
            self.record = JournalRecord(
                key=self.job.key, targets=list(self.job.names), model=str(self.job.body.get("model", "")),
                aspect_ratio=target.aspect_ratio if target else None,
                resolution=target.resolution if target else None)
        return self.record

    def _save(self) -> None:
        """Best effort after the fact: the record changed but its task is known in memory anyway."""
        record = self._record()
        try:
            if record.submissions:
                self.builder.journal.write(record)
            else:
                self.builder.journal.remove(record.key)
        except (OSError, StateError):
            pass

    def intent(self, body: dict[str, Any]) -> None:
        # Called with the provider's one-at-a-time submit lock held, right before the POST: a stop (Ctrl-C,
        # a failure, a 402, a lost journal) or a supersession while this target queued for it is seen here.
        self.builder._check_still_submittable(self.job.names)
        record = self._add_intent(body)
        self._intent_written(self._write(record))

    async def aintent(self, body: dict[str, Any]) -> None:
        """``intent`` with the journal's fsync in a worker thread (the loop keeps polling and downloading
        other tasks meanwhile); returns only once the intent is durable, as ``intent`` does."""
        self.builder._check_still_submittable(self.job.names)
        record = self._add_intent(body)
        error, cancelled = await durably(lambda: self._write(record))
        if cancelled:
            self.not_created()          # stopped before the POST: nothing was sent, the intent goes
            raise asyncio.CancelledError
        self._intent_written(error)
        try:                            # a stop or a supersession that came while it was written
            self.builder._check_still_submittable(self.job.names)
        except BaseException:
            self.not_created()
            raise

    def _add_intent(self, body: dict[str, Any]) -> JournalRecord:
        record = self._record()
        seed = body.get("seed")
        record.submissions.append(Submission(intent_at=time.time(), request_digest=request_digest(body),
                                             n=int(body.get("n", 1)),
                                             seed=seed if isinstance(seed, int) else None))
        return record

    def _write(self, record: JournalRecord) -> OSError | StateError | None:
        try:
            self.builder.journal.write(record)
        except (OSError, StateError) as exc:     # (StateError: something not a folder is in the way)
            return exc
        return None

    def _intent_written(self, error: OSError | StateError | None) -> None:
        if error is not None:
            self._record().submissions.pop()
            self.builder.controller.stop("the journal cannot be written")
            raise JournalUnwritable(
                f"could not record the submission in {self.builder.journal.folder} ({_reason(error)}); "
                f"it was not sent and nothing was paid") from error

    def submitted(self, task_id: str, model: str) -> None:
        submission = self._task_id(task_id, model)
        error = self._write(self._record())
        self._spend("accepted", submission, task_id)
        self._submitted(task_id, error)

    async def asubmitted(self, task_id: str, model: str) -> None:
        """``submitted`` with the journal's and the ledger's fsyncs in a worker thread; returns once
        the task id is durable (the provider sends no other POST before)."""
        submission = self._task_id(task_id, model)
        record = self._record()

        def write() -> OSError | StateError | None:
            error = self._write(record)
            self._spend("accepted", submission, task_id)
            return error
        error, cancelled = await durably(write)
        self._submitted(task_id, error)
        if cancelled:
            raise asyncio.CancelledError

    def _task_id(self, task_id: str, model: str) -> Submission:
        record = self._record()
        submission = record.submissions[-1]
        submission.task_id, submission.state = task_id, SubmissionState.SUBMITTED
        record.model = model
        self.builder.session.tasks[self.job.key] = (task_id, "queued")
        return submission

    def _submitted(self, task_id: str, error: OSError | StateError | None) -> None:
        if error is not None:
            self.builder.unjournaled(self.name, task_id, error)
        leases = self.builder.leases
        if self.lease is not None and leases is not None:
            leases.update(self.lease, task_id=task_id)
        self.builder.emit(EventKind.SUBMITTED, self.name, f"task {task_id}", task_id=task_id)

    def uncertain(self, why: str) -> None:
        submission = self._record().submissions[-1]
        submission.state, submission.note = SubmissionState.UNCERTAIN, why[:300]
        self._save()            # (if this fails, the intent already says the same)
        self._spend("uncertain", submission, None)

    def not_created(self) -> None:
        self._record().submissions.pop()
        self._save()

    def progress(self, status: str, progress: int) -> None:
        self.status = status
        if self.record is not None:
            self.builder.session.tasks[self.job.key] = (self.record.task_id, status)
        self.builder.emit(EventKind.PROGRESS, self.name, status, status=status, progress=progress,
                          elapsed=time.monotonic() - self.started)

    def completed(self, images: list[dict[str, Any]], *, task_id: str | None = None) -> None:
        if self.record is None:
            return
        for submission in self.record.submissions:
            if submission.task_id == task_id or (task_id is None and submission.task_id):
                # A failed download can be retried from these URLs, by a later build too, for free.
                submission.images, submission.state = images, SubmissionState.COMPLETED
                break
        self._save()

    def task_ended(self, task_id: str) -> None:
        """The task will never give images (failed, cancelled, unknown to the gateway): forget it."""
        if self.record is not None:
            ended = [s for s in self.record.submissions if s.task_id == task_id]
            outcome = {"cancelled": "refunded", "failed": "failed"}.get(self.status)
            if ended and outcome:
                self._spend(outcome, ended[0], task_id)
            self.record.submissions = [s for s in self.record.submissions if s.task_id != task_id]
            self._save()

    def _spend(self, outcome: str, submission: Submission, task_id: str | None) -> None:
        """One ledger entry, fsynced before the build moves on; a ledger that cannot be written fails
        the build (loudly: money moved that the ledger does not show)."""
        model = self._record().model or str(self.job.body.get("model", ""))
        try:
            note_spend(self.builder.project, target=self.name, key=self.job.key, model=model, n=submission.n,
                       outcome=outcome, task_id=task_id,
                       spec=self.builder.spec_of(self.job.key) if outcome == "accepted" else None)
        except OSError as exc:
            message = f"{self.name}: the spend ledger could not record a {outcome} task ({_reason(exc)})"
            _alarm(message)
            self.builder.report.problems.append(message)


    def notice(self, message: str) -> None:
        self.builder.emit(EventKind.NOTICE, self.name, message)

    def check(self, data: bytes) -> bytes:
        """Validate one downloaded image before anything of it is kept; returns the bytes to keep.

        Called by the provider's download, once per image (in a worker thread). Junk raises
        ``InvalidImage`` and nothing of it is cached. A valid image of another size than the
        catalogue's for this target (beyond 5 % a side, or another ratio) is kept in the cache objects,
        listed under the key in ``index/rejected/`` (paid for: a later fix takes it from there), and
        raises ``ImageSizeMismatch``: it is never written as an output."""
        ratio, resolution = _asked(self.job, self.record)
        expected = catalog.pixel_size(ratio, resolution) if ratio and resolution else None
        if self.job.target is not None:
            expected = self.job.target.size          # the provider's size (OpenAI's are fixed per ratio)
        asked = f"{ratio} at {resolution}" if expected else ""
        store = self.builder.project.store
        try:
            checked = imagecheck.check(data, expected=expected, asked=asked)
        except ImageSizeMismatch as exc:
            image = store.put_image(data)
            store.index.record_rejected(self.job.key, image, str(exc))
            raise ImageSizeMismatch(f"{exc}; the image is kept in the cache ({image.sha256[:12]}, listed in "
                                    f"index/rejected/{self.job.key[:12]}….json) and no output was written",
                                    code=exc.code) from exc
        if checked.size_note:
            store.index.record_size_note(sha256_bytes(data), checked.size_note)
        return data


def _asked(job: Job, record: JournalRecord | None) -> tuple[str | None, str | None]:
    """The ratio and resolution a task was asked for: its target's, or (an orphan) its journal's."""
    if job.target is not None:
        return job.target.aspect_ratio, job.target.resolution
    return getattr(record, "aspect_ratio", None), getattr(record, "resolution", None)


class Builder:
    def __init__(self, project: Project, plan: Plan, provider: Provider, *, reporter: Reporter,
                 jobs: int, budget: float | None = None, keep_going: bool = False,
                 controller: Controller | None = None, session: Session | None = None,
                 retry_uncertain: bool | frozenset[str] = False) -> None:
        """``retry_uncertain``: True, or the target names, whose uncertain keys may be submitted again."""
        self.project, self.plan, self.provider, self.reporter = project, plan, provider, reporter
        self.journal: Journal = project.journal
        self.session = session or Session(budget=budget)
        self.keep_going = keep_going
        self.controller = controller or Controller()
        self.report = BuildReport(plan=plan)
        self._semaphore = asyncio.Semaphore(max(1, jobs))
        self._generations: dict[str, asyncio.Task[IndexEntry]] = {}      # this build's, by key
        self._superseded: set[str] = set()
        self._done: dict[str, asyncio.Event] = {}
        self._ok: dict[str, bool] = {}
        self._pending: set[str] = set()              # targets in a batch job not waited for (--no-wait)
        self._fatal: BaseException | None = None
        self._paid: set[str] = set()                 # keys paid for in this build (not resumed)
        self._names_by_key: dict[str, tuple[str, ...]] | None = None     # (``_names``)
        self._paid_cost: dict[str, float] = {}       # ... when only part of the key's images were
        self._collected_from: dict[str, str] = {}    # keys whose task another machine submitted
        self.outputs = OutputWriter(project)
        self.retry_uncertain = retry_uncertain
        self._uncertain: dict[str, str] = {}         # key → why it is not submitted again
        self._items_by_key: dict[str, TargetPlan] | None = None
        self._grids = GridLines(plan.stale, self.emit)   # a grid's cells: one line, savings once

    def spec_of(self, key: str) -> dict[str, Any] | None:
        """The canonical spec of the planned target with this key (what the ledger keeps for history)."""
        if self._items_by_key is None:
            self._items_by_key = {i.key: i for i in self.plan.items}
        item = self._items_by_key.get(key)
        return item.spec if item is not None else None

    def emit(self, kind: EventKind, target: str, message: str = "", **data: Any) -> None:
        label = self._grids.label(target) if "label" not in data else None
        if label:                               # a grid's task is the grid's, not its first cell's
            data["label"] = label
        self.reporter.emit(Event(kind=kind, target=target, message=message, data=data))

    # -- the run ------------------------------------------------------------------------------------

    async def run(self) -> BuildReport:
        stale = self.plan.stale
        self._done = {i.name: asyncio.Event() for i in stale}
        planned_keys = {i.key for i in stale}
        submitting = {Action.GENERATE, Action.RESUME, Action.SHARE}
        if self.retry_uncertain:
            submitting.add(Action.UNCERTAIN)
        if not self.provider.placeholder and any(i.action in submitting for i in stale):
            self.journal.check_writable()            # before the first submit: nothing paid if not
        pending = self._sort_uncertain(self.journal.scan(), planned_keys)
        # Keys another build of this session is generating right now are that build's to collect.
        pending = {k: r for k, r in pending.items() if k not in self.session.generations}
        runners = [asyncio.create_task(self._target(i, pending)) for i in stale]
        # Tasks from an earlier build whose key no target wants now are still collected: they are paid.
        runners += [asyncio.create_task(self._orphan(r)) for k, r in pending.items() if k not in planned_keys]
        try:
            await asyncio.gather(*runners)
        except asyncio.CancelledError:
            self.report.interrupted = True
            raise
        finally:
            leftovers = runners + [t for t in self._generations.values() if not t.done()]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
            self.outputs.flush()
            self._grids.flush(spent=self.session.spent)
        if self._fatal is not None:
            raise self._fatal
        return self.report

    def _sort_uncertain(self, scan: JournalScan, planned: set[str]) -> dict[str, JournalRecord]:
        """The records to collect. Uncertain keys are set aside (reported, never submitted) unless
        retried; a retried key keeps only its tasks with known ids."""
        names_by_key: dict[str, list[str]] = {}
        for item in self.plan.items:
            names_by_key.setdefault(item.key, []).append(item.name)
        records = dict(scan.records)
        for key, why in scan.uncertain().items():
            names = names_by_key.get(key, [])
            if key in scan.records and key not in self.session.generations:
                self._ledger_lost_intents(scan.records[key])
            chosen = self.retry_uncertain
            # Only this manifest's keys: another manifest sharing the journal keeps its own. (A key no
            # target wants any more is this manifest's if its record names only targets of it.)
            record = scan.records.get(key)
            ours = bool(names) or (chosen is True and record is not None and bool(record.targets)
                                   and set(record.targets) <= set(self.project.manifest.targets))
            if not ours or not (chosen is True or (chosen and set(names) & set(chosen))):
                self._uncertain[key] = why
                records.pop(key, None)
                if key not in planned:
                    record = scan.records.get(key)
                    shown = (names or (record.targets if record else []) or [key[:12]])[0]
                    hint = (RETRY_HINT.format('') if ours else "no target of this manifest has this key; the "
                            "build of the manifest that has it retries it")
                    self.emit(EventKind.NOTICE, shown, f"{why}; {hint}")
                continue
            if key in scan.damaged:
                self.journal.set_aside(key)
                continue
            record = records[key]
            if record.closed:
                record.submissions = []              # given up on: a retry pays for a new task
            record.submissions = [s for s in record.submissions if not s.unknown]
            record.closed, record.download_attempts = None, 0
            if record.submissions:
                self.journal.write(record)
            else:
                self.journal.remove(key)
                records.pop(key)
        return records

    def _ledger_lost_intents(self, record: JournalRecord) -> None:
        """A killed build's intents without task ids go in the ledger as uncertain (once)."""
        try:
            note_lost_intents(self.project, record)
        except OSError as exc:
            self.report.problems.append(f"the spend ledger could not record an uncertain submission "
                                        f"({_reason(exc)})")

    def unjournaled(self, name: str, task_id: str, exc: OSError | StateError) -> None:
        """A paid task whose id could not be journaled: say so at once (on stderr, whatever the
        reporter shows), keep it in memory, collect it, and fail the build."""
        message = (f"{name}: task {task_id} was submitted (and is paid for) but the journal in "
                   f"{self.journal.folder} could not record it ({_reason(exc)}); this build keeps it in "
                   f"memory and collects it, but if it is stopped now, the task id above is the only record")
        _alarm(message)
        self.report.problems.append(message)
        self.controller.stop("the journal cannot be written")

    async def _target(self, item: TargetPlan, pending: dict[str, JournalRecord]) -> None:
        try:
            result = await self._build_one(item, pending)
        except _NotSubmitted as exc:
            result = TargetResult(item.name, Status.SKIPPED, str(exc))
        except BatchPending as exc:
            result = TargetResult(item.name, Status.PENDING, _message(exc), task_id=exc.task_id)
        except (UncertainSubmission, SubmissionUncertain) as exc:
            message = _message(exc)
            if isinstance(exc, SubmissionUncertain):
                message += f" Later builds do not submit it either: {RETRY_HINT.format(' ' + item.name)}."
            result = TargetResult(item.name, Status.UNCERTAIN, message)
        except asyncio.CancelledError:
            if self._fatal is None:
                raise
            result = TargetResult(item.name, Status.FAILED, "stopped: the gateway refused the API key")
        except (AssetgenError, OSError) as exc:
            if item.name in self._superseded:
                result = TargetResult(item.name, Status.SUPERSEDED, "a newer spec replaced it")
            else:
                result = TargetResult(item.name, Status.FAILED, _message(exc))
                if isinstance(exc, AuthenticationFailed):
                    self._abort(exc)
                elif not self.keep_going:
                    self.controller.stop(f"{item.name} failed")
        self._finish(item, result)

    def _finish(self, item: TargetPlan, result: TargetResult) -> None:
        self.session.spent += result.cost
        self._ok[item.name] = result.status in SUCCEEDED_STATES
        if result.status == Status.PENDING:
            self._pending.add(item.name)
        self.report.results.append(result)
        if not self._grids.hold(item, result, spent=self.session.spent):
            self.emit(EventKind(result.status), item.name, result.message, cost=result.cost,
                      spent=self.session.spent)
        self._done[item.name].set()

    async def _build_one(self, item: TargetPlan, pending: dict[str, JournalRecord]) -> TargetResult:
        # Neither needs the upstream: a restore's key (and so its images) is already settled.
        if item.action == Action.BLOCKED:
            kept = [str(r) for r in item.reasons if r.kind == ReasonKind.RETOUCHED]
            if kept:
                return TargetResult(item.name, Status.BLOCKED, kept[0])
            hand = ", ".join(r.detail for r in item.reasons if r.kind == ReasonKind.HAND)
            return TargetResult(item.name, Status.BLOCKED, f"{hand} was modified by hand; not overwritten "
                                                      f"(use --force to replace it)")
        if item.action == Action.RESTORE:
            assert item.cached is not None
            entry = item.cached if not item.remote else await self._from_remote(item.key)
            if entry is not None:
                await self.outputs.write(item, entry)
                where = "from the remote cache" if item.remote else "from cache"
                return TargetResult(item.name, Status.RESTORED, where, saved=self._grids.saved(item, entry.cost))
            # The remote copy was unusable (reported already): generate it after all.
        waited = await self._upstream(item)
        if waited is not None:
            return waited
        entry_task = self._generations.get(item.key) or self.session.generations.get(item.key)
        owner = entry_task is None
        if entry_task is None and item.key in self._uncertain:
            why = self._uncertain[item.key]
            return TargetResult(item.name, Status.UNCERTAIN, f"{why}; not submitted again: "
                                                        f"{RETRY_HINT.format(' ' + item.name)}")
        if entry_task is None:
            entry_task = asyncio.create_task(self._generate(item, pending.get(item.key)))
            self.session.generations[item.key] = entry_task
            key = item.key
            entry_task.add_done_callback(lambda _t: self.session.generations.pop(key, None))
        self._generations[item.key] = entry_task
        entry = await asyncio.shield(entry_task)
        paid_now = self._paid_cost.get(item.key, entry.cost)
        if item.name in self._superseded:
            paid = paid_now if owner and item.key in self._paid else 0.0
            return TargetResult(item.name, Status.SUPERSEDED, "a newer spec replaced it; its image is cached",
                                cost=paid)
        await self.outputs.write(item, entry)
        if not owner and item.same_grid:        # a cell of the grid whose one image was just made
            return TargetResult(item.name, Status.BUILT, item.sharing or "", task_id=entry.task_id)
        if not owner:
            return TargetResult(item.name, Status.SHARED, item.sharing or "shares with another target: paid once",
                                saved=self._grids.saved(item, entry.cost), task_id=entry.task_id)
        return self._built(item, entry, paid_now)

    async def _upstream(self, item: TargetPlan) -> TargetResult | None:
        """Wait for the upstream built in this build; the result instead of building ``item`` if one was not."""
        for up in item.target.upstream:
            if up in self._done:
                await self._done[up].wait()
                if up in self._pending:         # its image comes with a later build: so does this one
                    return TargetResult(item.name, Status.PENDING, f"upstream target '{up}' is in a pending "
                                                                   f"batch job; a later build builds it")
                if not self._ok.get(up):
                    return TargetResult(item.name, Status.SKIPPED, f"upstream target '{up}' was not built")
        return None

    def _built(self, item: TargetPlan, entry: IndexEntry, paid_now: float) -> TargetResult:
        """The result of a target whose own generation (this build's, or collected) wrote its outputs."""
        if entry.placeholder:
            return TargetResult(item.name, Status.BUILT, "placeholder")
        if item.key in self._paid_cost and item.key in self._paid:
            return TargetResult(item.name, Status.BUILT, f"tasks {entry.task_id}, some of them paid by an "
                                                    f"earlier build", cost=paid_now, task_id=entry.task_id)
        if item.key in self._paid:
            return TargetResult(item.name, Status.BUILT, f"task {entry.task_id}", cost=paid_now,
                                task_id=entry.task_id)
        payer = self._collected_from.get(item.key, "an earlier build")
        return TargetResult(item.name, Status.BUILT, f"collected task {entry.task_id}, paid by {payer}",
                            task_id=entry.task_id)

    async def _generate(self, item: TargetPlan, record: JournalRecord | None) -> IndexEntry:
        cached = self.project.store.index.lookup(item.key, placeholder_ok=self.provider.placeholder)
        if cached is not None and len(cached.images) < item.target.n:
            cached = None                           # short of the images asked for (as `plan` decides)
        if cached is not None:                      # an earlier, interrupted build got this far
            self.journal.remove(item.key)
            return cached
        job = Job(key=item.key, target=item.target, names=self._names(item.key), body={})
        if record is not None:
            return await self._resume(item, record, job)
        leases = self.leases
        if leases is not None:
            # Read-through: someone paid for it already. (A planned restore has just tried.)
            fetched = None if item.remote else await leases.fetch(item.key)
            if fetched is not None:
                return fetched
        lease, entry = await leases.claim(item, self._collect_peer) if leases is not None else (None, None)
        if entry is not None:
            return entry
        try:
            async with self._semaphore:
                gen = await self._submit(item, job.names, lease)
            return await self._keep(item.key, gen, paid=True)
        finally:
            if lease is not None and leases is not None:
                await leases.release(lease)

    async def _resume(self, item: TargetPlan, record: JournalRecord, job: Job) -> IndexEntry:
        """Collect the task an earlier build submitted for ``item``'s key (and pay for what it missed)."""
        self.report.resumed += 1
        self.emit(EventKind.RESUMED, item.name, f"collecting task {record.task_id} from an earlier build",
                  task_id=record.task_id)
        missing = max(0, item.target.n - record.n)      # (read now: the record grows as it submits)
        if missing:
            # An earlier build stopped between the one-image tasks of an n = 1 fallback: this build
            # pays for the missing ones, so it checks, reserves and reports them like any new task.
            bound = self._bound(item) * missing / item.target.n
            self._check_submittable(item, job.names, bound)
            self.session.committed += bound
            job = Job(key=item.key, target=item.target, names=job.names,
                      body=submit_body(self.project.manifest, item.target))
        gen = await self._collect(job, record, item.name)    # (failing: the reservation stays, an upper bound)
        if missing:
            cost = gen.cost * missing / max(1, len(gen.images))
            self.session.committed += cost - bound
            self._paid_cost[item.key] = cost
        return await self._keep(item.key, gen, paid=bool(missing))

    async def _submit(self, item: TargetPlan, names: tuple[str, ...], lease: Lease | None) -> Generation:
        """Submit a new task for ``item``'s key and wait for its images (in a ``jobs`` slot)."""
        self._check_submittable(item, names)
        body = submit_body(self.project.manifest, item.target)
        job = Job(key=item.key, target=item.target, names=names, body=body)
        # Reserve the upper bound now, so concurrent submissions cannot overrun the budget
        # together; settle to the real cost once known (a failed or cancelled task costs nothing).
        bound = self._bound(item)
        self.session.committed += bound
        events = _Events(self, job, item.name, lease=lease)
        try:
            gen = await self.provider.generate(job, events)
        except InsufficientBalance:
            self.session.committed -= bound
            self.controller.stop("the gateway account has insufficient balance (402)")
            raise
        except TaskFailed:
            self.session.committed -= bound     # (the journal forgot the failed task)
            raise
        except DownloadFailed as exc:
            raise self._download_failed(events.record, item.name, exc) from exc
        except TaskNotFound as exc:
            if exc.code == "expired":
                raise
            raise self._not_found(events.record, item.name, exc) from exc
        except GatewayError as exc:
            if isinstance(exc, _NotSubmitted) or exc.code == "superseded":
                self.session.committed -= bound     # stopped while it waited to submit
            raise
        self.session.committed += gen.cost - bound
        return gen

    def _bound(self, item: TargetPlan) -> float:
        """The most a task for all of ``item``'s images may cost (placeholders cost nothing)."""
        return price(item.target)[1] if not self.provider.placeholder else 0.0

    # -- the remote cache ---------------------------------------------------------------------------------

    @property
    def leases(self) -> Leases | None:
        """The remote cache's side of this build; None without one (placeholders are never shared)."""
        remote = None if self.provider.placeholder else self.project.remote
        if remote is None:
            return None
        return Leases(remote, self.project.store, emit=self.emit,
                      poll_interval=getattr(self.provider, "poll_interval", 1.0))

    async def _from_remote(self, key: str) -> IndexEntry | None:
        leases = self.leases
        return await leases.fetch(key) if leases is not None else None

    async def _collect_peer(self, item: TargetPlan, lease: Lease) -> IndexEntry | None:
        """The task another machine submitted for the key (its lease names it), if our account can see it."""
        record = JournalRecord(key=item.key, model=item.target.model, targets=[item.name],
                               submissions=[Submission(intent_at=time.time(), request_digest="",
                                                       n=item.target.n, task_id=lease.task_id,
                                                       state=SubmissionState.SUBMITTED)])
        try:
            job = Job(key=item.key, target=item.target, names=(item.name,), body={})
            gen = await self.provider.resume(record, _Events(self, job, item.name, record))
            self._collected_from[item.key] = lease.holder
            return await self._keep(item.key, gen, paid=False)
        except GatewayError:
            return None                 # another account's task: wait for its images instead

    async def _keep(self, key: str, gen: Generation, *, paid: bool) -> IndexEntry:
        """Store a generation locally (and remotely: write-through) and drop its journal entry."""
        # Cache objects and index fsync in a worker thread (the loop keeps polling meanwhile); the journal
        # record goes back on the loop, in the same step as the outputs and the lock that follow it.
        entry, cancelled = await durably(lambda: self._store_objects(key, gen))
        self._forget(key, paid=paid)
        if cancelled:
            raise asyncio.CancelledError
        leases = self.leases
        if leases is not None:
            await leases.put(entry, gen.images)
        return entry

    def _check_submittable(self, item: TargetPlan, names: tuple[str, ...], bound: float | None = None) -> None:
        """Before reserving a target's spend. ``bound``: what it may cost (default: all its images)."""
        self._check_still_submittable(names)
        if bound is None:
            bound = self._bound(item)
        if not self.session.can_afford(bound):
            budget = self.session.budget
            if budget is None or (self.session.limit is not None and self.session.limit < budget):
                raise _NotSubmitted(f"not submitted: it would cross a spend limit ([settings] limits leave "
                                    f"${self.session.limit or 0:.4f} to this session)")
            raise _NotSubmitted(f"not submitted: it would take spending above the budget of "
                                f"${self.session.budget:.2f}")

    def _check_still_submittable(self, names: tuple[str, ...]) -> None:
        """Checked again just before each POST (``_Events.intent``); the budget needs no second look: it
        was reserved together with its check."""
        if self.controller.stop_submitting:
            raise _NotSubmitted(f"not submitted: {self.controller.reason}")
        if names and all(n in self._superseded for n in names):
            raise GatewayError("superseded before it was submitted", code="superseded")

    def supersede(self, names: set[str]) -> None:
        """A newer spec replaces these targets: cancel their tasks still queued (refunded), and never
        write their outputs; a task already processing finishes and its image is cached under its key."""
        self._superseded |= names
        for key, task in list(self._generations.items()):
            targets = self._names(key)
            if task.done() or not all(n in self._superseded for n in targets):
                continue
            task_id, status = self.session.tasks.get(key, ("", ""))
            if task_id and status == "queued":
                asyncio.ensure_future(self.provider.cancel(task_id))

    @property
    def active(self) -> dict[str, str]:
        """Targets of this build not finished yet, with their keys."""
        return {i.name: i.key for i in self.plan.stale if i.name in self._done and not self._done[i.name].is_set()}

    async def _collect(self, job: Job, record: JournalRecord, name: str) -> Generation:
        paid = catalog.task_cost(record.model, record.n)
        try:
            return await self.provider.resume(record, _Events(self, job, name, record),
                                              job if job.body else None)
        except TaskNotFound as exc:
            if exc.code == "expired":
                raise GatewayError(f"lost task {record.task_id or '?'} (${paid:.4f} paid earlier): {exc}; the "
                                   f"target is stale again and the next build pays for it anew",
                                   code="lost") from exc
            raise self._not_found(record, name, exc) from exc
        except DownloadFailed as exc:
            raise self._download_failed(record, name, exc) from exc

    def _not_found(self, record: JournalRecord | None, name: str, exc: TaskNotFound) -> GatewayError:
        """A task we hold an id for that the gateway kept saying it does not know (after retries): it may
        still have been paid for, so the record is closed, not dropped: the key waits for --retry-uncertain."""
        if record is None or not record.task_ids:
            return exc
        cost = catalog.task_cost(record.model, record.n)
        record.closed = (f"the gateway does not know task {record.task_id} (${cost:.4f}, may have "
                         f"been paid): {_message(exc)[:200]}")
        try:
            self.journal.write(record)
        except (OSError, StateError):
            pass
        return UncertainSubmission(f"{record.closed}; given up: {RETRY_HINT.format(' ' + name)}", code="closed")

    def _download_failed(self, record: JournalRecord | None, name: str, exc: DownloadFailed) -> GatewayError:
        """A completed task whose images could not be downloaded: its record (and result URLs) stays, so
        a later build downloads again for free; after a few builds' attempts it is closed, and the key
        waits for --retry-uncertain."""
        if record is None or not record.task_ids:
            return exc
        record.download_attempts += 1
        attempts = record.download_attempts
        if attempts >= MAX_DOWNLOAD_ATTEMPTS:
            record.closed = (f"the images of task {record.task_id} could not be downloaded in {attempts} builds "
                             f"({_message(exc)[:200]})")
        try:
            self.journal.write(record)
        except OSError:
            pass
        if record.closed:
            return UncertainSubmission(f"{record.closed}; given up: {RETRY_HINT.format(' ' + name)}",
                                       code="closed")
        what = "attempt to get its images" if isinstance(exc, IncompleteResult) else "download attempt"
        return DownloadFailed(f"{_message(exc)} (task {record.task_id}, {what} {attempts} of "
                              f"{MAX_DOWNLOAD_ATTEMPTS}: the next build asks again without paying)",
                              status=exc.status, code=exc.code)

    async def _orphan(self, record: JournalRecord) -> None:
        name = record.targets[0] if record.targets else record.key[:12]
        if self.project.store.index.lookup(record.key) is not None:
            self.journal.remove(record.key)         # collected already; only the journal entry was left
            return
        if not record.task_ids:
            self.journal.remove(record.key)         # nothing was sent (e.g. a retried uncertain key)
            return
        job = Job(key=record.key, target=None, names=tuple(record.targets), body={})
        self.emit(EventKind.RESUMED, name, f"collecting task {record.task_id} from an earlier build (for the cache)")
        self.report.resumed += 1
        try:
            gen = await self._collect(job, record, name)
            await self._keep(record.key, gen, paid=False)
        except GatewayError as exc:
            self.emit(EventKind.NOTICE, name, f"could not collect task {record.task_id}: {_message(exc)}")

    def _store_objects(self, key: str, gen: Generation) -> IndexEntry:
        store = self.project.store
        images = tuple(store.put_image(data) for data in gen.images)
        entry = IndexEntry(key=key, images=images, model=gen.model, task_id=gen.task_id, cost=gen.cost,
                           placeholder=gen.placeholder, built_at=utc_now())
        store.index.record(entry)
        return entry

    def _forget(self, key: str, *, paid: bool) -> None:
        """The images are cached: the journal record of their task goes."""
        try:
            self.journal.remove(key)
        except OSError:
            pass        # the next build finds the images cached and drops the record then
        if paid:
            self._paid.add(key)

    def _names(self, key: str) -> tuple[str, ...]:
        """Every planned target with ``key``. Indexed once: a scan of the plan per generation made a
        cold build O(N²) (100,000 targets never got to their first image)."""
        if self._names_by_key is None:
            index: dict[str, list[str]] = {}
            for i in self.plan.items:
                index.setdefault(i.key, []).append(i.name)
            self._names_by_key = {k: tuple(names) for k, names in index.items()}
        return self._names_by_key.get(key, ())

    def _abort(self, exc: BaseException) -> None:
        """401: nothing can succeed; stop everything now (the journal keeps what was submitted)."""
        if self._fatal is None:
            self._fatal = exc
            self.controller.stop("the gateway refused the API key")
            for task in self._generations.values():
                task.cancel()


class _NotSubmitted(GatewayError):
    pass


def _alarm(message: str) -> None:
    """Straight to stderr, whatever the reporter (live view, --json, --quiet): a paid task id that exists
    nowhere else must reach the person at once."""
    try:
        sys.stderr.write(f"\nWARNING: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _reason(exc: OSError | StateError) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _message(exc: BaseException) -> str:
    return str(exc) or exc.__class__.__name__
