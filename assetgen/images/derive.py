"""Local post-processing: generated JPEG → the output file the engine wants. Never paid for.

A ``Derivation`` is a pure function of (source image bytes, its fields), so its result is cached
under its own key: the SHA-256 of the source image + the derivation's canonical fields. Changing only
these fields re-derives from the cached generation for free; a different source image (a placeholder
replaced by the real one, another candidate) is a different key, so nothing is ever derived from the
wrong image. (The generation key alone is not enough: a placeholder and the real image share it.)

The key also holds ``DERIVATION_VERSION``: code here that changes output bytes (a new ``key_out``,
another PNG compression level) bumps it, so every output made by older code is re-derived once, from
the cached generation, for free, and the lock stays true to the files.

``derive_all`` makes every output of one generated image from a single decode (``derive`` is one
output); each step (key out, resize, encode) is a function of the decoded image, so a new step (a
crop of a grid cell, say) is one more function called between decoding and encoding.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image


FORMATS = ("jpg", "png", "webp")
FITS = ("cover", "contain", "stretch")
DEFAULT_QUALITY = 90
_PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
# Bumped whenever this module's code changes the bytes of an output: part of every derivation key.
# 3: vectorised soft key_out (feather, decontamination, checkerboard); PNG written at level 1 with
#    zlib's run-length strategy; resizing with a box reduction first (``_REDUCING_GAP``).
DERIVATION_VERSION = 3
# zlib level 1 instead of Pillow's 6: 3x faster on a 1K RGBA image for ~10 % more bytes (measured in
# benchmarks/images.py; icons and flat placeholder backgrounds compress about as well either way).
PNG_COMPRESS_LEVEL = 1
# zlib's Z_RLE strategy (3): PNG's row filters leave runs that RLE matching finds as well as the default
# strategy does, in less time: a 1K placeholder 70 → 58 ms and 493 → 479 kB, 1K noise 259 → 183 ms and
# 3.27 → 3.19 MB (measured on this 2-core machine; zlib.Z_RLE, not imported here to keep this module light).
PNG_COMPRESS_TYPE = 3


@dataclass(frozen=True)
class KeyOut:
    color: str = "#ffffff"
    tolerance: int = 12
    feather: float = 1.0                   # px of alpha ramp at the edge; 0 is a hard edge
    checkerboard: bool = False             # the background is a two-tone grid (its tones read from the border)
    decontaminate: bool = True             # edge pixels' colour un-mixed from the background's

    def __post_init__(self) -> None:
        # `feather = 2` and `feather = 2.0` in a manifest are one derivation, with one key.
        object.__setattr__(self, "feather", float(self.feather))


@dataclass(frozen=True)
class Cell:
    """One cell of a grid generation (``grid = [cols, rows]``): 1-based column and row; ``trim`` is
    "auto" (detected gutters) or a margin in pixels."""
    cols: int
    rows: int
    col: int
    row: int
    trim: str | int = "auto"


@dataclass(frozen=True)
class Derivation:
    format: str = "jpg"
    resize: tuple[int, int] | None = None
    fit: str = "cover"
    quality: int = DEFAULT_QUALITY
    background: str | None = None          # contain's padding; default white for jpg, transparent otherwise
    key_out: KeyOut | None = None
    pick: int | None = None                # the chosen candidate (1-based) of a target with candidates
    cell: Cell | None = None               # a grid's cell, cut out first (``images.grid``)

    @property
    def passthrough(self) -> bool:
        """True if the output is the source JPEG byte for byte (no re-encode, no quality loss).

        A ``quality`` other than the default asks for a re-encode: the user wants smaller (or better) files.
        """
        return (self.format == "jpg" and self.resize is None and self.key_out is None
                and self.quality == DEFAULT_QUALITY and self.cell is None)

    @property
    def identity(self) -> bool:
        """True if the output is the generated image as it is, with no choice in it: no derivation key.

        A picked candidate is copied byte for byte too, but which one is picked is a choice the
        output's key must record, or changing ``pick`` would leave the old candidate in place.
        """
        return self.passthrough and self.pick is None

    def fields(self) -> dict[str, Any]:
        data = asdict(self)
        data["resize"] = list(self.resize) if self.resize else None
        if self.pick is None:
            del data["pick"]            # keys of outputs without candidates stay as they were
        if self.cell is None:
            del data["cell"]            # likewise for outputs that are not a grid's cell
        return data


def derivation_key(source_sha256: str, derivation: Derivation) -> str:
    """The key of one output: the SHA-256 of the image it is made from, and how it is made."""
    blob = json.dumps({"v": 2, "code": DERIVATION_VERSION, "source": source_sha256,
                       "derive": derivation.fields()},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def legacy_derivation_key(generation_key: str, source_index: int, derivation: Derivation) -> str:
    """The key assetgen recorded before derivations were keyed by their source's bytes: it names no
    image, so an output locked under it may have been made from a placeholder (``plan`` remakes it)."""
    blob = json.dumps({"v": 1, "generation": generation_key, "source": source_index,
                       "derive": derivation.fields()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def is_jpeg(data: bytes) -> bool:
    """True if ``data`` starts like a JPEG file (SOI marker): a passthrough may copy it as it is."""
    return data[:3] == b"\xff\xd8\xff"


def derive(source: bytes, derivation: Derivation) -> bytes:
    """The output bytes for ``derivation`` applied to the generated image ``source``."""
    return derive_all(source, [derivation])[0]


def derive_all(source: bytes, derivations: Sequence[Derivation]) -> list[bytes]:
    """The output bytes of each of ``derivations`` applied to ``source``, decoding it once (and keying
    it out once per distinct ``key_out``): what every output of one generated image costs together."""
    decoded: Image.Image | None = None
    cells: dict[Cell, Image.Image] = {}
    keyed: dict[tuple[Cell | None, KeyOut], Image.Image] = {}
    results = []
    for derivation in derivations:
        if derivation.passthrough and is_jpeg(source):
            results.append(source)      # a PNG or WEBP served for a .jpg output is converted below
            continue
        cell = derivation.cell
        if cell is not None:            # a grid's cell is cut out first (``images.grid``)
            if cell not in cells:
                cells[cell] = _cell(source, cell)
            image = cells[cell]
        else:
            if decoded is None:
                decoded = _decode(source)
            image = decoded
        key = derivation.key_out
        if key is not None and derivation.format != "jpg":
            if (cell, key) not in keyed:
                keyed[cell, key] = key_out(image, key)
            image = keyed[cell, key]
        if derivation.resize is not None:
            image = _resize(image, derivation.resize, derivation.fit, _background(derivation))
        results.append(_encode(image, derivation))
    return results


def _cell(source: bytes, cell: Cell) -> Image.Image:
    """The cell cut out of its grid image, which is decoded and sliced once for all its cells (each
    cell is a target of its own, so its outputs come in a call of their own)."""
    from .grid import take_cell

    return take_cell(hashlib.sha256(source).hexdigest(), lambda: _decode(source),
                     cell.cols, cell.rows, cell.col, cell.row, cell.trim)


def _decode(source: bytes) -> Image.Image:
    from PIL import Image   # here: loading a manifest needs this module's types, not Pillow

    with Image.open(io.BytesIO(source)) as opened:
        return opened.convert("RGBA")


def _encode(image: Image.Image, derivation: Derivation) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    if derivation.format == "jpg":
        flat = Image.new("RGB", image.size, _rgb(derivation.background or "#ffffff"))
        flat.paste(image, mask=image.getchannel("A"))
        flat.save(out, "JPEG", quality=derivation.quality, optimize=False)
    elif derivation.format == "png":
        image.save(out, "PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_COMPRESS_TYPE)
    else:
        image.save(out, "WEBP", quality=derivation.quality, method=4)
    return out.getvalue()


def _rgb(colour: str) -> tuple[int, int, int]:
    from PIL import ImageColor

    r, g, b = ImageColor.getrgb(colour)[:3]
    return r, g, b


def is_colour(text: str) -> bool:
    """Whether Pillow reads ``text`` as a colour (a manifest's ``background``, ``key_out.colour``)."""
    from PIL import ImageColor

    try:
        ImageColor.getrgb(text)
    except ValueError:
        return False
    return True


def _background(derivation: Derivation) -> tuple[int, int, int, int]:
    if derivation.background:
        return (*_rgb(derivation.background), 255)
    return (255, 255, 255, 255) if derivation.format == "jpg" else (0, 0, 0, 0)


_REDUCING_GAP = 2.0


def _resize(image: Image.Image, size: tuple[int, int], fit: str,
            background: tuple[int, int, int, int]) -> Image.Image:
    from PIL import Image

    width, height = size
    if image.size == (width, height):
        return image                    # every fit of an image to its own size is the image
    # reducing_gap: a box reduction by a whole factor first, then Lanczos for the last factor of two;
    # 2-4x faster for icon sizes (1024 → 64 px), and the same to the eye (Pillow's docs).
    if fit == "stretch":
        return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    scale = (max if fit == "cover" else min)(width / image.width, height / image.height)
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                          Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    if fit == "cover":
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        return scaled.crop((left, top, left + width, top + height))
    canvas = Image.new("RGBA", (width, height), background)
    canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2), scaled)
    return canvas


