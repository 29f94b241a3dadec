"""The gateway's models: ids, families, tiers, prices, capabilities and pixel sizes. Data only.

Validation, cost estimates, placeholders, the emulator and ``assetgen models`` all read this table,
so adding a model is a one-place change: append a ``Model`` to ``MODELS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

STANDARD_RATIOS: tuple[str, ...] = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)
EXTENDED_RATIOS: tuple[str, ...] = ("1:4", "4:1", "1:8", "8:1")
ALL_ACTIONS: tuple[str, ...] = ("generate", "image2image", "edit", "reference", "search_grounded")
BASIC_ACTIONS: tuple[str, ...] = ALL_ACTIONS[:4]
RESOLUTIONS: tuple[str, ...] = ("0.5K", "1K", "2K", "4K")

# Gemini's published 1K sizes; other resolutions scale each side (0.5K halves, 2K doubles, 4K x4).
_SIZES_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
    "4:3": (1200, 896), "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376),
    "16:9": (1376, 768), "21:9": (1584, 672),
}
_SCALE: dict[str, float] = {"0.5K": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}

MAX_REFERENCE_BYTES = 30 * 1024 * 1024
# Images per task (`n`, `candidates`). Where it comes from: the gateway's model page documents `n` as
# "images per call" with no maximum, and another of its pages says "fixed at 1" (that dialect is handled
# by splitting a target into single-image tasks, not by this bound). So the bound is ours: 8 covers
# every contact sheet a person reviews, while `n = 40` (or 4000) is a typo that multiplies the bill.
MAX_IMAGES_PER_TASK = 8
# Documented by the gateway's other page (see ../shared/docs/gateway-api.md): beyond these a 400 is
# expected. They are warnings, not errors: the model page documents no prompt limit and 30 MB references.
DOCUMENTED_PROMPT_CHARS = 1000
DOCUMENTED_REFERENCE_BYTES = 10 * 1024 * 1024
DOCUMENTED_MAX_REFERENCES = 14
REFERENCE_FORMATS: tuple[str, ...] = ("jpg", "png", "webp")


@dataclass(frozen=True)
class Model:
    id: str
    family: str          # the model itself; tiers of one family are the same model (keys ignore tier)
    series: str          # marketing name, for `assetgen models`
    tier: str            # "standard" or "official"
    price: float         # USD per image
    resolutions: tuple[str, ...]
    ratios: tuple[str, ...]
    actions: tuple[str, ...]
    search: bool         # google_search / google_image_search grounding
    max_images: int = MAX_IMAGES_PER_TASK    # n / candidates per task (see MAX_IMAGES_PER_TASK)

    @property
    def official(self) -> Model:
        """The same family's official-channel model (itself if already official)."""
        return next(m for m in MODELS if m.family == self.family and m.tier == "official")


_PRO = dict(family="gemini-3-pro-image", series="Nano Banana Pro", resolutions=("1K", "2K", "4K"),
            ratios=STANDARD_RATIOS, actions=BASIC_ACTIONS, search=False)
_FLASH31 = dict(family="gemini-3.1-flash-image", series="Nano Banana 2", resolutions=RESOLUTIONS,
                ratios=STANDARD_RATIOS + EXTENDED_RATIOS, actions=ALL_ACTIONS, search=True)
_FLASH25 = dict(family="gemini-2.5-flash-image", series="Nano Banana", resolutions=("1K",),
                ratios=STANDARD_RATIOS, actions=BASIC_ACTIONS, search=False)

MODELS: tuple[Model, ...] = (
    Model(id="gemini-3-pro-image-preview-official", tier="official", price=0.1139, **_PRO),  # type: ignore[arg-type]
    Model(id="gemini-3-pro-image-preview", tier="standard", price=0.0425, **_PRO),  # type: ignore[arg-type]
    Model(id="gemini-3.1-flash-image-preview-official", tier="official", price=0.05695, **_FLASH31),  # type: ignore[arg-type]
    Model(id="gemini-3.1-flash-image-preview", tier="standard", price=0.031875, **_FLASH31),  # type: ignore[arg-type]
    Model(id="gemini-2.5-flash-image-preview-official", tier="official", price=0.03315, **_FLASH25),  # type: ignore[arg-type]
    Model(id="gemini-2.5-flash-image-preview", tier="standard", price=0.01328125, **_FLASH25),  # type: ignore[arg-type]
)
BY_ID: dict[str, Model] = {m.id: m for m in MODELS}
DEFAULT_MODEL = "gemini-3.1-flash-image-preview"


def get(model_id: str) -> Model:
    """The model with this id; ``KeyError`` if there is none (validation reports it first)."""
    return BY_ID[model_id]


def task_cost(model_id: str, images: int) -> float:
    """What a task of ``images`` images of this model costs (0 for a model the catalogue does not know)."""
    model = BY_ID.get(model_id)
    return model.price * images if model else 0.0


def _round16(value: float) -> int:
    return max(16, int(round(value / 16.0)) * 16)


def pixel_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height in pixels of an image at this ratio and resolution."""
    scale = _SCALE[resolution]
    if aspect_ratio in _SIZES_1K:
        w, h = _SIZES_1K[aspect_ratio]
        return int(w * scale), int(h * scale)
    # No published table for the extended ratios: keep the 1K square's area, sides multiples of 16.
    a, b = (int(x) for x in aspect_ratio.split(":"))
    area = 1024 * 1024
    w = _round16((area * a / b) ** 0.5)
    h = _round16((area * b / a) ** 0.5)
    return int(w * scale), int(h * scale)


# Task ids come from the gateway and end up in URL paths, the journal and the lock: only ids of this
# shape are used (the documented ids look like "task-wave1775309821b950328499").
MAX_TASK_ID = 200
_TASK_ID = re.compile(rf"(?!\.+\Z)[A-Za-z0-9._:-]{{1,{MAX_TASK_ID}}}")


def safe_task_id(value: Any) -> bool:
    """A task id assetgen may put in a URL path, the journal and the lock: letters, digits and
    ``._:-``, at most 200 characters, not only dots."""
    return isinstance(value, str) and _TASK_ID.fullmatch(value) is not None
