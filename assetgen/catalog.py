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
    provider: str = "gateway"                # who sells it (see PROVIDERS below)
    # Price per image by resolution ("1K") or by "quality size" ("high 1536x1024"); ``price`` is the
    # default's. With the date the vendor's page was read and where.
    prices: tuple[tuple[str, float], ...] = ()
    price_read: str = ""
    price_source: str = ""
    sizes: tuple[tuple[str, tuple[int, int]], ...] = ()   # exact pixel sizes per ratio, when fixed

    @property
    def official(self) -> Model:
        """The same family's official-channel model (itself if already official, or not the gateway's)."""
        if self.provider != "gateway":
            return self
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


# --- other providers ---------------------------------------------------------------------------------
# The gateway above resells these models; Google and OpenAI sell them directly. A provider declares its
# models, its authentication, how it is called and what a crash during a call can cost. The same
# family through two channels is one model: keys use the family, so switching channel rebuilds nothing.


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    key_envs: tuple[str, ...]        # the first one set is used
    base_url_env: str
    base_url: str
    submission: str                  # "async task" | "sync call"
    crash_cost: str                  # what a crash or timeout during a call can cost


PROVIDERS: dict[str, ProviderInfo] = {
    "gateway": ProviderInfo("gateway", ("ASSETGEN_API_KEY",), "ASSETGEN_BASE_URL", "https://www.qingbo.dev",
                            "async task", "at most one task id (journaled intent, then uncertain)"),
    "gemini": ProviderInfo("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "GEMINI_BASE_URL",
                           "https://generativelanguage.googleapis.com", "sync call",
                           "sync: interrupted calls may be paid (uncertain)"),
    "openai": ProviderInfo("openai", ("OPENAI_API_KEY",), "OPENAI_BASE_URL", "https://api.openai.com",
                           "sync call", "sync: interrupted calls may be paid (uncertain)"),
    "offline": ProviderInfo("offline", (), "", "", "local", "nothing (placeholders are free)"),
}
CHANNELS: tuple[str, ...] = ("gateway", "gemini", "openai")   # providers that pay for real images

# Google's Gemini API. Model ids and image configuration from ai.google.dev (generateContent,
# generationConfig.imageConfig.aspectRatio / imageSize: "1K", "2K", "4K"; 0.5K only on 3.1 Flash).
# Prices per output image, read 2026-12-02 from a public cost map that mirrors Google's pricing page
# (https://github.com/HeyPuter/puter/pull/2562) and https://ai.google.dev/gemini-api/docs/pricing as
# quoted there; NOT checked against the live page: update here if Google's page says otherwise.
_GEMINI_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing (via github.com/HeyPuter/puter/pull/2562)"
GEMINI_MODELS: tuple[Model, ...] = (
    Model(id="gemini-3-pro-image-preview", tier="direct", price=0.134, provider="gemini",
          prices=(("1K", 0.134), ("2K", 0.134), ("4K", 0.24)), price_read="2026-12-02",
          price_source=_GEMINI_SOURCE, max_images=MAX_IMAGES_PER_TASK, **_PRO),  # type: ignore[arg-type]
    Model(id="gemini-3.1-flash-image-preview", tier="direct", price=0.067, provider="gemini",
          prices=(("0.5K", 0.045), ("1K", 0.067), ("2K", 0.101), ("4K", 0.151)), price_read="2026-12-02",
          price_source=_GEMINI_SOURCE, **{**_FLASH31, "actions": BASIC_ACTIONS, "search": False}),  # type: ignore[arg-type]
    Model(id="gemini-2.5-flash-image", tier="direct", price=0.039, provider="gemini",
          prices=(("1K", 0.039),), price_read="2026-12-02", price_source=_GEMINI_SOURCE, **_FLASH25),  # type: ignore[arg-type]
)

