"""Placeholder JPEGs: exact pixel sizes, byte-for-byte determinism, distinct per target, fast."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from assetgen import catalog
from assetgen.images.placeholders import render_placeholder

PROMPT = (
    "A knight in silver armour, side view, flat pastel style, soft rim light, plain off-white "
    "background, full body, centred, 2D game sprite with clean outlines"
)


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("ratio", "resolution"),
    [
        ("1:1", "1K"),
        ("3:4", "1K"),
        ("21:9", "1K"),
        ("16:9", "2K"),
        ("9:16", "0.5K"),
        ("2:3", "2K"),
        ("1:8", "0.5K"),  # 184 x 1448: narrow enough to force text to shrink and wrap
        ("8:1", "0.5K"),
        ("4:1", "1K"),
        ("1:1", "4K"),
    ],
)
def test_exact_pixel_size_for_catalog_sizes(ratio: str, resolution: str) -> None:
    width, height = catalog.pixel_size(ratio, resolution)
    image = _open(render_placeholder(name="hero", prompt=PROMPT, width=width, height=height))
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert image.size == (width, height)


def test_extended_ratio_size_is_the_published_rule() -> None:
    # Guards the case the brief names explicitly: 1:8 at 0.5K is 184 x 1448.
    assert catalog.pixel_size("1:8", "0.5K") == (184, 1448)
    image = _open(render_placeholder(name="strip", prompt=PROMPT, width=184, height=1448))
    assert image.size == (184, 1448)


def test_same_inputs_give_the_same_bytes() -> None:
    kwargs = dict(name="hero_walk", prompt=PROMPT, width=896, height=1200, index=1, total=3)
    assert render_placeholder(**kwargs) == render_placeholder(**kwargs)  # type: ignore[arg-type]


def test_different_names_give_different_bytes_and_colours() -> None:
    a = render_placeholder(name="hero", prompt=PROMPT, width=512, height=512)
    b = render_placeholder(name="villain", prompt=PROMPT, width=512, height=512)
    assert a != b
    # The background colour itself differs, not just the text: compare a corner pixel.
    assert _open(a).getpixel((1, 1)) != _open(b).getpixel((1, 1))


def test_each_image_of_a_multi_image_task_differs() -> None:
    first = render_placeholder(name="icon", prompt=PROMPT, width=512, height=512, index=0, total=2)
    second = render_placeholder(name="icon", prompt=PROMPT, width=512, height=512, index=1, total=2)
    assert first != second


def test_prompt_changes_the_image() -> None:
    a = render_placeholder(name="hero", prompt="a red door", width=512, height=512)
    b = render_placeholder(name="hero", prompt="a blue door", width=512, height=512)
    assert a != b


def test_no_metadata_that_could_vary() -> None:
    image = _open(render_placeholder(name="hero", prompt=PROMPT, width=256, height=256))
    assert "exif" not in image.info
    assert "icc_profile" not in image.info


@pytest.mark.parametrize(("width", "height"), [(1, 1), (16, 16), (40, 900), (900, 40)])
def test_tiny_and_extreme_sizes_still_render(width: int, height: int) -> None:
    image = _open(render_placeholder(name="tiny", prompt=PROMPT, width=width, height=height))
    assert image.size == (width, height)


def test_long_names_prompts_and_non_ascii_text_render() -> None:
    data = render_placeholder(
        name="an_extremely_long_target_name_that_cannot_possibly_fit_on_one_line_of_the_card",
        prompt=("naïve café — “quoted” 中文提示 " + PROMPT + " ") * 20
        + "https://example.com/" + "x" * 300,
        width=512,
        height=512,
    )
    assert _open(data).size == (512, 512)


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-5, 5)])
def test_non_positive_size_is_rejected(width: int, height: int) -> None:
    with pytest.raises(ValueError):
        render_placeholder(name="hero", prompt=PROMPT, width=width, height=height)
