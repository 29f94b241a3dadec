"""Shared fixtures: a real project folder in ``tmp_path`` and a way to run the CLI on it.

Tests drive assetgen the way a user does: a real ``assets.toml``, real PNG/JPEG reference files made
with Pillow, and the click command (``CliRunner``) run from the project folder with ``-f assets.toml``
so messages name ``assets.toml:LINE`` as a user would see them. Where a real process matters
(two builds at once, ``python -m assetgen``) tests start one with ``Project.spawn``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from assetgen.cli import cli

# Prices from the gateway's table (SPEC: `assetgen models`), USD per image.
FLASH = 0.031875            # gemini-3.1-flash-image-preview
FLASH_OFFICIAL = 0.05695    # gemini-3.1-flash-image-preview-official
PRO = 0.0425                # gemini-3-pro-image-preview
PRO_OFFICIAL = 0.1139       # gemini-3-pro-image-preview-official

# A small project: an edit that depends on another target, a file reference, n > 1, and sizes
# kept small (0.5K) so offline builds take a fraction of a second.
MANIFEST = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.hero]
prompt = "A knight in silver armour, side view"
aspect_ratio = "3:4"
output = "characters/hero.jpg"

[targets.hero_walk]
action = "edit"
prompt = "The same knight, mid-stride walking pose"
references = ["@hero", "refs/palette.png"]

[targets.banner]
prompt = "A wide banner with a castle"
aspect_ratio = "16:9"

[targets.icons]
prompt = "Three round potion icons"
n = 3
"""

OUTPUTS = {
    "hero": ["out/characters/hero.jpg"],
    "hero_walk": ["out/hero_walk.jpg"],
    "banner": ["out/banner.jpg"],
    "icons": ["out/icons-1.jpg", "out/icons-2.jpg", "out/icons-3.jpg"],
}

NO_NETWORK = "http://127.0.0.1:9"   # the discard port: nothing listens, so nothing can be paid for


def make_image(path: Path, color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (8, 8),
               fmt: str | None = None) -> Path:
    """A real, small image file (PNG or JPEG by extension unless ``fmt`` says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def backdate(path: Path, seconds: int = 3600) -> Path:
    """Give a file an mtime in the past, as a reference file in a real project has. (The stat cache
    does not persist hashes of files changed in the last moments: their mtime may not move again.)"""
    then = time.time_ns() - seconds * 1_000_000_000
    os.utime(path, ns=(then, then))
    return path


@dataclass
class Project:
    root: Path
    runner: CliRunner
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.root / "assets.toml"

    @property
    def lock(self) -> Path:
        return self.root / "assets.lock"

    @property
    def cache(self) -> Path:
        return self.root / ".assetgen"

    def write(self, text: str, name: str = "assets.toml") -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def edit(self, old: str, new: str) -> None:
        """Replace one exact piece of the manifest (it must be there exactly once)."""
        text = self.manifest.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the manifest"
        self.manifest.write_text(text.replace(old, new), encoding="utf-8")

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """``assetgen -f assets.toml ARGS`` from the project folder. Never raises on failure."""
        result = self.runner.invoke(cli, ["-f", "assets.toml", *args], env=env, catch_exceptions=True)
        # An exception other than SystemExit escaping the CLI is a bug (a traceback for the user).
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback
            raise AssertionError(
                f"assetgen {' '.join(args)} crashed:\n{result.output}\n"
                + "".join(traceback.format_exception(result.exception)))
        return result

    def ok(self, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self.run(*args, env=env)
        assert result.exit_code == 0, f"exit {result.exit_code}:\n{result.output}"
        return result

    def plan(self, *args: str) -> dict[str, Any]:
        """``plan --json`` as data."""
        result = self.run("plan", "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def items(self, *args: str) -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in self.plan(*args)["targets"]}

    def keys(self) -> dict[str, str]:
        return {name: item["key"] for name, item in self.items().items()}

    def objects(self) -> list[Path]:
        return sorted((self.cache / "objects").glob("*/*.jpg"))

    def snapshot(self, *, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, bytes]]:
        """Every file under the project (relative path → (mtime_ns, bytes)), minus ``skip`` (paths,
        or folders ending in '/'). Files over 1 MB (the sparse 31 MB reference) are represented by
        their size."""
        found = {}
        folders = tuple(s for s in skip if s.endswith("/"))
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and rel not in skip and not rel.startswith(folders):
                st = path.stat()
                data = path.read_bytes() if st.st_size < 1 << 20 else str(st.st_size).encode()
                found[rel] = (st.st_mtime_ns, data)
        return found

    STAT_CACHE = (".assetgen/stat.json", ".assetgen/stat-parsed/")   # what `plan` may write

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A real ``python -m assetgen -f assets.toml ARGS`` process in the project folder."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "assetgen", "-f", "assets.toml", *args], cwd=self.root,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc

    def reap(self) -> None:
        """End the processes this project started that a failed test left running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real gateway: no key unless a test sets one, and a URL nobody answers."""
    monkeypatch.delenv("ASSETGEN_API_KEY", raising=False)
    monkeypatch.setenv("ASSETGEN_BASE_URL", NO_NETWORK)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_BASE_URL", NO_NETWORK)
    monkeypatch.setenv("OPENAI_BASE_URL", NO_NETWORK)


@pytest.fixture
def empty_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A project folder with reference images but no manifest yet; the current directory."""
    root = tmp_path / "proj"
    root.mkdir()
    backdate(make_image(root / "refs" / "palette.png", (200, 40, 40)))
    backdate(make_image(root / "refs" / "photo.jpg", (40, 40, 200), size=(16, 12)))
    monkeypatch.chdir(root)
    project = Project(root=root, runner=CliRunner())
    yield project
    project.reap()


@pytest.fixture
def project(empty_project: Project) -> Project:
    """The small project of ``MANIFEST``, not built yet."""
    empty_project.write(MANIFEST)
    return empty_project
