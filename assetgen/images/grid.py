"""Grid generation: one image holding ``cols × rows`` separate pictures, sliced into its cells.

The image is divided into equal cells (cell ``c`` spans ``round(c·W/cols)`` to ``round((c+1)·W/cols)``),
then the gutters are cut away:

- ``trim = "auto"`` (the default): a *gutter line* is a whole column (or row) of the image whose pixels
  are all one colour (each channel within ``GUTTER_TOLERANCE``, so JPEG noise passes). Near each
  boundary between cells (within an eighth of a cell) the band of gutter lines found there is removed
  from both neighbours; at the image's edges, the band of gutter lines touching the edge. A band may
  take at most a quarter of a cell from each side, so a cell's own plain background is kept. No gutter
  found: the cell is cut at the equal division.
- ``trim = N`` (pixels): N pixels are cut from every side of every equal cell.

Slicing is pure and exact: a gutter line is found on the decoded pixels, and the crop is a copy.
``grid_placeholder`` draws the offline stand-in: the grid with white gutters and every cell labelled
``r<row>c<col>`` (1-based), so slicing can be checked before paying.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

GUTTER_TOLERANCE = 12        # max − min of a channel along a gutter line
TRIMS = ("auto",)


def layout_sentence(cols: int, rows: int) -> str:
    """What the prompt tells the model about the layout (the first sentence of a grid's prompt)."""
    return (f"A grid of {cols} columns × {rows} rows of {cols * rows} separate images, evenly spaced on a "
            f"plain background with clear gutters between them, nothing crossing from one cell into another. "
            f"Each cell:")


def _bounds(size: int, count: int) -> list[int]:
    return [round(i * size / count) for i in range(count + 1)]


def gutter_lines(image: Image.Image, axis: int) -> list[bool]:
    """For each column (``axis = 0``) or row (``axis = 1``): is it one colour from end to end?"""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)          # (height, width, 3)
    along = 0 if axis == 0 else 1            # a column varies along the height
    spread = pixels.max(axis=along) - pixels.min(axis=along)            # (lines, 3)
    return [bool(v) for v in (spread.max(axis=1) <= GUTTER_TOLERANCE)]


def _cuts(lines: list[bool], count: int) -> list[tuple[int, int]]:
    """(start, end) of every cell along one axis, the gutter bands cut out."""
    size = len(lines)
    bounds = _bounds(size, count)
    cell = size / count
    reach, window = int(cell / 4), max(1, int(cell / 8))
    starts = [bounds[i] for i in range(count)]
    ends = [bounds[i + 1] for i in range(count)]
    # Edges of the image: the band of gutter lines touching them.
    left = 0
    while left < min(reach, size) and lines[left]:
        left += 1
    starts[0] = left
    right = size
    while size - right < reach and right > 0 and lines[right - 1]:
        right -= 1
    ends[-1] = right
    for i in range(1, count):
        b = bounds[i]
        near = [x for x in range(max(0, b - window), min(size, b + window + 1)) if lines[x]]
        if not near:
            continue
        seed = min(near, key=lambda x: (abs(x - b), x))
        lo = seed
        while lo - 1 >= max(0, b - reach) and lines[lo - 1]:
            lo -= 1
        hi = seed + 1
        while hi < min(size, b + reach) and lines[hi]:
            hi += 1
        ends[i - 1], starts[i] = lo, hi
    return list(zip(starts, ends, strict=True))


def cell_box(image: Image.Image, cols: int, rows: int, col: int, row: int,
             trim: str | int = "auto") -> tuple[int, int, int, int]:
    """The crop box (left, top, right, bottom) of cell (``col``, ``row``), both 1-based."""
    width, height = image.size
    if trim == "auto":
        xs = _cuts(gutter_lines(image, 0), cols)
        ys = _cuts(gutter_lines(image, 1), rows)
        (left, right), (top, bottom) = xs[col - 1], ys[row - 1]
    else:
        margin = int(trim)
        bx, by = _bounds(width, cols), _bounds(height, rows)
        left, right = bx[col - 1] + margin, bx[col] - margin
        top, bottom = by[row - 1] + margin, by[row] - margin
    if right <= left or bottom <= top:      # a margin wider than the cell: keep its centre pixel
        cx, cy = (left + right) // 2, (top + bottom) // 2
        left, right, top, bottom = cx, cx + 1, cy, cy + 1
    return left, top, right, bottom


def crop_cell(image: Image.Image, cols: int, rows: int, col: int, row: int,
              trim: str | int = "auto") -> Image.Image:
    """Cell (``col``, ``row``) (1-based) of a grid image, its gutters trimmed."""
    return image.crop(cell_box(image, cols, rows, col, row, trim))


def grid_placeholder(*, name: str, prompt: str, width: int, height: int, cols: int, rows: int) -> bytes:
    """A placeholder JPEG of a grid: white gutters, each cell a placeholder of its own labelled with
    its row name (``<target>.r<row>c<col>``), so the offline build shows how the grid will be sliced."""
    from PIL import Image

    from .placeholders import render_placeholder

    base = name.rsplit(".", 1)[0] if ".r" in name else name
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    gutter = max(2, min(width // cols, height // rows) // 16)
    bx, by = _bounds(width, cols), _bounds(height, rows)
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            left, top = bx[c - 1] + gutter, by[r - 1] + gutter
            w, h = bx[c] - gutter - left, by[r] - gutter - top
            if w < 1 or h < 1:
                continue
            cell = render_placeholder(name=f"{base}.r{r}c{c}", prompt=prompt.split("Each cell:", 1)[-1],
                                      width=w, height=h)
            with Image.open(io.BytesIO(cell)) as opened:
                canvas.paste(opened.convert("RGB"), (left, top))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=85, optimize=False, progressive=False, subsampling="4:2:0")
    return out.getvalue()
