"""The uncertain window: a submission whose task id never arrived is named, never paid again silently.

Real processes killed between the intent's fsync and the gateway's answer (the emulator's slow submit
answer: the task exists already), lost answers (5xx after the body was sent), ``--retry-uncertain``,
``watch``, downloads that keep failing, a journal that cannot be written, and the ``n = 1`` fallback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from assetgen.testing.emulator import Faults
from assetgen.errors import InvalidRequest
from assetgen.providers.gateway import refuses_n
from helpers.online import emulator, env_for, run, start_build, targets, wait_for, write_manifest

pytestmark = pytest.mark.slow          # real processes, signals or watches (see CONTRIBUTING.md)

WINDOW = re.compile(r"a submission at \d\d:\d\d:\d\d may have been accepted; its task id was never received")


def records(root: Path) -> list[dict]:
    folder = root / ".assetgen" / "journal"
    return [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []


def locked(root: Path) -> dict[str, dict]:
    lock = root / "assets.lock"
    return tomllib.loads(lock.read_text())["targets"] if lock.exists() else {}


def prompts(emu: object) -> list[str]:
    return sorted(s["prompt"].removeprefix("a picture of ") for s in emu.submissions)  # type: ignore[attr-defined]


def test_kill_9_between_intent_and_answer_loses_one_id_and_names_it(tmp_path: Path) -> None:
    with emulator(latency=0.2, faults=Faults(submit_timeout=2.0)) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c"))       # jobs = 4
        proc = start_build(manifest, emu)
        wait_for(lambda: len(emu.submissions) == 1)     # accepted and paid; its answer is 2 s away
        proc.kill()
        proc.communicate(timeout=10)
        # Submits go one at a time: the other two were never sent, and only the one intent is there.
        assert len(emu.submissions) == 1
        [intent] = records(tmp_path)
        assert [s["state"] for s in intent["submissions"]] == ["intent"]
        assert intent["submissions"][0]["task_id"] is None and intent["submissions"][0]["request_digest"]
        lost = emu.submissions[0]["prompt"].removeprefix("a picture of ")
        emu.faults.submit_timeout = 0.0

        plan = run(manifest, emu, "plan")
        assert plan.exit_code == 0 and WINDOW.search(plan.output)
        assert f"--retry-uncertain {lost}" in plan.output
        built = run(manifest, emu, "build")
        assert built.exit_code == 1
        assert WINDOW.search(built.output) and f"assetgen build --retry-uncertain {lost}" in built.output
        assert prompts(emu) == sorted(["a", "b", "c"]) and lost not in locked(tmp_path)
        again = run(manifest, emu, "build")                # still not paid again
        assert again.exit_code == 1 and len(emu.submissions) == 3

        retried = run(manifest, emu, "build", "--retry-uncertain", lost)
        assert retried.exit_code == 0, retried.output
        assert prompts(emu) == sorted(["a", "b", "c", lost]) and set(locked(tmp_path)) == {"a", "b", "c"}
        assert records(tmp_path) == []


def test_a_lost_answer_5xx_is_uncertain_and_only_retried_on_request(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        emu.faults.server_errors = 1                       # the first submit's answer: never resent
        first = run(manifest, emu, "build", "a")
        assert first.exit_code == 1
        assert "uncertain" in first.output and "--retry-uncertain a" in first.output
        [record] = records(tmp_path)
        assert record["submissions"][0]["state"] == "uncertain"
        assert "after the body was sent" in record["submissions"][0]["note"]
        assert WINDOW.search(run(manifest, emu, "plan").output)
        both = run(manifest, emu, "build")
        assert both.exit_code == 1 and prompts(emu) == ["b"]
        assert run(manifest, emu, "build", "--retry-uncertain").exit_code == 0
        assert prompts(emu) == ["a", "b"] and set(locked(tmp_path)) == {"a", "b"}


def test_watch_reports_uncertain_targets_and_never_resubmits_them(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        emu.faults.server_errors = 1
        assert run(manifest, emu, "build", "a").exit_code == 1          # a is uncertain now
        log = tmp_path / "watch.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "watch", "--settle", "0.1"],
                                    env={**os.environ, **env_for(emu)}, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "Watching for changes" in log.read_text())
            manifest.write_text(manifest.read_text() + "\n# an edit\n")
            wait_for(lambda: log.read_text().count("Watching for changes") >= 2 or
                     log.read_text().count("uncertain") >= 2)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=15)
        text = log.read_text()
        assert "a: uncertain" in text and WINDOW.search(text) and "--retry-uncertain a" in text
        assert prompts(emu) == ["b"]


def test_downloads_that_keep_failing_close_the_record_after_3_builds(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        emu.faults.download_failures = 10_000
        for attempt in (1, 2):
            result = run(manifest, emu, "build")
            assert result.exit_code == 1 and f"download attempt {attempt} of 3" in result.output
            assert records(tmp_path)[0]["download_attempts"] == attempt
        third = run(manifest, emu, "build")
        assert third.exit_code == 1 and "could not be downloaded in 3 builds" in third.output
        assert "--retry-uncertain a" in third.output and records(tmp_path)[0]["closed"]
        emu.faults.download_failures = 0
        fourth = run(manifest, emu, "build")
        assert fourth.exit_code == 1 and "uncertain" in fourth.output
        assert len(emu.submissions) == 1                  # one task, downloaded in vain 3 times
        assert run(manifest, emu, "build", "--retry-uncertain").exit_code == 0
        assert len(emu.submissions) == 2 and set(locked(tmp_path)) == {"a"}


def test_an_unwritable_journal_stops_the_build_before_paying(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        (tmp_path / ".assetgen").mkdir()
        (tmp_path / ".assetgen" / "journal").write_text("not a folder")
        result = run(manifest, emu, "build")
        assert result.exit_code == 2 and "cannot be written" in result.output
        assert "nothing was paid" in result.output and emu.submissions == []


def test_a_journal_that_fails_after_the_submit_keeps_the_task_in_memory(tmp_path: Path) -> None:
    with emulator(latency=0.3, faults=Faults(submit_timeout=1.0)) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "build"],
                                env={**os.environ, **env_for(emu)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        journal = tmp_path / ".assetgen" / "journal"
        wait_for(lambda: len(emu.submissions) == 1 and records(tmp_path))
        journal.rename(tmp_path / ".assetgen" / "journal.moved")           # the disk goes away
        journal.write_text("not a folder")
        out, err = proc.communicate(timeout=30)
        task_id = next(iter(emu.tasks))
        assert proc.returncode == 1, out + err
        assert f"task {task_id} was submitted (and is paid for)" in err
        assert locked(tmp_path)["a"]["task_id"] == task_id and (tmp_path / "out" / "a.jpg").exists()


def test_n_refused_falls_back_to_one_image_tasks(tmp_path: Path) -> None:
    body = targets("a", "b", a='n = 3\nseed = 40', b="n = 2")
    with emulator(latency=0.1, n_fixed_at_1=True) as emu:
        manifest = write_manifest(tmp_path, body, settings="")
        plan = json.loads(run(manifest, emu, "plan", "--json").output)
        assert plan["total_cost"] == round(5 * 0.031875, 6)          # still n images each
        keys = {t["name"]: t["key"] for t in plan["targets"]}
        result = run(manifest, emu, "build")
        assert result.exit_code == 0, result.output
        sent = [(s["prompt"][-1], s["n"], s.get("seed")) for s in emu.submissions]
        assert sorted(s for s in sent if s[0] == "a") == [("a", 1, 40), ("a", 1, 41), ("a", 1, 42)]
        assert sorted(s[1] for s in sent if s[0] == "b") == [1, 1]
        # The model's refusal is remembered: only the first target's first submit asked for n > 1.
        posts = [r for r in emu.requests if r.method == "POST" and r.path == "/v1/tasks"]
        assert sum(1 for r in posts if r.body["n"] > 1) == 1
        lock = locked(tmp_path)
        assert [o["path"] for o in lock["a"]["outputs"]] == ["out/a-1.jpg", "out/a-2.jpg", "out/a-3.jpg"]
        assert len(set(o["sha256"] for o in lock["a"]["outputs"])) == 3
        # Candidates keep their order: image i comes from the task that sent seed + i - 1.
        assert [emu.tasks[t].body["seed"] for t in lock["a"]["task_id"].split(",")] == [40, 41, 42]
        again = json.loads(run(manifest, emu, "plan", "--json").output)
        assert {t["name"]: t["key"] for t in again["targets"]} == keys and again["stale"] == 0


def test_only_a_400_about_n_falls_back() -> None:
    assert refuses_n(InvalidRequest("The gateway refused the request: n: number of images is fixed at 1",
                                    status=400))
    assert refuses_n(InvalidRequest("The gateway refused the request: bad value", status=400, code="invalid_n"))
    assert not refuses_n(InvalidRequest("The gateway refused the request: prompt is required", status=400))
    assert not refuses_n(InvalidRequest("The gateway refused the request: Unknown model 'x'", status=400))


def test_no_room_for_a_record_is_found_before_paying(tmp_path: Path) -> None:
    import resource

    def small_files() -> None:          # a full disk, as the process sees it: writes over 16 KB fail
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))

    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        proc = subprocess.run([sys.executable, "-m", "assetgen", "-f", str(manifest), "build"],
                              env={**os.environ, **env_for(emu)}, capture_output=True, text=True,
                              preexec_fn=small_files, timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "cannot be written" in proc.stderr and "nothing was paid" in proc.stderr
        assert "Traceback" not in proc.stderr and emu.submissions == []


def test_an_unreadable_2xx_submit_answer_is_uncertain_end_to_end(tmp_path: Path) -> None:
    # The gateway took (and charged) the task but answered 200 with no task id we can read.
    with emulator(latency=0.05, submit_answer="garbage") as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        first = run(manifest, emu, "build")
        assert first.exit_code == 1 and "a: uncertain" in first.output, first.output
        assert "--retry-uncertain a" in first.output and "Traceback" not in first.output
        [record] = records(tmp_path)
        assert record["submissions"][0]["state"] == "uncertain" and record["submissions"][0]["task_id"] is None
        plan = run(manifest, emu, "plan")
        assert plan.exit_code == 0 and WINDOW.search(plan.output) and "--retry-uncertain a" in plan.output
        second = run(manifest, emu, "build")
        assert second.exit_code == 1 and "--retry-uncertain a" in second.output
        assert len(emu.submissions) == 1                   # not submitted again
        emu.submit_answer = "task"
        retried = run(manifest, emu, "build", "--retry-uncertain")
        assert retried.exit_code == 0, retried.output
        assert len(emu.submissions) == 2 and set(locked(tmp_path)) == {"a"} and records(tmp_path) == []


def test_retry_uncertain_counts_the_retried_targets_in_the_budget(tmp_path: Path) -> None:
    price = 0.031875                                        # 3.1 Flash at 0.5K, one image
    with emulator(latency=0.05) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c"), settings="budget = 0.05")
        emu.faults.server_errors = 1                        # a's answer is lost: a is uncertain
        assert run(manifest, emu, "build", "a").exit_code == 1
        assert run(manifest, emu, "build", "b").exit_code == 0     # within the budget: $0.03
        plan = json.loads(run(manifest, emu, "plan", "--json").output)
        items = {t["name"]: t for t in plan["targets"]}
        assert items["a"]["action"] == "uncertain" and items["a"]["cost"] == 0
        assert items["a"]["retry_cost"] == round(price, 6) and "that would cost $0.0319" in run(
            manifest, emu, "plan").output
        # Retrying a and building c would pay 2 × $0.0319 > $0.05: refused before submitting anything.
        refused = run(manifest, emu, "build", "--retry-uncertain")
        assert refused.exit_code == 1 and "over the budget of $0.05" in refused.output, refused.output
        assert "$0.0638" in refused.output and prompts(emu) == ["b"]
        dry = run(manifest, emu, "build", "--retry-uncertain", "--dry-run")
        assert "$0.0638" in dry.output and "it may pay twice" in dry.output, dry.output
        # One of them fits.
        assert run(manifest, emu, "build", "--retry-uncertain", "a").exit_code == 0
        assert prompts(emu) == ["a", "b"] and records(tmp_path) == []
