"""Every downloaded image is validated before it is cached, written or locked (issue 12, item 4).

Observed: a gateway answering a result URL with an HTML error page, 0 bytes, a truncated JPEG, PNG
bytes for a .jpg or a decompression bomb had the junk written as the output, cached under the key and
locked. ``images.check`` is tested alone on bytes we make; the rest runs the CLI against the gateway
emulator (a real HTTP server) serving junk through ``Faults.junk_downloads``/``download_payload``.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tomllib
import zlib
from collections.abc import Iterator

import pytest
from PIL import Image

from assetgen import catalog
from assetgen.images import check as imagecheck
from assetgen.testing.emulator import Faults, GatewayEmulator
from assetgen.errors import ImageSizeMismatch, InvalidImage
from assetgen.state.store import Store

from helpers.project import ProjectDir
from helpers.online import SMALL, emulator, env_for

HEAD = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.a]
prompt = "A lighthouse"
"""


def encoded(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128).save(out, fmt)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with hardly any pixel data."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        return struct.pack(">I", len(payload)) + kind + payload + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) + \
        chunk(b"IEND", b"")


# -- imagecheck on bytes we made ------------------------------------------------------------------------

@pytest.mark.parametrize("data, says", [
    (b"", "0 bytes"),
    (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "an HTML page"),
    (encoded((64, 48))[:300], "a damaged JPEG"),
    (encoded((64, 48), "GIF", "L"), "a GIF image; only JPEG, PNG or WEBP"),
    (png_header_only(100_000, 100_000), "decompression bomb"),     # Pillow's own error, not a warning
    (png_header_only(7000, 7000), "more than any model draws"),    # below Pillow's threshold: ours
    (b"\x00" * 100, "100 bytes that are not a JPEG, PNG or WEBP image"),
], ids=["empty", "html", "truncated", "gif", "huge-bomb", "bomb", "zeros"])
def test_junk_is_an_invalid_image_saying_what_it_is(data: bytes, says: str) -> None:
    with pytest.raises(InvalidImage) as caught:
        imagecheck.check(data, expected=(64, 48))
    assert str(caught.value).startswith("the gateway returned an invalid image (")
    assert says in str(caught.value)
    assert caught.value.code == "invalid_image"


def test_sizes_within_five_percent_are_accepted_and_noted_others_refused() -> None:
    expected = catalog.pixel_size("1:1", "0.5K")
    exact = imagecheck.check(encoded(expected), expected=expected)
    assert exact.format == "jpg" and exact.size_note == ""
    near = imagecheck.check(encoded((497, 512), "PNG"), expected=expected)
    assert near.format == "png" and near.size_note.startswith("served 497x512 where the catalogue says 512x512")
    webp = imagecheck.check(encoded((512, 530), "WEBP"), expected=expected)
    assert webp.format == "webp" and webp.size_note
    with pytest.raises(ImageSizeMismatch, match="512x384 image where the catalogue says 512x512 for 1:1 at "
                                                "0.5K \\(another aspect ratio\\)"):
        imagecheck.check(encoded((512, 384)), expected=expected, asked="1:1 at 0.5K")
    with pytest.raises(ImageSizeMismatch, match="off by more than 5 %"):
        imagecheck.check(encoded((1024, 1024)), expected=expected)
    largest = max(w * h for r in catalog.STANDARD_RATIOS for w, h in [catalog.pixel_size(r, "4K")])
    assert imagecheck.MAX_PIXELS >= 2 * largest


# -- end to end against the emulator ------------------------------------------------------------------------

@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator(faults=Faults(junk_downloads=1000)) as emu:
        yield emu


def objects(p: ProjectDir) -> dict[str, bytes]:
    return {f.stem: f.read_bytes() for f in (p.cache / "objects").glob("*/*.jpg")}


def lock_of(p: ProjectDir) -> dict:
    return tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"] if p.lock.exists() else {}


def downloads(emu: GatewayEmulator) -> int:
    return emu.count("GET", "/files/")


