"""Deterministic placeholder JPEGs for offline builds (``assetgen build --offline``).

A placeholder stands in for a generated image while nobody pays for one: it has the exact pixel
size of the target's ratio and resolution (so layouts, sprite sheets and CSS can be checked), a calm
background colour of its own (so targets are told apart at a glance), a diagonal hatch (so nobody
mistakes it for the real thing) and, on a card in the middle, the target's name, its size, and its
prompt.

Where an output asks for ``key_out`` (or an OpenAI target for a transparent background), the picture
is a subject on a background that can be taken away, so offline outputs are truly transparent and
transparency can be checked before paying: ``backdrop`` is the colour ``key_out`` keys (flat), or
"checkerboard" (the two-tone grid models draw, for ``key_out.checkerboard``), or "transparent" (a PNG
with an alpha channel, as such a model serves). The subject is a rounded tile in a saturated tone of
the target's hue, far from any keyable colour or grey; such a placeholder is a PNG (lossless, so the
backdrop's edge is exact).

The same inputs always give the same bytes: the colour comes from a SHA-256 of the name, the only
font is the one bundled with Pillow (never a system font, which differs between machines), and the
JPEG is written with fixed settings and no metadata. Rendering is pure: no I/O, no clock.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
import unicodedata

from PIL import Image, ImageDraw, ImageFont

__all__ = ["render_placeholder"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

JPEG_QUALITY = 85
MAX_PROMPT_LINES = 12
ELLIPSIS = "…"
TIMES = "×"

# The font bundled with Pillow (Aileron) covers ASCII and a handful of symbols only. Characters it
# lacks would render as boxes, so common ones are mapped to something it has; "×" is drawn by hand
# (see _draw_text) because "1024x1024" reads worse than "1024×1024".
_REPLACEMENTS = str.maketrans({
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\t": " ", "\n": " ", "\r": " ",
    "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "ł": "l", "Ł": "L",
})


def render_placeholder(
    *, name: str, prompt: str, width: int, height: int, index: int = 0, total: int = 1,
    backdrop: str | None = None,
) -> bytes:
    """JPEG bytes of a ``width`` × ``height`` placeholder for target ``name`` (PNG with a ``backdrop``,
    lossless and, for "transparent", with alpha; see the module).

    ``index`` is the 0-based position of this image among the ``total`` images of one task
    (``n``); when ``total > 1`` the image shows ``index+1/total`` so the siblings differ.
    """
    if width < 1 or height < 1:
        raise ValueError(f"placeholder size must be positive, got {width}x{height}")

    palette = _palette(name)
    if backdrop is not None:
        palette.background, palette.hatch = palette.subject, palette.subject_hatch
    image = Image.new("RGB", (width, height), palette.background)
    draw = ImageDraw.Draw(image)
    base = min(width, height)  # text and strokes scale with the short side

    _draw_hatch(draw, width, height, base, palette.hatch)

    # A thin frame, inset a little, makes the edges of the image visible when it sits on a page.
    inset = max(2, round(base * 0.02))
    stroke = max(1, round(base / 512))
    if width > 2 * inset + 2 and height > 2 * inset + 2:
        draw.rectangle((inset, inset, width - 1 - inset, height - 1 - inset),
                       outline=palette.hatch, width=stroke)

    if backdrop is not None:
        image = _on_backdrop(image, backdrop, base)
        draw = ImageDraw.Draw(image)
    _draw_card(draw, palette, name=_clean(name), prompt=_clean(prompt), width=width,
               height=height, base=base, index=index, total=total)

    out = io.BytesIO()
    if backdrop is not None:
        # Lossless: JPEG's chroma blur would smear a saturated key colour into the subject's edge.
        image.save(out, format="PNG", compress_level=1)      # no metadata either: pixels alone
        return out.getvalue()
    # Fixed encoder settings and no EXIF/ICC: the bytes depend on the pixels alone.
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False,
               subsampling="4:2:0")
    return out.getvalue()


# --- colour ----------------------------------------------------------------------------------------

class _Palette:
    """The five colours of one placeholder, all of one hue taken from the target's name."""

    def __init__(self, hue: float, saturation: float) -> None:
        self.background = _hls(hue, 0.80, saturation)
        self.hatch = _hls(hue, 0.75, saturation)
        self.card = _hls(hue, 0.94, saturation * 0.8)
        self.ink = _hls(hue, 0.20, saturation * 0.9)      # the name
        self.muted = _hls(hue, 0.38, saturation * 0.7)    # size line and prompt
        # The subject tile of a keyable placeholder: saturated, mid-light, unlike white or any grey.
        self.subject = _hls(hue, 0.58, 0.62)
        self.subject_hatch = _hls(hue, 0.50, 0.62)


