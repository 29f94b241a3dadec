"""Content keys: a target's canonical spec → a SHA-256 key.

The key covers exactly what changes the generated pixels: model *family* (tiers are channels of one
model), action, prompt, n, seed, ratio, resolution, search flags, OpenAI's request fields (OpenAI targets
only), and each reference in order — a
file by the SHA-256 of its bytes, an ``@target`` by that target's key, a URL by its text. It does not
cover output paths, ``official_fallback`` or build settings, so moving an output or switching tier
never pays for a new image. ``KEY_VERSION`` is part of the hash: changing the recipe invalidates
every key at once, on purpose.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..manifest.model import Manifest, Reference, Target

KEY_VERSION = 1
# One encoder for every key: json.dumps with options builds a new encoder on each call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class KeyedTarget:
    target: Target
    key: str
    digests: tuple[str, ...]     # of its references, in order (``reference_digest``)

    @cached_property
    def spec(self) -> dict[str, Any]:
        """The canonical fields that make the key; recorded in the lock for diffs. Made on first use:
        an up-to-date target never needs it."""
        return canonical_spec(self.target, list(self.digests))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "spec"}   # remembered small (snapshot)


def reference_digest(ref: Reference, hash_file: Callable[[Path], str], keys: Mapping[str, str],
                     retouched: Mapping[str, str] | None = None) -> str:
    if ref.kind == "file":
        assert ref.path is not None
        return "sha256:" + hash_file(ref.path)
    if ref.kind == "target":
        if retouched and ref.value in retouched:    # adopted: the edit receives the artist's bytes
            return "sha256:" + retouched[ref.value]
        return "key:" + keys[ref.value]
    return "url:" + ref.value


def canonical_spec(target: Target, ref_digests: list[str]) -> dict[str, Any]:
    spec = {
        "family": target.spec_model.family,
        "action": target.action,
        "prompt": target.prompt,
        "n": target.n,
        "seed": target.seed,
        "aspect_ratio": target.aspect_ratio,
        "resolution": target.resolution,
        "google_search": target.google_search,
        "google_image_search": target.google_image_search,
        "references": [{"ref": r.raw, "digest": d} for r, d in zip(target.references, ref_digests, strict=True)],
    }
    if target.style:
        spec["style"] = {"name": target.style, "digest": target.style_digest}
    if target.openai:
        # OpenAI's request fields change its pixels: in the key of OpenAI targets only (family
        # gpt-image-*), so no other target's key changes.
        spec["openai"] = dict(target.openai)
    return spec


def key_of(spec: Mapping[str, Any]) -> str:
    # Kept for diffs but not part of the key: a reference's spelling ("ref"; only content counts) and
    # the style's name (its effect is already in the prompt and fields above).
    hashed = {k: v for k, v in spec.items() if k != "style"}
    hashed.update(references=[r["digest"] for r in spec["references"]], v=KEY_VERSION)
    blob = _CANONICAL.encode(hashed)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def compute_keys(manifest: Manifest, hash_file: Callable[[Path], str],
                 previous: Mapping[str, KeyedTarget] | None = None,
                 retouched: Mapping[str, str] | None = None) -> dict[str, KeyedTarget]:
    """Keys for every target, in the manifest's topological order (upstream keys exist first).

    ``retouched``: target → SHA-256 of its adopted (retouched) first output, which is what an
    ``@target`` reference to it sends (``commands.adopt``); its hash replaces the upstream key.

    ``previous``: keys computed before (``snapshot``); one is reused when it was made of this very
    target object and the same reference digests, which is what the key is a function of.
    """
    keys: dict[str, str] = {}
    keyed: dict[str, KeyedTarget] = {}
    previous = previous or {}
    for name, target in manifest.targets.items():
        digests = tuple(reference_digest(r, hash_file, keys, retouched) for r in target.references)
        old = previous.get(name)
        if old is not None and old.target is target and old.digests == digests:
            keys[name] = old.key
            keyed[name] = old
            continue
        spec = canonical_spec(target, list(digests))
        keys[name] = key_of(spec)
        keyed[name] = made = KeyedTarget(target=target, key=keys[name], digests=digests)
        made.__dict__["spec"] = spec                 # computed already: cache it
    return keyed
