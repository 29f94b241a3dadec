"""``build --batch`` over the Batch API's inline limit: the requests go in a JSONL input file uploaded
through the Files API (resumable: start, then upload+finalize), the job names it, and the results come
back in a results file. The limits are made small here so the payloads stay tiny; the emulator refuses
an inline batch over its own limit, so a build that did not switch to a file would fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import ProjectDir as Project

from assetgen.providers import gemini_batch
from assetgen.testing.gemini_emulator import GeminiEmulator

from test_provider_batch import KEY, MANIFEST, env

LIMIT = 600          # bytes: the three requests of MANIFEST are about 1 KB inline


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiEmulator]:
    monkeypatch.setattr(gemini_batch, "MAX_INLINE_BYTES", LIMIT)
    with GeminiEmulator(api_key=KEY, batch_latency=0.2, inline_limit=LIMIT) as emulator:
        yield emulator


def calls(emulator: GeminiEmulator, part: str) -> list[object]:
    return [r for r in emulator.requests if part in r.path]


def journaled(project: Project) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in (project.cache / "journal").glob("*.json")]


def key_anywhere(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]


def test_a_batch_over_the_inline_limit_goes_through_an_uploaded_file(project: Project,
                                                                     google: GeminiEmulator) -> None:
    project.write(MANIFEST)
    result = project.ok("build", "--batch", "--json", env=env(google))
    start, upload = calls(google, "/upload/v1beta/files")
    assert start.body == {"start": {"file": {"display_name": "assetgen-2-targets"}}} and start.auth == "valid"
    assert upload.auth is None                          # the upload URL carries its session, never our key
    lines = [json.loads(line) for line in upload.body["upload"].splitlines()]
    keys = project.keys()
    assert [line["key"] for line in lines] == [f"{keys['hero']}#0", f"{keys['icons']}#0", f"{keys['icons']}#1"]
    assert lines[0]["request"]["contents"][0]["parts"] == [{"text": "A knight"}]
    (create,) = calls(google, ":batchGenerateContent")
    file_name = create.body["batch"]["inputConfig"]
    assert list(file_name) == ["fileName"] and file_name["fileName"] in google.files
    assert len(calls(google, "/download/v1beta/files/batch-")) == 1        # the results file, once
    assert json.loads(result.stdout)["spent"] == pytest.approx(3 * 0.045 / 2)
    assert (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
    assert journaled(project) == [] and KEY not in result.output and key_anywhere(project.root) == []
    project.ok("build", env=env(google))
    assert len(calls(google, ":batchGenerateContent")) == 1                   # up to date: nothing again


@pytest.mark.parametrize("fault, said", [
    ("bad_upload_url", "held no usable upload URL (X-Goog-Upload-URL missing, or not on the API's host"),
    ("no_file_name", "names no usable file (file.name should be files/"),
])
def test_a_hostile_upload_answer_creates_no_job_and_the_next_build_pays_once(
        project: Project, google: GeminiEmulator, fault: str, said: str) -> None:
    project.write(MANIFEST)
    google.file_faults = {fault}
    result = project.run("build", "--batch", env=env(google))
    assert result.exit_code == 1 and said in result.output and "Traceback" not in result.output, result.output
    assert calls(google, ":batchGenerateContent") == [] and journaled(project) == []
    if fault == "bad_upload_url":
        assert len(calls(google, "/upload/")) == 1        # the bytes never went to the other host
    google.file_faults = set()
    project.ok("build", "--batch", env=env(google))
    assert len(calls(google, ":batchGenerateContent")) == 1
    assert KEY not in result.output and key_anywhere(project.root) == []


def test_garbled_and_huge_result_lines_fail_only_their_target(project: Project, google: GeminiEmulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    project.write(MANIFEST)
    google.file_faults = {"garbled_line"}
    result = project.run("build", "--batch", env=env(google))
    assert result.exit_code == 1 and "holds no result for image 1 of this target (its results file: line 1 " \
        "is not JSON)" in result.output, result.output
    assert not (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
    assert journaled(project) == []                        # a known failure: the paid icons were recorded
    monkeypatch.setattr(gemini_batch, "MAX_RESULT_LINE_BYTES", 20_000)
    monkeypatch.setattr(gemini_batch, "MAX_INLINE_BYTES", 100)       # hero alone goes through a file too
    google.file_faults, google.huge_line_bytes = {"huge_line"}, 30_000
    result = project.run("build", "--batch", env=env(google))        # only hero is built again
    assert result.exit_code == 1 and "line 1 is over 20,000 bytes and was skipped" in result.output, result.output
    assert len(calls(google, ":batchGenerateContent")) == 2
    assert [json.loads(line)["key"].split("#")[0] for line in
            calls(google, "/upload/v1beta/files")[-1].body["upload"].splitlines()] == [project.keys()["hero"]]


@pytest.mark.parametrize("fault, said", [
    ("download_500", "could not be downloaded (Google's Gemini API failed with HTTP 500"),
    ("no_responses_file", "names no usable results file (response.responsesFile)"),
])
def test_a_results_file_that_cannot_be_had_stays_journaled_and_a_later_build_collects_it(
        project: Project, google: GeminiEmulator, fault: str, said: str) -> None:
    project.write(MANIFEST)
    google.file_faults = {fault}
    result = project.run("build", "--batch", env=env(google))
    assert result.exit_code == 1 and said in result.output and "without submitting" in result.output, result.output
    records = journaled(project)
    task_ids = [str(r["submissions"][0]["task_id"]) for r in records]             # type: ignore[index]
    assert len(task_ids) == 2 and all(t.startswith("batches:") for t in task_ids), records
    assert "Traceback" not in result.output and KEY not in result.output
    google.file_faults = set()
    project.ok("build", env=env(google))                   # collects the paid job: nothing submitted again
    assert len(calls(google, ":batchGenerateContent")) == 1 and len(calls(google, "/upload/v1beta/files")) == 2
    assert (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
    assert journaled(project) == [] and key_anywhere(project.root) == []
