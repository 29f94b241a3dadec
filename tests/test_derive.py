"""Post-processing: resize/fit, format, quality, key_out and several outputs, made locally and never paid.

``derive.derive`` is checked on synthetic images whose pixels we know; everything else runs the CLI,
with the gateway emulator where the claim is "nothing is submitted" (``emulator.submissions``).
"""

from __future__ import annotations

import hashlib
import io
import re
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from assetgen.images.derive import Derivation, KeyOut, derive
from assetgen.testing.emulator import GatewayEmulator
from assetgen.state.store import Store

from helpers.project import ProjectDir
from helpers.online import SMALL, emulator, env_for

HEAD = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"
"""


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator() as emu:
        yield emu


def jpeg(image: Image.Image, quality: int = 95) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def opened(data: bytes | Path) -> Image.Image:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        image.load()
        return image


def px(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The pixel at ``xy`` as a tuple of channels (RGB or RGBA)."""
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def lock_of(p: ProjectDir) -> dict:
    return tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]


def generated(p: ProjectDir, key: str) -> list[bytes]:
    store = Store(p.cache)
    entry = store.index.lookup(key, placeholder_ok=True)
    assert entry is not None, f"nothing cached for {key}"
    images = [store.read_image(i) for i in entry.images]
    found = [i for i in images if i is not None]
    assert len(found) == len(images), f"some images of {key} are missing from the cache"
    return found


def derived_entries(p: ProjectDir) -> dict[str, tuple[int, int]]:
    """The derivation cache's entries: name → (inode, mtime_ns), so a rewrite shows."""
    return {f.stem: (f.stat().st_ino, f.stat().st_mtime_ns)
            for f in sorted((p.cache / "index" / "derived").glob("*.json"))}


# -- derive() on images we drew ---------------------------------------------------------------------

WIDE = jpeg(Image.new("RGB", (48, 32), (200, 30, 30)))      # wider than the square outputs below


