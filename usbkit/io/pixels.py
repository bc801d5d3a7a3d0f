"""Pixels to 8-bit grayscale, the one form usbkit hands on.

* Colour becomes ITU-R BT.601 luma, ``Y = round((299 R + 587 G + 114 B) / 1000)`` (Pillow's
  ``L`` mode).
* Pixels of more than 8 bits (16-bit PNG or TIFF, 32-bit or floating-point TIFF, DICOM with
  more than 8 bits stored) are scaled to 0-255 by their *actual* range: the darkest value
  becomes 0 and the brightest 255, linearly. A still image is scaled by its own range; the
  frames of one clip (a frame folder, a DICOM cine) by the range of the whole clip, so that
  the brightness of a structure does not change from frame to frame. A flat image (every
  pixel alike) becomes black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Pillow modes that hold more than 8 bits per pixel.
WIDE_MODES = ("I", "F")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB array (last axis 3).

    uint8 input gives uint8 (the same as Pillow's ``L``); wider input gives float64 luma,
    still to be scaled with :func:`scale_to_uint8`.
    """
    if rgb.dtype == np.uint8:
        wide = rgb.astype(np.uint32)
        y = (wide[..., 0] * 299 + wide[..., 1] * 587 + wide[..., 2] * 114 + 500) // 1000
        return y.astype(np.uint8)
    f = rgb.astype(np.float64)
    return (f[..., 0] * 299 + f[..., 1] * 587 + f[..., 2] * 114) / 1000.0


def is_wide(mode: str) -> bool:
    """Whether a Pillow mode holds more than 8 bits per pixel (``I;16``, ``I``, ``F``)."""
    return mode.split(";")[0] in WIDE_MODES


def value_range(arr: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of an image, ignoring nothing: NaN pixels raise ``ValueError``."""
    a = np.asarray(arr)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError("some pixels are not numbers (NaN or infinite)")
    return float(a.min()), float(a.max())


def scale_to_uint8(arr: np.ndarray, low: float, high: float) -> np.ndarray:
    """Scale ``arr`` linearly so that ``low`` -> 0 and ``high`` -> 255 (uint8, rounded).

    Examples
    --------
    >>> scale_to_uint8(np.array([1000, 1500, 3000], np.uint16), 1000, 3000).tolist()
    [0, 64, 255]
    """
    a = np.asarray(arr, dtype=np.float64)
    if not high > low:
        return np.zeros(a.shape, dtype=np.uint8)
    out = np.round((a - low) * (255.0 / (high - low)))
    return np.clip(out, 0, 255).astype(np.uint8)


def image_header(path: Path) -> tuple[tuple[int, int], bool]:
    """``((width, height), wide)`` of an image file, read from its header only."""
    from PIL import Image

    with Image.open(path) as im:
        return (int(im.width), int(im.height)), is_wide(im.mode)


def image_array(path: Path) -> np.ndarray:
    """An image file as a 2-D array: uint8 gray, or the raw values when wider than 8 bits.

    Raises ``OSError`` (or Pillow's ``UnidentifiedImageError``) when it cannot be read.
    """
    from PIL import Image

    with Image.open(path) as im:
        if is_wide(im.mode):
            arr = np.asarray(im)
            if arr.ndim == 3:  # several samples of a wide mode: treat as colour
                arr = to_gray(arr[..., :3]) if arr.shape[-1] >= 3 else arr[..., 0]
            return arr
        if im.mode != "L":
            im = im.convert("L")
        return np.asarray(im)
