"""``assetgen watch`` in a real subprocess, against the gateway emulator, with real file edits."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from assetgen.testing.emulator import GatewayEmulator
from helpers.online import emulator, env_for, targets, wait_for, write_manifest

pytestmark = pytest.mark.slow          # real processes, signals or watches (see CONTRIBUTING.md)


class Watch:
    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc, self.log = proc, log

    @property
    def output(self) -> str:
        return self.log.read_text()

    def builds(self) -> int:
        return self.output.count("Building ")

    def settled(self, count: int) -> bool:
        return self.output.count("Watching for changes") >= count


@contextmanager
def watching(manifest: Path, emu: GatewayEmulator, *args: str, log: Path | None = None) -> Iterator[Watch]:
    # (A log beside the manifest is a file in a watched folder: tests of what wakes the watch keep it out.)
    log = log or manifest.parent / "watch.log"
    env = {**os.environ, **env_for(emu)}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "watch", *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    watch = Watch(proc, log)
    try:
        yield watch
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def edit(manifest: Path, old: str, new: str) -> None:
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new))


def submitted_prompts(emu: GatewayEmulator) -> list[str]:
    return [s["prompt"] for s in emu.submissions]


CHAIN = targets("hero", "tree") + """
[targets.walk]
action = "edit"
prompt = "the hero walking"
references = ["@hero"]
"""


def test_an_edit_rebuilds_only_that_target_and_its_dependents(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, CHAIN)
        with watching(manifest, emu, "--settle", "0.2") as watch:
            wait_for(lambda: watch.settled(1) and len(emu.submissions) == 3)
            edit(manifest, "a picture of hero", "a picture of a brave hero")
            wait_for(lambda: len(emu.submissions) == 5)
            wait_for(lambda: watch.settled(2))
            time.sleep(0.5)
            assert submitted_prompts(emu)[3:] == ["a picture of a brave hero", "the hero walking"]
            assert "tree" not in watch.output.split("Building ")[-1]


def test_a_burst_of_saves_within_the_settle_time_buys_one_image(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        with watching(manifest, emu, "--settle", "1.0") as watch:
            wait_for(lambda: watch.settled(1))
            for word in ("ap", "appl", "apple"):
                edit(manifest, manifest.read_text().split('prompt = "')[1].split('"')[0], f"an {word}")
                time.sleep(0.15)
            wait_for(lambda: len(emu.submissions) == 2)
            time.sleep(1.5)
            assert submitted_prompts(emu) == ["a picture of a", "an apple"]


def test_supersede_cancels_a_queued_task_and_the_newest_spec_wins(tmp_path: Path) -> None:
    with emulator(queue_time=3.0, latency=3.5) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        with watching(manifest, emu, "--settle", "0.2") as watch:
            wait_for(lambda: len(emu.submissions) == 1)
            first = next(iter(emu.tasks))
            edit(manifest, "a picture of a", "a picture of an owl")
            wait_for(lambda: first in emu.cancelled)                   # refunded by the gateway
            wait_for(lambda: len(emu.submissions) == 2, timeout=20)
            wait_for(lambda: (tmp_path / "assets.lock").exists() and watch.settled(2), timeout=20)
            lock = tomllib.loads((tmp_path / "assets.lock").read_text())["targets"]["a"]
            assert lock["spec"]["prompt"] == "a picture of an owl"
            assert lock["task_id"] != first
            assert "superseded" in watch.output


def test_a_broken_manifest_reports_errors_and_a_later_fix_builds(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        edit(manifest, 'prompt = "a picture of a"', 'prompt = "a picture of a"\nmodle = "x"')
        with watching(manifest, emu, "--settle", "0.2") as watch:
            wait_for(lambda: "unknown field 'modle'" in watch.output)
            assert "Watching for a fix" in watch.output
            assert emu.submissions == []
            edit(manifest, 'modle = "x"', "")
            wait_for(lambda: len(emu.submissions) == 1)
            wait_for(lambda: watch.settled(1))
            assert watch.proc.poll() is None


def test_a_changed_reference_file_rebuilds_its_users(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()

    def palette(colour: tuple[int, int, int]) -> None:
        data = io.BytesIO()
        Image.new("RGB", (8, 8), colour).save(data, "PNG")
        (refs / "palette.png").write_bytes(data.getvalue())

    palette((255, 0, 0))
    body = (targets("plain") + '\n[targets.styled]\nprompt = "styled"\naction = "reference"\n'
            'references = ["refs/palette.png"]\n')
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, body)
        with watching(manifest, emu, "--settle", "0.2") as watch:
            wait_for(lambda: watch.settled(1) and len(emu.submissions) == 2)
            palette((0, 0, 255))
            wait_for(lambda: len(emu.submissions) == 3)
            assert submitted_prompts(emu)[-1] == "styled"


def test_the_budget_pauses_submissions(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        # Two images cost 2 x 0.031875; a third would exceed 0.08.
        with watching(manifest, emu, "--settle", "0.2", "--budget", "0.08") as watch:
            wait_for(lambda: watch.settled(1) and len(emu.submissions) == 2)
            edit(manifest, "a picture of a", "a picture of an ant")
            wait_for(lambda: "Budget reached" in watch.output)
            time.sleep(0.5)
            assert len(emu.submissions) == 2


def test_its_own_writes_trigger_nothing_and_it_writes_nothing_while_idle(tmp_path: Path) -> None:
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"))
        with watching(manifest, emu, "--settle", "0.1") as watch:
            wait_for(lambda: watch.settled(1) and len(emu.submissions) == 2)
            time.sleep(1.0)                       # outputs, lock and cache were written just now
            builds = watch.builds()
            stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and p.name != "watch.log"}
            time.sleep(1.5)
            assert watch.builds() == builds == 1
            assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
            assert len(emu.submissions) == 2


def test_ctrl_c_leaves_in_flight_tasks_in_the_journal(tmp_path: Path) -> None:
    with emulator(latency=5.0) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        with watching(manifest, emu, "--settle", "0.2") as watch:
            wait_for(lambda: len(emu.submissions) == 1 and any((tmp_path / ".assetgen" / "journal").glob("*.json")))
            watch.proc.send_signal(signal.SIGINT)
            watch.proc.wait(timeout=10)
            assert "stay in the journal" in watch.output
        assert emu.cancelled == []
        assert len(list((tmp_path / ".assetgen" / "journal").glob("*.json"))) == 1


def png_bytes(colour: tuple[int, int, int] = (10, 200, 10)) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(data, "PNG")
    return data.getvalue()


LATE = '\n[targets.late]\nprompt = "late"\naction = "reference"\nreferences = ["{ref}"]\n'


def test_a_reference_created_after_an_error_is_built(tmp_path: Path) -> None:
    """The broken manifest names refs/late.png (its folder exists, the last good manifest never
    named it) and then refs/deeper/late.png (no such folder yet): creating each file builds it."""
    log, tmp_path = tmp_path / "watch.log", tmp_path / "proj"
    (tmp_path / "refs").mkdir(parents=True)
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        with watching(manifest, emu, "--settle", "0.2", log=log) as watch:
            wait_for(lambda: watch.settled(1) and len(emu.submissions) == 1)
            manifest.write_text(manifest.read_text() + LATE.format(ref="refs/late.png"))
            wait_for(lambda: "refs/late.png" in watch.output and "Watching for a fix" in watch.output)
            time.sleep(0.6)
            assert watch.output.count("Watching for a fix") == 1     # it waits; nothing wakes it
            assert len(emu.submissions) == 1 and watch.proc.poll() is None
            (tmp_path / "refs" / "late.png").write_bytes(png_bytes())
            wait_for(lambda: len(emu.submissions) == 2, timeout=10)
            assert submitted_prompts(emu)[-1] == "late"
            wait_for(lambda: watch.settled(2))

            edit(manifest, "refs/late.png", "refs/deeper/still/late.png")
            wait_for(lambda: watch.output.count("Watching for a fix") == 2)
            (tmp_path / "refs" / "deeper" / "still").mkdir(parents=True)
            (tmp_path / "refs" / "deeper" / "still" / "late.png").write_bytes(png_bytes((1, 2, 3)))
            wait_for(lambda: len(emu.submissions) == 3, timeout=10)
            wait_for(lambda: watch.settled(3))
            assert watch.proc.poll() is None


def test_a_manifest_fixed_back_to_up_to_date_says_so_once(tmp_path: Path) -> None:
    log, tmp_path = tmp_path / "watch.log", tmp_path / "proj"
    tmp_path.mkdir()
    with emulator(latency=0.1) as emu:
        manifest = write_manifest(tmp_path, targets("a"))
        with watching(manifest, emu, "--settle", "0.2", log=log) as watch:
            wait_for(lambda: watch.settled(1) and len(emu.submissions) == 1)
            edit(manifest, 'prompt = "a picture of a"', 'prompt = "a picture of a"\nmodle = "x"')
            wait_for(lambda: "Watching for a fix" in watch.output)
            edit(manifest, '\nmodle = "x"', "")
            wait_for(lambda: "Manifest OK again" in watch.output)
            time.sleep(0.8)
            tail = watch.output.split("Watching for a fix…")[-1]
            assert [line for line in tail.splitlines() if line.strip()] == [
                "Manifest OK again; everything is up to date"]
            assert len(emu.submissions) == 1


def test_documented_limit_warnings_are_printed_once_per_load_that_changes_them(tmp_path: Path) -> None:
    log, tmp_path = tmp_path / "watch.log", tmp_path / "proj"
    tmp_path.mkdir()
    wordy = "a castle on a hill " * 60                   # over the documented 1,000 characters
    with emulator(latency=0.05) as emu:
        manifest = write_manifest(tmp_path, targets("a") + f'\n[targets.wordy]\nprompt = "{wordy}"\n')
        with watching(manifest, emu, "--offline", "--settle", "0.1", log=log) as watch:
            wait_for(lambda: watch.settled(1))
            assert watch.output.count("Warning: target 'wordy': its prompt has") == 1, watch.output
            manifest.write_text(manifest.read_text() + '\n[targets.b]\nprompt = "b"\n')   # same warnings
            wait_for(lambda: watch.settled(2))
            assert watch.output.count("Warning: target 'wordy'") == 1
            manifest.write_text(manifest.read_text() + f'\n[targets.wordier]\nprompt = "{wordy}"\n')
            wait_for(lambda: watch.settled(3))
            assert "Warning: target 'wordier': its prompt has" in watch.output, watch.output
            assert watch.output.count("Warning: target 'wordy'") == 2      # the changed list, shown again


def test_a_save_between_a_rebuild_and_the_watch_starting_is_not_missed(tmp_path: Path) -> None:
    """A fix saved right after the watch read the broken manifest, before its file watch was set up,
    fires no event: the watch compares the manifest with what its last rebuild read at each quiet tick
    (it once waited for the next save forever)."""
    import asyncio

    from assetgen.commands.watch import Watcher, WatchOptions
    from assetgen.engine.events import QuietReporter
    from assetgen.providers.offline import OfflineProvider

    manifest = write_manifest(tmp_path, targets("a"))
    good = manifest.read_text(encoding="utf-8")
    manifest.write_text(good.replace('prompt = "a picture of a"', 'prompt = "a picture of a"\nmodle = "x"'),
                        encoding="utf-8")
    said: list[str] = []

    class SavedDuringTheFirstRebuild(Watcher):
        second = asyncio.Event()

        async def rebuild(self) -> None:
            await super().rebuild()
            if self.rebuilds == 1:
                manifest.write_text(good, encoding="utf-8")      # before awatch starts: no event
            else:
                self.second.set()

    async def main() -> int:
        watcher = SavedDuringTheFirstRebuild(manifest, OfflineProvider(), WatchOptions(offline=True, settle=0.05),
                                             reporter=QuietReporter(), echo=said.append)
        stop = asyncio.Event()
        running = asyncio.ensure_future(watcher.run(stop))
        try:
            await asyncio.wait_for(watcher.second.wait(), timeout=10)
        except TimeoutError:
            pass
        stop.set()
        await asyncio.wait_for(running, timeout=10)
        return watcher.rebuilds

    assert asyncio.run(main()) >= 2
    assert any("unknown field 'modle'" in line for line in said)
    assert "a" in tomllib.loads((tmp_path / "assets.lock").read_text(encoding="utf-8"))["targets"]
