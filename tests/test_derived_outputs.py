"""Derived outputs are made from the image the lock names (issue 12, item 1).

Observed: `build --offline`, then an online `build` of a target with a resized output kept the
placeholder's pixels in the resized file (the derivation cache was keyed by the generation key, which a
placeholder and the real image share), the lock contradicted itself and `plan` said up to date. Every
test here runs the CLI against the gateway emulator (a real HTTP server) and compares pixels with the
image the emulator served.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tomllib
from collections.abc import Iterator

import pytest
import tomli_w
from PIL import Image, ImageChops, ImageOps, ImageStat

from assetgen.images.derive import Derivation, derivation_key, derive, legacy_derivation_key
from assetgen.testing.emulator import GatewayEmulator
from assetgen.state.store import Store

from helpers.project import ProjectDir
from helpers.online import emulator, env_for

MANIFEST = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.banner]
prompt = "A castle banner"
aspect_ratio = "3:2"
outputs = [{output = "banner.jpg"}, {output = "banner_512.png", resize = [512, 341]}]
"""
RESIZED = Derivation(format="png", resize=(512, 341))


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator(image_size=None) as emu:          # the catalogue's size: 632x424 for 3:2 at 0.5K
        yield emu


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixels(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA")


def served(emu: GatewayEmulator) -> bytes:
    """The one image the emulator handed out."""
    [image] = emu._images.values()
    return image


def lock_entry(p: ProjectDir) -> dict:
    return tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]["banner"]


def placeholder_of(p: ProjectDir, key: str) -> bytes:
    store = Store(p.cache)
    entry = store.index.lookup(key, placeholder_ok=True)
    assert entry is not None and entry.placeholder
    data = store.read_image(entry.images[0])
    assert data is not None
    return data


def assert_made_from(p: ProjectDir, image: bytes) -> None:
    """Every output is made from ``image`` and the lock says so, byte for byte."""
    out = p.root / "out"
    assert (out / "banner.jpg").read_bytes() == image
    resized = (out / "banner_512.png").read_bytes()
    assert resized == derive(image, RESIZED)
    # ... and, independently of assetgen's code, its pixels are the served image resized the same way.
    expected = ImageOps.fit(pixels(image), (512, 341), Image.Resampling.LANCZOS)
    difference = ImageChops.difference(pixels(resized).convert("RGB"), expected.convert("RGB"))
    assert max(hi for _lo, hi in difference.getextrema()) <= 64
    assert ImageStat.Stat(difference.convert("L")).mean[0] < 2.0
    entry = lock_entry(p)
    by_path = {o["path"]: o for o in entry["outputs"]}
    plain, derived = by_path["out/banner.jpg"], by_path["out/banner_512.png"]
    assert plain["sha256"] == sha(image) and "derivation" not in plain and "source" not in plain
    assert derived["sha256"] == sha(resized) and derived["size"] == len(resized)
    assert derived["source"] == sha(image)
    assert derived["derivation"] == derivation_key(sha(image), RESIZED)


