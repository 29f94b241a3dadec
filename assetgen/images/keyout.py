"""``key_out``: a generated image's background made transparent, with soft, clean edges.

Vectorised (numpy and ``scipy.ndimage``, no per-pixel Python), in four steps:

1. **How far** each pixel is from the background colour: the largest channel difference (so
   ``tolerance`` means what it always meant). In ``checkerboard`` mode, the background is the two-tone
   grid models draw instead of transparency: its two tones are read from the image's border, and the
   distance is to the nearest mix of the two (the tones' blurred seams are background too).
2. **Which** pixels are background: those within ``tolerance`` *connected to the border*
   (``ndimage.label``), so a white detail inside the subject stays.
3. **The edge band**: the subject's pixels within ``feather`` px (at least 2, the width of a model's
   anti-aliasing and JPEG's blur) of the background. Each is a mix of the background's colour K and the
   subject's F (the solid pixels just inside the band, the nearest weighing most; for a feature thinner
   than the band, its core: the nearby pixel least like the background); its alpha is how much of F it
   holds, its projection on K→F, scaled by a ramp over the band when ``feather`` > 1.
4. **Decontamination**: a band pixel's colour becomes F, the mix taken apart, so an edge keyed from
   white shows no white fringe on a dark game background. Background pixels become (0, 0, 0, 0).

Pure and deterministic (same bytes in, same pixels out); memory stays a few arrays of the image's size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


class KeyOut(Protocol):
    """What ``derive.KeyOut`` holds (a protocol: ``derive`` imports this module, not the reverse)."""

    @property
    def color(self) -> str: ...
    @property
    def tolerance(self) -> int: ...
    @property
    def feather(self) -> float: ...
    @property
    def checkerboard(self) -> bool: ...
    @property
    def decontaminate(self) -> bool: ...

__all__ = ["border_tones", "key_out"]

MAX_FEATHER = 16             # px: a wider ramp is a blur, not an edge
_CHUNK_ROWS = 512            # distance computed in bands of rows: bounded temporary memory at 4K


def key_out(image: Image.Image, key: KeyOut) -> Image.Image:
    """A new RGBA image: ``image`` with the border-connected background cleared (see the module)."""
    from PIL import Image, ImageColor
    from scipy import ndimage  # type: ignore[import-untyped]

    rgba = np.array(image.convert("RGBA"))
    rgb = rgba[..., :3]
    if key.checkerboard:
        first, second = border_tones(rgb, key.tolerance)
        near = _distance(rgb, first, second) <= key.tolerance
    else:
        first = second = np.array(ImageColor.getrgb(key.color)[:3], dtype=np.float32)
        near = _within(rgb, first, key.tolerance)
    labels, _count = ndimage.label(near)
    del near
    edge = np.unique(np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1])))
    edge = edge[edge > 0]
    if edge.size == 1:
        background = labels == edge[0]
    else:
        lookup = np.zeros(int(labels.max()) + 1, dtype=bool)
        lookup[edge] = True
        background = lookup[labels]
    del labels
    if key.feather > 0 and background.any() and not background.all():
        _soften(rgba, background, first, second, key)
    pixels = rgba.view(np.uint32)[..., 0]          # one 32-bit word per pixel: cleared in one pass
    pixels[background] = 0
    return Image.fromarray(rgba, "RGBA")


def _within(rgb: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels whose every channel is within ``tolerance`` of ``colour`` (uint8 compares, no copies)."""
    near = np.ones(rgb.shape[:2], dtype=bool)
    for channel in range(3):
        low, high = int(colour[channel]) - tolerance, int(colour[channel]) + tolerance
        if low > 0:
            near &= rgb[..., channel] >= low
        if high < 255:
            near &= rgb[..., channel] <= high
    return near


def _grow(mask: np.ndarray) -> np.ndarray:
    """``mask`` dilated by one pixel to its eight neighbours (slices: faster than ndimage here); a
    pixel touching the background only at a corner is on the edge too."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    grown = rows.copy()
    grown[:, 1:] |= rows[:, :-1]
    grown[:, :-1] |= rows[:, 1:]
    return grown


def border_tones(rgb: np.ndarray, tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """The two colours of a checkerboard drawn as background, read from the image's border pixels
    (split at their mean brightness, each the median of its side). One colour twice if it is flat."""
    border = np.concatenate((rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1])).astype(np.float32)
    brightness = border.mean(axis=1)
    split = (np.percentile(brightness, 5) + np.percentile(brightness, 95)) / 2
    for _ in range(8):                    # two-means on brightness: settles in a few rounds
        dark, light = brightness <= split, brightness > split
        if not dark.any() or not light.any():
            break
        split = (brightness[dark].mean() + brightness[light].mean()) / 2
    dark, light = brightness <= split, brightness > split
    if not dark.any() or not light.any():
        tone = np.median(border, axis=0)
        return tone, tone
    first, second = np.median(border[dark], axis=0), np.median(border[light], axis=0)
    if np.abs(first - second).max() <= tolerance:
        tone = np.median(border, axis=0)
        return tone, tone
    return first, second


def _distance(rgb: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each pixel's largest channel difference from the nearest colour on the segment first–second
    (a point when they are equal), clipped to 255, as uint8."""
    height = rgb.shape[0]
    out = np.empty(rgb.shape[:2], dtype=np.uint8)
    span = second - first
    length = float(span @ span)
    for top in range(0, height, _CHUNK_ROWS):
        chunk = rgb[top:top + _CHUNK_ROWS].astype(np.float32) - first
        if length > 0:
            t = np.clip(chunk @ (span / length), 0.0, 1.0)
            chunk -= t[..., None] * span
        np.minimum(np.abs(chunk).max(axis=2), 255, out=chunk[..., 0])
        out[top:top + _CHUNK_ROWS] = chunk[..., 0]
    return out


