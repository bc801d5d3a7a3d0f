"""Automatic detection of the B-mode image region inside an ultrasound screen capture.

Scanner exports carry a user-interface border with burned-in text (patient name, date,
depth and gain settings). Inside the border is the B-mode image, whose speckle changes from
frame to frame and is textured everywhere. The border is static and mostly flat. The region
is found as the bounding box of the largest connected area that is *active*: changing over
time when several frames are available, densely textured when there is only one.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: A crop smaller than this fraction of the frame is not trusted (full frame used instead).
MIN_REGION_FRACTION = 0.15


def detect_bmode_region(samples: np.ndarray) -> tuple[int, int, int, int]:
    """Find the B-mode image rectangle in grayscale frames.

    Parameters
    ----------
    samples : ndarray, shape (k, h, w), uint8
        A few frames of one clip (evenly spread over it); ``k = 1`` for a still image.

    Returns
    -------
    tuple of int
        ``(x0, y0, x1, y1)`` in pixels, end-exclusive; the full frame when no clear
        region is found.
    """
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[None]
    k, h, w = samples.shape
    full = (0, 0, w, h)
    if h < 16 or w < 16:
        return full
    f = samples.astype(np.float32)
    if k >= 3:
        active = f.std(axis=0) > 2.0
        # Very dark static pixels inside the image (e.g. an anechoic cyst in a still
        # stretch) are filled by the closing below.
    else:
        img = f[0]
        mean = ndimage.uniform_filter(img, 5)
        sq = ndimage.uniform_filter(img * img, 5)
        local_std = np.sqrt(np.maximum(sq - mean * mean, 0))
        active = (local_std > 3.0) & (mean > 4.0)
    density = ndimage.uniform_filter(active.astype(np.float32), 9)
    region = density > 0.5
    # Opening removes thin structures such as lines of burned-in text next to the image.
    region = ndimage.binary_opening(region, structure=np.ones((17, 17)))
    pad = 9
    region = np.pad(region, pad, mode="edge")
    region = ndimage.binary_closing(region, structure=np.ones((9, 9)))[pad:-pad, pad:-pad]
    labels, n = ndimage.label(region)
    if n == 0:
        return full
    sizes = ndimage.sum(region, labels, index=np.arange(1, n + 1))
    biggest = int(np.argmax(sizes)) + 1
    ys, xs = np.nonzero(labels == biggest)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    if (y1 - y0) * (x1 - x0) < MIN_REGION_FRACTION * h * w:
        return full
    # A region within 2 pixels of the frame edge on every side is the full frame.
    if x0 <= 2 and y0 <= 2 and x1 >= w - 2 and y1 >= h - 2:
        return full
    return (x0, y0, x1, y1)
