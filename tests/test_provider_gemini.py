"""Google's Gemini API, direct (``provider = "gemini"``), against its emulator over real HTTP.

The emulator follows the documented contract (``assetgen.testing.gemini_emulator``); request bodies are
compared with golden files written from the reference (tests/golden/gemini_*.json).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.project import ProjectDir as Project

from assetgen.testing.gemini_emulator import GeminiEmulator, VendorFaults

KEY = "AIza-test-0123456789abcdef"
GOLDEN = Path(__file__).parent / "golden"

MANIFEST = """\
[settings]
out_dir = "out"
provider = "gemini"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.hero]
prompt = "A knight in silver armour"
aspect_ratio = "3:4"
seed = 7

[targets.walk]
action = "edit"
prompt = "The same knight, walking"
references = ["refs/palette.png"]
seed = 3
"""


@pytest.fixture
def gemini() -> Iterator[GeminiEmulator]:
    with GeminiEmulator(api_key=KEY) as emulator:
        yield emulator


def env(emulator: GeminiEmulator, **more: str) -> dict[str, str]:
    return {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": emulator.base_url, "ASSETGEN_RETRY_BACKOFF": "0.01",
            **more}


def bodies(emulator: GeminiEmulator, root: Path) -> dict[str, Any]:
    """Each request body by its prompt, reference bytes replaced by the file they came from."""
    palette = (root / "refs" / "palette.png").read_bytes()
    found = {}
    for request in emulator.requests:
        body = json.loads(json.dumps(request.body))
        for part in body["contents"][0]["parts"]:
            if "inlineData" in part:
                assert base64.b64decode(part["inlineData"]["data"]) == palette
                part["inlineData"]["data"] = "<base64 of refs/palette.png>"
        found[body["contents"][0]["parts"][0]["text"]] = {"path": request.path, "body": body}
    return found


def test_request_bodies_are_as_documented(project: Project, gemini: GeminiEmulator) -> None:
    project.write(MANIFEST)
    result = project.ok("build", env=env(gemini))
    assert "Traceback" not in result.output
    expected = json.loads((GOLDEN / "gemini_generate_content.json").read_text())
    assert bodies(gemini, project.root) == expected
    assert all(r.auth == "valid" for r in gemini.requests)          # x-goog-api-key
    assert len(gemini.billed) == 2
    assert (project.root / "out" / "hero.jpg").exists() and (project.root / "out" / "walk.jpg").exists()


def test_google_api_key_is_accepted_too(project: Project, gemini: GeminiEmulator) -> None:
    project.write(MANIFEST)
    project.ok("build", "hero", env={"GOOGLE_API_KEY": KEY, "GEMINI_BASE_URL": gemini.base_url})
    assert len(gemini.billed) == 1


def test_missing_key_names_both_variables_and_nothing_is_sent(project: Project, gemini: GeminiEmulator) -> None:
    project.write(MANIFEST)
    result = project.run("build", env={"GEMINI_BASE_URL": gemini.base_url})
    assert result.exit_code == 2
    assert "GEMINI_API_KEY or GOOGLE_API_KEY" in result.output and "Traceback" not in result.output
    assert gemini.requests == []


@pytest.mark.parametrize("marker, says", [
    ("emulate:blocked-prompt", "blocked the prompt (promptFeedback.blockReason PROHIBITED_CONTENT)"),
    ("emulate:image-safety", "no image (finishReason IMAGE_SAFETY)"),
    ("emulate:text-only", "text only: \"I can describe that scene"),
])
def test_an_answer_without_an_image_is_a_failed_target(project: Project, gemini: GeminiEmulator,
                                                       marker: str, says: str) -> None:
    project.write(MANIFEST.replace("A knight in silver armour", f"A knight {marker}"))
    result = project.run("build", "hero", env=env(gemini))
    assert result.exit_code == 1, result.output
    assert says in result.output and "Traceback" not in result.output
    assert "billing: Google bills the input tokens" in result.output          # whether billed: recorded
    assert not (project.root / "out" / "hero.jpg").exists()
    assert list((project.cache / "journal").glob("*.json")) == []              # known outcome: not uncertain
    # The next build tries again (a prompt edit is the usual fix); nothing is uncertain.
    assert "may have been accepted" not in project.run("plan", env=env(gemini)).output


def test_rate_limits_and_overload_are_retried_without_paying_twice(project: Project, gemini: GeminiEmulator) -> None:
    gemini.faults = VendorFaults(rate_limit_burst=2, overloaded=1)
    project.write(MANIFEST)
    project.ok("build", "hero", env=env(gemini))
    assert gemini.count(":generateContent") == 4 and len(gemini.billed) == 1


@pytest.mark.parametrize("fault", ["server_error", "timeout"])
def test_a_call_that_may_have_been_processed_is_uncertain(project: Project, gemini: GeminiEmulator, fault: str) -> None:
    if fault == "server_error":
        gemini.faults = VendorFaults(server_errors=1)
        extra: dict[str, str] = {}
    else:
        gemini.latency = 1.5
        extra = {"ASSETGEN_HTTP_DEADLINE": "0.3"}
    project.write(MANIFEST)
    result = project.run("build", "hero", env=env(gemini, **extra))
    assert result.exit_code == 1 and "uncertain" in result.output, result.output
    assert "--retry-uncertain" in result.output
    gemini.latency, gemini.faults = 0.0, VendorFaults()
    again = project.run("build", "hero", env=env(gemini))
    assert again.exit_code == 1 and len(gemini.billed) == 1                     # not called again
    assert "uncertain" in project.run("plan", env=env(gemini)).output
    project.ok("build", "hero", "--retry-uncertain", env=env(gemini))
    assert len(gemini.billed) == 2


def test_killed_during_a_sync_call_is_uncertain_and_not_resubmitted(project: Project) -> None:
    with GeminiEmulator(api_key=KEY, latency=30) as slow:
        project.write(MANIFEST)
        proc = project.spawn("build", "hero", env=env(slow))
        deadline = time.monotonic() + 20
        while not slow.billed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.billed, "the call never reached the emulator"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    with GeminiEmulator(api_key=KEY) as fresh:
        plan = project.run("plan", env=env(fresh))
        assert "may have been accepted" in plan.output, plan.output
        result = project.run("build", env=env(fresh))
        assert result.exit_code == 1 and "--retry-uncertain" in result.output
        assert [b for b in fresh.billed if "knight in silver" in json.dumps(b.body)] == []   # hero: not called


def test_plan_says_what_a_crash_can_cost(project: Project) -> None:
    project.write(MANIFEST)
    out = project.ok("plan").output
    assert "sync: interrupted calls may be paid" in out


def test_price_is_the_vendors_by_resolution(project: Project) -> None:
    project.write(MANIFEST.replace('resolution = "0.5K"', 'resolution = "2K"'))
    plan = project.plan()
    assert plan["total_cost"] == pytest.approx(2 * 0.101)


def test_sigterm_during_a_sync_call_leaves_it_uncertain(project: Project) -> None:
    with GeminiEmulator(api_key=KEY, latency=30) as slow:
        project.write(MANIFEST)
        proc = project.spawn("build", "hero", env=env(slow))
        deadline = time.monotonic() + 20
        while not slow.billed and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.billed, "the call never reached the emulator"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 143 and time.monotonic() - started < 10, out + err
        assert "Traceback" not in out + err
    journal = list((project.cache / "journal").glob("*.json"))
    assert len(journal) == 1
    record = json.loads(journal[0].read_text())
    assert record["submissions"][0]["state"] == "uncertain" and "may have been processed" in \
        record["submissions"][0]["note"]
    assert "may have been accepted" in project.run("plan").output


def test_sync_calls_are_not_serialised_and_respect_jobs(project: Project) -> None:
    four = "".join(f'\n[targets.t{i}]\nprompt = "picture {i}"\n' for i in range(4))
    project.write(MANIFEST.split("[targets.hero]")[0] + four)
    with GeminiEmulator(api_key=KEY, latency=0.6) as google:
        started = time.monotonic()
        project.ok("build", "--jobs", "4", env=env(google))
        parallel = time.monotonic() - started
        times = sorted(r.time for r in google.billed)
        assert times[-1] - times[0] < 0.5              # all four in flight at once: no one-at-a-time lock
    project.write(MANIFEST.split("[targets.hero]")[0] + four.replace("picture", "drawing"))
    with GeminiEmulator(api_key=KEY, latency=0.6) as google:
        project.ok("build", "--jobs", "1", env=env(google))
        times = sorted(r.time for r in google.billed)
        assert all(b - a >= 0.55 for a, b in zip(times, times[1:], strict=False))   # --jobs 1: one call at a time
        # (strict=False: consecutive pairs, times[1:] is one shorter by design)
    assert parallel < 4 * 0.6


def test_n_images_are_n_calls_with_distinct_seeds(project: Project, gemini: GeminiEmulator) -> None:
    project.write(MANIFEST.replace("seed = 7", "seed = 7\nn = 3"))
    project.ok("build", "hero", env=env(gemini))
    seeds = [r.body["generationConfig"]["seed"] for r in gemini.billed]
    assert seeds == [7, 8, 9]
    assert len(list((project.root / "out").glob("hero-*.jpg"))) == 3
    assert project.plan()["total_cost"] == pytest.approx(0.045)     # walk left: 1 image at 0.5K


def test_a_wrong_key_stops_the_build_and_is_never_echoed(project: Project, gemini: GeminiEmulator) -> None:
    project.write(MANIFEST)
    result = project.run("build", env={**env(gemini), "GEMINI_API_KEY": "AIza-wrong-key-987654321"})
    assert result.exit_code == 1 and "rejected the API key (HTTP 401" in result.output
    assert "AIza-wrong-key-987654321" not in result.output
    assert gemini.billed == []


def test_the_key_never_reaches_output_or_disk(project: Project, gemini: GeminiEmulator) -> None:
    gemini.faults = VendorFaults(server_errors=1, echo_key=True)
    project.write(MANIFEST)
    result = project.run("build", env=env(gemini))
    text = result.output + "".join(p.read_bytes().decode("latin-1") for p in project.root.rglob("*") if p.is_file())
    assert KEY not in text and "(key ***)" in result.output         # the server echoed it: redacted