def _soften(rgba: np.ndarray, background: np.ndarray, first: np.ndarray, second: np.ndarray,
            key: KeyOut) -> None:
    """Give the subject's edge band partial alpha and un-mixed colours (in place; see the module)."""
    # The band is at least the 2 px over which a model's anti-aliasing (and JPEG's blur) mixes the two.
    width = min(max(2, math.ceil(key.feather)), MAX_FEATHER)
    box = _bounds(~background)
    if box is None:
        return
    top, bottom = max(0, box[0] - width - 2), min(background.shape[0], box[1] + width + 2)
    left, right = max(0, box[2] - width - 2), min(background.shape[1], box[3] + width + 2)
    cut = rgba[top:bottom, left:right]                     # a view: edits land in ``rgba``
    grown = background[top:bottom, left:right]
    steps = np.zeros(grown.shape, dtype=np.uint8)          # 1 = touching the background, 2 = next…
    # Two steps beyond the band: the pixel just inside it is often still a mix (a model's anti-aliasing
    # and JPEG's blur are about 2 px wide), so the subject's colour is read from the ones past it.
    for step in range(1, width + 3):
        wider = _grow(grown)
        steps[wider & ~grown] = step
        grown = wider
    ys, xs = np.nonzero((steps >= 1) & (steps <= width))
    if ys.size == 0:
        return
    solid = ~background[top:bottom, left:right] & ((steps == 0) | (steps > width + 1))
    rgb = cut[..., :3]
    pixel = rgb[ys, xs].astype(np.float32)
    behind = _nearest_on_segment(pixel, first, second)
    subject = _subject_colour(rgb, solid, ~background[top:bottom, left:right], ys, xs, behind, width + 2)
    estimate = _alpha(pixel, behind, subject)
    mixed = estimate.copy()
    if key.feather > 1:
        mixed *= np.minimum(1.0, steps[ys, xs] / key.feather)
    cut[ys, xs, 3] = np.round(mixed * cut[ys, xs, 3]).astype(np.uint8)
    if key.decontaminate:
        # A mix of the subject's colour and the background's is, un-mixed, the subject's colour.
        rgb[ys, xs] = np.clip(np.round(subject), 0, 255).astype(np.uint8)


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _subject_colour(rgb: np.ndarray, solid: np.ndarray, kept: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                    behind: np.ndarray, radius: int) -> np.ndarray:
    """Per band pixel (ys, xs), the colour of the subject it is a mix of: the solid pixels within
    ``radius``, the nearest weighing most (1 / distance²). A feature thinner than the band (a line, a
    letter) has no solid pixel: its colour is then the one least like the background nearby, its core."""
    height, width = solid.shape
    total = np.zeros((ys.size, 3), dtype=np.float32)
    count = np.zeros(ys.size, dtype=np.float32)
    core = rgb[ys, xs].astype(np.float32)
    farthest = np.abs(core - behind).max(axis=1)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            y, x = np.clip(ys + dy, 0, height - 1), np.clip(xs + dx, 0, width - 1)
            colour = rgb[y, x].astype(np.float32)
            hit = solid[y, x]
            weight = 1.0 / max(1, dy * dy + dx * dx)
            total[hit] += weight * colour[hit]
            count += weight * hit
            far = np.abs(colour - behind).max(axis=1)
            better = kept[y, x] & (far > farthest)
            core[better], farthest[better] = colour[better], far[better]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count[:, None]
    return np.where(count[:, None] > 0, mean, core)


def _nearest_on_segment(pixel: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pixel, the background colour it was mixed with: the nearest point of the segment."""
    span = second - first
    length = float(span @ span)
    if length == 0:
        return np.broadcast_to(first, pixel.shape).astype(np.float32)
    t = np.clip((pixel - first) @ (span / length), 0.0, 1.0)
    return np.asarray(first + t[:, None] * span, dtype=np.float32)


def _alpha(pixel: np.ndarray, behind: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """How much of the subject each pixel holds, 0..1: its projection on background→subject where the
    subject's colour is distinct from the background's, else the least alpha that explains it."""
    towards = subject - behind
    length = np.einsum("ij,ij->i", towards, towards)
    with np.errstate(invalid="ignore", divide="ignore"):
        projected = np.einsum("ij,ij->i", pixel - behind, towards) / length
    diff = pixel - behind
    room = np.where(diff > 0, 255.0 - behind, behind)
    least = np.max(np.abs(diff) / np.maximum(room, 1.0), axis=1)
    usable = np.isfinite(projected) & (length > 24.0 ** 2)
    return np.asarray(np.clip(np.where(usable, projected, least), 0.0, 1.0), dtype=np.float32)
