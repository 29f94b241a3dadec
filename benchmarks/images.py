"""Benchmark 6, images: derivation throughput, ``key_out`` old against new, PNG level, cache size.

* **icon pipeline**: N generations at 1K (1024×1024), each with five PNG outputs (1024, 512, 256, 128,
  64 px), built offline with the real ``assetgen build --offline`` on a fresh project per run (placeholder
  rendering, one decode per generation, derivations on every core, writes); wall and peak RSS; the
  cache's size against the outputs' (derived outputs are not cached, only the generations).
* **derived outputs**: the same at 500 generations: 2,500 derived outputs.
* **key_out**: the vectorised ``key_out`` against the pure-Python flood fill it replaced (kept below
  as ``flood_fill_key_out``) on an anti-aliased disc on white at 1K, 2K and 4K, in-process.
* **PNG level**: zlib level 1 (``derive.PNG_COMPRESS_LEVEL``) against Pillow's default 6 on the icon
  pipeline's five outputs of placeholder and of noisy (photo-like) images: time and bytes.
"""

from __future__ import annotations

import io
import shutil
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Config
from .measure import Row, cli_env, run_cli

SIZES = (1024, 512, 256, 128, 64)
ICON_GOAL_S = 4.0                # 100 generations × 5 outputs, offline
DERIVED_GOAL_S = 60.0            # 2,500 derived outputs
DERIVED_GOAL_MB = 250.0


def icon_manifest(n: int) -> str:
    lines = ['[settings]\nout_dir = "out"\n\n[defaults]\nmodel = "gemini-3.1-flash-image-preview"\n'
             'resolution = "1K"\n']
    for i in range(n):
        outputs = ", ".join(f'{{ output = "icons/icon{i:04d}-{s}.png", resize = [{s}, {s}] }}' for s in SIZES)
        lines.append(f'[targets.icon{i:04d}]\nprompt = "Game icon number {i}: a potion, flat style"\n'
                     f"outputs = [{outputs}]\n")
    return "\n".join(lines)


def _folder_mb(folder: Path, pattern: str) -> float:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file()) / 1e6


def pipeline(work: Path, n: int, runs: int,
             say: Callable[[str], None]) -> tuple[list[float], list[float], dict[str, Any]]:
    walls, rss = [], []
    counters: dict[str, Any] = {}
    for i in range(runs):
        root = work / f"images-{n}-run{i}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "assets.toml").write_text(icon_manifest(n), encoding="utf-8")
        say(f"images: {n} generations × {len(SIZES)} PNG outputs, run {i + 1}/{runs}…")
        result = run_cli(root, "build", "--offline", env=cli_env())
        walls.append(result.wall)
        rss.append(result.max_rss_mb)
        counters = {"outputs": len(list((root / "out" / "icons").glob("*.png"))),
                    "outputs_mb": _folder_mb(root / "out" / "icons", "*.png"),
                    "cache_objects_mb": _folder_mb(root / ".assetgen" / "objects", "*/*"),
                    "cpu_s": result.cpu}
        if i < runs - 1:
            shutil.rmtree(root, ignore_errors=True)
    return walls, rss, counters


def flood_fill_key_out(image: Any, color: tuple[int, int, int] = (255, 255, 255), tol: int = 12) -> Any:
    """The pure-Python ``key_out`` of assetgen before derivation version 3, for comparison only."""
    width, height = image.size
    pixels = image.load()
    seen = bytearray(width * height)
    queue: deque[tuple[int, int]] = deque()
    for x in range(width):
        queue.extend(((x, 0), (x, height - 1)))
    for y in range(height):
        queue.extend(((0, y), (width - 1, y)))
    while queue:
        x, y = queue.popleft()
        index = y * width + x
        if seen[index]:
            continue
        seen[index] = 1
        r, g, b, _a = pixels[x, y]
        if not (abs(r - color[0]) <= tol and abs(g - color[1]) <= tol and abs(b - color[2]) <= tol):
            continue
        pixels[x, y] = (r, g, b, 0)
        if x > 0:
            queue.append((x - 1, y))
        if x < width - 1:
            queue.append((x + 1, y))
        if y > 0:
            queue.append((x, y - 1))
        if y < height - 1:
            queue.append((x, y + 1))
    return image


