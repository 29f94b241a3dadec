"""Which provider sells a target's image, and the provider's own fields (``openai = { … }``).

A target's provider is, in this order: ``provider`` set on the target, its style, ``[defaults]`` or the
profile; else the one provider whose catalogue has the target's model id (``gpt-image-1`` is OpenAI's
only); else ``[settings] provider`` (default ``gateway``, so existing manifests do not change). Offline
is a build mode, not a seller: ``[settings] provider = "offline"`` (or ``--offline``) builds placeholders
of each target at its provider's sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import catalog
from ..errors import did_you_mean

Report = Callable[..., None]
OPENAI_DEFAULTS: dict[str, str] = {"quality": "medium", "background": "auto", "output_format": "png"}


def choose_provider(values: dict[str, Any], settings_provider: str, set_fields: Mapping[str, Any],
                    report: Report) -> bool:
    """Set ``values["provider"]`` (and the provider's default model when none was set, and the
    resolved ``openai`` fields); False after reporting a problem."""
    explicit = values.get("provider")
    model_id = values["model"]
    if explicit == "offline":
        report("'offline' is a build mode, not a target's provider: set [settings] provider = \"offline\" "
               "or pass --offline; a target's provider is gateway, gemini or openai", "provider")
        return False
    sellers = catalog.providers_of(model_id)
    if explicit:
        provider = explicit
    elif len(sellers) == 1:
        provider = sellers[0]
    else:
        provider = settings_provider if settings_provider in catalog.CHANNELS else "gateway"
    if "model" not in set_fields and catalog.lookup(provider, model_id) is None:
        values["model"] = model_id = catalog.DEFAULT_MODELS[provider]
    values["provider"] = provider
    ok = True
    if catalog.lookup(provider, model_id) is None and sellers:
        report(f"provider '{provider}' does not sell '{model_id}' (it is sold by {', '.join(sellers)}); "
               f"{provider} models: {', '.join(m.id for m in catalog.MODELS_OF[provider])}", "model")
        ok = False
    elif catalog.lookup(provider, model_id) is None:
        ids = [m.id for m in catalog.MODELS_OF[provider]]
        report(f"unknown model '{model_id}'{did_you_mean(model_id, ids)}; {provider} models: "
               f"{', '.join(ids)} (`assetgen models` lists every provider's)", "model")
        ok = False
    return _openai_fields(values, provider, report) and _references_ok(values, provider, report) and ok


def _openai_fields(values: dict[str, Any], provider: str, report: Report) -> bool:
    table = {k: v for k, v in (values.get("openai") or {}).items() if v is not None}
    if provider != "openai":
        if table:
            report(f"the `openai` table sets OpenAI's request fields, but this target's provider is "
                   f"{provider}; remove it, or set provider = \"openai\" (post-processing is `quality`, "
                   f"`background` and `format` outside the table)", "openai")
            return False
        values["openai"] = ()
        return True
    merged = {**OPENAI_DEFAULTS, **table}
    if merged["background"] == "transparent" and merged["output_format"] == "jpeg":
        # OpenAI's Images API: a transparent background needs png or webp output.
        report("openai.background = \"transparent\" needs output_format \"png\" or \"webp\" (JPEG has no "
               "alpha channel)", "openai")
        return False
    values["openai"] = tuple(sorted(merged.items()))
    return True


def _references_ok(values: dict[str, Any], provider: str, report: Report) -> bool:
    """Google's and OpenAI's image calls take reference images as bytes (inline data, multipart files):
    an http(s) URL would have to be fetched by us, which we do not do behind the user's back."""
    if provider == "gateway":
        return True
    urls = [r for r in values.get("references", []) if isinstance(r, str) and r.startswith(("http://", "https://"))]
    if urls:
        report(f"reference '{urls[0]}' is a URL; provider {provider} takes reference images as file bytes: "
               f"download it and reference the file by its path", "references")
        return False
    return True
