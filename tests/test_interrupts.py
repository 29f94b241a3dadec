"""Never pay twice, never lose an image: real processes killed, interrupted and racing."""

from __future__ import annotations

import signal
import time
import tomllib
from pathlib import Path

import pytest
from helpers.online import emulator, journal_records, journaled, run, start_build, targets, wait_for, write_manifest

pytestmark = pytest.mark.slow          # real processes, signals or watches (see CONTRIBUTING.md)


def locked(root: Path) -> set[str]:
    lock = root / "assets.lock"
    return set(tomllib.loads(lock.read_text())["targets"]) if lock.exists() else set()


def test_kill_9_then_rebuild_submits_nothing_new(tmp_path: Path) -> None:
    with emulator(latency=1.5) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c", "d"))
        proc = start_build(manifest, emu)
        wait_for(lambda: len(emu.submissions) == 4 and len(journaled(tmp_path)) == 4)
        proc.kill()
        proc.communicate(timeout=10)
        assert locked(tmp_path) == set()                   # nothing had finished yet
        result = run(manifest, emu, "build")
        assert result.exit_code == 0, result.output
        assert len(emu.submissions) == 4                   # every task was collected, none paid again
        assert locked(tmp_path) == {"a", "b", "c", "d"}
        assert journal_records(tmp_path) == []
        assert "collected 4 task(s)" in result.output


def test_lock_is_written_after_each_target_so_a_killed_build_keeps_them(tmp_path: Path) -> None:
    with emulator(latency=0.4) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c"), settings="")
        manifest.write_text(manifest.read_text().replace("jobs = 4", "jobs = 1"))
        proc = start_build(manifest, emu)
        # The first target has finished by now, and the second task is journaled. (Killed between the
        # intent's fsync and the task id's, the key would be uncertain: see tests/test_uncertain.py.)
        # (the first one's journal record goes in the same step as its outputs and lock entry, after its
        # objects' fsync in a worker thread: wait for that step, not just for the second submission)
        wait_for(lambda: len(emu.submissions) == 2 and len(journaled(tmp_path)) == 1 and len(locked(tmp_path)) == 1)
        proc.kill()
        proc.communicate(timeout=10)
        assert len(locked(tmp_path)) == 1
        assert (tmp_path / "out" / f"{next(iter(locked(tmp_path)))}.jpg").exists()
        assert run(manifest, emu, "build").exit_code == 0
        assert len(emu.submissions) == 3


def test_first_ctrl_c_stops_submitting_and_finishes_what_is_in_flight(tmp_path: Path) -> None:
    with emulator(latency=1.0) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c", "d"))
        manifest.write_text(manifest.read_text().replace("jobs = 4", "jobs = 2"))
        proc = start_build(manifest, emu)
        wait_for(lambda: len(emu.submissions) == 2 and len(journaled(tmp_path)) == 2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert "no new tasks will be submitted" in output
        assert proc.returncode == 1                        # two targets were not built
        assert len(emu.submissions) == 2
        assert len(locked(tmp_path)) == 2                  # the in-flight pair finished and was kept
        assert journal_records(tmp_path) == []
        assert run(manifest, emu, "build").exit_code == 0
        assert len(emu.submissions) == 4


def test_second_ctrl_c_exits_now_with_the_journal_intact(tmp_path: Path) -> None:
    with emulator(latency=3.0) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        proc = start_build(manifest, emu)
        wait_for(lambda: len(journaled(tmp_path)) == 2)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)    # two signals sent back to back would merge into one
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=10)
        assert proc.returncode == 130
        assert "assetgen build" in output and "journal" in output
        assert len(journal_records(tmp_path)) == 2
        result = run(manifest, emu, "build")
        assert result.exit_code == 0
        assert len(emu.submissions) == 2


def test_two_concurrent_builds_never_submit_twice(tmp_path: Path) -> None:
    with emulator(latency=0.5) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c", "d", "e", "f"))
        first = start_build(manifest, emu)
        second = start_build(manifest, emu)
        out1, _ = first.communicate(timeout=60)
        out2, _ = second.communicate(timeout=60)
        assert (first.returncode, second.returncode) == (0, 0), out1 + out2
        assert sorted(s["prompt"] for s in emu.submissions) == [f"a picture of {n}" for n in "abcdef"]
        assert locked(tmp_path) == set("abcdef")
        assert "Nothing to build" in out1 + out2
