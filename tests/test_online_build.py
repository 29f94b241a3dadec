"""Online builds end to end: the CLI against the gateway emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from assetgen.testing.emulator import Faults, GatewayEmulator
from helpers.online import API_KEY, all_text_under, emulator, env_for, run, targets, write_manifest


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator(latency=0.1) as emu:
        yield emu


def prompts(emu: GatewayEmulator) -> list[str]:
    return sorted(s["prompt"] for s in emu.submissions)


def lock_of(manifest: Path) -> dict:
    return tomllib.loads((manifest.parent / "assets.lock").read_text())["targets"]


def test_exactly_one_submission_per_stale_key_and_none_when_up_to_date(tmp_path: Path,
                                                                       gateway: GatewayEmulator) -> None:
    body = targets("a", "b", "c") + '\n[targets.twin]\nprompt = "a picture of a"\noutput = "twin.jpg"\n'
    manifest = write_manifest(tmp_path, body)
    result = run(manifest, gateway, "build")
    assert result.exit_code == 0, result.output
    # a and twin share one key: three submissions for four targets.
    assert prompts(gateway) == ["a picture of a", "a picture of b", "a picture of c"]
    for name in ("a", "b", "c", "twin"):
        with Image.open(tmp_path / "out" / f"{name}.jpg") as image:
            assert image.format == "JPEG"
    lock = lock_of(manifest)
    assert lock["a"]["cost"] == pytest.approx(0.031875)
    assert lock["a"]["task_id"] == lock["twin"]["task_id"]
    assert "Spent $0.0956" in result.output

    again = run(manifest, gateway, "build")
    assert again.exit_code == 0
    assert "Nothing to build" in again.output
    assert len(gateway.submissions) == 3

    # Edit one prompt: exactly one new submission.
    manifest.write_text(manifest.read_text().replace("a picture of b", "a picture of a bee"))
    assert run(manifest, gateway, "build").exit_code == 0
    assert len(gateway.submissions) == 4
    assert gateway.submissions[-1]["prompt"] == "a picture of a bee"


def test_body_sends_every_default_explicitly(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, targets("a"))
    assert run(manifest, gateway, "build").exit_code == 0
    sent = gateway.submissions[0]
    assert {k: sent[k] for k in ("model", "action", "aspect_ratio", "resolution", "n", "seed")} == {
        "model": "gemini-3.1-flash-image-preview", "action": "generate", "aspect_ratio": "1:1",
        "resolution": "0.5K", "n": 1, "seed": -1}


def test_dependency_order_and_references_as_data_urls(tmp_path: Path, gateway: GatewayEmulator) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(png, "PNG")
    (tmp_path / "palette.png").write_bytes(png.getvalue())
    body = targets("hero") + """