def test_offline_then_online_remakes_every_derived_output_from_the_served_image(
        empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(MANIFEST)
    p.ok("build", "--offline")
    key = lock_entry(p)["key"]
    placeholder = placeholder_of(p, key)
    assert_made_from(p, placeholder)

    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    real = served(gateway)
    assert real != placeholder
    assert_made_from(p, real)
    assert lock_entry(p)["placeholder"] is False

    # Up to date now: plan says so, a second build submits nothing.
    assert "Nothing to build" in p.ok("plan", env=env).output
    assert "Nothing to build" in p.ok("build", env=env).output
    assert len(gateway.submissions) == 1

    # A deleted derived output comes back as the real derivation, free.
    (p.root / "out" / "banner_512.png").unlink()
    assert [r["kind"] for r in p.items()["banner"]["reasons"]] == ["missing"]
    p.ok("build", env=env)
    assert_made_from(p, real)

    # A hand-edited derived output is left alone, and --force replaces it with the real derivation.
    Image.new("RGB", (512, 341), (1, 2, 3)).save(p.root / "out" / "banner_512.png")
    blocked = p.run("build", env=env)
    assert blocked.exit_code == 1 and "modified by hand" in blocked.output
    forced = p.ok("build", "--force", env=env)
    assert "Nothing to build" not in forced.output
    assert_made_from(p, real)
    assert len(gateway.submissions) == 1


@pytest.mark.parametrize("damage", ["legacy_key", "older_source"])
def test_a_lock_with_a_placeholder_derivation_is_stale_and_heals_free(
        empty_project: ProjectDir, gateway: GatewayEmulator, damage: str) -> None:
    """The lock the bug left behind: banner.jpg real, banner_512.png the placeholder's derivation."""
    p, env = empty_project, env_for(gateway)
    p.write(MANIFEST)
    p.ok("build", "--offline")
    key = lock_entry(p)["key"]
    placeholder = placeholder_of(p, key)
    p.ok("build", env=env)
    real = served(gateway)

    stale_bytes = derive(placeholder, RESIZED)
    (p.root / "out" / "banner_512.png").write_bytes(stale_bytes)
    data = tomllib.loads(p.lock.read_text(encoding="utf-8"))
    for out in data["targets"]["banner"]["outputs"]:
        if out["path"] == "out/banner_512.png":
            out["sha256"], out["size"] = sha(stale_bytes), len(stale_bytes)
            if damage == "legacy_key":      # what the old code wrote: the real source, the old key
                out["derivation"] = legacy_derivation_key(key, 0, RESIZED)
            else:                           # a derivation made from another image than banner.jpg
                out["source"] = sha(placeholder)
                out["derivation"] = derivation_key(sha(placeholder), RESIZED)
    p.lock.write_text("# assets.lock\n" + tomli_w.dumps(data), encoding="utf-8")

    # Decided from the lock alone: without the cache index, plan still sees it.
    index = p.cache / "index"
    shutil.move(index, p.root / "index-aside")
    item = p.items()["banner"]
    assert item["stale"] and [r["kind"] for r in item["reasons"]] == [
        "legacy" if damage == "legacy_key" else "source"]
    if damage == "older_source":
        assert item["reasons"][0]["text"] == "derived from an older image: out/banner_512.png"
    shutil.move(p.root / "index-aside", index)
    item = p.items()["banner"]
    assert item["action"] == "restore" and item["cost"] == 0

    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    assert_made_from(p, real)
    assert "Nothing to build" in p.ok("build", env=env).output


def test_a_clone_without_the_cache_remakes_a_stale_derivation_from_the_committed_image(
        empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(MANIFEST)
    p.ok("build", env=env)
    real = served(gateway)
    (p.root / "out" / "banner_512.png").unlink()
    shutil.rmtree(p.cache)                          # a fresh clone: the lock and the committed images
    item = p.items()["banner"]
    assert item["action"] == "restore" and item["cost"] == 0
    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    assert_made_from(p, real)


def test_a_no_op_plan_reads_no_cache_index(empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(MANIFEST)
    p.ok("build", env=env)
    shutil.rmtree(p.cache / "index")
    assert "Nothing to build" in p.ok("plan").output


def test_another_candidate_remakes_the_derived_outputs(empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(MANIFEST.replace('aspect_ratio = "3:2"', 'aspect_ratio = "3:2"\ncandidates = 2'))
    p.ok("build", env=env)
    store = Store(p.cache)
    entry = store.index.lookup(lock_entry(p)["key"])
    assert entry is not None
    first, second = (store.read_image(i) for i in entry.images)
    assert first is not None and second is not None and first != second
    assert pixels((p.root / "out" / "banner_512.png").read_bytes()) == pixels(derive(first, RESIZED))
    p.ok("pick", "banner", "2", env=env)
    p.ok("build", env=env)
    assert pixels((p.root / "out" / "banner_512.png").read_bytes()) == pixels(derive(second, RESIZED))
    assert (p.root / "out" / "banner.jpg").read_bytes() == second
    assert len(gateway.submissions) == 1
