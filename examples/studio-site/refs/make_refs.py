"""Regenerates brand-colors.png, the studio's colour card (run once; the PNG is committed)."""

from pathlib import Path

from PIL import Image, ImageDraw

# Ink, paper, terracotta accent, sage and sand, in the proportions the brand guide asks for.
BANDS = [("#1f2430", 3), ("#f3efe7", 4), ("#d0643b", 2), ("#8fa58a", 2), ("#e3c79a", 1)]
WIDTH, HEIGHT = 384, 128

image = Image.new("RGB", (WIDTH, HEIGHT))
draw = ImageDraw.Draw(image)
total = sum(weight for _, weight in BANDS)
x = 0
for colour, weight in BANDS:
    right = x + round(WIDTH * weight / total)
    draw.rectangle((x, 0, right - 1, HEIGHT - 1), fill=colour)
    x = right
image.save(Path(__file__).with_name("brand-colors.png"), optimize=True)
