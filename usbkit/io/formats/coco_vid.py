"""COCO-VID JSON (as used by public breast-ultrasound video datasets) <-> usbkit study.

COCO-VID has ``videos`` (``id``, ``name``), ``images`` (``id``, ``video_id``, ``frame_id``,
``file_name``), ``annotations`` (``image_id``, ``bbox`` = [x, y, w, h], ``instance_id``,
``category_id``) and ``categories``. Frames without annotations are negatives, not errors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.io.formats.writer import StudyWriter, safe_name

PATHOLOGY_WORDS = {"benign": "benign", "malignant": "malignant", "normal": "normal"}


def _load_json(src: Path) -> dict:
    if not src.is_file():
        raise UsbkitError("the COCO-VID annotation file is missing", file=src)
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsbkitError(f"not valid JSON ({exc})", file=src) from None
    for key in ("videos", "images", "annotations"):
        if key not in data or not isinstance(data[key], list):
            raise UsbkitError(
                f"the '{key}' list is missing; this is not a COCO-VID file",
                file=src,
                fix="Export the dataset in COCO-VID form (videos, images, annotations)",
            )
    return data


def import_coco_vid(src: Path, out: Path, images_root: str | Path | None = None) -> Path:
    """Import a COCO-VID JSON file and its frame images as a study.

    Parameters
    ----------
    src : Path
        The JSON file.
    out : Path
        New study folder.
    images_root : str or Path, optional
        Folder that ``file_name`` paths are relative to (default: the JSON's folder).
    """
    data = _load_json(src)
    root = Path(images_root) if images_root else src.parent
    cats = {c["id"]: str(c.get("name", c["id"])) for c in data.get("categories", [])}
    videos = {v["id"]: v for v in data["videos"]}
    images = {}
    per_video = defaultdict(list)
    for k, im in enumerate(data["images"]):
        vid = im.get("video_id")
        if vid not in videos:
            raise UsbkitError(
                f"images[{k}] (id {im.get('id')}) belongs to video_id {vid}, which is not in 'videos'",
                file=src,
            )
        images[im["id"]] = im
        per_video[vid].append(im)
    anns = defaultdict(list)
    for k, a in enumerate(data["annotations"]):
        if a.get("image_id") not in images:
            raise UsbkitError(
                f"annotations[{k}] (id {a.get('id')}) refers to image_id {a.get('image_id')}, "
                "which is not in 'images'",
                file=src,
            )
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4) or not np.all(np.isfinite(bbox)):
            raise UsbkitError(
                f"annotations[{k}] (id {a.get('id')}) has no valid bbox [x, y, w, h]", file=src
            )
        if bbox[2] <= 0 or bbox[3] <= 0:
            raise UsbkitError(
                f"annotations[{k}] (id {a.get('id')}) has a bbox of zero or negative width/height {bbox}",
                file=src,
            )
        anns[a["image_id"]].append(a)
    with StudyWriter(out) as w:
        for vid in sorted(videos, key=lambda v: str(v)):
            video = videos[vid]
            clip_id = safe_name(video.get("name") or f"video_{vid}")
            frames = sorted(per_video[vid], key=lambda im: (im.get("frame_id", 0), im["id"]))
            if not frames:
                continue
            labels = set()
            for index, im in enumerate(frames):
                f = root / im["file_name"]
                if not f.is_file():
                    raise UsbkitError(
                        f"frame image of images id {im['id']} (video '{clip_id}', frame_id "
                        f"{im.get('frame_id')}) is missing",
                        file=f,
                    )
                w.copy_media(f, f"clips/{clip_id}/{index:05d}{f.suffix.lower()}")
                for a in anns.get(im["id"], []):
                    x, y, bw, bh = (float(v) for v in a["bbox"])
                    label = cats.get(a.get("category_id"), "lesion")
                    labels.add(label.lower())
                    lesion = a.get("instance_id", a.get("track_id", 1))
                    w.add_box(clip_id, index, str(lesion), (x, y, x + bw, y + bh), label=label)
            pathology = video.get("pathology")
            if pathology is None:
                found = [PATHOLOGY_WORDS[lab] for lab in labels if lab in PATHOLOGY_WORDS]
                pathology = (
                    "malignant"
                    if "malignant" in found
                    else ("benign" if "benign" in found else None)
                )
            w.add_clip(
                clip_id,
                str(video.get("patient_id", clip_id)),
                f"clips/{clip_id}",
                pathology=pathology,
                fps=video.get("fps"),
            )
    return out


def export_coco_vid(study_root: str | Path, out: str | Path) -> Path:
    """Export a study as COCO-VID: ``OUT/annotations.json`` and PNG frames ``OUT/<clip>/``.

    Parameters
    ----------
    study_root : str or Path
        The study folder.
    out : str or Path
        New output folder.

    Returns
    -------
    Path
        The JSON file written.
    """
    from usbkit.io.study import load_study
    from usbkit.safeio import atomic_dir

    study = load_study(study_root)
    dest = Path(out)
    with atomic_dir(dest) as out:
        _write_coco_vid(study, out)
    return dest / "annotations.json"


def _write_coco_vid(study, out: Path) -> Path:
    """Write the frames and ``annotations.json`` of ``study`` into the folder ``out``."""
    from PIL import Image

    from usbkit.io.clip import ReaderSettings, open_clip
    from usbkit.safeio import write_text

    ann = study.annotations
    labels = sorted(set(ann["label"].dropna())) if "label" in ann.columns else []
    labels = labels or ["lesion"]
    cat_id = {name: i + 1 for i, name in enumerate(labels)}
    videos, images, annotations = [], [], []
    instance = {}
    for vid, row in enumerate(study.manifest.itertuples(index=False), start=1):
        clip = open_clip(
            study.root / row.path, ReaderSettings(crop=False), fps=getattr(row, "fps", None)
        )
        video = {"id": vid, "name": row.clip_id, "patient_id": row.patient_id, "fps": clip.fps}
        if getattr(row, "pathology", None) and isinstance(row.pathology, str):
            video["pathology"] = row.pathology
        videos.append(video)
        sub = study.boxes(row.clip_id)
        (out / row.clip_id).mkdir(parents=True, exist_ok=True)
        for i in range(len(clip)):
            image_id = len(images) + 1
            name = f"{row.clip_id}/{i:05d}.png"
            Image.fromarray(np.asarray(clip[i])).save(out / name)
            images.append(
                {
                    "id": image_id,
                    "video_id": vid,
                    "frame_id": i,
                    "file_name": name,
                    "width": clip.width,
                    "height": clip.height,
                }
            )
            for b in sub.loc[sub["frame"] == i].itertuples(index=False):
                key = (row.clip_id, b.lesion_id)
                instance.setdefault(key, len(instance) + 1)
                label = getattr(b, "label", None)
                label = label if isinstance(label, str) else labels[0]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "video_id": vid,
                        "category_id": cat_id.get(label, 1),
                        "instance_id": instance[key],
                        "lesion_id": b.lesion_id,
                        "bbox": [b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0],
                        "area": (b.x1 - b.x0) * (b.y1 - b.y0),
                        "iscrowd": 0,
                    }
                )
    data = {
        "videos": videos,
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
    }
    return write_text(out / "annotations.json", json.dumps(data, indent=1))
