"""The BUSI still-image layout: ``benign/``, ``malignant/``, ``normal/`` folders.

Each image ``name (N).png`` has mask files ``name (N)_mask.png`` and, for extra lesions,
``name (N)_mask_1.png``, ``_mask_2.png``. The masks are merged and every connected lesion
region gives one box. Every image becomes a one-frame clip. BUSI has no patient ids, so each
image is its own patient (a known limitation of that dataset).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from usbkit.errors import UsbkitError
from usbkit.io.formats.writer import StudyWriter, safe_name

CLASSES = ("benign", "malignant", "normal")
MASK_RE = re.compile(r"^(?P<stem>.+)_mask(?:_\d+)?$")
#: Connected mask regions smaller than this many pixels are annotation specks, not lesions.
MIN_REGION_PIXELS = 10


def mask_boxes(masks: list[np.ndarray]) -> list[tuple[float, float, float, float]]:
    """One box ``(x0, y0, x1, y1)`` per connected region of the union of binary masks."""
    union = np.zeros(masks[0].shape, dtype=bool)
    for m in masks:
        if m.shape != union.shape:
            raise ValueError("mask sizes differ")
        union |= m > 0
    labels, n = ndimage.label(union, structure=np.ones((3, 3)))
    boxes = []
    for sl, index in zip(ndimage.find_objects(labels), range(1, n + 1)):
        if sl is None or (labels[sl] == index).sum() < MIN_REGION_PIXELS:
            continue
        ys, xs = sl
        boxes.append((float(xs.start), float(ys.start), float(xs.stop), float(ys.stop)))
    return sorted(boxes, key=lambda b: (b[0], b[1]))


def import_busi(src: Path, out: Path) -> Path:
    """Import a BUSI-style folder as a study of one-frame clips with pathology."""
    if not src.is_dir():
        raise UsbkitError("the BUSI folder does not exist", file=src)
    present = [c for c in CLASSES if (src / c).is_dir()]
    if not present:
        raise UsbkitError(
            "no benign/, malignant/ or normal/ folder found; this is not the BUSI layout", file=src
        )
    with StudyWriter(out) as w:
        for cls in present:
            files = sorted((src / cls).glob("*.png")) + sorted((src / cls).glob("*.jpg"))
            masks: dict[str, list[Path]] = {}
            images = []
            for f in files:
                m = MASK_RE.match(f.stem)
                if m:
                    masks.setdefault(m.group("stem"), []).append(f)
                else:
                    images.append(f)
            for f in images:
                clip_id = safe_name(f"{cls}_{f.stem}")
                rel = w.copy_media(f, f"clips/{cls}/{clip_id}{f.suffix.lower()}")
                w.add_clip(clip_id, clip_id, rel, pathology=cls)
                arrays = []
                for mf in sorted(masks.get(f.stem, [])):
                    try:
                        with Image.open(mf) as im:
                            arrays.append(np.asarray(im.convert("L")))
                    except OSError:
                        raise UsbkitError("this mask image cannot be read", file=mf) from None
                if not arrays:
                    continue
                try:
                    boxes = mask_boxes(arrays)
                except ValueError:
                    raise UsbkitError(
                        "the masks of this image have different sizes", file=f
                    ) from None
                for k, box in enumerate(boxes, start=1):
                    w.add_box(clip_id, 0, str(k), box, label=cls)
    return out
