"""engine.scheduler: ``Builder`` runs a plan through a fake, in-process provider (no HTTP, no CLI).

The fake records what the builder asks of it and checks, at each step of a submission, what the
journal on disk holds: the intent before the submit, the task id before the provider waits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from helpers.core import HEAD
from helpers.images import jpeg_bytes

from assetgen.engine.events import Event
from assetgen.engine.plan import price
from assetgen.engine.project import Project
from assetgen.engine.scheduler import Builder, BuildReport, Controller
from assetgen.errors import InvalidRequest
from assetgen.providers.base import Generation, Job, Provider, TaskEvents
from assetgen.state.journal import Journal

BODY = """\
[targets.hero]
prompt = "A knight"

[targets.walk]
action = "edit"
prompt = "The knight walking"
references = ["@hero"]

[targets.banner]
prompt = "A banner"
"""


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


class FakeProvider(Provider):
    """Journals like the gateway provider (intent, then the task id), waits ``latency``, returns tiny
    JPEGs. ``fail``: target names whose submit the gateway refuses (400, nothing paid)."""

    name = "fake"

    def __init__(self, journal: Journal, *, latency: float = 0.01, fail: frozenset[str] = frozenset()) -> None:
        self.journal, self.latency, self.fail = journal, latency, fail
        self.log: list[tuple[str, str]] = []          # (step, first target name)
        self.in_flight = 0
        self.most_in_flight = 0
        self.seen_on_disk: dict[str, list[str]] = {}   # target → journal states seen at each step

    def _on_disk(self, key: str) -> str:
        record = self.journal.scan().records.get(key)
        if record is None:
            return "nothing"
        return ",".join(s.task_id or s.state for s in record.submissions)

    async def generate(self, job: Job, events: TaskEvents) -> Generation:
        name = job.names[0]
        self.log.append(("start", name))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if name in self.fail:
                raise InvalidRequest("refused by the fake gateway", status=400)
            events.intent(job.body)
            seen = self.seen_on_disk.setdefault(name, [self._on_disk(job.key)])
            task_id = f"task-{name}"
            events.submitted(task_id, str(job.body["model"]))
            seen.append(self._on_disk(job.key))
            await asyncio.sleep(self.latency)          # "waiting on the task": its id is durable already
            n = int(job.body["n"])
            model = str(job.body["model"])
            return Generation(images=[jpeg_bytes((10 * i, 20, 30)) for i in range(n)], model=model,
                              task_id=task_id, cost=price(job.target)[0], placeholder=False)
        finally:
            self.in_flight -= 1
            self.log.append(("end", name))


def open_project(root: Path, body: str = BODY, settings: str = "") -> Project:
    head = HEAD.replace('out_dir = "out"', f'out_dir = "out"\n{settings}')
    (root / "assets.toml").write_text(head + body, encoding="utf-8")
    return Project.open(root / "assets.toml", use_remote=False)


def build(project: Project, provider: Provider, **kwargs: Any) -> tuple[BuildReport, Recorder]:
    reporter = Recorder()
    kwargs.setdefault("jobs", 4)
    builder = Builder(project, project.plan(offline=False), provider, reporter=reporter, **kwargs)
    return asyncio.run(builder.run()), reporter


def statuses(report: BuildReport) -> dict[str, str]:
    return {r.name: r.status for r in report.results}


def test_targets_are_built_after_their_upstream_and_recorded(tmp_path: Path) -> None:
    project = open_project(tmp_path)
    provider = FakeProvider(project.journal)
    report, _ = build(project, provider)
    assert statuses(report) == {"hero": "built", "walk": "built", "banner": "built"}
    assert provider.log.index(("end", "hero")) < provider.log.index(("start", "walk"))
    assert provider.most_in_flight >= 2                 # hero and banner went together
    assert report.spent == pytest.approx(3 * 0.031875) and report.exit_code == 0
    lock = project.lock
    assert sorted(lock.entries) == ["banner", "hero", "walk"]
    assert lock.entries["hero"].task_id == "task-hero"
    assert (tmp_path / "out" / "walk.jpg").read_bytes() == jpeg_bytes((0, 20, 30))
    assert project.journal.scan().records == {}         # every record dropped once its images were cached
    assert project.plan(offline=False).stale == []


def test_the_intent_and_the_task_id_are_journaled_before_the_provider_waits(tmp_path: Path) -> None:
    project = open_project(tmp_path)
    provider = FakeProvider(project.journal)
    build(project, provider)
    # At intent: the record holds one submission without a task id; after submitted: its id.
    assert provider.seen_on_disk == {"hero": ["intent", "task-hero"], "walk": ["intent", "task-walk"],
                                     "banner": ["intent", "task-banner"]}


def test_jobs_bounds_the_tasks_in_flight(tmp_path: Path) -> None:
    body = "".join(f'[targets.t{i}]\nprompt = "picture {i}"\n\n' for i in range(6))
    project = open_project(tmp_path, body)
    provider = FakeProvider(project.journal, latency=0.02)
    report, _ = build(project, provider, jobs=2)
    assert set(statuses(report).values()) == {"built"}
    assert provider.most_in_flight == 2


def test_targets_with_one_key_are_generated_once(tmp_path: Path) -> None:
    project = open_project(tmp_path, '[targets.a]\nprompt = "same"\n\n[targets.b]\nprompt = "same"\n')
    provider = FakeProvider(project.journal)
    report, _ = build(project, provider)
    assert statuses(report) == {"a": "built", "b": "shared"}
    assert [step for step in provider.log if step[0] == "start"] == [("start", "a")]
    assert report.spent == pytest.approx(0.031875)
    assert (tmp_path / "out" / "a.jpg").read_bytes() == (tmp_path / "out" / "b.jpg").read_bytes()


def test_the_budget_stops_submitting_before_it_is_exceeded(tmp_path: Path) -> None:
    project = open_project(tmp_path, BODY.replace('[targets.banner]', '[targets.banner]\nn = 2'))
    provider = FakeProvider(project.journal)
    report, _ = build(project, provider, jobs=1, budget=2 * 0.031875)
    result = statuses(report)
    assert result["hero"] == "built" and result["walk"] == "built"
    assert result["banner"] == "skipped"
    assert "budget" in next(r.message for r in report.results if r.name == "banner")
    assert ("start", "banner") not in provider.log and report.exit_code == 1
    assert report.spent <= 2 * 0.031875 + 1e-9


def test_a_failure_stops_what_is_not_submitted_yet(tmp_path: Path) -> None:
    project = open_project(tmp_path, BODY + '\n[targets.zebra]\nprompt = "A zebra"\n')
    provider = FakeProvider(project.journal, fail=frozenset({"hero"}))
    report, _ = build(project, provider, jobs=1)
    result = statuses(report)
    assert result["hero"] == "failed"
    assert result["walk"] == "skipped"                    # its upstream was not built
    assert "skipped" in (result["banner"], result["zebra"])
    assert report.exit_code == 1


def test_keep_going_builds_everything_that_does_not_depend_on_a_failure(tmp_path: Path) -> None:
    project = open_project(tmp_path, BODY + '\n[targets.zebra]\nprompt = "A zebra"\n')
    provider = FakeProvider(project.journal, fail=frozenset({"hero"}))
    report, _ = build(project, provider, jobs=1, keep_going=True)
    assert statuses(report) == {"hero": "failed", "walk": "skipped", "banner": "built", "zebra": "built"}
    assert "upstream target 'hero'" in next(r.message for r in report.results if r.name == "walk")
    assert "walk" not in project.lock.entries and "banner" in project.lock.entries


def test_a_stopped_build_submits_nothing(tmp_path: Path) -> None:
    project = open_project(tmp_path)
    provider = FakeProvider(project.journal)
    controller = Controller()
    controller.stop("interrupted (Ctrl-C)")
    report, _ = build(project, provider, controller=controller)
    assert set(statuses(report).values()) == {"skipped"}
    assert provider.log == []                            # never asked: not even an intent
    assert project.journal.scan().records == {} and not project.lock.entries


def test_a_second_build_restores_from_the_cache_for_free(tmp_path: Path) -> None:
    project = open_project(tmp_path)
    build(project, FakeProvider(project.journal))
    (tmp_path / "out" / "banner.jpg").unlink()
    again = Project.open(tmp_path / "assets.toml", use_remote=False)
    provider = FakeProvider(again.journal)
    report, _ = build(again, provider)
    assert statuses(report) == {"banner": "restored"}
    assert provider.log == [] and report.spent == 0


class _CountingItems(list):  # type: ignore[type-arg]
    """A plan's items that count how often they are walked."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        type(self).walks += 1
        return super().__iter__()


def test_the_targets_of_a_key_are_indexed_once_not_scanned_per_generation(tmp_path: Path) -> None:
    # Two targets with the same spec share a key (one generation serves both).
    body = "".join(f'[targets.t{i}]\nprompt = "Image {i // 2}"\n\n' for i in range(40))
    project = open_project(tmp_path, body)
    plan = project.plan(offline=False)
    builder = Builder(project, plan, FakeProvider(project.journal), reporter=Recorder(), jobs=4)
    plan.items = _CountingItems(plan.items)
    _CountingItems.walks = 0
    names = {i.key: builder._names(i.key) for i in list.__iter__(plan.items)}
    assert _CountingItems.walks == 1                 # was one walk per generation: O(N²) at scale
    assert names[plan.items[0].key] == ("t0", "t1") and len(names) == 20
