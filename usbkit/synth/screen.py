"""A scanner screen around the B-mode image: dark border, burned-in text, depth scale.

The text is drawn from random 5x7 glyph bitmaps (no font needed); it is static over a clip,
as on a real scanner, which is what the automatic crop relies on.
"""

from __future__ import annotations

import numpy as np

from usbkit.synth.config import ImagingConfig


def _text(
    rng: np.random.Generator, canvas: np.ndarray, x: int, y: int, n_chars: int, level: int
) -> None:
    for k in range(n_chars):
        if rng.random() < 0.15:
            continue  # a space
        glyph = rng.random((7, 5)) < 0.45
        x0 = x + k * 6
        if x0 + 5 > canvas.shape[1]:
            break
        canvas[y : y + 7, x0 : x0 + 5][glyph] = level


def make_screen(rng: np.random.Generator, cfg: ImagingConfig) -> tuple[np.ndarray, int, int]:
    """A static screen and the offset ``(x, y)`` where the B-mode image goes."""
    H, W = cfg.screen_height, cfg.screen_width
    screen = np.full((H, W), 6, dtype=np.uint8)
    ox = (W - cfg.width) // 2
    oy = max(20, (H - cfg.height) // 2)
    oy = min(oy, H - cfg.height)
    _text(rng, screen, 4, 3, 22, 230)  # "patient name, id"
    _text(rng, screen, W - 6 * 12 - 2, 3, 12, 200)  # "date, time"
    for row in range(3):
        _text(rng, screen, 2, oy + 10 + row * 10, 4, 180)  # settings column
    # Depth scale ticks right of the image.
    for k, yy in enumerate(range(oy, oy + cfg.height, 22)):
        screen[yy, ox + cfg.width + 3 : ox + cfg.width + (9 if k % 2 == 0 else 6)] = 200
    return screen, ox, oy
