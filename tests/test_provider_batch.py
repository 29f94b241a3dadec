"""``build --batch`` / ``plan --batch`` with Google's Batch API (emulated from its reference): one job per
build and model at half price, its name journaled before waiting, resumed after kill -9 without paying."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import ProjectDir as Project

from assetgen.testing.gemini_emulator import BATCH_ITEM_ERROR, GeminiEmulator

KEY = "AIza-batch-test-0123456789"
GOLDEN = Path(__file__).parent / "golden"

MANIFEST = """\
[settings]
out_dir = "out"
provider = "gemini"
poll_interval = 0.05

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.hero]
prompt = "A knight"
seed = 5

[targets.icons]
prompt = "Potion icons"
candidates = 2
"""


@pytest.fixture
def google() -> Iterator[GeminiEmulator]:
    with GeminiEmulator(api_key=KEY, batch_latency=0.4) as emulator:
        yield emulator


def env(emulator: GeminiEmulator) -> dict[str, str]:
    return {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": emulator.base_url, "ASSETGEN_POLL_INTERVAL": "0.05",
            "ASSETGEN_RETRY_BACKOFF": "0.01"}


def creates(emulator: GeminiEmulator) -> list[object]:
    return [r for r in emulator.requests if r.path.endswith(":batchGenerateContent")]


def test_plan_batch_halves_the_total(project: Project) -> None:
    project.write(MANIFEST)
    full = project.plan()["total_cost"]
    half = json.loads(project.ok("plan", "--batch", "--json").output)["total_cost"]
    assert full == pytest.approx(3 * 0.045) and half == pytest.approx(full / 2)


def test_build_batch_sends_one_job_and_pays_half(project: Project, google: GeminiEmulator) -> None:
    project.write(MANIFEST)
    result = project.ok("build", "--batch", "--json", env=env(google))
    assert len(creates(google)) == 1 and google.count(":generateContent") == 0
    body = creates(google)[0].body
    assert body == json.loads((GOLDEN / "gemini_batch_create.json").read_text().replace(
        "KEY_HERO", project.items()["hero"]["key"]).replace("KEY_ICONS", project.items()["icons"]["key"]))
    report = json.loads(result.stdout)
    assert report["spent"] == pytest.approx(3 * 0.045 / 2)
    assert (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
    project.ok("build", env=env(google))
    assert len(creates(google)) == 1 and google.count(":generateContent") == 0     # up to date


def test_a_failed_request_fails_its_target_alone(project: Project, google: GeminiEmulator) -> None:
    project.write(MANIFEST.replace("A knight", f"A knight {BATCH_ITEM_ERROR}"))
    result = project.run("build", "--batch", "--keep-going", env=env(google))
    assert result.exit_code == 1 and "Google failed this request of batch job" in result.output
    assert not (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
    assert list((project.cache / "journal").glob("*.json")) == []      # a known failure: not uncertain


def test_kill_9_while_waiting_then_build_collects_without_resubmitting(project: Project) -> None:
    project.write(MANIFEST)
    with GeminiEmulator(api_key=KEY, batch_latency=600) as google:
        proc = project.spawn("build", "--batch", env=env(google))
        deadline = time.monotonic() + 20
        journal = project.cache / "journal"
        while time.monotonic() < deadline and not (
                creates(google) and len([p for p in journal.glob("*.json") if b"batches:" in p.read_bytes()]) == 2):
            time.sleep(0.02)
        assert creates(google), "no batch job was created"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        records = [json.loads(p.read_text()) for p in journal.glob("*.json")]
        assert len(records) == 2 and all(r["submissions"][0]["task_id"].startswith("batches:") for r in records)
        pending = project.run("plan").output
        assert "uncertain" not in pending and "in a pending Gemini batch job" in pending, pending
        google.batch_latency = 0.0                       # the job has finished meanwhile
        result = project.ok("build", env=env(google))    # without --batch: collects the job anyway
        assert len(creates(google)) == 1 and google.count(":generateContent") == 0, result.output
        assert (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
        assert list(journal.glob("*.json")) == []


@pytest.mark.parametrize("signals, code", [((signal.SIGINT, signal.SIGINT), 130), ((signal.SIGTERM,), 143)])
def test_stopped_while_waiting_leaves_the_job_for_the_next_build(project: Project, signals: tuple[int, ...],
                                                                  code: int) -> None:
    project.write(MANIFEST)
    with GeminiEmulator(api_key=KEY, batch_latency=600) as google:
        proc = project.spawn("build", "--batch", env=env(google))
        deadline = time.monotonic() + 20
        journal = project.cache / "journal"
        while (time.monotonic() < deadline
               and len([p for p in journal.glob("*.json") if b"batches:" in p.read_bytes()]) < 2):
            time.sleep(0.02)
        for sig in signals:                      # a first Ctrl-C waits for what is in flight; a second stops
            proc.send_signal(sig)
            time.sleep(0.3)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == code and "Traceback" not in out + err, out + err
        assert len([p for p in journal.glob("*.json") if b"batches:" in p.read_bytes()]) == 2
        google.batch_latency = 0.0
        project.ok("build", "--batch", env=env(google))
        assert len(creates(google)) == 1 and (project.root / "out" / "hero.jpg").exists()


def test_build_batch_prints_the_job_name_and_its_turnaround(project: Project, google: GeminiEmulator) -> None:
    project.write(MANIFEST)
    result = project.ok("build", "--batch", env=env(google))
    line = next(li for li in result.output.splitlines() if "Google batch job batches/" in li)
    assert "created and journaled for 2 target(s)" in line and "estimated turnaround up to 24 h" in line, line
    assert "Google's stated target turnaround" in line and "--no-wait" not in line


def test_no_wait_returns_at_once_and_a_later_build_collects(project: Project) -> None:
    project.write(MANIFEST + '\n[targets.hero_edit]\nprompt = "The knight, at night"\nreferences = ["@hero"]\n')
    with GeminiEmulator(api_key=KEY, batch_latency=600) as google:
        started = time.monotonic()
        result = project.ok("build", "--batch", "--no-wait", env=env(google))
        assert time.monotonic() - started < 15
        out = result.output
        assert "Done: 3 pending. Spent $0.00" in out, out        # hero_edit waits for hero, not a failure
        assert "Google batch job batches/" in out and "; not waiting for it (--no-wait): `assetgen build` " \
            "collects it later" in out
        assert "`assetgen build` collects them later without submitting them again" in out
        assert len(creates(google)) == 1
        assert not [r for r in google.requests if r.method == "GET"]           # nothing polled
        assert "in a pending Gemini batch job" in project.run("plan").output
        google.batch_latency = 0.0
        project.ok("build", env=env(google))            # without --batch: collects, then builds the edit
        assert len(creates(google)) == 1 and google.count(":generateContent") == 1
        assert (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "icons.jpg").exists()
        assert list((project.cache / "journal").glob("*.json")) == []


def test_no_wait_needs_batch(project: Project) -> None:
    project.write(MANIFEST)
    result = project.run("build", "--no-wait")
    assert result.exit_code == 2 and "--no-wait only applies to --batch" in result.output
