"""Workload generators: deterministic projects (manifest + reference PNGs) written into a folder.

Everything is derived from a seed, so two runs with the same seed write byte-identical manifests and
images. A generated manifest has

* realistic prompts of varying length (10 to ~70 words) built from a small vocabulary, each unique
  (a target's own subject and number are in it), so no two targets share a key;
* a quarter of its targets with a local reference file (``refs/ref_NNN.png``: a few hundred small,
  real PNGs made with Pillow, shared between targets) and ``action = "edit"``;
* about a tenth of its targets in ``@`` chains of depth 2 to 4 (``chain_X_1`` ← ``chain_X_2`` ← …),
  each link an ``edit`` of the one before;
* the cheapest image sizes (``resolution = "0.5K"``) so that building the project once is quick.

``Workload`` records what was generated (names, references, chains), so tests can check the
generator and benchmarks can pick a target to edit.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["CHAIN_SHARE", "REF_SHARE", "Workload", "edit_prompt", "make_project", "make_reference_images"]

REF_SHARE = 0.25           # share of targets with a reference file
CHAIN_SHARE = 0.10         # share of targets that sit in @ chains
RATIOS = ("1:1", "3:4", "4:3", "16:9", "9:16", "2:3", "3:2")

_SUBJECTS = (
    "knight", "wizard", "fox", "lighthouse", "castle", "dragon", "robot", "market stall", "spaceship",
    "treasure chest", "potion bottle", "forest path", "desert temple", "snowy village", "harbour",
    "airship", "mushroom house", "crystal cave", "windmill", "train station", "library", "cat",
    "owl", "samurai", "pirate ship", "volcano", "bakery", "greenhouse", "observatory", "bridge",
)
_STYLES = (
    "flat pastel style", "watercolour", "isometric pixel art", "cel-shaded", "ink and wash",
    "low-poly 3D render", "gouache painting", "vector illustration", "soft clay render",
    "storybook illustration", "retro 16-bit sprite", "photorealistic studio shot",
)
_DETAILS = (
    "warm morning light", "long shadows", "plain white background", "centered composition",
    "subtle film grain", "muted colour palette", "high contrast", "rim lighting", "misty atmosphere",
    "side view", "three-quarter view", "full body", "close-up", "wide establishing shot",
    "no text", "clean outlines", "soft gradients", "teal and orange accents", "gentle vignette",
    "seen from below", "reflections on wet ground", "golden hour", "overcast sky", "snow falling",
    "sparkles in the air", "cosy interior lighting", "dramatic clouds", "bokeh in the background",
)
_VERBS = ("standing beside", "looking at", "resting near", "walking past", "guarding", "repairing",
          "painting", "discovering", "carrying", "sketching")


@dataclass
class Workload:
    """A generated project: where it is and what it holds (for tests and for picking edits)."""

    root: Path
    size: int
    names: list[str]                                   # every target, in manifest order
    prompts: dict[str, str]
    references: dict[str, str] = field(default_factory=dict)     # target → its reference file
    chains: list[list[str]] = field(default_factory=list)        # each chain, upstream first
    ref_files: list[str] = field(default_factory=list)           # every reference PNG written

    @property
    def manifest(self) -> Path:
        return self.root / "assets.toml"

    @property
    def chained(self) -> set[str]:
        return {n for chain in self.chains for n in chain}

    def plain(self) -> list[str]:
        """Targets with no reference of any kind: safe to edit without changing anything else."""
        chained = self.chained
        return [n for n in self.names if n not in self.references and n not in chained]


def _prompt(rng: random.Random, index: int) -> str:
    subject = rng.choice(_SUBJECTS)
    other = rng.choice(_SUBJECTS)
    words = [f"{_a(subject).capitalize()} number {index} {rng.choice(_VERBS)} {_a(other)}", rng.choice(_STYLES)]
    for _ in range(rng.choice((1, 2, 3, 4, 6, 9, 12))):      # long tail: some prompts are long
        words.append(rng.choice(_DETAILS))
    return ", ".join(words)


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def make_reference_images(folder: Path, count: int, *, seed: int = 0) -> list[Path]:
    """``count`` small, real, distinct PNG files (32×32 .. 64×64) in ``folder``; reused if present."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"ref_{i:03d}.png"
        w, h = rng.randint(32, 64), rng.randint(32, 64)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if not path.exists():
            img = Image.new("RGB", (w, h), colour)
            draw = ImageDraw.Draw(img)
            draw.rectangle((i % w // 2, i % h // 2, w - 1, h - 1), outline=(255 - colour[0], 0, colour[2]))
            draw.text((2, 2), str(i), fill=(0, 0, 0))
            img.save(path, format="PNG")
        paths.append(path)
    return paths


def _link_references(refs_from: Path, refs_dir: Path, count: int) -> list[Path]:
    """The first ``count`` PNGs of ``refs_from``, hard-linked (or copied) into ``refs_dir``."""
    refs_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(refs_from.glob("ref_*.png"))[:count]
    for src in sources:
        dst = refs_dir / src.name
        if not dst.exists():
            try:
                dst.hardlink_to(src)
            except OSError:
                dst.write_bytes(src.read_bytes())
    return sources


def make_project(root: Path, size: int, *, seed: int = 1, ref_images: int | None = None,
                 refs_from: Path | None = None, jobs: int = 8, ref_share: float = REF_SHARE,
                 chain_share: float = CHAIN_SHARE) -> Workload:
    """Write ``root/assets.toml`` with ``size`` targets (and ``root/refs/*.png``); return what it holds.

    ``refs_from``: a folder of PNGs made by ``make_reference_images`` to link (hard link, or copy)
    instead of writing new ones, so several workloads share one set of files.
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    count = ref_images if ref_images is not None else max(4, min(300, size // 4))
    refs_dir = root / "refs"
    if refs_from is not None:
        ref_files = [f"refs/{p.name}" for p in _link_references(refs_from, refs_dir, count)]
    else:
        ref_files = [f"refs/{p.name}" for p in make_reference_images(refs_dir, count, seed=seed)]
    _backdate(refs_dir)

    # Chains first take their share of the targets, in runs of 2..4 links.
    chain_budget = int(size * chain_share)
    chains: list[list[str]] = []
    taken = 0
    while taken + 2 <= chain_budget:
        depth = min(rng.randint(2, 4), chain_budget - taken)
        chains.append([f"chain{len(chains):04d}_{k + 1}" for k in range(depth)])
        taken += depth
    plain_count = size - taken

    wl = Workload(root=root, size=size, names=[], prompts={}, chains=chains, ref_files=ref_files)
    blocks: list[str] = []
    index = 0

    def add(name: str, refs: list[str]) -> None:
        nonlocal index
        index += 1
        prompt = _prompt(rng, index)
        lines = [f"[targets.{name}]", f'prompt = "{prompt}"']
        ratio = rng.choice(RATIOS)
        if ratio != "1:1":
            lines.append(f'aspect_ratio = "{ratio}"')
        if refs:
            lines.append('action = "edit"')
            lines.append("references = [" + ", ".join(f'"{r}"' for r in refs) + "]")
        if rng.random() < 0.2:
            lines.append(f"seed = {rng.randrange(1, 10_000)}")
        blocks.append("\n".join(lines))
        wl.names.append(name)
        wl.prompts[name] = prompt

    # A quarter of all targets carry a reference file: the chains' heads do, the rest are plain ones.
    with_file = int(size * ref_share)
    for chain in chains:
        for k, name in enumerate(chain):
            refs = [f"@{chain[k - 1]}"] if k else []
            if k == 0 and with_file > 0:
                ref = rng.choice(ref_files)
                refs.append(ref)
                wl.references[name] = ref
                with_file -= 1
            add(name, refs)
    for i in range(plain_count):
        name = f"{rng.choice(_SUBJECTS).replace(' ', '_')}_{i:05d}"
        refs: list[str] = []
        if with_file > 0 and rng.random() < with_file / max(1, plain_count - i):
            ref = rng.choice(ref_files)
            refs = [ref]
            wl.references[name] = ref
            with_file -= 1
        add(name, refs)

    header = (
        f"# Generated by benchmarks/workloads.py (seed {seed}): {size} targets.\n"
        f"[settings]\nout_dir = \"out\"\njobs = {jobs}\n\n"
        "[defaults]\nmodel = \"gemini-3.1-flash-image-preview\"\nresolution = \"0.5K\"\n\n")
    wl.manifest.write_text(header + "\n\n".join(blocks) + "\n", encoding="utf-8")
    return wl


def edit_prompt(workload: Workload, name: str, suffix: str) -> str:
    """Append ``suffix`` to one target's prompt in the manifest (exactly one occurrence). Returns it."""
    old = workload.prompts[name]
    new = f"{old}, {suffix}"
    text = workload.manifest.read_text(encoding="utf-8")
    needle = f'prompt = "{old}"'
    if text.count(needle) != 1:
        raise AssertionError(f"prompt of {name} occurs {text.count(needle)} times")
    workload.manifest.write_text(text.replace(needle, f'prompt = "{new}"'), encoding="utf-8")
    workload.prompts[name] = new
    return new


def _backdate(folder: Path, seconds: int = 3600) -> None:
    """Reference files of a real project are old: give them an mtime in the past, so the stat cache
    keeps their hashes (it does not persist hashes of files changed in the last two seconds)."""
    then = time.time_ns() - seconds * 1_000_000_000
    for path in folder.glob("*.png"):
        os.utime(path, ns=(then, then))

