"""The journal's record format (version 2): round trip, migration of version 1, damage reported by name."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from assetgen.errors import JournalUnwritable
from assetgen.state.journal import (JOURNAL_VERSION, Journal, JournalDamage, JournalRecord, Submission, parse,
                                    request_digest)
from helpers.project import ProjectDir

KEY = "ab" * 32


def record(*submissions: Submission, **fields: object) -> JournalRecord:
    return JournalRecord(key=KEY, targets=["hero"], model="gemini-3.1-flash-image-preview",
                         aspect_ratio="3:4", resolution="1K", submissions=list(submissions), **fields)  # type: ignore[arg-type]


def test_round_trip_holds_several_tasks_for_one_key(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    first = Submission(intent_at=time.time(), request_digest=request_digest({"n": 1, "seed": 7}), n=1, seed=7,
                       task_id="task-1", state="completed", images=[{"url": "http://x/1.jpg", "expires_at": 9e9}])
    second = Submission(intent_at=time.time(), request_digest="d2", n=1, seed=8, task_id="task-2", state="submitted")
    journal.write(record(first, second))
    data = json.loads((tmp_path / "journal" / f"{KEY}.json").read_text())
    assert data["version"] == JOURNAL_VERSION == 2
    assert [s["state"] for s in data["submissions"]] == ["completed", "submitted"]
    back = journal.scan()
    assert not back.damaged and back.collectable == {KEY}
    again = back.records[KEY]
    assert again == record(first, second)
    assert again.task_id == "task-1,task-2" and again.n == 2 and again.uncertain is None


def test_an_intent_without_task_id_makes_the_key_uncertain(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    at = time.mktime((2026, 1, 2, 12, 3, 4, 0, 0, -1))
    journal.write(record(Submission(intent_at=at, request_digest="d", n=1)))
    scan = journal.scan()
    assert scan.collectable == set()
    assert scan.uncertain()[KEY] == ("a submission at 2026-01-02 12:03:04 may have been accepted; its task id "
                                     "was never received")
    closed = record(Submission(intent_at=at, request_digest="d", n=1, task_id="t", state="completed"),
                    closed="the images could not be downloaded in 3 builds")
    assert closed.uncertain == "the images could not be downloaded in 3 builds"


def test_version_1_is_migrated() -> None:
    v1 = {"version": 1, "key": KEY, "task_id": "task-old", "model": "gemini-3-pro-image-preview",
          "targets": ["hero"], "n": 2, "submitted_at": 1700000000.0,
          "images": [{"url": "http://x/a.jpg", "expires_at": None}]}
    migrated = parse(json.dumps(v1).encode())
    assert migrated.task_id == "task-old" and migrated.n == 2 and migrated.uncertain is None
    assert migrated.submissions[0].state == "completed" and migrated.submissions[0].images == v1["images"]
    assert parse(json.dumps({**v1, "images": None}).encode()).submissions[0].state == "submitted"


@pytest.mark.parametrize(("raw", "says"), [
    (b"", "is empty"),
    (b'{"version": 2, "key": "', "not valid JSON (truncated or damaged at byte"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "does not hold a JSON object"),
    (b'{"version": 9, "key": "k"}', "written by a newer assetgen (journal format 9; this one reads up to 2)"),
    (b'{"version": "2"}', "unknown format version '2'"),
    (b'{"version": 2, "key": "k", "targets": [], "model": "m"}', "missing field 'submissions'"),
    (b'{"version": 2, "key": 5, "targets": [], "model": "m", "submissions": []}',
     "wrongly typed field 'key' (expected a string)"),
    (b'{"version": 2, "key": "k", "targets": [], "model": "m", "submissions": [{"intent_at": "noon", '
     b'"request_digest": "", "n": 1, "state": "intent"}]}', "'submissions[0].intent_at' (expected a number)"),
    (b'{"version": 2, "key": "k", "targets": [], "model": "m", "submissions": [{"intent_at": 1, '
     b'"request_digest": "", "n": 1, "state": "paid"}]}', "unknown state 'paid'"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_damage_is_described(raw: bytes, says: str) -> None:
    with pytest.raises(JournalDamage, match=None) as caught:
        parse(raw)
    assert says in str(caught.value)


def test_damaged_files_are_reported_never_skipped_or_deleted(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    (tmp_path / f"{KEY}.json").write_text('{"version": 2, "key": "' + KEY[:10])
    scan = journal.scan()
    assert scan.records == {} and list(scan.damaged) == [KEY]
    message = scan.uncertain()[KEY]
    assert f"journal file {tmp_path / (KEY + '.json')}" in message and "truncated" in message
    assert "--retry-uncertain" in message
    assert (tmp_path / f"{KEY}.json").exists()
    journal.set_aside(KEY)
    assert not (tmp_path / f"{KEY}.json").exists() and len(list((tmp_path / "damaged").glob("*.json"))) == 1


def test_an_unwritable_journal_is_found_before_paying(tmp_path: Path) -> None:
    (tmp_path / "journal").write_text("a file where the journal folder should be")
    with pytest.raises(JournalUnwritable, match="cannot be written.*nothing was paid"):
        Journal(tmp_path / "journal").check_writable()
    Journal(tmp_path / "fine").check_writable()
    assert list((tmp_path / "fine").iterdir()) == []       # the probe is gone


def test_plan_and_build_name_a_damaged_record_and_submit_nothing(project: ProjectDir) -> None:
    project.ok("build", "--offline")                        # keys exist; placeholders everywhere
    key = project.keys()["banner"]
    folder = project.cache / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_text('{"version": 7}')
    result = project.run("plan")
    assert result.exit_code == 0
    assert "banner" in result.output and "uncertain" in result.output
    assert "written by a newer assetgen (journal format 7" in result.output
    assert project.items()["banner"]["action"] == "uncertain"
    # An online build with nowhere to send anything: it must not even try for that target.
    env = {"ASSETGEN_API_KEY": "sk-test", "ASSETGEN_BASE_URL": "http://127.0.0.1:9"}
    built = project.run("build", "--keep-going", "banner", env=env)
    assert built.exit_code == 1 and "Traceback" not in built.output
    assert "--retry-uncertain banner" in built.output and "journal format 7" in built.output
    assert (folder / f"{key}.json").read_text() == '{"version": 7}'


def _one(**submission: object) -> bytes:
    base = {"intent_at": 1.0, "request_digest": "", "n": 1, "seed": None, "task_id": "t1", "state": "submitted",
            "images": None, "note": ""}
    return json.dumps({"version": 2, "key": "k", "targets": ["a"], "model": "m",
                       "submissions": [{**base, **submission}]}).encode()


@pytest.mark.parametrize(("raw", "says"), [
    # Review findings 9 and 12b: times out of range, wrongly typed URLs, unsafe ids, absurd counts.
    (_one(intent_at=1e300), "impossible time in field 'submissions[0].intent_at'"),
    (_one(intent_at=-1e18), "impossible time in field 'submissions[0].intent_at'"),
    (_one(images=[{"url": "https://x/1.jpg", "expires_at": "soon"}]),
     "'submissions[0].images[0].expires_at' (expected a number)"),
    (_one(images=[{"url": "https://x/1.jpg", "expires_at": 1e300}]), "impossible time in field"),
    (_one(images=["https://x/1.jpg"]), "wrongly typed field 'submissions[0].images[0]'"),
    (_one(task_id="../../v1/tasks/x?y=[/]\x1b[31m"), "unusable task id in field 'submissions[0].task_id'"),
    (_one(task_id="x" * 201), "unusable task id"),
    (_one(n=10**9), "impossible image count 1000000000 in field 'submissions[0].n' (a task makes 1 to 8"),
    (_one(seed="7"), "'submissions[0].seed' (expected an integer)"),
    (json.dumps({"version": 2, "key": "k", "targets": ["a"], "model": "m", "download_attempts": -5,
                 "submissions": []}).encode(), "impossible count in field 'download_attempts'"),
])
def test_out_of_range_and_unsafe_values_are_damage(raw: bytes, says: str) -> None:
    with pytest.raises(JournalDamage) as caught:
        parse(raw)
    assert says in str(caught.value)


def test_a_journal_time_out_of_range_is_reported_by_plan_and_build(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    key = project.keys()["banner"]
    folder = project.cache / "journal"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_bytes(_one(intent_at=1e300, task_id=None, state="intent").replace(
        b'"key": "k"', f'"key": "{key}"'.encode()))
    planned = project.run("plan")
    assert planned.exit_code == 0 and "impossible time" in planned.output and "Traceback" not in planned.output
    env = {"ASSETGEN_API_KEY": "sk-test", "ASSETGEN_BASE_URL": "http://127.0.0.1:9"}
    built = project.run("build", "--keep-going", "banner", env=env)
    assert built.exit_code == 1 and "impossible time" in built.output and "Traceback" not in built.output