# OpenAI's image models (developers.openai.com/api/docs/models/<id>; Images API: /v1/images/generations
# and /v1/images/edits). Sizes are fixed per ratio; prices per image by quality and size.
# gpt-image-1-mini: read 2026-12-02 from developers.openai.com/api/docs/models/gpt-image-1-mini.
# gpt-image-1 and gpt-image-1.5: read 2026-12-02 from fal.ai/models/fal-ai/gpt-image-1 and
# runware.ai/docs/models/openai-gpt-image-1-5, which quote OpenAI's per-image prices (not checked
# against OpenAI's own page).
OPENAI_SIZES: tuple[tuple[str, tuple[int, int]], ...] = (
    ("1:1", (1024, 1024)), ("3:2", (1536, 1024)), ("2:3", (1024, 1536)))
OPENAI_QUALITIES: tuple[str, ...] = ("low", "medium", "high")
OPENAI_BACKGROUNDS: tuple[str, ...] = ("auto", "opaque", "transparent")
OPENAI_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
OPENAI_MAX_N = 10                    # the Images API's documented bound on n (ours is lower)


def _openai_prices(square: tuple[float, float, float], other: tuple[float, float, float]
                   ) -> tuple[tuple[str, float], ...]:
    rows = []
    for quality, sq, ot in zip(OPENAI_QUALITIES, square, other, strict=True):
        rows += [(f"{quality} 1024x1024", sq), (f"{quality} 1536x1024", ot), (f"{quality} 1024x1536", ot)]
    return tuple(rows)


_OPENAI: dict[str, Any] = {
    "tier": "direct", "resolutions": ("1K",), "ratios": tuple(r for r, _ in OPENAI_SIZES),
    "actions": ("generate", "edit", "reference", "image2image"), "search": False, "provider": "openai",
    "sizes": OPENAI_SIZES, "price_read": "2026-12-02"}
OPENAI_MODELS: tuple[Model, ...] = (
    Model(id="gpt-image-1.5", family="gpt-image-1.5", series="GPT Image 1.5", price=0.034,
          prices=_openai_prices((0.009, 0.034, 0.133), (0.013, 0.05, 0.2)),
          price_source="https://runware.ai/docs/models/openai-gpt-image-1-5 (OpenAI's prices as quoted)",
          **_OPENAI),
    Model(id="gpt-image-1", family="gpt-image-1", series="GPT Image 1", price=0.042,
          prices=_openai_prices((0.011, 0.042, 0.167), (0.016, 0.063, 0.25)),
          price_source="https://fal.ai/models/fal-ai/gpt-image-1 (OpenAI's prices as quoted)",
          **_OPENAI),
    Model(id="gpt-image-1-mini", family="gpt-image-1-mini", series="GPT Image 1 mini", price=0.011,
          prices=_openai_prices((0.005, 0.011, 0.036), (0.006, 0.015, 0.052)),
          price_source="https://developers.openai.com/api/docs/models/gpt-image-1-mini", **_OPENAI),
)
DEFAULT_MODELS: dict[str, str] = {"gateway": DEFAULT_MODEL, "gemini": "gemini-3.1-flash-image-preview",
                                  "openai": "gpt-image-1.5"}
MODELS_OF: dict[str, tuple[Model, ...]] = {"gateway": MODELS, "gemini": GEMINI_MODELS, "openai": OPENAI_MODELS}


def lookup(provider: str, model_id: str) -> Model | None:
    """The model ``model_id`` as ``provider`` sells it; None if it does not."""
    return next((m for m in MODELS_OF.get(provider, MODELS) if m.id == model_id), None)


def providers_of(model_id: str) -> list[str]:
    """The channels that sell a model with this id."""
    return [p for p in CHANNELS if lookup(p, model_id) is not None]


def size_of(model: Model, aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The pixel size ``model`` draws at this ratio and resolution."""
    fixed = dict(model.sizes)
    return fixed[aspect_ratio] if aspect_ratio in fixed else pixel_size(aspect_ratio, resolution)


def image_price(model: Model, aspect_ratio: str, resolution: str, quality: str | None = None) -> float:
    """USD per image of ``model`` for these settings (its ``price`` where the table has no row)."""
    table = dict(model.prices)
    if model.sizes:
        w, h = size_of(model, aspect_ratio, resolution)
        return table.get(f"{quality or 'medium'} {w}x{h}", model.price)
    return table.get(resolution, model.price)
