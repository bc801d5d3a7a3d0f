"""Automatic detection of the B-mode image region inside an ultrasound screen capture.

Scanner exports carry a user-interface border with burned-in text (patient name, date,
depth and gain settings). Inside the border is the B-mode image, whose speckle changes from
frame to frame. The border is static and mostly one flat colour. The region is found as the
bounding box of the largest connected area that is *active*:

- several frames: pixels that change over time (fixed windows of 9 and 17 pixels);
- one frame (a still image) when at least 30 % of its outermost pixels share one value (a
  screen border): pixels whose neighbourhood mostly differs from that value (thin text and
  ruler ticks on the border are mostly border between their strokes, so they drop out,
  while the picture, smooth or speckled, bright or dark, is kept whole);
- one frame without such a border is the picture itself and is not cropped (texture, the
  rule used before, breaks a smooth picture into pieces and kept only one of them).

For stills, window sizes grow with the image (a 1000-pixel still is smoothed over larger
windows than a 400-pixel one) and holes inside the region (an anechoic cyst) are filled; the
motion rule closes small gaps.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: A crop smaller than this fraction of the frame is not trusted (full frame used instead).
MIN_REGION_FRACTION = 0.15

#: Version of the rule below; a crop remembered in the frame cache under another version is
#: found again (version 2: stills are cropped by their difference from a flat border; version
#: 1 cut smooth or banded stills down to a part of the picture).
CROP_RULE = 2

#: A still image has a screen border when this share of its outermost pixels has one value.
BORDER_SHARE = 0.3

#: Grey levels within which a still's pixel counts as border colour.
BORDER_TOLERANCE = 8


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
    if k < 3:
        img = f[0]
        border = _border_value(img)
        if border is None:  # no screen around the picture: the image is the picture
            return full
        region = _still_region(img, border)
    else:
        active = f.std(axis=0) > 2.0
        # Very dark static pixels inside the image (e.g. an anechoic cyst in a still
        # stretch) are filled by the closing below.
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
    if k < 3:  # a dark band across a still's picture splits it: join the parts
        x0, y0, x1, y1 = _join_parts(img, labels, sizes, (x0, y0, x1, y1))
    if (y1 - y0) * (x1 - x0) < MIN_REGION_FRACTION * h * w:
        return full
    # A region within 2 pixels of the frame edge on every side is the full frame.
    if x0 <= 2 and y0 <= 2 and x1 >= w - 2 and y1 >= h - 2:
        return full
    return (x0, y0, x1, y1)


def _border_value(img: np.ndarray) -> float | None:
    """The screen border's grey level: the commonest value of the image's outermost pixels
    when at least ``BORDER_SHARE`` of them lie within ``BORDER_TOLERANCE / 2`` of it, else
    None (the picture fills the frame)."""
    ring = np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])
    top, share = _commonest(ring)
    return top if share >= BORDER_SHARE else None


def _still_region(img: np.ndarray, border: float) -> np.ndarray:
    """The picture of a still screen capture: where most pixels of a neighbourhood differ
    from the border's grey level, opened to cut thin text and ticks away, holes filled."""
    size = max(9, round(min(img.shape) / 64)) | 1  # odd: the window is centred on its pixel
    content = np.abs(img - border) > BORDER_TOLERANCE
    region = ndimage.uniform_filter(content.astype(np.float32), size) > 0.5
    # opening by a square, as erosion then dilation by its row and column (same result,
    # cost growing with the window's side rather than its area)
    for op in (ndimage.minimum_filter1d, ndimage.maximum_filter1d):
        for axis in (0, 1):
            region = op(region, size, axis=axis, mode="constant", cval=0)
    return ndimage.binary_fill_holes(region)


def _join_parts(img: np.ndarray, labels: np.ndarray, sizes: np.ndarray, box: tuple) -> tuple:
    """Grow the picture's box by the parts of it that a dark band cut off: a component (at
    least 1 % of the frame, not flat: under half its pixels within ``BORDER_TOLERANCE / 2``
    of its commonest value) that lies level with the box along one axis (90 % of its extent
    within the box's and at least half as long) and close to it along the other (a gap of at
    most a quarter of the box, and at least a tenth of the box's extent there itself). Text
    panels beside the picture are much shorter than it, status bars and panels are flat, and
    scales and rulers are thin, so none of them is joined."""
    x0, y0, x1, y1 = box
    parts = [
        (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        for i, (sl, size) in enumerate(zip(ndimage.find_objects(labels), sizes))
        if sl is not None and size >= 0.01 * img.size and not _flat(img[sl][labels[sl] == i + 1])
    ]
    grown = True
    while grown:
        grown = False
        for a0, b0, a1, b1 in parts:
            if a0 >= x0 and b0 >= y0 and a1 <= x1 and b1 <= y1:
                continue
            for (p0, p1, q0, q1), (r0, r1, t0, t1) in (
                ((a0, a1, x0, x1), (b0, b1, y0, y1)),  # level in x, beside in y
                ((b0, b1, y0, y1), (a0, a1, x0, x1)),  # level in y, beside in x
            ):
                level = min(p1, q1) - max(p0, q0) >= 0.9 * (p1 - p0) and p1 - p0 >= 0.5 * (q1 - q0)
                gap = max(r0 - t1, t0 - r1)
                if level and gap <= 0.25 * (t1 - t0) and r1 - r0 >= 0.1 * (t1 - t0):
                    x0, y0, x1, y1 = min(x0, a0), min(y0, b0), max(x1, a1), max(y1, b1)
                    grown = True
                    break
    return x0, y0, x1, y1


def _flat(values: np.ndarray) -> bool:
    """Whether most of these grey levels lie within ``BORDER_TOLERANCE / 2`` of their
    commonest value (a panel or bar of the screen, not speckled picture)."""
    return _commonest(values)[1] >= 0.5


def _commonest(values: np.ndarray) -> tuple[float, float]:
    """The commonest (rounded) grey level of ``values`` and the share of them within
    ``BORDER_TOLERANCE / 2`` of it (a flat colour saved as JPEG is not one exact level)."""
    levels, counts = np.unique(values.round(), return_counts=True)
    top = float(levels[np.argmax(counts)])
    return top, float(np.mean(np.abs(values - top) <= BORDER_TOLERANCE / 2))
