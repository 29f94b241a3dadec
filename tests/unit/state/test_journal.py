"""state.journal, the gaps tests/test_journal.py leaves: what a scan makes collectable, what it
makes uncertain, and how records leave the folder."""

from __future__ import annotations

import json
from pathlib import Path

from assetgen.state.journal import MAX_DOWNLOAD_ATTEMPTS, Journal, JournalRecord, Submission, request_digest

A, B, C = "a" * 64, "b" * 64, "c" * 64


def record(key: str, *submissions: Submission, closed: str | None = None) -> JournalRecord:
    return JournalRecord(key=key, targets=["hero"], model="gemini-3.1-flash-image-preview",
                         submissions=list(submissions), closed=closed)


def sent(task_id: str, n: int = 1) -> Submission:
    return Submission(intent_at=1.7e9, request_digest="d", n=n, task_id=task_id, state="submitted")


def test_a_scan_tells_collectable_from_uncertain(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.write(record(A, sent("t1", n=2), sent("t2")))
    journal.write(record(B, Submission(intent_at=1.7e9, request_digest="d", n=1)))      # intent only
    journal.write(record(C, sent("t3"), closed="gave up after 3 downloads"))
    scan = journal.scan()
    assert scan.collectable == {A}
    assert scan.paid_images == {A: 3}
    uncertain = scan.uncertain()
    assert set(uncertain) == {B, C}
    assert "its task id was never received" in uncertain[B]
    assert uncertain[C] == "gave up after 3 downloads"
    assert MAX_DOWNLOAD_ATTEMPTS >= 1


def test_a_file_under_another_keys_name_is_damage(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    journal.write(record(A, sent("t1")))
    (tmp_path / "journal" / f"{A}.json").rename(tmp_path / "journal" / f"{B}.json")
    scan = journal.scan()
    assert scan.records == {} and set(scan.damaged) == {B}
    assert "names another key" in scan.uncertain()[B]


def test_set_aside_keeps_a_damaged_file_for_a_person(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal" / f"{A}.json").write_bytes(b"{truncated")
    journal.set_aside(A)
    assert journal.scan().damaged == {}
    kept, = (tmp_path / "journal" / "damaged").iterdir()
    assert kept.read_bytes() == b"{truncated"


def test_remove_is_idempotent_and_a_missing_folder_is_an_empty_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "nowhere")
    assert journal.scan().records == {} and journal.pending() == {}
    journal.remove(A)                                   # nothing there: no error


def test_records_are_versioned_json_and_the_request_digest_ignores_key_order() -> None:
    data = json.loads(record(A, sent("t1")).to_json())
    assert data["version"] == 2 and data["submissions"][0]["task_id"] == "t1"
    assert request_digest({"a": 1, "b": 2}) == request_digest({"b": 2, "a": 1})
    assert request_digest({"a": 1}) != request_digest({"a": 2})