def key_out(image: Image.Image, key: KeyOut) -> Image.Image:
    """``image`` with its background made transparent (a new image; see ``keyout``)."""
    from .keyout import key_out as vectorised

    return vectorised(image, key)


def contact_sheet(images: list[bytes], *, picked: int | None = None, cell: int = 384) -> bytes:
    """A PNG with the candidates side by side, numbered from 1; the picked one is framed."""
    from PIL import Image, ImageDraw, ImageFont

    gap, label = 16, 40
    sheet = Image.new("RGB", (gap + len(images) * (cell + gap), cell + label + 2 * gap), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    try:
        font: Any = ImageFont.load_default(size=24)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for number, data in enumerate(images, start=1):
        with Image.open(io.BytesIO(data)) as opened:
            thumb = opened.convert("RGB")
        thumb.thumbnail((cell, cell))
        x = gap + (number - 1) * (cell + gap)
        sheet.paste(thumb, (x + (cell - thumb.width) // 2, gap + (cell - thumb.height) // 2))
        text = f"{number}" + ("  (picked)" if number == picked else "")
        draw.text((x, gap + cell + 8), text, fill=(30, 30, 30), font=font)
        if number == picked:
            draw.rectangle((x - 4, gap - 4, x + cell + 3, gap + cell + 3), outline=(20, 120, 220), width=4)
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()
