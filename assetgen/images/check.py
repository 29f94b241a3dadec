"""Is a downloaded image what was paid for? Checked before anything of it is cached, written or locked.

A valid generated image decodes fully; is a JPEG, PNG or WEBP; has a bounded byte size and a bounded
pixel count (a decompression bomb is refused from its header, before a single pixel is decoded); and
has the catalogue's pixel size for its ratio and resolution, within ``SIZE_TOLERANCE`` on each side
(real gateways round sizes; such a difference is noted in the lock). Anything else raises:

- ``InvalidImage``: junk (an HTML error page, 0 bytes, a truncated file, a bomb): nothing is kept, the
  download may be tried again;
- ``ImageSizeMismatch``: a real image of another size or aspect ratio: the caller keeps it in the cache
  objects (it was paid for) but never writes it as an output.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass

from .. import catalog
from ..errors import ImageSizeMismatch, InvalidImage

MAX_BYTES = 64 * 1024 * 1024          # the client's cap on a download's body (enforced while streaming)
SIZE_TOLERANCE = 0.05                 # per side: real gateways round sizes (to multiples of 16, …)
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# Twice the largest image any model draws: more is a bomb, refused before decoding.
MAX_PIXELS = 2 * max(w * h for ratio in catalog.STANDARD_RATIOS + catalog.EXTENDED_RATIOS
                     for resolution in catalog.RESOLUTIONS
                     for w, h in [catalog.pixel_size(ratio, resolution)])
_OPENING = threading.Lock()           # warnings.catch_warnings is process-wide state: one at a time


@dataclass(frozen=True)
class Checked:
    """What a valid image is: its format (``jpg``/``png``/``webp``) and pixel size."""

    format: str
    size: tuple[int, int]
    expected: tuple[int, int] | None = None

    @property
    def size_note(self) -> str:
        """Empty when the size is the catalogue's; else what was served (within the tolerance)."""
        if self.expected is None or self.size == self.expected:
            return ""
        return f"served {_wxh(self.size)} where the catalogue says {_wxh(self.expected)} (within 5 %)"


def check(data: bytes, *, expected: tuple[int, int] | None = None, asked: str = "") -> Checked:
    """Validate ``data``; ``expected`` is the catalogue's pixel size (``asked`` says for what, e.g.
    "3:2 at 1K"). Raises ``InvalidImage`` or ``ImageSizeMismatch``."""
    checked = decode(data)
    if expected is not None and not within(checked.size, expected):
        raise ImageSizeMismatch(mismatch(checked.size, expected, asked))
    return Checked(checked.format, checked.size, expected)


def decode(data: bytes) -> Checked:
    """The image's format and size once it decoded fully; ``InvalidImage`` saying why not."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise invalid("0 bytes")
    if len(data) > MAX_BYTES:
        raise invalid(f"{len(data) / 1e6:.0f} MB, more than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with _OPENING, warnings.catch_warnings():
            # Pillow's own bomb check warns (an error under -W error) before it refuses: ours comes first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise invalid(f"a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise invalid(_what(data)) from exc
    with image:
        kind = FORMATS.get(image.format or "")
        if kind is None:
            raise invalid(f"a {image.format or 'unknown'} image; only JPEG, PNG or WEBP are accepted")
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise invalid(f"{_wxh(image.size)} pixels, more than any model draws "
                          f"(at most {MAX_PIXELS:,} pixels): a decompression bomb")
        try:
            image.load()            # every pixel: a truncated or damaged file fails here
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            raise invalid(f"a damaged {image.format}: {exc}") from exc
        return Checked(kind, (width, height))


def within(size: tuple[int, int], expected: tuple[int, int]) -> bool:
    """True if each side is within ``SIZE_TOLERANCE`` of the catalogue's."""
    return all(abs(got - want) <= SIZE_TOLERANCE * want for got, want in zip(size, expected, strict=True))


def mismatch(size: tuple[int, int], expected: tuple[int, int], asked: str) -> str:
    (width, height), (ew, eh) = size, expected
    ratio_off = abs(width / height - ew / eh) / (ew / eh) > SIZE_TOLERANCE
    why = "another aspect ratio" if ratio_off else "off by more than 5 %"
    where = f" for {asked}" if asked else ""
    hint = ("; a gateway that ignored the ratio field draws another ratio: set `[settings] gateway_fields` "
            "to the field it reads (`aspect_ratio` or `size`; `both`, the default, sends each)"
            if ratio_off else "")
    return (f"the gateway returned a {_wxh(size)} image where the catalogue says {_wxh(expected)}{where} "
            f"({why}){hint}")


def invalid(reason: str) -> InvalidImage:
    return InvalidImage(f"the gateway returned an invalid image ({reason})")


def _what(data: bytes) -> str:
    """What junk looks like, for the message: an HTML page, text, or so many unknown bytes."""
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return f"an HTML page of {len(data):,} bytes, not an image"
    if data[:3] == b"\xff\xd8\xff":
        return f"a damaged JPEG of {len(data):,} bytes: it does not decode"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return f"a damaged PNG of {len(data):,} bytes: it does not decode"
    return f"{len(data):,} bytes that are not a JPEG, PNG or WEBP image"


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
