"""Derivations made once and cheaply: one decode per generation, derived outputs not cached as images
(only their hashes: they are remade, byte for byte, from the generation), and a derivation version in
the derivation key, so outputs made by older derivation code are remade once, for free.
"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from assetgen.images import derive as derive_module
from assetgen.testing.emulator import GatewayEmulator

from helpers.online import emulator, env_for
from helpers.project import ProjectDir

ICONS = """\
[settings]
out_dir = "out"
{cache}
[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.icon]
prompt = "A round potion icon"
outputs = [
  {{ output = "icon-64.png", resize = [64, 64] }},
  {{ output = "icon-32.png", resize = [32, 32] }},
  {{ output = "icon-16.png", resize = [16, 16] }},
  {{ output = "icon-48.webp", resize = [48, 48], key_out = {{ color = "#ffffff" }} }},
  {{ output = "icon-24.png", resize = [24, 24], key_out = {{ color = "#ffffff" }} }},
]
"""


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator() as emu:
        yield emu


def lock_outputs(p: ProjectDir) -> dict[str, dict]:
    data = tomllib.loads(p.lock.read_text(encoding="utf-8"))
    return {o["path"]: o for entry in data["targets"].values() for o in entry["outputs"]}


def files_match_lock(root: Path, outputs: dict[str, dict]) -> bool:
    return all(hashlib.sha256((root / path).read_bytes()).hexdigest() == o["sha256"] for path, o in outputs.items())


def test_all_outputs_of_a_generation_come_from_one_decode(empty_project: ProjectDir,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    p = empty_project
    p.write(ICONS.format(cache=""))
    decodes: list[int] = []
    real = derive_module._decode
    monkeypatch.setattr(derive_module, "_decode", lambda data: decodes.append(len(data)) or real(data))
    p.ok("build", "--offline")
    assert len(decodes) == 1, decodes
    assert len(lock_outputs(p)) == 5 and files_match_lock(p.root, lock_outputs(p))


def test_derived_outputs_are_not_cached_as_images_and_are_remade_byte_for_byte(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(ICONS.format(cache=""))
    p.ok("build", "--offline")
    outputs = lock_outputs(p)
    objects = {o.stem for o in p.objects()}
    # The cache holds the generation only: no derived output is stored a second time.
    assert objects == {next(iter(outputs.values()))["source"]}
    for path in outputs:
        (p.root / path).unlink()
    plan = p.items("--offline")["icon"]
    assert plan["action"] == "restore" and plan["cost"] == 0
    p.ok("build", "--offline")
    assert lock_outputs(p) == outputs and files_match_lock(p.root, outputs)
    assert {o.stem for o in p.objects()} == objects


def test_a_fresh_clone_restores_from_the_remote_and_remakes_the_same_bytes(
        tmp_path: Path, empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p = empty_project
    remote = tmp_path / "remote"
    p.write(ICONS.format(cache=f'\n[cache]\nremote = "file://{remote}"\n'))
    env = env_for(gateway)
    p.ok("build", env=env)
    outputs = lock_outputs(p)
    assert len(gateway.submissions) == 1
    remote_objects = sorted(remote.glob("objects/*/*"))
    assert [o.stem for o in remote_objects] == [next(iter(outputs.values()))["source"]]
    # A clone: the manifest and the lock, no outputs, no cache.
    for path in outputs:
        (p.root / path).unlink()
    shutil.rmtree(p.cache)
    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    assert lock_outputs(p) == outputs and files_match_lock(p.root, outputs)


def test_a_new_derivation_version_remakes_old_outputs_once_for_free(
        empty_project: ProjectDir, gateway: GatewayEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    p = empty_project
    p.write(ICONS.format(cache=""))
    env = env_for(gateway)
    with monkeypatch.context() as older:                               # the code before this version
        older.setattr(derive_module, "DERIVATION_VERSION", derive_module.DERIVATION_VERSION - 1)
        older.setattr(derive_module, "PNG_COMPRESS_LEVEL", 6)
        older.setattr(derive_module, "PNG_COMPRESS_TYPE", 0)       # zlib's default strategy
        p.ok("build", env=env)
        old = lock_outputs(p)
        assert len(gateway.submissions) == 1
        assert "Nothing to build" in p.ok("plan").output
    # An upgrade changes assetgen's sources, so nothing remembered under the old code stamp is trusted
    # (``memos.code_stamp``); a patch in this process does not: forget the remembered results by hand.
    shutil.rmtree(p.cache / "stat-parsed")

    plan = p.plan()
    item = p.items()["icon"]
    assert item["action"] == "restore" and item["cost"] == 0 and plan["total_cost"] == 0
    assert {r["kind"] for r in item["reasons"]} == {"derive"}
    p.ok("build", env=env)
    new = lock_outputs(p)
    assert len(gateway.submissions) == 1                               # nothing submitted, nothing paid
    assert all(new[path]["derivation"] != old[path]["derivation"] for path in old)
    assert all(new[path]["source"] == old[path]["source"] for path in old)
    assert any(new[path]["sha256"] != old[path]["sha256"] for path in old)   # the bytes did change
    assert files_match_lock(p.root, new)
    assert "Nothing to build" in p.ok("plan").output
