"""The README's code is a contract: its library example runs as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _library_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it as a library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's library section has no python example"
    return match.group(1)


def test_the_library_example_runs_as_written(tmp_path: Path) -> None:
    # The quick start's manifest and the reference it names, in a fresh folder.
    shutil.copy(ROOT / "assets.toml", tmp_path / "assets.toml")
    palette = tmp_path / "examples" / "pixel-quest" / "refs"
    palette.mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "pixel-quest" / "refs" / "palette.png", palette)
    done = subprocess.run([sys.executable, "-c", _library_example()], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "hero generate ['new target']" in done.stdout
    assert done.stdout.rstrip().endswith("0.0 0")          # spent nothing, exit code 0