@pytest.mark.parametrize("payload", ["html", "empty", "truncated", "bomb"])
def test_junk_is_downloaded_again_never_resubmitted_and_never_kept(
        empty_project: ProjectDir, gateway: GatewayEmulator, payload: str) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(HEAD)
    gateway.faults.download_payload = payload
    result = p.run("build", env=env)
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "the gateway returned an invalid image (" in text and "downloaded 4 times" in text
    assert len(gateway.submissions) == 1 and downloads(gateway) == 4
    assert objects(p) == {}                                 # nothing invalid entered the cache
    assert not (p.root / "out" / "a.jpg").exists() and "a" not in lock_of(p)
    assert "Traceback" not in result.output

    # The gateway serves the real image again: the next build downloads it, and pays nothing more.
    gateway.faults.junk_downloads = 0
    p.ok("build", env=env)
    assert len(gateway.submissions) == 1
    [task_id] = gateway.tasks
    assert (p.root / "out" / "a.jpg").read_bytes() == gateway._images[(task_id, 0)]
    assert "Nothing to build" in p.ok("build", env=env).output


def test_junk_that_clears_up_within_the_retries_costs_nothing_more(empty_project: ProjectDir,
                                                                    gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(HEAD)
    gateway.faults.junk_downloads, gateway.faults.download_payload = 2, "truncated"
    p.ok("build", env=env)
    assert len(gateway.submissions) == 1 and downloads(gateway) == 3
    with Image.open(p.root / "out" / "a.jpg") as image:
        image.load()
        assert image.format == "JPEG" and image.size == SMALL
    assert [hashlib.sha256((p.root / "out" / "a.jpg").read_bytes()).hexdigest()] == list(objects(p))


def test_a_png_served_for_a_jpg_output_is_converted(empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(HEAD + '\n[targets.b]\nprompt = "A boat"\noutput = "b.png"\n')
    gateway.faults.download_payload = "png"
    p.ok("build", env=env)
    entries = lock_of(p)
    for name, fmt in (("a", "JPEG"), ("b", "PNG")):
        [out] = entries[name]["outputs"]
        data = (p.root / out["path"]).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == fmt and image.size == SMALL
        assert out["sha256"] == hashlib.sha256(data).hexdigest()
    # The paid image is kept as served (a PNG); a.jpg is a converted copy, a derived output.
    [out_a] = entries["a"]["outputs"]
    served = objects(p)[out_a["source"]]
    assert served.startswith(b"\x89PNG") and out_a["derivation"]
    assert "Nothing to build" in p.ok("plan", env=env).output
    (p.root / "out" / "a.jpg").unlink()
    p.ok("build", env=env)
    assert hashlib.sha256((p.root / "out" / "a.jpg").read_bytes()).hexdigest() == out_a["sha256"]
    assert len(gateway.submissions) == 2


def test_a_size_within_five_percent_is_accepted_and_noted_in_the_lock(empty_project: ProjectDir,
                                                                        gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(HEAD)
    gateway.faults.download_payload = "wrong_size"
    p.ok("build", env=env)
    [out] = lock_of(p)["a"]["outputs"]
    assert out["size_note"] == "served 497x512 where the catalogue says 512x512 (within 5 %)"
    with Image.open(p.root / "out" / "a.jpg") as image:
        assert image.size == (497, 512)
    assert "Nothing to build" in p.ok("build", env=env).output
    # Restored from the cache, the note stays.
    (p.root / "out" / "a.jpg").unlink()
    p.ok("build", env=env)
    assert lock_of(p)["a"]["outputs"][0]["size_note"] == out["size_note"]
    assert len(gateway.submissions) == 1


def test_another_aspect_ratio_fails_the_target_and_keeps_the_paid_image_findable(
        empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    p, env = empty_project, env_for(gateway)
    p.write(HEAD + '\n[targets.b]\nprompt = "A boat"\n')
    gateway.faults.download_payload = "wrong_ratio"
    gateway.faults.fail_prompts.add("A boat")               # b fails on its own: a is what we watch
    result = p.run("build", "--keep-going", env=env)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "512x384 image where the catalogue says 512x512 for 1:1 at 0.5K (another aspect ratio)" in text
    assert len(gateway.submissions) == 2 and downloads(gateway) == 1    # neither resubmitted nor retried
    assert not (p.root / "out" / "a.jpg").exists() and lock_of(p) == {}
    key = p.items()["a"]["key"]
    store = Store(p.cache)
    assert store.index.lookup(key) is None                        # never a valid generation of the key
    [(image, reason)] = store.index.rejected(key)
    assert "another aspect ratio" in reason
    with Image.open(store.image_path(image.sha256)) as kept:
        assert kept.size == (512, 384)
    record = json.loads((p.cache / "index" / "rejected" / f"{key}.json").read_text())
    assert record["key"] == key and record["images"][0]["sha256"] == image.sha256
    # Paid for: `gc` keeps it (and its record) although no lock references it.
    p.ok("gc", "--grace", "0")
    assert store.index.rejected(key) == [(image, reason)]