def disc(size: int) -> Any:
    from PIL import Image, ImageDraw

    big = Image.new("RGB", (size * 2, size * 2), "white")
    ImageDraw.Draw(big).ellipse((size // 2, size // 2, size * 3 // 2, size * 3 // 2), fill=(150, 30, 30))
    out = io.BytesIO()
    big.resize((size, size), Image.Resampling.LANCZOS).save(out, "JPEG", quality=92)
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        return opened.convert("RGBA")


def key_out_rows(sizes: tuple[int, ...], runs: int, say: Callable[[str], None]) -> list[Row]:
    from assetgen.images.derive import KeyOut, key_out

    rows = []
    key_out(disc(64), KeyOut())                     # imports (numpy, scipy) outside the timing
    for size in sizes:
        image = disc(size)
        new = []
        for _ in range(runs):
            started = time.perf_counter()
            key_out(image, KeyOut())
            new.append(time.perf_counter() - started)
        old = []
        for _ in range(runs if size <= 2048 else 1):
            say(f"images: flood-fill key_out at {size} px…")
            copy = image.copy()
            started = time.perf_counter()
            flood_fill_key_out(copy)
            old.append(time.perf_counter() - started)
        rows.append(Row("key_out new (vectorised)", f"{size}px", new, None,
                        counters={"old_median_s": statistics.median(old),
                                  "speedup": statistics.median(old) / statistics.median(new)},
                        command="assetgen.images.derive.key_out, in-process"))
        rows.append(Row("key_out old (flood fill)", f"{size}px", old, None,
                        command="benchmarks.images.flood_fill_key_out, in-process"))
    return rows


def png_level_row(runs: int) -> Row:
    import numpy as np
    from PIL import Image

    from assetgen.images.placeholders import render_placeholder

    with Image.open(io.BytesIO(render_placeholder(name="icon", prompt="A potion", width=1024, height=1024))) as o:
        flat = o.convert("RGBA")
    noise = np.random.default_rng(1).normal(128, 40, (1024, 1024, 3)).clip(0, 255).astype(np.uint8)
    photo = Image.fromarray(noise).convert("RGBA").resize((256, 256)).resize((1024, 1024))   # smooth-ish
    figures: dict[str, dict[int, tuple[float, int]]] = {}
    for name, image in (("placeholder", flat), ("photo-like", photo)):
        scaled = [image.resize((s, s), Image.Resampling.LANCZOS) for s in SIZES]
        for level in (1, 6):
            times, size = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                size = 0
                for picture in scaled:
                    out = io.BytesIO()
                    picture.save(out, "PNG", compress_level=level)
                    size += len(out.getvalue())
                times.append(time.perf_counter() - started)
            figures.setdefault(name, {})[level] = (statistics.median(times), size)
    counters = {f"{name} L{level}": f"{t * 1000:.0f} ms {b / 1e3:.0f} kB"
                for name, levels in figures.items() for level, (t, b) in levels.items()}
    samples = [figures["photo-like"][1][0]]
    return Row("PNG encode, 5 outputs, level 1", "1K icon set", samples, None, counters=counters,
               command="Pillow PNG save, compress_level 1 vs 6 (sizes in counters)")


def run(cfg: Config, work: Path, pool: Path, say: Callable[[str], None]) -> tuple[list[Row], dict[str, Any]]:
    del pool
    icons, runs = (5, 1) if cfg.quick else (100, 3)
    derived_n, derived_runs = (10, 1) if cfg.quick else (500, 2)
    rows: list[Row] = []
    walls, rss, counters = pipeline(work, icons, runs, say)
    rows.append(Row("icon pipeline offline", f"{icons} gen × 5 PNG", walls, ICON_GOAL_S,
                    counters={**counters, "rss_mb": max(rss)},
                    command="assetgen -f assets.toml build --offline  (fresh project each run)"))
    walls, rss, counters = pipeline(work, derived_n, derived_runs, say)
    rows.append(Row("derived outputs offline", f"{derived_n * 5:,} outputs", walls, DERIVED_GOAL_S,
                    counters={**counters}, command="assetgen -f assets.toml build --offline"))
    rows.append(Row("derived outputs peak RSS", f"{derived_n * 5:,} outputs", rss, DERIVED_GOAL_MB, unit="MB",
                    command="ru_maxrss of the build (wait4)"))
    rows += key_out_rows((256, 512) if cfg.quick else (1024, 2048, 4096), 1 if cfg.quick else 3, say)
    rows.append(png_level_row(1 if cfg.quick else 3))
    return rows, {}
