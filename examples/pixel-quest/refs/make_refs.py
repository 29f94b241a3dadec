"""Regenerates palette.png, the game's 16-colour palette (run once; the PNG is committed)."""

from pathlib import Path

from PIL import Image, ImageDraw

# A warm-to-cool 16-colour ramp in the spirit of classic fantasy console palettes.
PALETTE = [
    "#1a1c2c", "#5d275d", "#b13e53", "#ef7d57", "#ffcd75", "#a7f070", "#38b764", "#257179",
    "#29366f", "#3b5dc9", "#41a6f6", "#73eff7", "#f4f4f4", "#94b0c2", "#566c86", "#333c57",
]
SWATCH = 32

image = Image.new("RGB", (SWATCH * 8, SWATCH * 2))
draw = ImageDraw.Draw(image)
for i, colour in enumerate(PALETTE):
    x, y = (i % 8) * SWATCH, (i // 8) * SWATCH
    draw.rectangle((x, y, x + SWATCH - 1, y + SWATCH - 1), fill=colour)
image.save(Path(__file__).with_name("palette.png"), optimize=True)
