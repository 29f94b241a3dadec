"""Building blocks for unit tests of the core: a manifest loaded from text in a folder, its keys, and
the lock entry a build would have written for a target, without the CLI or a build."""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path
from typing import Any

from assetgen.engine.keys import KeyedTarget, compute_keys
from assetgen.manifest.loader import load
from assetgen.manifest.model import Manifest
from assetgen.state.lockfile import LockedOutput, LockEntry
from assetgen.state.store import sha256_bytes, sha256_file

HEAD = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"
"""


def load_manifest(root: Path, body: str, *, head: str = HEAD, profile: str | None = None) -> Manifest:
    """``head`` + ``body`` written to ``root/assets.toml`` and loaded (validated, resolved)."""
    path = root / "assets.toml"
    path.write_text(textwrap.dedent(head) + textwrap.dedent(body), encoding="utf-8")
    return load(path, profile=profile)


def keys_of(manifest: Manifest) -> dict[str, KeyedTarget]:
    return compute_keys(manifest, sha256_file)


def built_entry(manifest: Manifest, keyed: KeyedTarget, data: bytes = b"image", *, write: bool = True,
                placeholder: bool = False, cost: float = 0.0) -> LockEntry:
    """The lock entry of ``keyed`` as built, each output holding ``data`` (written to disk if ``write``)."""
    sha = sha256_bytes(data)
    outputs = []
    for out in keyed.target.outputs:
        if write:
            path = manifest.root / out.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        outputs.append(LockedOutput(path=out.path, sha256=sha, size=len(data), source=sha))
    return LockEntry(key=keyed.key, model=keyed.target.model, outputs=tuple(outputs), spec=keyed.spec,
                     cost=cost, task_id="task-1", built_at="2026-01-01T00:00:00Z", placeholder=placeholder)


def merged_toml_blocks(text: str, into: dict[str, Any]) -> dict[str, Any]:
    """Every ```toml block of ``text`` (a README section) merged into ``into`` table by table: the
    README's snippets repeat tables such as ``[defaults]``, so they cannot simply be concatenated."""
    def merge(target: dict[str, Any], more: dict[str, Any]) -> None:
        for key, value in more.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value

    for block in re.findall(r"```toml\n(.*?)```", text, re.DOTALL):
        merge(into, tomllib.loads(block))
    return into
