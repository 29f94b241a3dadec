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


def _set_prompt(manifest: Path, old: str, new: str) -> None:
    manifest.write_text(manifest.read_text().replace(f'prompt = "{old}"', f'prompt = "{new}"'))


def test_restore_of_a_styled_target_writes_its_own_prompt_back_not_the_composed_one(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, '[styles.pastel]\nprompt = "soft pastel"\n\n'
                                  '[targets.hero]\nstyle = "pastel"\nprompt = "a knight"\n')
        assert run(manifest, emu, "build").exit_code == 0
        first = next((tmp_path / "out").iterdir()).read_bytes()
        _set_prompt(manifest, "a knight", "a knight in red")
        assert run(manifest, emu, "build").exit_code == 0
        emu.requests.clear()
        restored = run(manifest, emu, "restore", "hero", "1")
        assert restored.exit_code == 0, restored.output
        assert "nothing was paid" in restored.output and emu.requests == []
        assert 'prompt = "a knight"\n' in manifest.read_text() and "soft pastel" not in \
            manifest.read_text().split("[targets.hero]")[1]
        assert next((tmp_path / "out").iterdir()).read_bytes() == first


def test_a_restore_that_cannot_reproduce_the_key_writes_nothing(tmp_path: Path) -> None:
    with emulator() as emu:
        manifest = write_manifest(tmp_path, '[styles.pastel]\nprompt = "soft pastel"\n\n'
                                  '[targets.hero]\nstyle = "pastel"\nprompt = "a knight"\n\n'
                                  '[targets.gem]\nprompt = "a {colour} gem"\nmatrix = { colour = ["red"] }\n'
                                  'output = "gem-{colour}.png"\n')
        assert run(manifest, emu, "build").exit_code == 0
        # The style's fragment changes: no prompt of hero's own gives generation 1's key any more.
        manifest.write_text(manifest.read_text().replace('"soft pastel"', '"hard neon"')
                            .replace('"a knight"', '"a knight in red"')
                            .replace('"a {colour} gem"', '"a shiny {colour} gem"'))
        before = manifest.read_text()
        refused = run(manifest, emu, "restore", "hero", "1")
        assert refused.exit_code == 2, refused.output
        assert "cannot restore generation 1 of 'hero'" in refused.output and "nothing was written" in refused.output
        assert "style" in refused.output and manifest.read_text() == before
        matrix = run(manifest, emu, "restore", "gem.red", "1")
        assert matrix.exit_code == 2, matrix.output
        assert "row of the matrix [targets.gem]" in matrix.output and manifest.read_text() == before