def _palette(name: str) -> _Palette:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    # Muted saturation (0.28–0.46) and high lightness keep every hue calm, never neon.
    saturation = 0.28 + digest[2] / 255.0 * 0.18
    return _Palette(hue, saturation)


def _hls(hue: float, lightness: float, saturation: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return round(r * 255), round(g * 255), round(b * 255)


# --- pattern ---------------------------------------------------------------------------------------

def _draw_hatch(draw: ImageDraw.ImageDraw, width: int, height: int, base: int, colour: RGB) -> None:
    """45° diagonal lines over the whole image: a few hundred line calls even at 4K, so cheap."""
    spacing = max(12, round(base / 14))
    stroke = max(1, round(base / 256))
    for offset in range(-height, width, spacing):
        draw.line((offset, 0, offset + height, height), fill=colour, width=stroke)


def _on_backdrop(picture: Image.Image, backdrop: str, base: int) -> Image.Image:
    """``picture`` cut to a rounded tile, inset from the edges, on ``backdrop``: a colour, "checkerboard"
    (white and light grey squares) or "transparent" (an RGBA image)."""
    from PIL import ImageColor

    width, height = picture.size
    inset = max(2, round(base * 0.03))          # inside the card's margin: the card is on the tile
    mask = Image.new("L", picture.size, 0)
    if width > 2 * inset + 2 and height > 2 * inset + 2:
        ImageDraw.Draw(mask).rounded_rectangle((inset, inset, width - 1 - inset, height - 1 - inset),
                                               radius=max(2, round(base * 0.06)), fill=255)
    if backdrop == "transparent":
        result = Image.new("RGBA", picture.size, (0, 0, 0, 0))
        result.paste(picture.convert("RGBA"), mask=mask)
        return result
    if backdrop == "checkerboard":
        result = Image.new("RGB", picture.size, (255, 255, 255))
        cell, grid = max(4, round(base / 16)), ImageDraw.Draw(result)
        for y in range(0, height, cell):
            for x in range((y // cell) % 2 * cell, width, 2 * cell):
                grid.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(204, 204, 204))
    else:
        result = Image.new("RGB", picture.size, ImageColor.getrgb(backdrop)[:3])
    result.paste(picture, mask=mask)
    return result


# --- text ------------------------------------------------------------------------------------------

def _draw_card(draw: ImageDraw.ImageDraw, palette: _Palette, *, name: str, prompt: str,
               width: int, height: int, base: int, index: int, total: int) -> None:
    """The name, the size line and the wrapped prompt, centred on a light rounded card."""
    margin = max(4, round(base * 0.06))
    pad = max(4, round(base * 0.04))
    # Fonts follow the short side, but very long strips (1:8, 8:1) get a little more, since their
    # long side leaves room; every line is still fitted to the card below.
    text_base = max(base, round(0.45 * math.sqrt(width * height)))
    text_w = width - 2 * (margin + pad)
    text_h = height - 2 * (margin + pad)
    if text_w < 8 or text_h < 8:
        return  # too small for legible text; colour and hatch still identify it

    meta = f"PLACEHOLDER · {width}{TIMES}{height}"
    if total > 1:
        meta += f" · {index + 1}/{total}"

    # Sizes follow the image, then shrink until each line fits the card's width.
    name_font, name = _fit_line(name, max(10, round(text_base * 0.085)), 9, text_w)
    meta_font, meta = _fit_line(meta, max(9, round(text_base * 0.03)), 7, text_w)
    prompt_font = _font(max(9, round(text_base * 0.034)))

    name_h = _line_height(name_font)
    meta_h = _line_height(meta_font)
    prompt_h = round(_line_height(prompt_font) * 1.25)
    gap_small = max(2, round(name_h * 0.25))
    gap_big = max(3, round(name_h * 0.45))

    # Whatever height is left after the name and size lines goes to the prompt.
    room = text_h - name_h - gap_small - meta_h - gap_big
    max_lines = min(MAX_PROMPT_LINES, max(0, room // prompt_h)) if prompt else 0
    lines = _wrap(prompt, prompt_font, text_w, max_lines)

    block_h = name_h + gap_small + meta_h
    if lines:
        block_h += gap_big + len(lines) * prompt_h
    if block_h > text_h:  # even the name does not fit: show the name alone if it can
        if name_h > text_h:
            return
        block_h, meta, lines = name_h, "", []

    top = (height - block_h) // 2
    draw.rounded_rectangle(
        (margin, top - pad, width - 1 - margin, top + block_h + pad),
        radius=max(2, pad), fill=palette.card,
    )
    centre = width / 2
    y = top
    _draw_text(draw, centre, y, name, name_font, palette.ink)
    y += name_h + gap_small
    if meta:
        _draw_text(draw, centre, y, meta, meta_font, palette.muted)
        y += meta_h
    if lines:
        y += gap_big
        for line in lines:
            _draw_text(draw, centre, y, line, prompt_font, palette.muted)
            y += prompt_h


@functools.lru_cache(maxsize=64)
def _font(size: int) -> Font:
    """Pillow's bundled font at ``size`` px; the fixed-size bitmap font where sizes are unsupported."""
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()  # older Pillow: one small size, still legible


def _line_height(font: Font) -> int:
    # Measured on tall and deep glyphs so that every line of one font has the same height.
    left, top, right, bottom = font.getbbox("Hg|")
    return max(1, math.ceil(bottom))


def _width(text: str, font: Font) -> float:
    if TIMES not in text:
        return font.getlength(text)
    parts = text.split(TIMES)
    return sum(font.getlength(p) for p in parts) + _times_advance(font) * (len(parts) - 1)


def _times_advance(font: Font) -> float:
    return font.getlength("x") * 1.15


def _draw_text(draw: ImageDraw.ImageDraw, centre: float, y: int, text: str, font: Font,
               fill: RGB) -> None:
    """Draw one line centred on ``centre``, drawing "×" as two strokes the font does not have."""
    x = centre - _width(text, font) / 2
    parts = text.split(TIMES)
    for i, part in enumerate(parts):
        if part:
            draw.text((x, y), part, font=font, fill=fill)
            x += font.getlength(part)
        if i < len(parts) - 1:
            advance = _times_advance(font)
            # Sized and placed like a lowercase x: centred on the digits' mid-height.
            _, digit_top, _, digit_bottom = font.getbbox("0")
            mid_y = y + (digit_top + digit_bottom) / 2
            half = advance * 0.28
            mid_x = x + advance / 2
            stroke = max(1, round(advance * 0.12))
            draw.line((mid_x - half, mid_y - half, mid_x + half, mid_y + half), fill=fill, width=stroke)
            draw.line((mid_x - half, mid_y + half, mid_x + half, mid_y - half), fill=fill, width=stroke)
            x += advance


def _fit_line(text: str, size: int, min_size: int, max_width: int) -> tuple[Font, str]:
    """The largest font (down to ``min_size``) that fits ``text`` in one line, else truncate it."""
    font = _font(size)
    length = _width(text, font)
    if length > max_width:
        # Glyph widths scale almost linearly with size: jump close, then step down to be exact.
        size = max(min_size, int(size * max_width / length))
        font = _font(size)
        while size > min_size and _width(text, font) > max_width:
            size -= 1
            font = _font(size)
    if _width(text, font) > max_width:
        text = _truncate(text, font, max_width)
    return font, text


def _truncate(text: str, font: Font, max_width: int) -> str:
    """``text`` cut so that it plus "…" fits in ``max_width`` (binary search on the length)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _width(text[:mid].rstrip() + ELLIPSIS, font) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS if lo else ""


def _wrap(text: str, font: Font, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by pixel width; the last line ends in "…" if text was left over."""
    if max_lines <= 0 or not text:
        return []
    lines: list[str] = []
    words = text.split()
    current = ""
    i = 0
    while i < len(words):
        word = words[i]
        candidate = f"{current} {word}" if current else word
        if _width(candidate, font) <= max_width:
            current = candidate
            i += 1
            continue
        if not current:
            # A single word wider than the line (a URL, say): break it where it overflows.
            head = _truncate(word, font, max_width)[:-1] or word[:1]
            current, words[i] = head, word[len(head):]
            if not words[i]:
                i += 1
        lines.append(current)
        current = ""
        if len(lines) == max_lines:
            break
    else:
        if current:
            lines.append(current)
        return lines[:max_lines]

    if i >= len(words):
        return lines
    # Ran out of lines with words left: mark the cut on the last line.
    lines[-1] = _truncate(lines[-1] + " " + " ".join(words[i:]), font, max_width)
    return lines


def _clean(text: str) -> str:
    """Text the bundled font can draw: accents dropped, dashes and odd spaces mapped, one line."""
    text = text.translate(_REPLACEMENTS)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # NFKD turns "×" into itself and "…" into "...": put the ellipsis back, it is in the font.
    text = text.replace("...", ELLIPSIS)
    return " ".join(text.split())
