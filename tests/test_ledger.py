"""The spend ledger, hard limits and the per-build budget, against the real emulator (issue 18).

Every paid submission leaves a fsynced JSON line in ``.assetgen/ledger/``: accepted, failed after
acceptance, refunded (a cancel), uncertain — also when the build is killed with SIGKILL. Limits
refuse a build before any request reaches the gateway, and no flag raises them or the manifest's
budget.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assetgen.state.ledger import Ledger
from assetgen.testing.emulator import Faults
from tests.helpers.online import (
    emulator,
    env_for,
    run,
    start_build,
    targets,
    wait_for,
    write_manifest,
)

FLASH = 0.031875
pytestmark = pytest.mark.e2e


def entries(root: Path) -> list[dict]:
    found = []
    for path in sorted((root / ".assetgen" / "ledger").glob("*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def test_every_accepted_submission_is_in_the_ledger_with_its_fields(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", b='n = 2'))
        assert run(manifest, emu, "build").exit_code == 0
        found = sorted(entries(tmp_path), key=lambda e: e["target"])
        assert [(e["target"], e["outcome"], e["n"]) for e in found] == [("a", "accepted", 1), ("b", "accepted", 2)]
        assert found[1]["amount"] == pytest.approx(2 * FLASH) and found[1]["estimate"] == pytest.approx(2 * FLASH)
        task_ids = {t for t in emu.tasks}
        for e in found:
            assert e["task_id"] in task_ids and e["manifest"] == "assets.toml" and e["tier"] == "standard"
            assert e["model"] == "gemini-3.1-flash-image-preview" and e["profile"] is None
            assert e["machine"] and "@" in e["person"] or e["person"]
            assert e["time"].endswith("+00:00") and len(e["key"]) == 64 and e["reported"] is None
        # A no-op build writes nothing more.
        assert run(manifest, emu, "build").exit_code == 0
        assert len(entries(tmp_path)) == 2


def test_a_failed_task_is_an_entry_of_its_own_that_cancels_its_cost(tmp_path: Path) -> None:
    with emulator(faults=Faults(fail_prompts={"doom"})) as emu:
        manifest = write_manifest(tmp_path, targets("ok") + '[targets.bad]\nprompt = "doom"\n')
        run(manifest, emu, "build", "--keep-going")
        found = entries(tmp_path)
        bad = [e for e in found if e["target"] == "bad"]
        assert [e["outcome"] for e in bad] == ["accepted", "failed"]
        assert bad[1]["amount"] == pytest.approx(-FLASH) and bad[0]["task_id"] == bad[1]["task_id"]
        assert Ledger(tmp_path / ".assetgen" / "ledger").totals().total == pytest.approx(FLASH)


def test_an_uncertain_submission_is_counted(tmp_path: Path) -> None:
    with emulator(submit_answer="garbage") as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        assert run(manifest, emu, "build").exit_code == 1
        found = entries(tmp_path)
        assert [(e["outcome"], e["task_id"]) for e in found] == [("uncertain", None)]
        assert found[0]["amount"] == pytest.approx(FLASH)


@pytest.mark.slow
def test_kill_9_after_acceptance_leaves_the_entries_and_the_next_build_adds_none(tmp_path: Path) -> None:
    with emulator(latency=3.0) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        proc = start_build(manifest, emu)
        wait_for(lambda: len(emu.submissions) == 2 and len(entries(tmp_path)) == 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert sorted(e["task_id"] for e in entries(tmp_path)) == sorted(emu.tasks)
        assert run(manifest, emu, "build").exit_code == 0        # collects both, pays nothing
        assert len(emu.submissions) == 2 and len(entries(tmp_path)) == 2


@pytest.mark.slow
def test_a_superseded_queued_task_is_refunded_in_the_ledger(tmp_path: Path) -> None:
    with emulator(queue_time=3.0, latency=3.5) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        log = tmp_path.parent / f"{tmp_path.name}-watch.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "watch", "--settle", "0.2"],
                                    env={**os.environ, **env_for(emu)}, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: len(emu.submissions) == 1)
            first = next(iter(emu.tasks))
            manifest.write_text(manifest.read_text().replace("a picture of a", "a picture of an owl"))
            wait_for(lambda: first in emu.cancelled)
            wait_for(lambda: any(e["outcome"] == "refunded" for e in entries(tmp_path)), timeout=20)
            wait_for(lambda: len([e for e in entries(tmp_path) if e["outcome"] == "accepted"]) == 2, timeout=20)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        found = entries(tmp_path)
        refund = next(e for e in found if e["outcome"] == "refunded")
        assert refund["task_id"] == first and refund["amount"] == pytest.approx(-FLASH)
        assert Ledger(tmp_path / ".assetgen" / "ledger").totals().total == pytest.approx(FLASH)


def test_damaged_ledger_lines_are_reported_not_counted(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        assert run(manifest, emu, "build").exit_code == 0
        path = next((tmp_path / ".assetgen" / "ledger").glob("*.jsonl"))
        with open(path, "ab") as handle:
            handle.write(b'{"time": "2026-01-01T00:00:00+00:00", "amount": 5\n\xff\xfe\n')
        totals = Ledger(tmp_path / ".assetgen" / "ledger").totals()
        assert totals.total == pytest.approx(FLASH)
        assert [d.line for d in totals.damaged] == [2, 3]
        assert all(str(path) in d.describe() for d in totals.damaged)


# -- limits and the per-build budget ------------------------------------------------------------------

def test_a_limit_refuses_before_any_request_and_says_what_is_left(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"), settings="limits = { day = 0.05, month = 1.0 }")
        assert run(manifest, emu, "build").exit_code == 0          # $0.031875 of today's $0.05
        emu.requests.clear()
        manifest.write_text(manifest.read_text() + targets("b", "c"))
        refused = run(manifest, emu, "build", "--budget", "100")     # no flag raises a limit
        assert refused.exit_code == 1 and "day limit of $0.05" in refused.output
        refused = run(manifest, emu, "build")
        assert refused.exit_code == 1, refused.output
        assert "day limit of $0.05" in refused.output and "$0.0181 left" in refused.output
        assert f"${2 * FLASH:.4f}" in refused.output and "nothing was submitted" in refused.output
        assert "month limit" not in refused.output
        assert emu.requests == []
        assert run(manifest, emu, "build", "b").exit_code == 1     # $0.0319 > $0.0181 left too
        assert emu.requests == []


def test_limits_count_every_manifest_sharing_the_cache(tmp_path: Path) -> None:
    with emulator() as emu:
        other = tmp_path / "icons.toml"
        write_manifest(tmp_path, targets("x"))
        (tmp_path / "assets.toml").rename(other)
        assert run(other, emu, "build").exit_code == 0
        manifest = write_manifest(tmp_path, targets("a"), settings="limits = { total = 0.05 }")
        emu.requests.clear()
        refused = run(manifest, emu, "build")
        assert refused.exit_code == 1 and "total limit of $0.05" in refused.output
        assert emu.requests == []


def test_a_limit_is_reserved_against_as_tasks_are_accepted(tmp_path: Path) -> None:
    """The estimate fits, with official_fallback's upper bound it does not: refused up front; an
    exact fit submits all."""
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings=f"limits = {{ total = {2 * FLASH} }}")
        assert run(manifest, emu, "build").exit_code == 0
        assert len(emu.submissions) == 2
        manifest.write_text(manifest.read_text() + targets("c"))
        emu.requests.clear()
        assert run(manifest, emu, "build").exit_code == 1 and emu.requests == []


def test_command_line_budget_may_only_lower_the_manifests(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings="budget = 0.04")
        raised = run(manifest, emu, "build", "--budget", "5")
        assert raised.exit_code == 2 and "may only lower it" in raised.output and "$0.04" in raised.output
        assert emu.requests == []
        lowered = run(manifest, emu, "build", "--budget", "0.01")
        assert lowered.exit_code == 1 and "over the budget of $0.01" in lowered.output
        assert emu.requests == []


def test_limits_are_validated(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"), settings="limits = { weekly = 3.0 }")
        result = run(manifest, emu, "plan")
        assert result.exit_code == 2 and "weekly" in result.output
        assert emu.requests == []


def test_running_totals_are_reused_until_a_file_changes(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        assert run(manifest, emu, "build").exit_code == 0
        ledger = Ledger(tmp_path / ".assetgen" / "ledger")
        assert ledger.totals().total == pytest.approx(FLASH)
        cache = json.loads((ledger.folder / "totals.json").read_text())
        (name, known), = cache["files"].items()
        known["days"] = {k: 123.0 for k in known["days"]}         # a stale cache is believed while stamps match
        (ledger.folder / "totals.json").write_text(json.dumps(cache))
        assert ledger.totals().total == pytest.approx(123.0)
        time.sleep(0.01)
        with open(ledger.folder / name, "a") as handle:            # the file changed: summed again
            handle.write("\n")
        assert ledger.totals().total == pytest.approx(FLASH)


@pytest.mark.slow
def test_watch_pauses_at_a_limit(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings="limits = { day = 0.05 }")
        log = tmp_path.parent / f"{tmp_path.name}-watch.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "watch", "--settle", "0.2"],
                                    env={**os.environ, **env_for(emu)}, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "Spend limit reached" in log.read_text(), timeout=20)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
        assert len(emu.submissions) == 1                    # $0.0319 of $0.05; the second would cross it
        assert [e["outcome"] for e in entries(tmp_path)] == ["accepted"]


@pytest.mark.slow
def test_kill_9_between_intent_and_task_id_is_an_uncertain_entry_written_once(tmp_path: Path) -> None:
    with emulator(faults=Faults(submit_timeout=30.0)) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        proc = start_build(manifest, emu)
        wait_for(lambda: any(r.method == "POST" for r in emu.requests))    # the intent is fsynced before
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert entries(tmp_path) == []                  # the answer never came: nothing known yet
        again = run(manifest, emu, "build")
        assert again.exit_code == 1 and "uncertain" in again.output
        [entry] = entries(tmp_path)
        assert entry["outcome"] == "uncertain" and entry["task_id"] is None and entry["amount"] == pytest.approx(FLASH)
        assert run(manifest, emu, "build").exit_code == 1
        assert len(entries(tmp_path)) == 1              # written once, however many builds see it