@pytest.mark.parametrize("fit", ["cover", "contain", "stretch"])
@pytest.mark.parametrize("fmt, pil", [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_every_fit_gives_the_exact_size_in_the_asked_format(fit: str, fmt: str, pil: str) -> None:
    for size in ((40, 40), (30, 60), (7, 3)):
        image = opened(derive(WIDE, Derivation(format=fmt, resize=size, fit=fit)))
        assert image.size == size and image.format == pil


def test_contain_pads_white_for_jpg_and_transparent_for_png() -> None:
    # 48x32 into 40x40: scaled to 40x27, so rows 0-5 and 33-39 are padding.
    flat = opened(derive(WIDE, Derivation(format="jpg", resize=(40, 40), fit="contain"))).convert("RGB")
    assert all(c >= 245 for c in px(flat, (20, 1)))
    r, g, b = px(flat, (20, 20))
    assert r > 150 and g < 80 and b < 80
    alpha = opened(derive(WIDE, Derivation(format="png", resize=(40, 40), fit="contain")))
    assert alpha.mode == "RGBA"
    assert px(alpha, (20, 1))[3] == 0 and px(alpha, (20, 38))[3] == 0
    assert px(alpha, (20, 20))[3] == 255
    # An explicit background replaces the default.
    blue = opened(derive(WIDE, Derivation(format="png", resize=(40, 40), fit="contain", background="#0000ff")))
    assert px(blue, (20, 1)) == (0, 0, 255, 255)
    # cover and stretch leave no padding at all.
    for fit in ("cover", "stretch"):
        full = opened(derive(WIDE, Derivation(format="png", resize=(40, 40), fit=fit)))
        assert full.getchannel("A").getextrema() == (255, 255)


def test_quality_changes_the_bytes() -> None:
    photo = Image.effect_noise((64, 64), 60).convert("RGB")
    source = jpeg(photo)
    low = derive(source, Derivation(quality=30))
    high = derive(source, Derivation(quality=95))
    assert low != high and len(low) < len(high)
    assert opened(low).format == "JPEG"
    webp_low, webp_high = Derivation(format="webp", quality=30), Derivation(format="webp", quality=95)
    assert derive(source, webp_low) != derive(source, webp_high)
    assert derive(source, Derivation()) == source              # the default: the generated JPEG as it is


def test_key_out_clears_the_background_but_not_a_white_area_inside_the_subject() -> None:
    canvas = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(canvas).ellipse((10, 10, 54, 54), outline=(30, 30, 40), width=6)   # a ring; white inside
    source = jpeg(canvas)
    image = opened(derive(source, Derivation(format="png", key_out=KeyOut(color="#ffffff", tolerance=12))))
    assert image.mode == "RGBA" and image.size == (64, 64)
    for corner in ((0, 0), (63, 0), (0, 63), (63, 63), (32, 2)):
        assert px(image, corner)[3] == 0, corner
    assert px(image, (32, 13))[3] == 255  # the ring
    assert px(image, (32, 32))[3] == 255  # enclosed white
    assert all(c >= 240 for c in px(image, (32, 32))[:3])
    # The same for webp, and after a resize.
    small = opened(derive(source, Derivation(format="webp", resize=(32, 32), key_out=KeyOut())))
    assert small.size == (32, 32) and px(small, (0, 0))[3] == 0
    assert px(small, (16, 16))[3] == 255


# -- formats and extensions through the CLI -----------------------------------------------------------

def test_format_alone_sets_the_default_extension(empty_project: ProjectDir) -> None:
    empty_project.write(HEAD + """
        [targets.a]
        prompt = "A"
        format = "png"

        [targets.b]
        prompt = "B"
        format = "webp"
        quality = 60

        [targets.c]
        prompt = "C"
        format = "jpg"

        [targets.d]
        prompt = "D"
        output = "d.webp"
        resize = [64, 32]
        fit = "stretch"
        """)
    empty_project.ok("build", "--offline")
    out = empty_project.root / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.webp", "c.jpg", "d.webp"]
    for name, pil in (("a.png", "PNG"), ("b.webp", "WEBP"), ("c.jpg", "JPEG"), ("d.webp", "WEBP")):
        assert opened(out / name).format == pil
    assert opened(out / "d.webp").size == (64, 32)
    assert opened(out / "a.png").size == (512, 512)             # 1:1 at 0.5K, not resized


@pytest.mark.parametrize("body, fieldname, says", [
    ('format = "png"\noutput = "a.jpg"  # HERE', "output", "'a.jpg' must end in .png (format = \"png\")"),
    ('format = "jpg"\noutput = "a.webp"  # HERE', "output", "'a.webp' must end in .jpg or .jpeg"),
    ('output = "a.gif"  # HERE', "output", "'a.gif' must end in .jpg, .png or .webp"),
    ('outputs = [{ output = "a.png", format = "webp" }]  # HERE', "outputs", "'a.png' must end in .webp"),
    ('format = "jpg"\nkey_out = { color = "#ffffff" }  # HERE', "key_out", "JPEG cannot hold"),
    ('fit = "fill"  # HERE', "fit", "'cover', 'contain' or 'stretch'"),
], ids=["png-vs-jpg", "jpg-vs-webp", "gif", "outputs", "key-out-jpg", "bad-fit"])
def test_an_extension_or_field_that_disagrees_is_a_manifest_error(empty_project: ProjectDir, body: str,
                                                                    fieldname: str, says: str) -> None:
    text = HEAD + '\n[targets.a]\nprompt = "A"\n' + body + "\n"
    empty_project.write(text)
    line = next(n for n, t in enumerate(text.splitlines(), start=1) if "# HERE" in t)
    result = empty_project.run("build", "--offline")
    assert result.exit_code == 2, result.output
    assert f"assets.toml:{line}: target 'a', field '{fieldname}'" in result.output
    assert says in result.output
    assert not (empty_project.root / "out").exists()


# -- never paid for -----------------------------------------------------------------------------------

def test_several_outputs_from_one_generation(empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p = empty_project
    p.write(HEAD + """
        [targets.hire_staff]
        prompt = "A hire-staff icon"
        outputs = [
          { output = "icons/hire_staff.png",     resize = [96, 96] },
          { output = "icons/hire_staff@32.png",  resize = [32, 32] },
          { output = "icons/hire_staff@16.webp", resize = [16, 16], fit = "contain" },
          { output = "icons/hire_staff.jpg" },
        ]
        """)
    p.ok("build", env=env_for(gateway))
    assert len(gateway.submissions) == 1
    icons = p.root / "out" / "icons"
    assert {f.name: (opened(f).format, opened(f).size) for f in icons.iterdir()} == {
        "hire_staff.png": ("PNG", (96, 96)), "hire_staff@32.png": ("PNG", (32, 32)),
        "hire_staff@16.webp": ("WEBP", (16, 16)), "hire_staff.jpg": ("JPEG", SMALL)}
    entry = lock_of(p)["hire_staff"]
    [source] = generated(p, entry["key"])
    source_sha = hashlib.sha256(source).hexdigest()
    assert (icons / "hire_staff.jpg").read_bytes() == source
    for out in entry["outputs"]:
        data = (p.root / out["path"]).read_bytes()
        assert out["sha256"] == hashlib.sha256(data).hexdigest() and out["size"] == len(data)
        if out["path"].endswith(".jpg"):
            assert "derivation" not in out and out["sha256"] == source_sha
        else:
            assert out["source"] == source_sha and re.fullmatch(r"[0-9a-f]{64}", out["derivation"])
    assert len({o.get("derivation") for o in entry["outputs"]}) == 4
    assert "Nothing to build" in p.ok("build", env=env_for(gateway)).output
    assert len(gateway.submissions) == 1


def test_changing_only_output_settings_never_submits_and_is_cached(empty_project: ProjectDir,
                                                                    gateway: GatewayEmulator) -> None:
    p = empty_project
    env = env_for(gateway)
    p.write(HEAD + """
        [targets.hero]
        prompt = "A knight"
        resize = [40, 40]
        format = "png"
        """)
    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    first = lock_of(p)["hero"]
    out = p.root / "out" / "hero.png"
    first_bytes = out.read_bytes()
    [source] = generated(p, first["key"])
    assert first_bytes == derive(source, Derivation(format="png", resize=(40, 40)))
    assert first["outputs"][0]["source"] == hashlib.sha256(source).hexdigest()
    assert first["outputs"][0]["sha256"] == hashlib.sha256(first_bytes).hexdigest()
    assert set(derived_entries(p)) == {first["outputs"][0]["derivation"]}

    edits = [('resize = [40, 40]', 'resize = [20, 30]'), ('format = "png"', 'format = "png"\nfit = "contain"'),
             ('fit = "contain"', 'fit = "stretch"'), ('format = "png"', 'format = "webp"\nquality = 40')]
    seen = {first["outputs"][0]["derivation"]}
    for old, new in edits:
        p.edit(old, new)
        plan = p.plan()
        [item] = plan["targets"]
        assert item["action"] == "restore" and item["cost"] == 0 and plan["total_cost"] == 0, item
        assert item["reasons"][0]["kind"] in ("derive", "missing")
        assert "free" in p.ok("plan").output
        p.ok("build", env=env)
        assert len(gateway.submissions) == 1, (old, new)
        entry = lock_of(p)["hero"]
        assert entry["key"] == first["key"] and entry["task_id"] == first["task_id"]
        assert entry["outputs"][0]["source"] == first["outputs"][0]["source"]
        assert entry["outputs"][0]["derivation"] not in seen
        seen.add(entry["outputs"][0]["derivation"])
    assert opened(p.root / "out" / "hero.webp").size == (20, 30)
    text = p.ok("plan").output
    assert "Nothing to build" in text

    # "output settings changed" is what plan says for a change that keeps the path.
    p.edit("quality = 40", "quality = 70")
    plan = p.items()["hero"]
    assert [r["text"] for r in plan["reasons"]] == ["output settings changed: out/hero.webp"]
    low = (p.root / "out" / "hero.webp").read_bytes()
    p.ok("build", env=env)
    assert (p.root / "out" / "hero.webp").read_bytes() != low and len(gateway.submissions) == 1

    # Back to the first settings: the derivation is in the cache, so it is not made (or recorded) again.
    p.write(HEAD + """
        [targets.hero]
        prompt = "A knight"
        resize = [40, 40]
        format = "png"
        """)
    before, objects = derived_entries(p), p.objects()
    out.unlink()
    plan = p.items()["hero"]
    assert plan["action"] == "restore" and [r["kind"] for r in plan["reasons"]] == ["missing"]
    p.ok("build", env=env)
    assert out.read_bytes() == first_bytes
    assert derived_entries(p) == before and p.objects() == objects
    assert lock_of(p)["hero"]["outputs"] == first["outputs"]
    assert len(gateway.submissions) == 1


def test_quality_on_a_jpg_output_re_encodes_it_for_free(empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p = empty_project
    env = env_for(gateway)
    p.write(HEAD + '\n[targets.hero]\nprompt = "A knight"\n')
    p.ok("build", env=env)
    out = p.root / "out" / "hero.jpg"
    [source] = generated(p, lock_of(p)["hero"]["key"])
    assert out.read_bytes() == source
    p.edit('prompt = "A knight"', 'prompt = "A knight"\nquality = 40')
    assert [r["text"] for r in p.items()["hero"]["reasons"]] == ["output settings changed: out/hero.jpg"]
    p.ok("build", env=env)
    data = out.read_bytes()
    assert data != source and opened(data).format == "JPEG" and opened(data).size == SMALL
    assert data == derive(source, Derivation(quality=40))
    assert len(gateway.submissions) == 1


def test_key_out_end_to_end_makes_the_generated_background_transparent(empty_project: ProjectDir,
                                                                        gateway: GatewayEmulator) -> None:
    p = empty_project
    env = env_for(gateway)
    p.write(HEAD + '\n[targets.badge]\nprompt = "A badge"\nformat = "png"\n')
    p.ok("build", env=env)
    [source] = generated(p, lock_of(p)["badge"]["key"])
    picture = opened(source).convert("RGB")
    # The emulator paints a flat background with text in the top-left corner: key out that background.
    background = px(picture, (SMALL[0] - 1, SMALL[1] - 1))
    colour = "#" + "".join(f"{c:02x}" for c in background[:3])
    # (The ink's core: its anti-aliased rim is partly transparent now, as a soft key_out makes it.)
    ink = max(((x, y) for y in range(SMALL[1]) for x in range(SMALL[0])),
              key=lambda xy: sum(abs(a - b) for a, b in zip(px(picture, xy), background, strict=True)))
    assert px(opened(p.root / "out" / "badge.png"), (0, SMALL[1] - 1))[3] == 255

    p.edit('format = "png"', f'format = "png"\nkey_out = {{ color = "{colour}", tolerance = 24 }}')
    assert p.items()["badge"]["cost"] == 0
    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    keyed = opened(p.root / "out" / "badge.png")
    assert keyed.mode == "RGBA"
    for corner in ((0, SMALL[1] - 1), (SMALL[0] - 1, 0), (SMALL[0] - 1, SMALL[1] - 1)):
        assert px(keyed, corner)[3] == 0, corner
    assert px(keyed, ink)[3] == 255


def test_explain_describes_each_output(empty_project: ProjectDir) -> None:
    empty_project.write(HEAD + textwrap.dedent("""
        [targets.hero]
        prompt = "A knight"
        outputs = [
          { output = "hero.png", resize = [64, 96], fit = "contain" },
          { output = "hero.jpg" },
        ]
        """))
    text = empty_project.ok("explain", "hero").output
    assert "output     out/hero.png  (png, resize 64x96 contain)" in text
    assert re.search(r"^  output     out/hero\.jpg$", text, re.M)
