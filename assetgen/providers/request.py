"""What a target looks like on the wire: the gateway's submit body, references resolved.

Every default is sent explicitly (model, action, ratio, resolution, n, seed), so a change of the
gateway's defaults can never change an image behind the lock's back. The provider documents the ratio
field both as ``aspect_ratio`` and as ``size`` (same values): both are sent unless ``[settings]
gateway_fields`` names one; this is wire format only, so keys and the lock never depend on it. Local files and
``@target`` outputs travel as ``data:`` URLs (or under ``[settings] reference_base_url``); an upstream's result URL
is never sent, because it expires.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import catalog
from ..errors import AssetgenError
from ..manifest.model import Manifest, Reference, Target
from ..manifest.resolve import image_format

_MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def submit_body(manifest: Manifest, target: Target) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": target.model, "action": target.action, "prompt": target.prompt, "n": target.n,
        "seed": target.seed, "resolution": target.resolution,
    }
    for name in ("aspect_ratio", "size"):
        if manifest.settings.gateway_fields in ("both", name):
            body[name] = target.aspect_ratio
    if target.references:
        # Google and OpenAI take the bytes themselves (see ``manifest.providers``): always data: URLs.
        inline = target.provider != "gateway"
        body["image_urls"] = [reference_url(manifest, r, inline=inline) for r in target.references]
    if target.openai:
        body["openai"] = dict(target.openai)
    for flag in ("google_search", "google_image_search", "official_fallback"):
        if getattr(target, flag):
            body[flag] = True
    return body


def reference_url(manifest: Manifest, ref: Reference, *, inline: bool = False) -> str:
    if ref.kind == "url":
        return ref.value
    # An upstream target's reference is its first output, as written on disk by this or an earlier build.
    rel = manifest.targets[ref.value].outputs[0].path if ref.kind == "target" else ref.value
    base = manifest.settings.reference_base_url
    if base and not inline:
        return base.rstrip("/") + "/" + rel
    data = (manifest.root / rel).read_bytes()
    if len(data) > catalog.MAX_REFERENCE_BYTES:
        raise AssetgenError(f"reference {ref.raw} ({rel}) is {len(data) / 2**20:.1f} MB; the gateway "
                            f"accepts at most 30 MB")
    fmt = image_format(data[:12])
    if fmt is None:
        raise AssetgenError(f"reference {ref.raw} ({rel}) is not a JPG, PNG or WEBP image")
    return f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode('ascii')}"
