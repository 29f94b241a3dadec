"""Shared helpers for tests that build against the gateway emulator (a real HTTP server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from assetgen.cli import cli
from assetgen.testing.emulator import GatewayEmulator

API_KEY = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
# Emulator images are real JPEGs of the catalogue's size (downloads are checked against it, as a real
# gateway's would be): 1:1 at 0.5K, the manifests' default below, is small enough to stay fast.
SMALL = (512, 512)


def write_manifest(root: Path, body: str, *, settings: str = "") -> Path:
    path = root / "assets.toml"
    path.write_text(textwrap.dedent(f"""\
        [settings]
        out_dir = "out"
        jobs = 4
        {settings}

        [defaults]
        model = "gemini-3.1-flash-image-preview"
        resolution = "0.5K"
        """) + textwrap.dedent(body), encoding="utf-8")
    return path


def targets(*names: str, **extra: str) -> str:
    """TOML for simple targets named ``names``, each with a distinct prompt."""
    blocks = []
    for name in names:
        lines = [f"[targets.{name}]", f'prompt = "a picture of {name}"']
        if name in extra:
            lines.append(extra[name])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def env_for(emulator: GatewayEmulator, **more: str) -> dict[str, str]:
    return {"ASSETGEN_API_KEY": API_KEY, "ASSETGEN_BASE_URL": emulator.base_url,
            "ASSETGEN_POLL_INTERVAL": "0.05", "ASSETGEN_RETRY_BACKOFF": "0.01", **more}


def run(manifest: Path, emulator: GatewayEmulator, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, ["-f", str(manifest), *args], env=env or env_for(emulator),
                         catch_exceptions=False)


def start_build(manifest: Path, emulator: GatewayEmulator, *args: str) -> subprocess.Popen[str]:
    """``python -m assetgen build`` in a real process (for kill -9, Ctrl-C and races)."""
    env = {**os.environ, **env_for(emulator)}
    return subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), "build", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def emulator(**kwargs: Any) -> GatewayEmulator:
    return GatewayEmulator(api_key=API_KEY, **kwargs)


def all_text_under(root: Path) -> str:
    """Every readable byte under ``root`` as text, for 'the key never appears anywhere' checks."""
    chunks = []
    for path in root.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("latin-1"))
    return "\n".join(chunks)


def journal_records(root: Path) -> list[dict[str, Any]]:
    """The journal's records as a running build may leave them (one removed between the listing and
    the read is skipped: its target just finished)."""
    folder = root / ".assetgen" / "journal"
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            found.append(json.loads(path.read_text()))
        except FileNotFoundError:
            continue
    return found


def journaled(root: Path) -> list[dict[str, Any]]:
    """Records whose every submission has its task id (an intent alone is an uncertain key)."""
    return [r for r in journal_records(root) if r["submissions"] and all(s["task_id"] for s in r["submissions"])]
