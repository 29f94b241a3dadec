"""Keys of every existing manifest never change (issue 17: "existing users rebuild nothing after upgrading").

``tests/golden/keys_before_composition.json`` was written by the code *before* styles composed, prompt
templates, output sets and per-value matrix fields existed: the key of every target (and its output
paths) of every bundled example and of representative test manifests (``tests/golden/key_manifests``),
under every profile. This test recomputes them with today's code and compares. Regenerate it only when a
key is meant to change (never for a new feature): ``python tests/test_keys_golden.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from assetgen.engine.keys import compute_keys
from assetgen.manifest.loader import load

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "keys_before_composition.json"
MANIFESTS = [REPO / "assets.toml", *sorted((REPO / "examples").glob("*/assets.toml")),
             *sorted((REPO / "tests" / "golden" / "key_manifests").glob("*.toml"))]


def _hash_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def keys_of(path: Path) -> dict[str, Any]:
    """{profile or "": {target: {"key", "outputs"}}} for the manifest at ``path``."""
    profiles = list(tomllib.loads(path.read_text(encoding="utf-8")).get("profiles", {}))
    found: dict[str, Any] = {}
    for profile in [None, *profiles]:
        manifest = load(path, profile=profile)
        keyed = compute_keys(manifest, _hash_file)
        found[profile or ""] = {
            name: {"key": k.key, "outputs": [[o.path, o.source] for o in k.target.outputs]}
            for name, k in keyed.items()}
    return found


def all_keys() -> dict[str, Any]:
    return {p.relative_to(REPO).as_posix(): keys_of(p) for p in MANIFESTS}


def test_the_golden_covers_every_bundled_manifest() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert set(golden) == {p.relative_to(REPO).as_posix() for p in MANIFESTS}
    assert sum(len(targets) for every in golden.values() for targets in every.values()) > 60


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_keys_and_outputs_are_what_they_were_before_composition(path: Path) -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))[path.relative_to(REPO).as_posix()]
    now = keys_of(path)
    assert set(now) == set(golden)
    for profile, targets in golden.items():
        assert list(now[profile]) == list(targets), f"targets of profile {profile!r}"
        for name, was in targets.items():
            assert now[profile][name] == was, f"{path.name} profile {profile!r} target {name}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_text(json.dumps(all_keys(), indent=1) + "\n", encoding="utf-8")
