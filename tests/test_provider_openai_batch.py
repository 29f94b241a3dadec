"""``build --batch`` / ``plan --batch`` with OpenAI's Batch API (emulated from its reference): a JSONL
upload and one job per build and model at half price, its id journaled before waiting, resumed after
kill -9 without paying again, a failed line failing only its target."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import ProjectDir as Project

from assetgen.testing.gemini_emulator import BATCH_ITEM_ERROR
from assetgen.testing.openai_emulator import OpenAIEmulator

KEY = "sk-openai-batch-test-0123456789"
GOLDEN = Path(__file__).parent / "golden"

MANIFEST = """\
[settings]
out_dir = "out"
poll_interval = 0.05

[defaults]
model = "gpt-image-1-mini"

[targets.coin]
prompt = "A gold coin icon"
openai = { quality = "low", background = "transparent" }
output = "coin.png"

[targets.banner]
prompt = "A wide banner"
aspect_ratio = "3:2"
n = 2
"""


@pytest.fixture
def openai() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(api_key=KEY, batch_latency=0.3) as emulator:
        yield emulator


def env(emulator: OpenAIEmulator) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emulator.base_url, "ASSETGEN_POLL_INTERVAL": "0.05",
            "ASSETGEN_RETRY_BACKOFF": "0.01"}


def creates(emulator: OpenAIEmulator) -> list[object]:
    return [r for r in emulator.requests if r.method == "POST" and r.path == "/v1/batches"]


def pending(project: Project) -> int:
    journal = project.cache / "journal"
    return len([p for p in journal.glob("*.json") if b"openai-batches:" in p.read_bytes()])


def test_plan_batch_halves_the_openai_price(project: Project) -> None:
    project.write(MANIFEST)
    full = project.plan()["total_cost"]
    half = json.loads(project.ok("plan", "--batch", "--json").output)["total_cost"]
    assert full > 0 and half == pytest.approx(full / 2)


def test_build_batch_uploads_one_file_and_creates_one_job(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST)
    full = project.plan()["total_cost"]
    result = project.ok("build", "--batch", "--json", env=env(openai))
    assert len(creates(openai)) == 1 and openai.count("/v1/images/") == 0 and openai.billed == []
    uploads = [r for r in openai.requests if r.path == "/v1/files"]
    assert len(uploads) == 1 and uploads[0].body["fields"] == {"purpose": "batch"}
    keys = {name: item["key"] for name, item in project.items().items()}
    lines = [json.loads(t) for t in uploads[0].body["files"][0][3].decode().splitlines()]
    golden = (GOLDEN / "openai_batch_input.jsonl").read_text()
    golden = golden.replace("KEY_COIN", keys["coin"]).replace("KEY_BANNER", keys["banner"])
    assert sorted(lines, key=lambda x: x["custom_id"]) == sorted(
        (json.loads(t) for t in golden.splitlines()), key=lambda x: x["custom_id"])
    create = creates(openai)[0].body
    assert create == {"input_file_id": create["input_file_id"], "endpoint": "/v1/images/generations",
                      "completion_window": "24h", "metadata": {"assetgen": "2 targets"}}
    assert create["input_file_id"].startswith("file-")
    assert json.loads(result.stdout)["spent"] == pytest.approx(full / 2)
    assert sorted(openai.batch_billed) == sorted(keys.values())
    for name in ("coin.png", "banner-1.jpg", "banner-2.jpg"):
        assert (project.root / "out" / name).exists(), name
    project.ok("build", env=env(openai))
    assert len(creates(openai)) == 1 and openai.count("/v1/images/") == 0         # up to date


def test_a_failed_line_fails_its_target_alone(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST.replace("A gold coin icon", f"A gold coin icon {BATCH_ITEM_ERROR}"))
    result = project.run("build", "--batch", "--keep-going", env=env(openai))
    assert result.exit_code == 1 and "OpenAI failed this request of batch job" in result.output, result.output
    assert not (project.root / "out" / "coin.png").exists() and (project.root / "out" / "banner-1.jpg").exists()
    assert list((project.cache / "journal").glob("*.json")) == []      # a known failure: not uncertain


def test_an_expired_job_fails_its_targets_for_the_next_build(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST)
    openai.expire_batches = True
    result = project.run("build", "--batch", "--keep-going", env=env(openai))
    assert result.exit_code == 1 and "ended expired" in result.output, result.output
    assert list((project.cache / "journal").glob("*.json")) == []


def test_kill_9_while_waiting_then_build_collects_without_resubmitting(project: Project) -> None:
    project.write(MANIFEST)
    with OpenAIEmulator(api_key=KEY, batch_latency=600) as openai:
        proc = project.spawn("build", "--batch", env=env(openai))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (creates(openai) and pending(project) == 2):
            time.sleep(0.02)
        assert creates(openai), "no batch job was created"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        records = [json.loads(p.read_text()) for p in (project.cache / "journal").glob("*.json")]
        assert len(records) == 2 and all(r["submissions"][0]["task_id"].startswith("openai-batches:batch_")
                                          for r in records)
        plan = project.run("plan").output
        assert "uncertain" not in plan and "in a pending OpenAI batch job" in plan, plan
        openai.batch_latency = 0.0                       # the job has finished meanwhile
        result = project.ok("build", env=env(openai))    # without --batch: collects the job anyway
        assert len(creates(openai)) == 1 and openai.count("/v1/images/") == 0, result.output
        assert (project.root / "out" / "coin.png").exists() and (project.root / "out" / "banner-2.jpg").exists()
        assert list((project.cache / "journal").glob("*.json")) == []


def test_watch_never_batches(project: Project, openai: OpenAIEmulator) -> None:
    from assetgen.commands.build import make_provider
    from assetgen.engine.project import Project as Opened
    from assetgen.providers.openai import OpenAIProvider
    from assetgen.providers.openai_batch import OpenAIBatchProvider
    from assetgen.providers.router import RoutingProvider

    project.write(MANIFEST)
    assert project.run("watch", "--batch").exit_code == 2               # no such option
    opened = Opened.open(project.manifest)
    as_watch = make_provider(opened, offline=False, env=env(openai))      # what watch calls
    as_batch = make_provider(opened, offline=False, env=env(openai), batch=True)
    try:
        assert isinstance(as_watch, RoutingProvider) and isinstance(as_batch, RoutingProvider)
        assert type(as_watch.providers["openai"]) is OpenAIProvider
        assert isinstance(as_batch.providers["openai"], OpenAIBatchProvider)
    finally:
        asyncio.run(as_watch.aclose())
        asyncio.run(as_batch.aclose())


def test_no_wait_prints_the_openai_job_and_a_later_build_collects(project: Project) -> None:
    project.write(MANIFEST)
    with OpenAIEmulator(api_key=KEY, batch_latency=600) as openai:
        started = time.monotonic()
        out = project.ok("build", "--batch", "--no-wait", env=env(openai)).output
        assert time.monotonic() - started < 15
        line = next(li for li in out.splitlines() if "OpenAI batch job batch_" in li)
        assert "estimated turnaround up to 24h (the job's completion_window" in line and "--no-wait" in line
        assert "Done: 2 pending. Spent $0.00" in out, out
        assert len(creates(openai)) == 1 and pending(project) == 2
        assert not [r for r in openai.requests if r.method == "GET"]           # nothing polled
        openai.batch_latency = 0.0
        project.ok("build", "--batch", env=env(openai))
        assert len(creates(openai)) == 1 and openai.count("/v1/images") == 0 and pending(project) == 0
        assert (project.root / "out" / "coin.png").exists()
