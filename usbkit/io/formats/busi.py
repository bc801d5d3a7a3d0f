"""The BUSI still-image layout: ``benign/``, ``malignant/``, ``normal/`` folders.

Each image ``name (N).png`` has mask files ``name (N)_mask.png`` and, for extra lesions,
``name (N)_mask_1.png``, ``_mask_2.png``. The masks are merged and every connected lesion
region gives one box. Every image becomes a one-frame clip. BUSI has no patient ids, so each
image is its own patient (a known limitation of that dataset). A mask of another size than
its image, or a mask without its image, is refused, never rescaled or dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from usbkit.errors import UsbkitError
from usbkit.io.decode import FOLDER_CLUTTER, IMAGE_SUFFIXES, natural_key
from usbkit.io.formats.writer import StudyWriter, safe_name
from usbkit.io.pixels import image_header

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


def _read_mask(path: Path) -> np.ndarray:
    """A mask file as booleans (any non-zero gray value is lesion)."""
    try:
        with Image.open(path) as im:
            if im.mode.split(";")[0] in ("I", "F"):
                return np.asarray(im) > 0
            return np.asarray(im.convert("L")) > 0
    except (OSError, ValueError) as exc:
        raise UsbkitError(
            f"this mask image cannot be read ({exc.__class__.__name__})", file=path
        ) from None


def _image_size(path: Path) -> tuple[int, int]:
    try:
        return image_header(path)[0]
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
        raise UsbkitError(
            f"this image cannot be read ({exc.__class__.__name__})",
            file=path,
            fix="Replace it with a readable PNG or JPEG, or move it out of the BUSI folder",
        ) from None


def _class_files(folder: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """The images of one class folder and the masks of each image stem.

    Every visible file must be an image or a mask of one: nothing is skipped silently.
    """
    images, masks, strays = [], {}, []
    for f in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if f.name.startswith(".") or f.name.lower() in FOLDER_CLUTTER or f.is_dir():
            continue
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            strays.append(f)
            continue
        m = MASK_RE.match(f.stem)
        if m:
            masks.setdefault(m.group("stem"), []).append(f)
        else:
            images.append(f)
    if strays:
        names = ", ".join(p.name for p in strays[:5]) + (" ..." if len(strays) > 5 else "")
        raise UsbkitError(
            f"this BUSI class folder holds files that are not PNG/JPEG images ({names})",
            file=folder,
            fix="Convert them to PNG, or move files that are not images out of the folder",
        )
    stems = {f.stem for f in images}
    orphans = sorted(m for stem, found in masks.items() if stem not in stems for m in found)
    if orphans:
        names = ", ".join(p.name for p in orphans[:5]) + (" ..." if len(orphans) > 5 else "")
        raise UsbkitError(
            f"{len(orphans)} mask(s) have no image beside them ({names}); their lesions would "
            "be lost",
            file=folder,
            fix="Put each mask's image 'NAME.png' next to 'NAME_mask.png', or remove the mask",
        )
    return images, masks


def import_busi(src: Path, out: Path, overwrite: bool = False) -> Path:
    """Import a BUSI-style folder as a study of one-frame clips with pathology.

    Every image becomes a clip; its masks must have exactly the image's size (a mask of
    another size would give boxes at the wrong scale) and every mask must have its image.
    """
    if not src.is_dir():
        raise UsbkitError("the BUSI folder does not exist", file=src)
    present = [c for c in CLASSES if (src / c).is_dir()]
    if not present:
        raise UsbkitError(
            "no benign/, malignant/ or normal/ folder found; this is not the BUSI layout", file=src
        )
    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for cls in present:
            images, masks = _class_files(src / cls)
            for f in images:
                clip_id = safe_name(f"{cls}_{f.stem}")
                iw, ih = _image_size(f)
                rel = w.copy_media(f, w.media_name(clip_id, f.suffix, folder=cls))
                w.add_clip(
                    clip_id,
                    clip_id,
                    rel,
                    source=f"{cls}/{f.name}",
                    frames=1,
                    size=(iw, ih),
                    declared_by=f"{cls}/{f.name}",
                    pathology=cls,
                )
                arrays = []
                for mf in sorted(masks.get(f.stem, []), key=lambda p: natural_key(p.name)):
                    m = _read_mask(mf)
                    if m.shape != (ih, iw):
                        raise UsbkitError(
                            f"this mask is {m.shape[1]} x {m.shape[0]} pixels but its image "
                            f"{f.name} is {iw} x {ih}; the boxes would be at the wrong scale",
                            file=mf,
                            fix="Use masks of exactly the image's size",
                        )
                    arrays.append(m)
                if not arrays:
                    continue
                for k, box in enumerate(mask_boxes(arrays), start=1):
                    w.add_box(clip_id, 0, str(k), box, label=cls, source=f"masks of {cls}/{f.name}")
    return out
