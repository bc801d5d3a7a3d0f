"""Finding the B-mode picture in a still screen capture (usbkit.io.crop), the crop a still
image's lesions are looked for in."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.crop import CROP_RULE, detect_bmode_region
from usbkit.synth.stills import StillsConfig, render_still

PICTURE = (52, 60, 612, 460)  # x0, y0, x1, y1 of the picture in a 680 x 500 screen


def _smooth_picture(rng, h: int, w: int) -> np.ndarray:
    """Large-grained, smooth speckle (a high-resolution still of a small field of view), a
    dark band across it (a muscle layer), an anechoic cyst and a dark far field."""
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 9)
    img = 120 + 40 * grain / grain.std()
    img[int(0.62 * h) : int(0.70 * h)] *= 0.08  # dark band from edge to edge
    yy, xx = np.mgrid[:h, :w]
    img[(yy - 0.35 * h) ** 2 + (xx - 0.5 * w) ** 2 < (0.08 * h) ** 2] = 0  # cyst
    img[int(0.92 * h) :] *= 0.25  # attenuated depth
    return np.clip(img, 0, 255).astype(np.uint8)


def _screen(rng) -> np.ndarray:
    """A scanner screen: flat border of grey level 6, lines of text, a ruler, the picture."""
    screen = np.full((500, 680), 6, np.uint8)
    x0, y0, x1, y1 = PICTURE
    screen[y0:y1, x0:x1] = _smooth_picture(rng, y1 - y0, x1 - x0)
    for row in range(6):  # settings text left of the picture, glyph by glyph
        for c in range(5):
            y, x = 70 + 14 * row, 4 + 9 * c
            screen[y : y + 8, x : x + 6] = np.where(rng.random((8, 6)) < 0.5, 230, 6)
    for c in range(40):  # patient name and date above it
        screen[8:18, 10 + 12 * c : 18 + 12 * c] = np.where(rng.random((10, 8)) < 0.5, 200, 6)
    screen[y0:y1:20, x1 + 6 : x1 + 14] = 200  # depth ruler ticks
    return screen


@pytest.mark.parametrize("jpeg_quality", [None, 50])
def test_a_smooth_banded_still_is_cropped_to_its_whole_picture_without_text_or_ruler(
    jpeg_quality,
):
    screen = _screen(np.random.default_rng(0))
    if jpeg_quality:  # a screen saved as JPEG: its border is no longer one exact grey level
        buf = io.BytesIO()
        Image.fromarray(screen).save(buf, "JPEG", quality=jpeg_quality)
        screen = np.asarray(Image.open(buf).convert("L"))
    box = detect_bmode_region(screen[None])
    assert np.abs(np.subtract(box, PICTURE)).max() <= 2


def test_a_still_that_fills_the_frame_is_not_cropped():
    rng = np.random.default_rng(1)
    img = np.maximum(_smooth_picture(rng, 400, 560), 20)  # no border colour on the edge
    assert detect_bmode_region(img[None]) == (0, 0, 560, 400)


def test_every_synthetic_still_keeps_its_lesion_inside_the_crop():
    cfg = StillsConfig(images=12, width_px=(400, 700), normal_fraction=0.0)
    for k in range(cfg.images):
        _, screen, mask = render_still(k, cfg)
        x0, y0, x1, y1 = detect_bmode_region(screen[None])
        ys, xs = np.nonzero(mask)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1, k
        inside = np.zeros(screen.shape, bool)
        inside[y0:y1, x0:x1] = True
        # the crop is the picture: no border columns or rows of grey level 6 kept around it
        assert (screen[inside] == 6).mean() < 0.02, k


def test_a_crop_remembered_under_an_older_rule_is_found_again(tmp_path):
    path = tmp_path / "still.png"
    Image.fromarray(_screen(np.random.default_rng(2))).save(path)
    settings = ReaderSettings(cache_dir=str(tmp_path / "cache"))
    first = open_clip(path, settings)
    assert np.abs(np.subtract(first.crop_box, PICTURE)).max() <= 2
    (meta_path,) = (tmp_path / "cache").rglob("meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["crop_rule"] == CROP_RULE
    meta["crop"] = [4, 60, 300, 200]  # what an earlier rule kept of such a still
    del meta["crop_rule"]
    meta_path.write_text(json.dumps(meta))
    again = open_clip(path, settings)
    assert again.crop_box == first.crop_box
    assert json.loads(meta_path.read_text())["crop_rule"] == CROP_RULE


def _plain_screen(rng, h: int, w: int, picture: tuple) -> np.ndarray:
    screen = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = picture
    screen[y0:y1, x0:x1] = np.clip(rng.normal(120, 40, (y1 - y0, x1 - x0)), 0, 255)
    return screen


def test_the_crop_is_exact_to_the_pixel_at_every_image_size():
    rng = np.random.default_rng(3)
    for h in (500, 640, 768, 900):  # windows of 9, 11, 13 and 15 pixels (always odd)
        w = h * 4 // 3
        picture = (w // 8, h // 8, w - w // 10, h - h // 8)
        assert detect_bmode_region(_plain_screen(rng, h, w, picture)[None]) == picture, h


def test_status_bars_and_grey_scales_beside_the_picture_are_not_joined_to_it():
    rng = np.random.default_rng(4)
    picture = (20, 60, 660, 460)
    bar = _plain_screen(rng, 500, 680, picture)
    bar[:40] = 40  # a grey status bar across the top, with text in it
    bar[10:25, 10:300] = np.where(rng.random((15, 290)) < 0.5, 220, 40)
    assert detect_bmode_region(bar[None]) == picture
    picture = (100, 100, 900, 700)
    ramp = _plain_screen(rng, 768, 1024, picture)
    ramp[200:510, 920:950] = np.linspace(0, 255, 310)[:, None]  # a grey-scale bar
    assert detect_bmode_region(ramp[None]) == picture