[targets.walk]
action = "edit"
prompt = "the hero walking"
references = ["@hero", "palette.png", "https://example.com/style.png"]
"""
    manifest = write_manifest(tmp_path, body)
    assert run(manifest, gateway, "build").exit_code == 0
    hero, walk = gateway.submissions
    assert hero["prompt"] == "a picture of hero"
    urls = walk["image_urls"]
    hero_bytes = (tmp_path / "out" / "hero.jpg").read_bytes()
    assert urls[0] == "data:image/jpeg;base64," + base64.b64encode(hero_bytes).decode()
    assert urls[1] == "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    assert urls[2] == "https://example.com/style.png"
    # walk was submitted only after hero's image had been downloaded.
    hero_task = next(t for t, task in gateway.tasks.items() if task.body["prompt"] == "a picture of hero")
    hero_downloaded = max(r.time for r in gateway.requests if r.path.startswith(f"/files/{hero_task}/"))
    walk_submitted = next(r.time for r in gateway.requests
                          if r.method == "POST" and r.body and r.body.get("prompt") == "the hero walking")
    assert walk_submitted >= hero_downloaded


def test_reference_base_url_maps_local_files(tmp_path: Path, gateway: GatewayEmulator) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "p.png").write_bytes(png.getvalue())
    body = '[targets.a]\nprompt = "x"\naction = "reference"\nreferences = ["refs/p.png"]\n'
    manifest = write_manifest(tmp_path, body, settings='reference_base_url = "https://cdn.example.com/game/"')
    assert run(manifest, gateway, "build").exit_code == 0
    assert gateway.submissions[0]["image_urls"] == ["https://cdn.example.com/game/refs/p.png"]


def test_failed_task_fails_that_target_and_keep_going_builds_the_rest(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("good", "bad"))
        emu.faults.fail_prompts.add("bad")
        result = run(manifest, emu, "build", "--keep-going")
        assert result.exit_code == 1
        assert "good: built" in result.output
        assert "bad: failed" in result.output
        assert (tmp_path / "out" / "good.jpg").exists()
        assert not (tmp_path / "out" / "bad.jpg").exists()
        assert "bad" not in lock_of(manifest)
        # A failed task is not resubmitted by the same build, and is resubmitted by the next one.
        assert prompts(emu).count("a picture of bad") == 1
        emu.faults.fail_prompts.clear()
        assert run(manifest, emu, "build").exit_code == 0
        assert prompts(emu).count("a picture of bad") == 2


def test_401_stops_at_once_and_says_how_to_set_the_key(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, targets("a", "b"))
    result = run(manifest, gateway, "build", env=env_for(gateway, ASSETGEN_API_KEY="sk-wrong-key-123"))
    assert result.exit_code == 1
    assert "ASSETGEN_API_KEY" in result.output
    assert "sk-wrong-key-123" not in result.output
    assert gateway.submissions == []
    assert not (tmp_path / "assets.lock").exists()


def test_missing_key_exits_2_before_any_request(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, targets("a"))
    env = env_for(gateway)
    env["ASSETGEN_API_KEY"] = ""
    result = run(manifest, gateway, "build", env=env)
    assert result.exit_code == 2
    assert "ASSETGEN_API_KEY" in result.output
    assert gateway.requests == []


def test_402_stops_submitting_and_keeps_what_finished(tmp_path: Path) -> None:
    with emulator(latency=0.3, faults=Faults(insufficient_balance_after=2)) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c", "d", "e"), settings="jobs = 2")
        manifest.write_text(manifest.read_text().replace("jobs = 4\n", ""))
        result = run(manifest, emu, "build", "--keep-going")
        assert result.exit_code == 1
        assert "insufficient" in result.output.lower() or "balance" in result.output.lower()
        assert len(emu.submissions) == 2
        built = lock_of(manifest)
        assert len(built) == 2                       # the two accepted tasks finished and were kept
        # Refused submits are not paid; after the first 402 no new one starts, so at most the two
        # already racing for the two free slots were refused (one, usually).
        refused = emu.count("POST", "/v1/tasks") - 2
        assert 1 <= refused <= 2


def test_429_and_5xx_are_retried_without_duplicate_submissions(tmp_path: Path) -> None:
    """429s are retried on every call; 5xx on polls and downloads (a 5xx on a submit is never resent:
    see test_uncertain)."""
    with emulator(latency=0.6, faults=Faults(rate_limit_burst=3)) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))

        def break_polls() -> None:
            deadline = time.monotonic() + 10
            while len(emu.submissions) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            emu.faults.server_errors = 2

        breaker = threading.Thread(target=break_polls)
        breaker.start()
        result = run(manifest, emu, "build")
        breaker.join()
        assert result.exit_code == 0, result.output
        assert prompts(emu) == ["a picture of a", "a picture of b"]
        assert emu.count("POST", "/v1/tasks") == 5 and emu.faults.server_errors == 0


def test_download_failure_is_retried_from_the_saved_url_without_resubmitting(tmp_path: Path) -> None:
    with emulator(faults=Faults(download_failures=100)) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        first = run(manifest, emu, "build")
        assert first.exit_code == 1
        assert len(emu.submissions) == 1
        journal = list((tmp_path / ".assetgen" / "journal").glob("*.json"))
        assert len(journal) == 1 and json.loads(journal[0].read_text())["submissions"][0]["images"]
        emu.faults.download_failures = 0
        second = run(manifest, emu, "build")
        assert second.exit_code == 0, second.output
        assert len(emu.submissions) == 1
        assert (tmp_path / "out" / "a.jpg").exists()
        assert not list((tmp_path / ".assetgen" / "journal").glob("*.json"))


def test_expired_result_url_on_resume_is_reported_lost_and_paid_again_only_later(tmp_path: Path) -> None:
    with emulator(faults=Faults(download_failures=100)) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        assert run(manifest, emu, "build").exit_code == 1
        task_id = emu.submissions and next(iter(emu.tasks))
        emu.expire_urls()
        emu.faults.download_failures = 0
        lost = run(manifest, emu, "build")
        assert lost.exit_code == 1
        assert "lost" in lost.output and task_id in lost.output
        assert len(emu.submissions) == 1             # reporting a loss never pays by itself
        assert run(manifest, emu, "build").exit_code == 0
        assert len(emu.submissions) == 2


def test_forgotten_task_on_resume_is_lost(tmp_path: Path) -> None:
    with emulator(faults=Faults(download_failures=100)) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        assert run(manifest, emu, "build").exit_code == 1
        emu.forget(next(iter(emu.tasks)))
        emu.faults.download_failures = 0
        result = run(manifest, emu, "build")
        # A task the gateway no longer knows may still be paid for: uncertain, not paid again silently.
        assert result.exit_code == 1
        assert "does not know task" in result.output and "--retry-uncertain a" in result.output
        assert len(emu.submissions) == 1


def test_budget_is_never_exceeded(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, targets("a", "b", "c"))
    refused = run(manifest, gateway, "build", "--budget", "0.05")
    assert refused.exit_code == 1 and "budget" in refused.output
    assert gateway.requests == []
    assert run(manifest, gateway, "build", "--budget", "0.10").exit_code == 0
    assert len(gateway.submissions) == 3


def test_the_api_key_appears_nowhere(tmp_path: Path) -> None:
    with emulator(faults=Faults(fail_prompts={"bad"}, download_failures=0)) as emu:
        manifest = write_manifest(tmp_path, targets("good", "bad"))
        result = run(manifest, emu, "build", "--keep-going")
        json_result = run(manifest, emu, "build", "--json")
        plan = run(manifest, emu, "plan", "--json")
        for output in (result.output, json_result.output, plan.output):
            assert API_KEY not in output
        assert API_KEY not in all_text_under(tmp_path)
        wrong = run(manifest, emu, "build", env=env_for(emu, ASSETGEN_API_KEY="sk-other-secret-999"))
        assert "sk-other-secret-999" not in wrong.output


def test_json_output_for_scripts(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, targets("a", "b"))
    result = run(manifest, gateway, "build", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert sorted(r["name"] for r in data["results"]) == ["a", "b"]
    assert data["spent"] == pytest.approx(2 * 0.031875)
    assert data["exit_code"] == 0


@pytest.mark.parametrize("variant", [{"url_as_list": True}, {"timestamps_in_seconds": True}])
def test_accepts_both_documented_answer_shapes(tmp_path: Path, variant: dict) -> None:
    with emulator(**variant) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        assert run(manifest, emu, "build").exit_code == 0
        with Image.open(tmp_path / "out" / "a.jpg") as image:
            assert image.format == "JPEG"
