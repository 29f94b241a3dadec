"""Sprite sheets: packing frames into one image and the frame metadata engines read. Pure: no I/O.

``pack`` places rectangles with a deterministic shelf packer (frames sorted by height, then width, then
name; shelves left to right, top to bottom), trying sheet widths from the narrowest that fits the
widest frame up to ``max_size`` and keeping the smallest sheet. ``compose`` pastes the frames.
The metadata writers turn the placed frames into:

- TexturePacker's JSON, *hash* (``frames`` an object by name) and *array* (``frames`` a list with a
  ``filename`` each): what Phaser's ``load.atlas``, PixiJS's ``Spritesheet`` and many engines read;
- a Godot 4 ``SpriteFrames`` resource (``.tres``: one ``AtlasTexture`` per frame, one animation per
  group of frames, e.g. the rows of a matrix target);
- a plain JSON (name → x, y, w, h, plus groups) for importers of your own (Unity, Defold, scripts).

Every writer is deterministic (sorted keys, no timestamps), so a sheet whose members did not change
writes the same bytes.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

METADATA = ("texturepacker-hash", "texturepacker-array", "godot", "json")
# What each metadata format writes beside the sheet image ``<stem>.png``.
SUFFIXES = {"texturepacker-hash": ".json", "texturepacker-array": ".array.json", "godot": ".tres",
            "json": ".frames.json"}
APP = "https://github.com/assetgen/assetgen"


@dataclass(frozen=True)
class Frame:
    name: str            # the frame's name in the metadata: the member target's name
    width: int
    height: int
    group: str = ""      # animation / group it belongs to (the matrix or grid target), "" = its own name


@dataclass(frozen=True)
class Placed:
    frame: Frame
    x: int
    y: int


@dataclass(frozen=True)
class Packing:
    width: int
    height: int
    placed: tuple[Placed, ...]          # in frame-name order


class TooBig(ValueError):
    """The frames do not fit in ``max_size`` × ``max_size``; the message says how much room they need,
    ``need`` the smallest ``max_size`` that holds them."""

    def __init__(self, message: str, *, need: int) -> None:
        super().__init__(message)
        self.need = need


def describe(frames: list[Frame], padding: int) -> str:
    """"16 frames of 32×32 px" / "3 frames of up to 40×64 px, 2 px apart": what is being packed."""
    widest, tallest = max(f.width for f in frames), max(f.height for f in frames)
    same = all((f.width, f.height) == (widest, tallest) for f in frames)
    apart = f", {padding} px apart" if padding else ""
    count = f"{len(frames)} frame{'s' if len(frames) != 1 else ''}"
    return f"{count} of {'' if same else 'up to '}{widest}×{tallest} px{apart}"


def least_side(frames: list[Frame], padding: int) -> int:
    """A side no sheet holding ``frames`` can be smaller than (their widest, tallest, and area), no packing."""
    area = sum((f.width + padding) * (f.height + padding) for f in frames) - padding * padding
    return max(max(f.width for f in frames), max(f.height for f in frames), math.isqrt(max(0, area - 1)) + 1)


def fits(frames: list[Frame], *, padding: int = 0, power_of_two: bool = False, max_size: int = 4096) -> bool:
    """Whether ``pack`` holds ``frames`` within ``max_size``, packing only when it is close: frames over
    the lower bound never fit, and frames filling under a ninth of the room with no side over a third
    always do (shelves of decreasing height use at most 2·area/width + the tallest: under 0.76 of the
    room), so a manifest of a thousand icons is not packed at every load."""
    if not frames:
        return True
    if least_side(frames, padding) > max_size:
        return False
    room = 1 << (max_size.bit_length() - 1) if power_of_two else max_size     # pow2 sides stay within it
    if 3 * (least_side(frames, padding) + padding) <= room and \
            3 * (max(max(f.width, f.height) for f in frames) + padding) <= room:
        return True
    return _best(frames, padding, power_of_two, max_size) is not None


def _need(frames: list[Frame], padding: int, power_of_two: bool, tried: int) -> int:
    """The smallest ``max_size`` that holds ``frames`` (more than ``tried``, which does not): a search,
    made only to say so in an error."""
    def holds(size: int) -> bool:
        return _best(frames, padding, power_of_two, size) is not None

    low = max(tried, least_side(frames, padding) - 1)       # does not hold
    high = max(low + 1, 2 * least_side(frames, padding))
    while not holds(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if holds(middle) else (middle, high)
    return high


def _pow2(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


def _shelves(frames: list[Frame], width: int, padding: int) -> tuple[list[Placed], int, int]:
    """Frames (already sorted) on shelves of ``width``: (placed, used width, used height)."""
    placed: list[Placed] = []
    x = y = shelf = used_w = 0
    for frame in frames:
        if x and x + frame.width > width:
            x, y, shelf = 0, y + shelf + padding, 0
        placed.append(Placed(frame, x, y))
        used_w = max(used_w, x + frame.width)
        x += frame.width + padding
        shelf = max(shelf, frame.height)
    return placed, used_w, (y + shelf) if frames else 0


def pack(frames: list[Frame], *, padding: int = 0, power_of_two: bool = False, max_size: int = 4096) -> Packing:
    """Place ``frames`` without overlap, ``padding`` pixels apart. Deterministic: the same frames (in
    any order) give the same packing. Raises ``TooBig`` when no sheet within ``max_size`` holds them."""
    if not frames:
        return Packing(1, 1, ())
    best = _best(frames, padding, power_of_two, max_size)
    if best is None:
        need = _need(frames, padding, power_of_two, max_size)
        raise TooBig(f"{describe(frames, padding)} do not fit in {max_size}×{max_size}; they need at least "
                     f"{need}×{need}", need=need)
    placed = sorted(best, key=lambda p: p.frame.name)
    width = max(p.x + p.frame.width for p in placed)
    height = max(p.y + p.frame.height for p in placed)
    if power_of_two:
        width, height = _pow2(width), _pow2(height)
    return Packing(width, height, tuple(placed))


def _best(frames: list[Frame], padding: int, power_of_two: bool, max_size: int) -> list[Placed] | None:
    """The squarest, then smallest, shelf packing within ``max_size``; None if there is none."""
    ordered = sorted(frames, key=lambda f: (-f.height, -f.width, f.name))
    widest = max(f.width for f in frames)
    area = sum((f.width + padding) * (f.height + padding) for f in frames)
    best: tuple[int, int, int, list[Placed]] | None = None     # (longest side, area, width, placed)
    start = max(widest, int(math.sqrt(area)) // 2)
    widths = sorted({min(max_size, max(widest, w)) for w in range(start, max_size + 1, max(1, widest // 4 or 1))}
                    | {widest, min(max_size, max(widest, math.ceil(math.sqrt(area))))})
    for width in widths:
        placed, used_w, used_h = _shelves(ordered, width, padding)
        sheet_w, sheet_h = (_pow2(used_w), _pow2(used_h)) if power_of_two else (used_w, used_h)
        if sheet_w > max_size or sheet_h > max_size:
            continue
        score = (max(sheet_w, sheet_h), sheet_w * sheet_h, sheet_w)     # squarest, then smallest
        if best is None or score < best[:3]:
            best = (*score, placed)
    return None if best is None else best[3]


def compose(packing: Packing, images: dict[str, bytes]) -> bytes:
    """The sheet's PNG: each frame's image (by name) pasted at its place on a transparent canvas."""
    from PIL import Image

    sheet = Image.new("RGBA", (packing.width, packing.height), (0, 0, 0, 0))
    for place in packing.placed:
        with Image.open(io.BytesIO(images[place.frame.name])) as opened:
            frame = opened.convert("RGBA")
        sheet.paste(frame, (place.x, place.y))
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _rect(place: Placed) -> dict[str, int]:
    return {"x": place.x, "y": place.y, "w": place.frame.width, "h": place.frame.height}


def _texturepacker_frame(place: Placed) -> dict[str, Any]:
    w, h = place.frame.width, place.frame.height
    return {"frame": _rect(place), "rotated": False, "trimmed": False,
            "spriteSourceSize": {"x": 0, "y": 0, "w": w, "h": h}, "sourceSize": {"w": w, "h": h}}


def _meta(packing: Packing, image: str) -> dict[str, Any]:
    return {"app": APP, "version": "1.0", "image": image, "format": "RGBA8888",
            "size": {"w": packing.width, "h": packing.height}, "scale": "1"}


def texturepacker_hash(packing: Packing, image: str) -> str:
    """TexturePacker's "JSON (Hash)": ``frames`` by name; ``meta.image`` is the sheet's file name
    (loaders resolve it beside the JSON)."""
    frames = {p.frame.name: _texturepacker_frame(p) for p in packing.placed}
    return json.dumps({"frames": frames, "meta": _meta(packing, image)}, indent=1, sort_keys=True) + "\n"


def texturepacker_array(packing: Packing, image: str) -> str:
    """TexturePacker's "JSON (Array)": ``frames`` a list, each with its ``filename``."""
    frames = [{"filename": p.frame.name, **_texturepacker_frame(p)} for p in packing.placed]
    return json.dumps({"frames": frames, "meta": _meta(packing, image)}, indent=1, sort_keys=True) + "\n"


