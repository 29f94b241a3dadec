"""A gateway that misbehaves as an adversary would (issue 14 items 5, 7, 8, 9), over real HTTP.

Each behaviour is one ``Hostile`` knob of the emulator. Every build here must end with a clear error
for that target and exit 1 (or succeed where nothing is wrong with the images), never a traceback or a
hang, and the API key must appear nowhere: not in the output, the lock, the cache or the journal.
Deadlines are shortened with ``ASSETGEN_HTTP_DEADLINE`` so a trickling gateway costs a second.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import Result
from helpers.online import (
    API_KEY,
    all_text_under,
    emulator,
    env_for,
    run,
    targets,
    write_manifest,
)
from PIL import Image

from assetgen import catalog
from assetgen.cli.reporters import LiveReporter
from assetgen.engine.events import Event, PlainReporter
from assetgen.errors import safe_text
from assetgen.providers.client import MAX_IMAGE_BYTES, MAX_JSON_BYTES, Task, _load_json
from assetgen.testing.emulator import Faults, GatewayEmulator, Hostile


def build(tmp_path: Path, emu: GatewayEmulator, body: str | None = None, **env: str) -> Result:
    manifest = write_manifest(tmp_path, body or targets("hero"))
    return run(manifest, emu, "build", env=env_for(emu, **env))


def assert_clean_failure(result: Result, tmp_path: Path, *fragments: str, status: str = "failed") -> None:
    """Exit 1 for the target, the reason shown, nothing unsafe anywhere."""
    out = result.output
    assert result.exit_code == 1, out
    assert f"hero: {status}" in out and "Traceback" not in out
    for fragment in fragments:
        assert fragment in out, (fragment, out)
    assert_no_leak(out, tmp_path)


def assert_no_leak(out: str, tmp_path: Path) -> None:
    assert API_KEY not in out and API_KEY not in all_text_under(tmp_path)
    assert "\x1b" not in out and "\x07" not in out


# -- item 5: every exchange has a total deadline -----------------------------------------------------


@pytest.mark.parametrize(("on", "says"), [
    ("get", "did not finish answering GET /v1/tasks/"),
    ("submit", "did not finish answering POST /v1/tasks within 1 s"),
    ("download", "The download server did not finish answering GET /files/"),
])
def test_a_trickling_gateway_is_cut_off_by_the_total_deadline(tmp_path: Path, on: str, says: str) -> None:
    # One byte every 0.2 s never trips a per-read timeout; only the total deadline ends it.
    with emulator(latency=0.05, hostile=Hostile(trickle=0.2, trickle_on=on)) as emu:  # type: ignore[arg-type]
        start = time.monotonic()
        result = build(tmp_path, emu, ASSETGEN_HTTP_DEADLINE="1")
        elapsed = time.monotonic() - start
    # A submit cut off after it was sent may have created a task: the key is uncertain, not failed.
    assert_clean_failure(result, tmp_path, says, status="uncertain" if on == "submit" else "failed")
    assert elapsed < 6, elapsed
    if on == "submit":
        assert "--retry-uncertain hero" in result.output and len(emu.submissions) == 1


def test_task_timeout_covers_downloads_and_keeps_the_task_for_a_free_download(tmp_path: Path) -> None:
    # The per-exchange deadline (20 s here, 600 s by default) is far beyond task_timeout: only the
    # task's own deadline, over polling and downloads together, ends the trickle after about 1 s.
    with emulator(latency=0.05, hostile=Hostile(trickle=0.2, trickle_on="download")) as emu:
        manifest = write_manifest(tmp_path, targets("hero"), settings="task_timeout = 1")
        start = time.monotonic()
        result = run(manifest, emu, "build", env=env_for(emu, ASSETGEN_HTTP_DEADLINE="20"))
        elapsed = time.monotonic() - start
        assert_clean_failure(result, tmp_path, "not downloaded within task_timeout (1 s",
                             "download attempt 1 of 3")
        assert elapsed < 6, elapsed
        [record] = (tmp_path / ".assetgen" / "journal").glob("*.json")
        [submission] = json.loads(record.read_text())["submissions"]
        assert submission["task_id"] in emu.tasks and submission["images"]      # its URLs are kept
        emu.hostile.trickle = 0.0
        again = run(manifest, emu, "build")
        assert again.exit_code == 0, again.output
        assert len(emu.submissions) == 1 and (tmp_path / "out" / "hero.jpg").exists()


# -- item 7: bodies are size-capped while streaming ---------------------------------------------------


def test_a_huge_task_answer_is_refused_at_the_cap(tmp_path: Path) -> None:
    with emulator(latency=0.05, hostile=Hostile(huge_json=MAX_JSON_BYTES + 1000)) as emu:
        result = build(tmp_path, emu)
    assert_clean_failure(result, tmp_path, "bytes; answers over 1 MB are refused")


def test_a_huge_declared_image_is_refused_before_it_is_read(tmp_path: Path) -> None:
    size = MAX_IMAGE_BYTES + 1
    with emulator(latency=0.05, hostile=Hostile(huge_download=size)) as emu:
        result = build(tmp_path, emu)
        downloads = emu.count("GET", "/files/")
    assert_clean_failure(result, tmp_path, f"is {size:,} bytes; images over 64 MB are refused")
    assert downloads == 1   # refused, not retried


@pytest.mark.slow
def test_a_512_mb_image_without_a_length_is_cut_at_64_mb_in_bounded_memory(tmp_path: Path) -> None:
    """A real process, so its own peak memory can be measured: the body is read as a stream and
    dropped at the cap, so 512 MB cost about 64 MB of buffer (it took 2.3 GB before)."""
    manifest = write_manifest(tmp_path, targets("hero"))
    # VmHWM: this process image's own peak (ru_maxrss would carry the forking parent's peak over exec).
    peak = ("import re, sys\nfrom assetgen.cli import main\ntry:\n    main()\nfinally:\n"
            "    hwm = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "    print('PEAK_KB', hwm, file=sys.stderr)")
    hostile = Hostile(huge_download=512 * 2**20, huge_declared=False)
    with emulator(latency=0.05, hostile=hostile) as emu:
        env = {**os.environ, **env_for(emu)}
        proc = subprocess.run([sys.executable, "-c", peak, "-f", str(manifest), "build"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "more than 64 MB; images over 64 MB are refused" in out and "Traceback" not in out
    assert_no_leak(out, tmp_path)
    peak_mb = int(out.split("PEAK_KB")[1].split()[0]) / 1024
    assert peak_mb < 300, peak_mb


def test_result_urls_beyond_n_are_ignored_and_not_paid(tmp_path: Path) -> None:
    with emulator(latency=0.05, hostile=Hostile(extra_images=5)) as emu:
        result = build(tmp_path, emu)
        downloads = emu.count("GET", "/files/")
    assert result.exit_code == 0, result.output
    assert downloads == 1
    lock = tomllib.loads((tmp_path / "assets.lock").read_text())["targets"]["hero"]
    assert math.isclose(lock["cost"], catalog.BY_ID["gemini-3.1-flash-image-preview"].price)


# -- item 8: gateway data is checked at the boundary ------------------------------------------------


def test_json_nested_100000_deep_is_one_clear_error(tmp_path: Path) -> None:
    with emulator(latency=0.05, hostile=Hostile(deep_json=100_000)) as emu:
        result = build(tmp_path, emu)
    assert_clean_failure(result, tmp_path, "unusable task (its JSON is nested too deeply)")


@pytest.mark.parametrize(("template", "says"), [
    ("x" * 300, "300 characters long; at most 200 are accepted"),
    ("t-[/]{n}", "characters outside letters, digits"),
    ("task-{key}", "its task id contains the API key"),
    ("x" * 2_000_000, "over the 1 MB accepted"),
    ("..", "characters outside letters, digits"),
])
def test_an_unusable_task_id_is_an_uncertain_submission(tmp_path: Path, template: str, says: str) -> None:
    with emulator(latency=0.05, hostile=Hostile(task_id=template)) as emu:
        result = build(tmp_path, emu)
    assert_clean_failure(result, tmp_path, says, "not resent to avoid paying twice", status="uncertain")
    assert "x" * 201 not in result.output and "[/]" not in result.output


def test_infinite_progress_and_timestamps_do_not_break_a_build(tmp_path: Path) -> None:
    raw = {"progress": "1e400", "created_at": "-1e999", "completed_at": "NaN", "start_time": "1e400"}
    with emulator(latency=0.2, hostile=Hostile(raw_fields=raw)) as emu:
        result = build(tmp_path, emu)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "hero.jpg").exists()


def test_a_model_field_echoing_the_key_is_never_recorded(tmp_path: Path) -> None:
    with emulator(latency=0.05, hostile=Hostile(raw_fields={"model": '"{key}"'})) as emu:
        result = build(tmp_path, emu)
    assert result.exit_code == 0, result.output
    assert_no_leak(result.output, tmp_path)
    lock = tomllib.loads((tmp_path / "assets.lock").read_text())["targets"]["hero"]
    assert lock["model"] == "gemini-3.1-flash-image-preview"


def test_hostile_numbers_are_parsed_into_range() -> None:
    for progress, expected in [(math.inf, 0), (-math.inf, 0), (math.nan, 0), ("abc", 0), (-5, 0),
                               (250, 100), ("42.7", 42), (True, 0), (None, 0), ([1], 0)]:
        task = Task.from_json({"task_id": "t1", "status": "processing", "progress": progress})
        assert task.progress == expected, progress
    for stamp in [math.inf, -1, 1e300, math.nan, "x", 10**400]:
        task = Task.from_json({"task_id": "t1", "status": "queued", "created_at": stamp,
                               "start_time": stamp, "completed_at": stamp})
        assert task.created_at is None and task.start_time is None and task.completed_at is None
    task = Task.from_json({"task_id": "t1", "status": "completed",
                           "result": {"images": [{"url": "https://x/a.jpg", "expires_at": math.inf}]}})
    assert task.images[0].expires_at is None and not task.images[0].expired
    with pytest.raises(ValueError, match="too deeply"):
        _load_json(b"[" * 100_000 + b"]" * 100_000)


# -- item 9: text from the gateway is shown safely ------------------------------------------------


HOSTILE_MESSAGE = "[/] [bold red]fake[/] \x1b[2J\x1b]0;title\x07\x1b[31m{key}\x1b[0m\nDone: 9 built. " + "y" * 5000


def test_a_failed_task_message_is_cleaned_capped_and_redacted(tmp_path: Path) -> None:
    faults = Faults(fail_prompts={"hero"})
    with emulator(latency=0.05, faults=faults, hostile=Hostile(error_message=HOSTILE_MESSAGE)) as emu:
        result = build(tmp_path, emu)
    assert_clean_failure(result, tmp_path, "[/] [bold red]fake[/]", "*** Done: 9 built.")
    assert "y" * 600 not in result.output and "\nDone: 9 built" not in result.output


def test_an_error_answer_echoing_the_key_is_redacted(tmp_path: Path) -> None:
    with emulator(latency=0.05, prompt_limit=5, hostile=Hostile(error_message="bad key {key}")) as emu:
        result = build(tmp_path, emu)
    assert_clean_failure(result, tmp_path, "The gateway refused the request: bad key ***")


def test_live_view_shows_markup_and_control_characters_as_plain_text() -> None:
    stream = io.StringIO()
    with LiveReporter(total=2, stream=stream) as live:
        live.emit(Event("submitted", "icon.[/]"))
        live.emit(Event("progress", "icon.[/]", data={"status": "[bold]x[/]", "progress": math.inf}))
        live.emit(Event("failed", "icon.[/]", "[/] \x1b[31mred\x1b[0m [link=x]y[/link]"))
        live.emit(Event("notice", "[/]", "[/]"))
    out = stream.getvalue()
    assert "icon.[/]" in out and "[/] red [link=x]y[/link]" in out and "\x1b[31m" not in out
    plain = io.StringIO()
    PlainReporter(plain).emit(Event("failed", "a", "x\x1b[2K\rDone: all built\x00"))
    assert plain.getvalue() == "a: failed (x Done: all built)\n"


def test_safe_text_strips_escapes_and_caps() -> None:
    assert safe_text("a\x1b[31mb\x1b[0m\x1b]8;;http://x\x07c\u202ed\x9b2Je") == "abc d" + "e"
    assert safe_text("x" * 10, 5) == "xxxx…"


def test_images_from_the_hostile_build_are_real(tmp_path: Path) -> None:
    # Sanity: the emulator's hostile mode off is the normal gateway (guards the knobs' defaults).
    with emulator(latency=0.05, hostile=Hostile()) as emu:
        result = build(tmp_path, emu)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "hero.jpg") as img:
        assert img.format == "JPEG"


@pytest.mark.parametrize("value", ["0", "0.01", "4000", "inf", "nan", "-1", "soon"])
def test_assetgen_poll_interval_has_the_manifests_bounds(tmp_path: Path, value: str) -> None:
    with emulator(latency=0.05) as emu:
        result = build(tmp_path, emu, ASSETGEN_POLL_INTERVAL=value)
        assert result.exit_code == 2, result.output
        assert "ASSETGEN_POLL_INTERVAL must be a finite number of seconds, from 0.05 to 3600" in result.output
        assert repr(value) in result.output and "Traceback" not in result.output
        assert emu.submissions == []


def test_a_short_test_key_is_not_mistaken_for_a_leak_in_every_task_id(tmp_path: Path) -> None:
    """A key of a few characters ("k", as in a quick trial against the emulator) matches inside every
    task id; only keys long enough to be real are searched for in the gateway's answers."""
    with GatewayEmulator(api_key="k", latency=0.05) as emu:
        manifest = write_manifest(tmp_path, targets("hero"))
        result = run(manifest, emu, "build", env={"ASSETGEN_API_KEY": "k", "ASSETGEN_BASE_URL": emu.base_url,
                                                  "ASSETGEN_POLL_INTERVAL": "0.05"})
    assert result.exit_code == 0, result.output
    assert "hero: built" in result.output and len(emu.submissions) == 1
