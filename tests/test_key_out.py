"""``key_out`` on images whose pixels we know: alpha statistics of the edge ramp, no fringe after
decontamination, the checkerboard models draw instead of transparency, and the subject kept.

Each image is drawn 4× larger and shrunk with LANCZOS (an anti-aliased edge, as a model draws one),
then saved as a JPEG (the noise a generated image has).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from assetgen.images.derive import Derivation, KeyOut, derive, derive_all, key_out

from helpers.project import ProjectDir

SIZE = 128
SUBJECT = (150, 30, 30)          # a dark red: a white fringe on it shows at once


def jpeg_round_trip(image: Image.Image, quality: int = 95) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    with Image.open(io.BytesIO(out.getvalue())) as opened:
        return opened.convert("RGBA")


def disc_on(background: Image.Image, colour: tuple[int, int, int] = SUBJECT) -> Image.Image:
    """A disc of ``colour`` (radius a quarter of the side) centred on ``background``, anti-aliased."""
    big = background.resize((SIZE * 4, SIZE * 4), Image.Resampling.NEAREST)
    ImageDraw.Draw(big).ellipse((SIZE, SIZE, SIZE * 3, SIZE * 3), fill=colour)
    return jpeg_round_trip(big.resize((SIZE, SIZE), Image.Resampling.LANCZOS))


def checkerboard(cell: int = 8, tones: tuple[tuple[int, int, int], ...] = ((255, 255, 255), (204, 204, 204))
                 ) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), tones[0])
    draw = ImageDraw.Draw(image)
    for y in range(0, SIZE, cell):
        for x in range(0, SIZE, cell):
            if (x // cell + y // cell) % 2:
                draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=tones[1])
    return image


def regions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of (clearly background, clearly subject, the edge ring) for the disc of ``disc_on``."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(x - SIZE / 2 + 0.5, y - SIZE / 2 + 0.5)
    radius = SIZE / 4
    return r > radius + 3, r < radius - 3, np.abs(r - radius) <= 2.5


def alpha_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image)[..., 3]


def over_black(image: Image.Image) -> np.ndarray:
    """The keyed image composited on black (a dark game background), as float RGB."""
    rgba = np.asarray(image).astype(np.float32)
    return rgba[..., :3] * (rgba[..., 3:] / 255.0)


def test_the_edge_is_an_alpha_ramp_and_background_and_subject_are_clean() -> None:
    keyed = key_out(disc_on(Image.new("RGB", (SIZE, SIZE), "white")), KeyOut())
    alpha = alpha_of(keyed)
    background, subject, ring = regions()
    assert (alpha[background] == 0).mean() == 1.0
    assert (alpha[subject] == 255).mean() == 1.0
    partial = (alpha > 0) & (alpha < 255)
    # The old flood fill left 0 % partial alpha: a hard, stair-stepped edge. Now about one pixel all
    # around the disc is partly transparent, and only there.
    assert partial.sum() >= 0.8 * 2 * np.pi * SIZE / 4, partial.sum()
    assert partial[ring].sum() == partial.sum()


def test_edge_pixels_are_decontaminated_no_white_fringe_on_black() -> None:
    source = disc_on(Image.new("RGB", (SIZE, SIZE), "white"))
    keyed = key_out(source, KeyOut())
    rgba = np.asarray(keyed).astype(int)
    partial = (rgba[..., 3] > 0) & (rgba[..., 3] < 255)
    # Un-mixed from the white they were blended with, edge pixels have the subject's colour …
    distance = np.abs(rgba[partial][:, :3] - np.array(SUBJECT)).max(axis=1)
    assert np.median(distance) <= 12 and np.percentile(distance, 90) <= 30, np.percentile(distance, [50, 90])
    # … so on a dark background nothing around the disc is lighter than the disc itself, nor paler (the
    # white would show in the green and blue channels the dark red has little of).
    composite = over_black(keyed)
    assert composite.max() <= max(SUBJECT) + 12
    assert composite[..., 1:].max() <= SUBJECT[1] + 12, composite[..., 1:].max()
    # Without decontamination the same edge carries the white: that is the fringe.
    plain = over_black(key_out(source, KeyOut(decontaminate=False)))
    assert plain[..., 1:].max() > SUBJECT[1] + 40, plain[..., 1:].max()


def test_feather_widens_the_ramp_and_zero_is_a_hard_edge() -> None:
    source = disc_on(Image.new("RGB", (SIZE, SIZE), "white"))
    counts = {}
    for feather in (0.0, 1.0, 4.0):
        alpha = alpha_of(key_out(source, KeyOut(feather=feather)))
        counts[feather] = int(((alpha > 0) & (alpha < 255)).sum())
    assert counts[0.0] == 0 and counts[1.0] > 0 and counts[4.0] > 2 * counts[1.0], counts
    # The ramp rises towards the subject: mean alpha by distance from the centre decreases outwards.
    alpha = alpha_of(key_out(source, KeyOut(feather=4.0))).astype(float)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(x - SIZE / 2 + 0.5, y - SIZE / 2 + 0.5)
    means = [alpha[(r >= d) & (r < d + 1)].mean() for d in range(SIZE // 4 - 5, SIZE // 4 + 2)]
    assert all(a >= b - 1 for a, b in zip(means, means[1:], strict=False)), means


def test_checkerboard_mode_removes_the_drawn_grid_and_keeps_the_subject() -> None:
    source = disc_on(checkerboard(), colour=(30, 60, 170))
    background, subject, _ring = regions()
    keyed = alpha_of(key_out(source, KeyOut(checkerboard=True)))
    assert (keyed[background] == 0).mean() >= 0.95, (keyed[background] == 0).mean()
    assert (keyed[subject] == 255).mean() >= 0.99
    # Keying white alone leaves the grey squares (and the seams between tones) opaque.
    white_only = alpha_of(key_out(source, KeyOut()))
    assert (white_only[background] == 0).mean() < 0.6


@pytest.mark.parametrize("tones", [((255, 255, 255), (204, 204, 204)), ((60, 60, 60), (90, 90, 90)),
                                   ((240, 240, 240), (255, 255, 255))])
def test_checkerboard_tones_are_read_from_the_border(tones: tuple[tuple[int, int, int], ...]) -> None:
    source = disc_on(checkerboard(cell=16, tones=tones), colour=(200, 160, 20))
    background, subject, _ring = regions()
    keyed = alpha_of(key_out(source, KeyOut(checkerboard=True)))
    assert (keyed[background] == 0).mean() >= 0.95 and (keyed[subject] == 255).mean() >= 0.99


def test_a_white_detail_inside_the_subject_stays_opaque() -> None:
    image = Image.new("RGB", (SIZE * 4, SIZE * 4), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((SIZE, SIZE, SIZE * 3, SIZE * 3), fill=SUBJECT)
    draw.rectangle((SIZE * 2 - 40, SIZE * 2 - 40, SIZE * 2 + 40, SIZE * 2 + 40), fill="white")
    keyed = alpha_of(key_out(jpeg_round_trip(image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)), KeyOut()))
    assert keyed[SIZE // 2, SIZE // 2] == 255 and keyed[2, 2] == 0


def test_derive_all_decodes_the_source_once_and_matches_derive(monkeypatch: pytest.MonkeyPatch) -> None:
    from assetgen.images import derive as module

    source = io.BytesIO()
    disc_on(Image.new("RGB", (SIZE, SIZE), "white")).convert("RGB").save(source, "JPEG")
    data = source.getvalue()
    outputs = [Derivation(format="png", resize=(s, s), key_out=KeyOut()) for s in (128, 64, 32, 16)]
    outputs.append(Derivation(format="webp", resize=(48, 48)))
    expected = [derive(data, d) for d in outputs]
    decodes, keyings = [], []
    real_decode, real_key_out = module._decode, module.key_out
    monkeypatch.setattr(module, "_decode", lambda b: decodes.append(1) or real_decode(b))
    monkeypatch.setattr(module, "key_out", lambda i, k: keyings.append(1) or real_key_out(i, k))
    assert module.derive_all(data, outputs) == expected
    assert len(decodes) == 1 and len(keyings) == 1


def test_key_out_output_keeps_its_alpha_in_png_and_webp() -> None:
    source = io.BytesIO()
    disc_on(Image.new("RGB", (SIZE, SIZE), "white")).convert("RGB").save(source, "JPEG")
    for fmt in ("png", "webp"):
        [data] = derive_all(source.getvalue(), [Derivation(format=fmt, key_out=KeyOut(), resize=(64, 64))])
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.mode == "RGBA" and opened.getchannel("A").getextrema()[0] == 0, fmt


# -- placeholders with a keyable background ----------------------------------------------------------

def placeholder_alpha(backdrop: str, key: KeyOut | None) -> np.ndarray:
    from assetgen.images.placeholders import render_placeholder

    data = render_placeholder(name="badge", prompt="A round badge", width=160, height=120, backdrop=backdrop)
    if key is None:
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.format == "PNG" and opened.mode == "RGBA"
            return np.asarray(opened)[..., 3]
    [out] = derive_all(data, [Derivation(format="png", key_out=key)])
    with Image.open(io.BytesIO(out)) as opened:
        return np.asarray(opened.convert("RGBA"))[..., 3]


@pytest.mark.parametrize("backdrop, key", [("#ffffff", KeyOut()), ("#00ff00", KeyOut(color="#00ff00")),
                                           ("checkerboard", KeyOut(checkerboard=True)), ("transparent", None)])
def test_a_keyable_placeholder_comes_out_transparent_around_an_opaque_subject(backdrop: str,
                                                                              key: KeyOut | None) -> None:
    alpha = placeholder_alpha(backdrop, key)
    border = np.concatenate((alpha[:4].ravel(), alpha[-4:].ravel(), alpha[:, :4].ravel(), alpha[:, -4:].ravel()))
    assert (border == 0).mean() >= 0.99, (border == 0).mean()
    assert (alpha[40:80, 40:120] == 255).all()                  # the subject tile and its card
    assert 0.08 < (alpha == 0).mean() < 0.5                   # a frame around the tile, no more


def test_the_plain_placeholder_is_unchanged_and_opaque() -> None:
    from assetgen.images.placeholders import render_placeholder

    data = render_placeholder(name="badge", prompt="A round badge", width=160, height=120)
    assert data == render_placeholder(name="badge", prompt="A round badge", width=160, height=120, backdrop=None)
    [out] = derive_all(data, [Derivation(format="png", key_out=KeyOut())])
    with Image.open(io.BytesIO(out)) as opened:
        assert opened.getchannel("A").getextrema() == (255, 255)


def test_offline_build_of_key_out_outputs_is_transparent_in_png_and_webp(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write("""
        [settings]
        out_dir = "out"

        [defaults]
        model = "gemini-3.1-flash-image-preview"
        resolution = "0.5K"

        [targets.badge]
        prompt = "A round badge"
        outputs = [
          { output = "badge.png", resize = [128, 128], key_out = { color = "#ffffff" } },
          { output = "badge.webp", resize = [64, 64], key_out = { color = "#ffffff", feather = 2 } },
          { output = "grid.png", resize = [64, 64], key_out = { checkerboard = true } },
        ]

        [targets.plain]
        prompt = "A plain picture"
        """)
    p.ok("build", "--offline")
    for name in ("badge.png", "badge.webp"):
        with Image.open(p.root / "out" / name) as opened:
            alpha = np.asarray(opened.convert("RGBA"))[..., 3]
            assert opened.mode == "RGBA", name
        assert alpha[0, 0] == 0 and alpha[-1, -1] == 0 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255
        assert ((alpha > 0) & (alpha < 255)).any(), name           # a soft edge
    # One generation serves all three outputs: its backdrop is the first key_out's (white), so the
    # checkerboard output finds one flat tone on the border and keys it all the same.
    with Image.open(p.root / "out" / "grid.png") as opened:
        assert np.asarray(opened.convert("RGBA"))[0, 0, 3] == 0
    with Image.open(p.root / "out" / "plain.jpg") as opened:
        assert opened.format == "JPEG"
