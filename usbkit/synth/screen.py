"""A scanner screen around the B-mode image: dark border, burned-in text, depth scale.

The text is drawn from random glyph bitmaps (no font needed); it is static over a clip,
as on a real scanner, which is what the automatic crop relies on. The layout is
:class:`~usbkit.synth.config.ScreenConfig` (``ImagingConfig.screen``).
"""

from __future__ import annotations

import numpy as np

from usbkit.synth.config import ImagingConfig, ScreenConfig


def _text(
    rng: np.random.Generator,
    canvas: np.ndarray,
    x: int,
    y: int,
    n_chars: int,
    level: int,
    sc: ScreenConfig,
) -> None:
    gh, gw = sc.glyph_px
    for k in range(n_chars):
        if rng.random() < sc.space_probability:
            continue  # a space
        glyph = rng.random((gh, gw)) < sc.glyph_ink_probability
        x0 = x + k * sc.char_advance_px
        if x0 + gw > canvas.shape[1]:
            break
        canvas[y : y + gh, x0 : x0 + gw][glyph] = level


def make_screen(rng: np.random.Generator, cfg: ImagingConfig) -> tuple[np.ndarray, int, int]:
    """A static screen and the offset ``(x, y)`` where the B-mode image goes."""
    sc = cfg.screen
    H, W = cfg.screen_height, cfg.screen_width
    screen = np.full((H, W), sc.background_level, dtype=np.uint8)
    ox = (W - cfg.width) // 2
    oy = max(sc.image_top_min_px, (H - cfg.height) // 2)
    oy = min(oy, H - cfg.height)
    px, py = sc.patient_text_xy_px
    _text(rng, screen, px, py, sc.patient_text_chars, sc.patient_text_level, sc)
    date_x = W - sc.char_advance_px * sc.date_text_chars - sc.date_text_right_margin_px
    _text(rng, screen, date_x, py, sc.date_text_chars, sc.date_text_level, sc)
    for row in range(sc.settings_rows):
        _text(
            rng,
            screen,
            sc.settings_x_px,
            oy + sc.settings_first_row_px + row * sc.settings_row_spacing_px,
            sc.settings_chars,
            sc.settings_level,
            sc,
        )
    # Depth scale ticks right of the image, major and minor alternating.
    major, minor = sc.scale_tick_px
    x0 = ox + cfg.width + sc.scale_gap_px
    for k, yy in enumerate(range(oy, oy + cfg.height, sc.scale_tick_spacing_px)):
        screen[yy, x0 : x0 + (major if k % 2 == 0 else minor)] = sc.scale_level
    return screen, ox, oy
