"""What a person sees in a terminal: notices above the live view, colours, -q/-v, usage errors, tables.

The live-view test runs a real build in a pseudo-terminal (pexpect) against the gateway emulator and
replays what the process wrote onto a small screen model (the cursor moves and erasures rich uses), so
it checks what stays on the screen, not only what was written at some point.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers.online import emulator, env_for, targets, wait_for, write_manifest

from assetgen.cli import cli

_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


def screen(output: str, rows: int = 40) -> list[str]:
    """The lines a terminal shows after ``output``: text, \\r, \\n and the CSI sequences rich's live view uses
    (cursor up/down/column, erase line/screen; colours and cursor visibility ignored)."""
    lines = [""] * rows
    row = col = 0
    i = 0
    while i < len(output):
        match = _CSI.match(output, i)
        if match:
            row, col = _control(lines, row, col, *match.groups())
            i = match.end()
            continue
        char = output[i]
        i += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            if row == rows - 1:
                lines = lines[1:] + [""]
            else:
                row += 1
        elif char == "\x1b":                      # another escape (e.g. ESC 7/8): skip it
            i += 1
        elif char >= " ":
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1:]
            col += 1
    return lines


def _control(lines: list[str], row: int, col: int, params: str, final: str) -> tuple[int, int]:
    """One CSI sequence on the screen model: returns the cursor (row, column) after it."""
    n = int(params) if params.isdigit() else (1 if final in "ABG" else 0)
    if final == "A":
        return max(0, row - n), col
    if final == "B":
        return min(len(lines) - 1, row + n), col
    if final == "G":
        return row, n - 1
    if final == "K":
        lines[row] = lines[row][:col] if n == 0 else ""
    elif final == "J":
        lines[row + 1:] = [""] * (len(lines) - row - 1)
    return row, col


@pytest.mark.slow
def test_the_interrupt_notice_stays_visible_above_the_live_view(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    with emulator(latency=1.5) as emu:
        manifest = write_manifest(tmp_path, targets("a", "b", "c", "d"))
        manifest.write_text(manifest.read_text().replace("jobs = 4", "jobs = 2"))
        env = {**os.environ, **env_for(emu), "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
        env.pop("NO_COLOR", None)
        child = pexpect.spawn(sys.executable, ["-m", "assetgen", "-f", str(manifest), "build"], env=env,
                              dimensions=(40, 140), encoding="utf-8", timeout=30)
        try:
            child.expect("in flight")                          # the live view is drawing
            wait_for(lambda: len(emu.submissions) == 2)
            child.sendintr()                                   # Ctrl-C, as the terminal sends it
            child.expect("Press Ctrl-C again")
            seen = child.before + child.after + child.buffer
            child.buffer = ""
            until = time.monotonic() + 0.8                     # a few of the view's redraws (4 a second)
            while time.monotonic() < until:
                try:
                    seen += child.read_nonblocking(100_000, timeout=0.1)
                except pexpect.TIMEOUT:
                    pass
            assert seen.count("in flight") >= 3                # (redraws after the notice were read)
            during = "\n".join(screen(seen))
            child.expect(pexpect.EOF)
            final = "\n".join(screen(seen + child.before))
        finally:
            child.close(force=True)
    notice = "Stopping: no new tasks will be submitted; waiting for the ones in flight. Press Ctrl-C again to exit now."
    assert notice in during and "in flight" in during           # both on the screen while the view runs
    assert notice in final                                      # and still there when the build has ended
    assert child.exitstatus == 1
    assert len(emu.submissions) == 2


def test_a_warning_during_the_live_view_goes_through_its_console(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from assetgen.cli.runtime import OUTPUT, LazyLive, warn

    stream = io.StringIO()
    live = LazyLive(stream)
    live.start(3)
    try:
        warn("the gateway is slow today")
    finally:
        live.close()
    assert "Warning: the gateway is slow today" in stream.getvalue()
    assert OUTPUT.live is None


def test_no_color_and_color_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = str(tmp_path / "nope.toml")
    plain = runner.invoke(cli, ["-f", missing, "plan"])
    assert plain.exit_code == 2 and "\x1b[" not in plain.output          # not a terminal: no colour
    forced = runner.invoke(cli, ["--color", "-f", missing, "plan"], color=True)
    assert "\x1b[31m\x1b[1mError:\x1b[0m" in forced.output
    after = runner.invoke(cli, ["plan", "-f", missing, "--color"], color=True)   # after the command too
    assert "\x1b[31m" in after.output
    off = runner.invoke(cli, ["plan", "-f", missing, "--no-color"], color=True, env={"NO_COLOR": ""})
    assert "\x1b[" not in off.output
    from assetgen.cli.runtime import OUTPUT

    OUTPUT.reset()                                                       # (the last invocation said --no-color)

    class Tty:
        def isatty(self) -> bool:
            return True

    os.environ["NO_COLOR"] = "1"
    try:
        assert OUTPUT.colored(Tty()) is False                             # NO_COLOR wins on a terminal
    finally:
        del os.environ["NO_COLOR"]
    assert OUTPUT.colored(Tty()) is True


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_and_verbose_on_every_command(tmp_path: Path, where: str) -> None:
    from assetgen.cli.main import cli as group

    for name, command in group.commands.items():
        opts = {o for p in command.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
        assert {"-q", "--quiet", "-v", "--verbose", "--color", "--no-color"} <= opts, name
    manifest = write_manifest(tmp_path, targets("a", "b"), settings='provider = "offline"')
    manifest.write_text(manifest.read_text() + '\n[targets.huge]\nprompt = "' + "x" * 40_000 + '"\n')
    runner = CliRunner()
    def args(flag: str) -> list[str]:
        return ["-f", str(manifest), flag, "plan"] if where == "before" else ["-f", str(manifest), "plan", flag]

    normal = runner.invoke(cli, args("--no-color"))
    assert "Warning:" in normal.output
    quiet = runner.invoke(cli, args("-q"))
    assert quiet.exit_code == 0 and "Warning:" not in quiet.output and "3 targets" in quiet.output
    verbose = runner.invoke(cli, args("-v"))
    assert f"Manifest: {manifest}; 3 targets" in verbose.output


def test_a_commands_own_quiet_is_also_the_global_quiet(tmp_path: Path) -> None:
    """`build -q` (its own: only failures and the summary) prints no warnings either, as `-q build` does;
    build is the only command with a -q of its own."""
    from assetgen.cli.main import _set_quiet, cli as group

    own = [name for name, command in group.commands.items() for p in command.params
           if isinstance(p, click.Option) and "-q" in p.opts and p.callback is not _set_quiet]
    assert own == ["build"]
    manifest = write_manifest(tmp_path, targets("a"), settings='provider = "offline"')
    manifest.write_text(manifest.read_text() + '\n[targets.huge]\nprompt = "' + "x" * 40_000 + '"\n')
    runner = CliRunner()
    assert "Warning:" in runner.invoke(cli, ["-f", str(manifest), "build", "--offline", "--dry-run"]).output
    for args in (["build", "--offline", "-q"], ["-q", "build", "--offline"], ["build", "--offline", "--quiet"]):
        result = runner.invoke(cli, ["-f", str(manifest), *args])
        assert result.exit_code == 0, result.output
        assert "Warning:" not in result.output and "Done: 2 " in result.output, (args, result.output)
        (tmp_path / "assets.lock").unlink()


def test_conflicting_output_flags_are_usage_errors(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, targets("a"), settings='provider = "offline"')
    runner = CliRunner()
    cases = {("plan", "--json", "--format", "text"): "--json and --format text ask for two outputs",
             ("spend", "--json", "--csv"): "--json and --csv ask for two outputs",
             ("build", "--dry-run", "--json"): "for the plan as JSON use `assetgen plan --json`"}
    for args, message in cases.items():
        result = runner.invoke(cli, ["-f", str(manifest), *args])
        assert result.exit_code == 2, args
        assert message in result.output, result.output
    assert not (tmp_path / "assets.lock").exists()                       # nothing was built


def test_models_is_an_aligned_table() -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    head, rule = lines[0], lines[1]
    assert head.split() [:3] == ["model", "provider", "series"]
    assert set(rule.replace(" ", "")) == {"-"}
    starts = [m.start() for m in re.finditer(r"-+", rule)]
    rows = lines[2:lines.index("")]
    assert len(rows) >= 10
    for row in rows:                       # every column starts where its heading does, after two spaces
        for start in starts[1:]:
            assert row[start - 2:start] == "  ", row
    one = CliRunner().invoke(cli, ["models", "gpt-image-1-mini"])
    assert one.exit_code == 0 and len(one.output.split("\n\n")[0].splitlines()) == 3
    bad = CliRunner().invoke(cli, ["models", "gpt-5"])
    assert bad.exit_code == 2 and "no such model: gpt-5" in bad.output


def test_the_action_column_shows_the_targets_action(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, targets("base", "pose", pose='action = "edit"\nreferences = ["@base"]'),
                              settings='provider = "offline"')
    plain = CliRunner().invoke(cli, ["-f", str(manifest), "plan"])
    assert re.search(r"^  base\s+generate\s", plain.output, re.MULTILINE)
    assert re.search(r"^  pose\s+edit\s", plain.output, re.MULTILINE), plain.output
    markdown = CliRunner().invoke(cli, ["-f", str(manifest), "plan", "--format", "markdown"])
    assert "| `pose` | edit |" in markdown.output
