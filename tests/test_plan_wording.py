"""What ``plan`` says in text: the offline/online difference, each reason once, one output format at a time."""

from __future__ import annotations

import pytest
from helpers.project import FLASH, ProjectDir

from assetgen.engine.events import usd

MATRIX = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.gem]
prompt = "A {colour} gem"
matrix = { colour = ["red", "blue"], size = [16, 32] }
output = "gems/{colour}@{size}.png"
"""


@pytest.fixture
def gems(empty_project: ProjectDir) -> ProjectDir:
    empty_project.write(MATRIX)
    empty_project.ok("build", "--offline")
    return empty_project


def test_plan_after_an_offline_build_says_why_it_differs(gems: ProjectDir) -> None:
    text = gems.ok("plan").output
    assert "4 to build" in text
    # Two rows share the others' key (size is an output setting): the generations to pay are two.
    assert (f"4 placeholders would be replaced by an online build: {usd(2 * FLASH)}; `plan --offline` shows what "
            f"`build --offline` would do") in text.splitlines()
    offline = gems.ok("plan", "--offline").output
    assert "Nothing to build" in offline and "placeholders would be replaced" not in offline


def test_a_matrix_line_gives_each_reason_once(gems: ProjectDir) -> None:
    (gems.root / "out" / "gems" / "red@16.png").unlink()
    line = next(line for line in gems.ok("plan").output.splitlines() if line.lstrip().startswith("gem "))
    assert line.count("placeholder to be replaced") == 1, line
    assert "output missing: out/gems/red@16.png" in line, line


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_conflicting_output_flags_are_a_usage_error(gems: ProjectDir, fmt: str) -> None:
    result = gems.run("plan", "--json", "--format", fmt)
    assert result.exit_code == 2
    assert f"--json and --format {fmt} ask for two outputs" in result.output
    assert result.stdout == ""
    assert gems.run("plan", "--json", "--format", "json").exit_code == 0     # the same output twice is fine
