"""Money at the command line (issue 18): `plan` shows budget and limits, `plan --check` fails a build
that would be refused, `build` asks on a terminal (a real pseudo-terminal), `spend` adds up the ledger,
and every build ends with one line of money."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assetgen.state.ledger import Ledger, LedgerEntry, now_utc
from tests.helpers.online import emulator, env_for, run, targets, write_manifest

FLASH = 0.031875
PRO = 0.0425
pytestmark = pytest.mark.e2e


def test_plan_shows_budget_and_limits_and_check_fails_over_a_limit(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"),
                                  settings="budget = 1.0\nlimits = { total = 10.0, day = 0.05 }")
        result = run(manifest, emu, "plan")
        assert result.exit_code == 0
        assert "Budget per build: $1.00; this build up to $0.0638" in result.output
        assert "Limit total: $10.00, $0.00 spent in total, $10.00 left" in result.output
        day = next(line for line in result.output.splitlines() if line.startswith("Limit day"))
        assert "$0.05 left" in day and "OVER" in day
        assert "OVER" not in next(line for line in result.output.splitlines() if line.startswith("Limit total"))
        checked = run(manifest, emu, "plan", "--check")
        assert checked.exit_code == 1 and "would refuse this build" in checked.output
        data = json.loads(run(manifest, emu, "plan", "--json").output)
        assert data["money"]["refused"] is True
        assert [lim["exceeded"] for lim in data["money"]["limits"]] == [True, False] or \
            {lim["name"]: lim["exceeded"] for lim in data["money"]["limits"]} == {"total": False, "day": True}
        assert emu.requests == []


def test_plan_marks_an_estimate_over_the_budget(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings="budget = 0.05")
        result = run(manifest, emu, "plan")
        assert "Budget per build: $0.05; this build up to $0.0638  ← OVER" in result.output


def test_the_end_of_a_build_prints_spent_saved_and_the_month(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings="limits = { month = 20.0 }")
        first = run(manifest, emu, "build")
        assert first.exit_code == 0
        assert "Money: spent $0.0638, saved $0.00; this month $0.0638 of its $20.00 limit." in first.output
        manifest.write_text(manifest.read_text() + '[targets.c]\nprompt = "a picture of a"\n')   # shares a's key
        again = run(manifest, emu, "build")
        assert "Money: spent $0.00, saved $0.0319; this month $0.0638 of its $20.00 limit." in again.output


# -- spend ------------------------------------------------------------------------------------------

def _entry(day: str, **fields: object) -> LedgerEntry:
    base: dict[str, object] = {
        "time": f"{day}T12:00:00.000+00:00", "manifest": "assets.toml", "target": "a", "key": "k" * 64,
        "model": "gemini-3.1-flash-image-preview", "tier": "standard", "n": 1, "estimate": FLASH,
        "reported": None, "outcome": "accepted", "amount": FLASH, "task_id": "t1", "profile": None,
        "machine": "m1", "person": "ann@x"}
    base.update(fields)
    return LedgerEntry(**base)  # type: ignore[arg-type]


def _seed(root: Path) -> None:
    ledger = Ledger(root / ".assetgen" / "ledger")
    for entry in [
        _entry("2026-03-30"),                                                        # other month
        _entry("2026-04-01", target="hero", n=2, estimate=2 * FLASH, amount=2 * FLASH),
        _entry("2026-04-01", target="hero", model="gemini-3-pro-image-preview", estimate=PRO, amount=PRO,
               person="bob@y"),
        _entry("2026-04-02", target="tree", profile="draft"),
        _entry("2026-04-02", target="tree", profile="draft", outcome="refunded", amount=-FLASH),
        _entry("2026-04-03", target="rock", outcome="uncertain", task_id=None, machine="m2", person="bob@y"),
    ]:
        ledger.append(entry)


def test_spend_adds_up_by_day_model_target_profile_and_person(tmp_path: Path) -> None:
    _seed(tmp_path)
    manifest = write_manifest(tmp_path, targets("a"))

    def rows(*args: str) -> dict[str, float]:
        with emulator() as emu:
            data = json.loads(run(manifest, emu, "spend", "--json", *args).output)
        return {r["group"]: round(r["spent"], 6) for r in data["rows"]}

    assert rows("--month", "2026-04") == {"2026-04-01": round(2 * FLASH + PRO, 6), "2026-04-02": 0.0,
                                          "2026-04-03": FLASH}
    assert rows("--month", "2026-04", "--by", "model") == {"gemini-3.1-flash-image-preview": round(3 * FLASH, 6),
                                                           "gemini-3-pro-image-preview": PRO}
    assert rows("--by", "target") == {"hero": round(2 * FLASH + PRO, 6), "tree": 0.0, "rock": FLASH, "a": FLASH}
    assert rows("--by", "profile", "--since", "2026-04-02") == {"(final)": FLASH, "draft": 0.0}
    assert rows("--by", "person", "--until", "2026-04-01") == {"ann@x": round(3 * FLASH, 6), "bob@y": PRO}
    with emulator() as emu:
        text = run(manifest, emu, "spend", "--month", "2026-04", "--by", "target").output
        csv_out = run(manifest, emu, "spend", "--by", "model", "--csv").output
        bad = run(manifest, emu, "spend", "--month", "April")
    total = 3 * FLASH + PRO
    assert "total" in text and f"${total:.4f}" in text and "Limits: none set" in text
    assert csv_out.splitlines()[0] == "model,spent,tasks,images,refunded"
    assert "gemini-3-pro-image-preview,0.042500,1,1,0.000000" in csv_out.splitlines()
    assert bad.exit_code == 2 and "--month 'April'" in bad.output


def test_spend_compares_with_the_limits_and_reports_damage(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings="limits = { month = 1.0, day = 0.5 }")
        assert run(manifest, emu, "build").exit_code == 0
        path = next((tmp_path / ".assetgen" / "ledger").glob("*.jsonl"))
        with open(path, "a") as handle:
            handle.write('{"broken": \n')
        result = run(manifest, emu, "spend")
        assert result.exit_code == 0
        today = now_utc().strftime("%Y-%m-%d")
        assert today in result.output and "$0.0638" in result.output
        assert result.output.strip().splitlines()[-1] == (
            "Limits: month $0.0638 of $1.00 ($0.9363 left); day $0.0638 of $0.50 ($0.4363 left).")
        assert f"{path}:3: is not a JSON line" in result.output and "Traceback" not in result.output


# -- confirmation on a terminal ---------------------------------------------------------------------

def _build_on_pty(manifest: Path, emu: object, *args: str, answer: str | None,
                  command: str = "build") -> tuple[int, str]:
    master, slave = pty.openpty()
    env = {**os.environ, **env_for(emu), "COLUMNS": "200"}  # type: ignore[arg-type]
    proc = subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), command, *args],
                            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        if answer is not None and not answered and b"Spend it?" in output:
            os.write(master, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, output.decode(errors="replace")


@pytest.mark.slow
def test_a_terminal_is_asked_before_spending_over_confirm_over(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"), settings="confirm_over = 0.01")
        code, output = _build_on_pty(manifest, emu, answer="n")
        assert "may spend up to $0.0319" in output and code == 1 and "nothing was submitted" in output
        assert emu.requests == []
        code, output = _build_on_pty(manifest, emu, answer="y")
        assert code == 0 and len(emu.submissions) == 1, output


@pytest.mark.slow
def test_yes_skips_the_question_and_no_terminal_never_asks(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a", "b"), settings="confirm_over = 0.01")
        code, output = _build_on_pty(manifest, emu, "a", "--yes", answer=None)
        assert code == 0 and "Spend it?" not in output and len(emu.submissions) == 1
        piped = run(manifest, emu, "build")                  # CliRunner: no terminal
        assert piped.exit_code == 0 and "Spend it?" not in piped.output and len(emu.submissions) == 2


@pytest.mark.slow
def test_under_confirm_over_nothing_is_asked(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"))       # $0.0319 < the default $1.00
        code, output = _build_on_pty(manifest, emu, answer=None)
        assert code == 0 and "Spend it?" not in output and len(emu.submissions) == 1


@pytest.mark.slow
def test_the_first_build_of_a_watch_asks_too(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, targets("a"), settings="confirm_over = 0.01")
        code, output = _build_on_pty(manifest, emu, answer="n", command="watch")
        assert code == 1 and "may spend up to $0.0319" in output and "nothing was submitted" in output
        assert emu.requests == []
