"""Regression tests for an attacker's review of the uncertain window (issue 14) and the dialects (issue 13):
each test reproduces one finding against the real emulator (real processes for signals and locks)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import filelock
import pytest

from assetgen.emulator import GatewayEmulator
from assetgen.providers.client import GatewayClient
from helpers.online import API_KEY, emulator, env_for, run, start_build, targets, wait_for, write_manifest


def records(root: Path) -> list[dict]:
    folder = root / ".assetgen" / "journal"
    return [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []


def locked(root: Path) -> dict[str, dict]:
    lock = root / "assets.lock"
    return tomllib.loads(lock.read_text())["targets"] if lock.exists() else {}


class Flaky404(GatewayEmulator):
    """Answers 404 to the first ``missing`` polls (a gateway that has not registered a fresh task yet)."""

    missing = 1

    def _task_call(self, task_id: str, cancel: bool, now: float) -> Any:
        if self.missing > 0 and not cancel:
            self.missing -= 1
            return 404, {"error": {"message": "Task not found", "code": "task_not_found"}}, {}
        return super()._task_call(task_id, cancel, now)


def test_1_a_404_for_a_task_we_hold_is_retried_then_uncertain_never_forgotten(tmp_path: Path) -> None:
    with Flaky404(api_key=API_KEY, latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        built = run(manifest, emu, "build", "a")
        assert built.exit_code == 0, built.output
        assert len(emu.submissions) == 1 and set(locked(tmp_path)) == {"a"}
        emu.missing = 10_000                              # now it never knows b's task
        lost = run(manifest, emu, "build", "b")
        assert lost.exit_code == 1 and "does not know task" in lost.output and "--retry-uncertain b" in lost.output
        [record] = records(tmp_path)
        assert record["closed"] and record["submissions"][0]["task_id"]      # kept, closed: paid maybe
        assert run(manifest, emu, "build", "b").exit_code == 1 and len(emu.submissions) == 2   # not paid again


class EmptyResult(GatewayEmulator):
    """Completed tasks list no image at all (and no other media)."""

    def _task_json(self, task: Any, now: float, fresh: bool = False) -> dict:
        out = super()._task_json(task, now, fresh=fresh)
        if out.get("status") == "completed":
            out["result"] = {"images": []}
        return out


def test_2_a_completed_task_without_images_stays_journaled_and_is_closed_after_3_builds(tmp_path: Path) -> None:
    with EmptyResult(api_key=API_KEY, latency=0.05) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        for attempt in (1, 2):
            result = run(manifest, emu, "build")
            assert result.exit_code == 1 and "no image in the result of task" in result.output
            assert f"attempt to get its images {attempt} of 3" in result.output
            assert records(tmp_path)[0]["download_attempts"] == attempt
        third = run(manifest, emu, "build")
        assert third.exit_code == 1 and "uncertain" in third.output and "--retry-uncertain a" in third.output
        assert len(emu.submissions) == 1                  # paid once, never again without being asked


@pytest.mark.slow
def test_3_first_ctrl_c_stops_targets_queued_for_the_submit_lock(tmp_path: Path) -> None:
    with emulator(latency=0.3, submit_latency=0.5) as emu:
        manifest = write_manifest(tmp_path, targets(*(f"t{i}" for i in range(6))))
        proc = start_build(manifest, emu)
        wait_for(lambda: len(emu.submissions) == 1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        # The POST on the wire when Ctrl-C came may finish; none of the targets queued behind it is sent.
        assert len(emu.submissions) <= 2, output
        assert output.count("not submitted: interrupted (Ctrl-C)") >= 4


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_4_a_signal_while_waiting_for_the_build_lock_stops_at_once_and_pays_nothing(
        tmp_path: Path, sig: int, code: int) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        (tmp_path / ".assetgen").mkdir()
        held = filelock.FileLock(str(tmp_path / ".assetgen" / "build.lock"))
        held.acquire()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "build", "--wait", "30"],
                                    env={**os.environ, **env_for(emu), "PYTHONUNBUFFERED": "1"},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            assert "waiting for it to finish" in proc.stdout.readline()
            sent = time.monotonic()
            proc.send_signal(sig)
            output, _ = proc.communicate(timeout=10)
            assert time.monotonic() - sent < 3.0
        finally:
            held.release()
        assert proc.returncode == code, output
        assert emu.submissions == [] and "Traceback" not in output


@pytest.mark.slow
def test_4_pick_says_it_waits_for_the_build_lock(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, targets("a", a="candidates = 2"), settings='provider = "offline"')
    assert subprocess.run([sys.executable, "-m", "assetgen", "-f", str(manifest), "build"],
                          capture_output=True, timeout=60).returncode == 0
    held = filelock.FileLock(str(tmp_path / ".assetgen" / "build.lock"))
    held.acquire()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "pick", "a", "2"],
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        assert "waiting for it to finish" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        assert proc.returncode != 0
    finally:
        held.release()


def test_5_retry_uncertain_in_one_manifest_leaves_another_manifests_keys_alone(tmp_path: Path) -> None:
    with emulator(latency=0.05, submit_answer="garbage") as emu:
        icons = write_manifest(tmp_path, targets("a")).rename(tmp_path / "icons.toml")
        banners = write_manifest(tmp_path, targets("b")).rename(tmp_path / "banners.toml")
        assert run(banners, emu, "build").exit_code == 1              # b: 200 without an id: uncertain
        emu.submit_answer = "task"
        assert run(icons, emu, "build", "--retry-uncertain").exit_code == 0
        [record] = records(tmp_path)                                   # b's record is untouched
        assert record["targets"] == ["b"] and record["submissions"][0]["task_id"] is None
        again = run(banners, emu, "build")
        assert again.exit_code == 1 and "--retry-uncertain b" in again.output
        assert sorted(s["prompt"] for s in emu.submissions) == ["a picture of a", "a picture of b"]


class OddSubmitAnswers(GatewayEmulator):
    mode = "code200"

    def _submit(self, body: dict, now: float) -> Any:
        status, answer, headers = super()._submit(body, now)
        if status == 200 and self.mode == "code200":
            return 200, {"code": 200, "msg": "ok", "data": answer["task_id"]}, headers
        if status == 200 and self.mode == "303":
            return 303, {}, {"Location": f"/v1/tasks/{answer['task_id']}"}
        return status, answer, headers


def test_6_a_numeric_200_code_is_a_task_and_a_303_is_uncertain(tmp_path: Path) -> None:
    with OddSubmitAnswers(api_key=API_KEY, latency=0.05) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        assert run(manifest, emu, "build", "a").exit_code == 0 and set(locked(tmp_path)) == {"a"}
        emu.mode = "303"
        redirected = run(manifest, emu, "build", "b")
        assert redirected.exit_code == 1 and "HTTP 303" in redirected.output and "uncertain" in redirected.output
        assert run(manifest, emu, "build", "b").exit_code == 1 and len(emu.submissions) == 2   # not paid again


class ShortResult(GatewayEmulator):
    short = True

    def _task_json(self, task: Any, now: float, fresh: bool = False) -> dict:
        out = super()._task_json(task, now, fresh=fresh)
        if self.short and out.get("status") == "completed":
            out["result"]["images"] = out["result"]["images"][:1]
        return out


def test_7_a_short_result_is_never_cached_as_the_key_and_plan_and_build_agree(tmp_path: Path) -> None:
    with ShortResult(api_key=API_KEY, latency=0.05) as emu:
        manifest = write_manifest(tmp_path, targets("a", a="candidates = 3"))
        first = run(manifest, emu, "build")
        assert first.exit_code == 1 and "completed with 1 of the 3 images" in first.output
        assert not list((tmp_path / ".assetgen" / "index" / "gen").glob("*.json"))   # nothing indexed
        planned = json.loads(run(manifest, emu, "plan", "--json").output)
        assert planned["targets"][0]["action"] == "resume"
        emu.short = False                                   # the gateway lists all three now
        fixed = run(manifest, emu, "build")
        assert fixed.exit_code == 0, fixed.output
        assert len(emu.submissions) == 1 and len(locked(tmp_path)["a"]["outputs"]) == 1


def test_8_media_only_under_videos_closes_the_record_after_3_builds(tmp_path: Path) -> None:
    with emulator(latency=0.05, result_shape="videos") as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        for _ in range(3):
            result = run(manifest, emu, "build")
            assert result.exit_code == 1 and "videos" in result.output
        assert "uncertain" in result.output and records(tmp_path)[0]["closed"]
        assert run(manifest, emu, "build").exit_code == 1 and len(emu.submissions) == 1
        run(manifest, emu, "build", "--retry-uncertain")    # asked for: pays once more
        assert len(emu.submissions) == 2


def test_11_resuming_an_n_1_fallback_prices_reserves_and_reports_the_missing_tasks(tmp_path: Path) -> None:
    with emulator(latency=0.05, n_fixed_at_1=True) as emu:
        manifest = write_manifest(tmp_path, targets("a", a="candidates = 3\nseed = 7"))
        item = json.loads(run(manifest, emu, "plan", "--json").output)["targets"][0]
        full, key = item["cost"], item["key"]

        async def submit_one() -> str:        # what an earlier build sent before it was killed
            async with GatewayClient(api_key=API_KEY, base_url=emu.base_url) as client:
                return (await client.submit({"model": item["model"], "prompt": "a picture of a", "n": 1,
                                             "seed": 7, "resolution": "0.5K", "aspect_ratio": "1:1"})).task_id
        task_id = asyncio.run(submit_one())
        folder = tmp_path / ".assetgen" / "journal"
        folder.mkdir(parents=True)
        (folder / f"{key}.json").write_text(json.dumps({
            "version": 2, "key": key, "targets": ["a"], "model": item["model"], "submissions": [
                {"intent_at": time.time(), "request_digest": "", "n": 1, "seed": 7, "task_id": task_id,
                 "state": "submitted", "images": None, "note": ""}]}))
        planned = json.loads(run(manifest, emu, "plan", "--json").output)["targets"][0]
        assert planned["action"] == "resume" and planned["cost"] == pytest.approx(full * 2 / 3)
        assert run(manifest, emu, "build", "--budget", "0.01").exit_code != 0 and len(emu.submissions) == 1
        built = run(manifest, emu, "build", "--json")
        assert built.exit_code == 0, built.output
        report = json.loads(built.output[built.output.index("{"):])
        assert len(emu.submissions) == 3 and report["spent"] == pytest.approx(full * 2 / 3)
