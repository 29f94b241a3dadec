"""`assetgen history` and `assetgen restore` (issue 18): a three-generation prompt iteration, then a
restore of the first that pays nothing and puts its image back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.helpers.online import emulator, run, targets, write_manifest

FLASH = 0.031875
pytestmark = pytest.mark.e2e


def test_history_and_a_free_restore_of_a_three_generation_iteration(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, "# the hero, iterated\n" + targets("hero"))
        images = []
        for prompt in ("a knight", "a knight in red", "a knight in blue"):
            text = manifest.read_text()
            current = text.split('prompt = "')[1].split('"')[0]
            manifest.write_text(text.replace(f'prompt = "{current}"', f'prompt = "{prompt}"'))
            assert run(manifest, emu, "build").exit_code == 0
            images.append(next((tmp_path / "out").iterdir()).read_bytes())
        assert len(emu.submissions) == 3
        shown = run(manifest, emu, "history", "hero")
        assert shown.exit_code == 0, shown.output
        rows = [line for line in shown.output.splitlines() if line.startswith("    ")]
        assert len(rows) == 3 and all("$0.0319" in r and "cached" in r for r in rows)
        assert "first" in rows[0] and "prompt: 'a knight' → 'a knight in red'" in rows[1]
        assert "prompt: 'a knight in red' → 'a knight in blue'" in rows[2]

        emu.requests.clear()
        restored = run(manifest, emu, "restore", "hero", "1")
        assert restored.exit_code == 0, restored.output
        assert "nothing was paid" in restored.output and emu.requests == []
        assert next((tmp_path / "out").iterdir()).read_bytes() == images[0]
        text = manifest.read_text()
        assert 'prompt = "a knight"' in text and text.startswith("[settings]") and "# the hero, iterated" in text
        lock = tomllib.loads((tmp_path / "assets.lock").read_text())["targets"]["hero"]
        assert lock["spec"]["prompt"] == "a knight"
        assert run(manifest, emu, "build").exit_code == 0 and emu.requests == []     # up to date, free
        bad = run(manifest, emu, "restore", "hero", "4")
        assert bad.exit_code == 2 and "restore one of 1 … 3" in bad.output