def groups(packing: Packing) -> dict[str, list[str]]:
    """Frame names by group (an animation in Godot), each group's frames in name order."""
    found: dict[str, list[str]] = {}
    for place in packing.placed:
        found.setdefault(place.frame.group or place.frame.name, []).append(place.frame.name)
    return {name: found[name] for name in sorted(found)}


def plain_json(packing: Packing, image: str) -> str:
    """Name → rectangle, the sheet's size and the groups: easy to read from any engine's importer."""
    data = {"image": image, "width": packing.width, "height": packing.height,
            "frames": {p.frame.name: _rect(p) for p in packing.placed}, "groups": groups(packing)}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def godot_sprite_frames(packing: Packing, res_path: str, *, fps: float = 5.0) -> str:
    """A Godot 4 ``SpriteFrames`` resource: the sheet as an external ``Texture2D``, one ``AtlasTexture``
    per frame (its ``region`` the packed rectangle), one looping animation per group."""
    ids = {p.frame.name: f"AtlasTexture_{i}" for i, p in enumerate(packing.placed, start=1)}
    lines = [f'[gd_resource type="SpriteFrames" load_steps={len(packing.placed) + 2} format=3]', "",
             f'[ext_resource type="Texture2D" path="{res_path}" id="1_sheet"]', ""]
    for place in packing.placed:
        f = place.frame
        lines += [f'[sub_resource type="AtlasTexture" id="{ids[f.name]}"]', 'atlas = ExtResource("1_sheet")',
                  f"region = Rect2({place.x}, {place.y}, {f.width}, {f.height})", ""]
    animations = []
    for group, names in groups(packing).items():
        frames = ", ".join(f'{{\n"duration": 1.0,\n"texture": SubResource("{ids[n]}")\n}}' for n in names)
        animations.append(f'{{\n"frames": [{frames}],\n"loop": true,\n"name": &{json.dumps(group)},\n'
                          f'"speed": {fps}\n}}')
    lines += ["[resource]", f"animations = [{', '.join(animations)}]", ""]
    return "\n".join(lines)
