"""COCO-VID JSON (as used by public breast-ultrasound video datasets) <-> usbkit study.

COCO-VID has ``videos`` (``id``, ``name``), ``images`` (``id``, ``video_id``, ``frame_id``,
``file_name``), ``annotations`` (``image_id``, ``bbox`` = [x, y, w, h], ``instance_id``,
``category_id``) and ``categories``. Frames without annotations are negatives, not errors.

The file is validated at the door: every wrong type, missing key, id used twice, frame id
used twice in a video, frame image the reader cannot read, frame of another size, or box
outside its image is refused with its JSON path (``images[3].file_name``) before a study is
written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.io.decode import IMAGE_SUFFIXES
from usbkit.io.formats.writer import StudyWriter, safe_name
from usbkit.io.ids import normalize_id, unique_names
from usbkit.io.pixels import image_header
from usbkit.io.study import PATHOLOGIES
from usbkit.io.values import COORDINATE, FPS, FRAME, to_number

PATHOLOGY_WORDS = {"benign": "benign", "malignant": "malignant", "normal": "normal"}
_FIX = "Correct the COCO-VID file (see the README's 'Importers and exporter' section)"


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:60] + "..."


class _Reader:
    """Typed access to the parsed JSON; every failure names its JSON path."""

    def __init__(self, src: Path):
        self.src = src

    def fail(self, where: str, what: str) -> UsbkitError:
        return UsbkitError(f"{where} {what}", file=self.src, fix=_FIX)

    def obj(self, value, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"is {_shown(value)} ({_kind(value)}), not an object {{...}}")
        return value

    def items(self, parent: dict, key: str, where: str, required: bool = True) -> list:
        if key not in parent:
            if required:
                raise self.fail(
                    where or "the file",
                    f"has no '{key}' list; a COCO-VID file has videos, images and annotations",
                )
            return []
        value = parent[key]
        if not isinstance(value, list):
            path = f"{where}.{key}" if where else key
            raise self.fail(path, f"is {_kind(value)}, not a list [...]")
        return value

    def ident(self, parent: dict, key: str, where: str, required: bool = True):
        if key not in parent or parent[key] is None:
            if required:
                raise self.fail(f"{where}", f"has no '{key}'")
            return None
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
            raise self.fail(
                f"{where}.{key}",
                f"is {_shown(value)} ({_kind(value)}), not an id (a number or text)",
            )
        return value

    def text(self, parent: dict, key: str, where: str, required: bool = True) -> str | None:
        if key not in parent or parent[key] is None:
            if required:
                raise self.fail(where, f"has no '{key}'")
            return None
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
            raise self.fail(f"{where}.{key}", f"is {_shown(value)} ({_kind(value)}), not text")
        return str(value)

    def number(self, value, where: str, rule) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"is {_shown(value)} ({_kind(value)}), not {rule.expected}")
        v = to_number(value)
        if not rule.accepts(v):
            raise self.fail(where, f"is {_shown(value)}, not {rule.expected}")
        return v


def _load_json(src: Path) -> dict:
    if not src.is_file():
        raise UsbkitError(
            "the COCO-VID annotation file is missing"
            if not src.exists()
            else "this is a folder, not a COCO-VID JSON file",
            file=src,
        )
    try:
        data = json.loads(src.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsbkitError(f"not valid JSON ({exc})", file=src, fix=_FIX) from None
    except (OSError, RecursionError) as exc:
        raise UsbkitError(f"cannot be read ({exc.__class__.__name__})", file=src) from None
    if not isinstance(data, dict):
        raise UsbkitError(
            f"the top level of the file is {_shown(data)} ({_kind(data)}), not an object with "
            "videos, images and annotations; this is not a COCO-VID file",
            file=src,
            fix="Export the dataset in COCO-VID form (videos, images, annotations)",
        )
    return data


def import_coco_vid(
    src: Path, out: Path, images_root: str | Path | None = None, overwrite: bool = False
) -> Path:
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
    src = Path(src)
    data = _load_json(src)
    r = _Reader(src)
    root = Path(images_root) if images_root else src.parent

    cats: dict = {}
    for k, c in enumerate(r.items(data, "categories", "", required=False)):
        where = f"categories[{k}]"
        c = r.obj(c, where)
        cid = r.ident(c, "id", where)
        if cid in cats:
            raise r.fail(f"{where}.id", f"{_shown(cid)} is used twice")
        cats[cid] = r.text(c, "name", where, required=False) or str(cid)

    videos: dict = {}
    video_at: dict = {}
    for k, v in enumerate(r.items(data, "videos", "")):
        where = f"videos[{k}]"
        v = r.obj(v, where)
        vid = r.ident(v, "id", where)
        if vid in videos:
            raise r.fail(f"{where}.id", f"{_shown(vid)} is used twice (first at {video_at[vid]})")
        r.text(v, "name", where, required=False)
        r.ident(v, "patient_id", where, required=False)
        if v.get("fps") is not None:
            r.number(v["fps"], f"{where}.fps", FPS)
        pathology = r.text(v, "pathology", where, required=False)
        if pathology is not None and pathology.strip().lower() not in PATHOLOGIES:
            raise r.fail(
                f"{where}.pathology", f"'{pathology}' is not one of {', '.join(PATHOLOGIES)}"
            )
        videos[vid], video_at[vid] = v, where

    images: dict = {}
    image_at: dict = {}
    per_video = defaultdict(list)
    frame_at: dict = {}
    for k, im in enumerate(r.items(data, "images", "")):
        where = f"images[{k}]"
        im = r.obj(im, where)
        iid = r.ident(im, "id", where)
        if iid in images:
            raise r.fail(
                f"{where}.id",
                f"{_shown(iid)} is used twice (first at {image_at[iid]}); image "
                "ids must be unique, or boxes land on the wrong frame",
            )
        vid = r.ident(im, "video_id", where)
        if vid not in videos:
            raise r.fail(
                f"{where}.video_id", f"{_shown(vid)} is not the id of any entry in 'videos'"
            )
        if "frame_id" not in im:
            raise r.fail(where, "has no 'frame_id' (its position in the video)")
        fid = int(r.number(im["frame_id"], f"{where}.frame_id", FRAME))
        if (vid, fid) in frame_at:
            raise r.fail(
                f"{where}.frame_id",
                f"{fid} is used twice in video {_shown(vid)} (first at {frame_at[(vid, fid)]})",
            )
        r.text(im, "file_name", where)
        for key in ("width", "height"):
            if im.get(key) is not None:
                r.number(im[key], f"{where}.{key}", FRAME)
        frame_at[(vid, fid)] = where
        images[iid], image_at[iid] = im, where
        per_video[vid].append((fid, k, im))

    anns = defaultdict(list)
    for k, a in enumerate(r.items(data, "annotations", "")):
        where = f"annotations[{k}]"
        a = r.obj(a, where)
        iid = r.ident(a, "image_id", where)
        if iid not in images:
            raise r.fail(
                f"{where}.image_id",
                f"{_shown(iid)} (annotation id {_shown(a.get('id'))}) is not in 'images'",
            )
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise r.fail(f"{where}.bbox", f"is {_shown(bbox)}, not a list [x, y, width, height]")
        x, y, bw, bh = (r.number(v, f"{where}.bbox[{j}]", COORDINATE) for j, v in enumerate(bbox))
        if bw <= 0 or bh <= 0:
            raise r.fail(f"{where}.bbox", f"{_shown(bbox)} has a zero or negative width/height")
        cat = r.ident(a, "category_id", where, required=False)
        if cat is not None and cats and cat not in cats:
            raise r.fail(f"{where}.category_id", f"{_shown(cat)} is not in 'categories'")
        lesion = r.ident(a, "instance_id", where, required=False)
        if lesion is None:
            lesion = r.ident(a, "track_id", where, required=False)
        anns[iid].append((where, (x, y, x + bw, y + bh), cats.get(cat, "lesion"), lesion))

    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for vid in sorted(videos, key=lambda v: str(v)):
            video = videos[vid]
            frames = sorted(per_video[vid], key=lambda t: t[0])
            if not frames:
                raise r.fail(
                    video_at[vid], f"(id {_shown(vid)}) has no images; a video needs its frames"
                )
            name = video.get("name")
            clip_id = safe_name(name if name not in (None, "") else f"video_{vid}")
            folder = w.media_name(clip_id)
            size = None
            first_at = None
            labels = set()
            for index, (_fid, k, im) in enumerate(frames):
                where = f"images[{k}].file_name"
                f = root / str(im["file_name"])
                if f.suffix.lower() not in IMAGE_SUFFIXES:
                    raise r.fail(
                        where,
                        f"'{im['file_name']}' is a {f.suffix or 'suffix-less'} file; usbkit reads "
                        "frames as PNG, JPEG, BMP or TIFF (convert the frames first)",
                    )
                if not f.is_file():
                    raise UsbkitError(
                        f"{where}: the frame image of video '{clip_id}' (frame_id {_fid}) is missing",
                        file=f,
                        fix="Give the folder the file names are relative to with --images",
                    )
                try:
                    (iw, ih), _wide = image_header(f)
                except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
                    raise UsbkitError(
                        f"{where}: not a readable image ({exc.__class__.__name__})", file=f
                    ) from None
                for key, actual in (("width", iw), ("height", ih)):
                    if im.get(key) is not None and int(im[key]) != actual:
                        raise r.fail(
                            f"{image_at[im['id']]}.{key}",
                            f"is {im[key]} but the file '{im['file_name']}' is {iw} x {ih} "
                            "pixels; the boxes would be at the wrong scale",
                        )
                if size is None:
                    size, first_at = (iw, ih), where
                elif (iw, ih) != size:
                    raise r.fail(
                        where,
                        f"'{im['file_name']}' is {iw} x {ih} pixels but the video's first frame "
                        f"({first_at}) is {size[0]} x {size[1]}; all frames of a video must have "
                        "the same size",
                    )
                w.copy_media(f, f"{folder}/{index:05d}{f.suffix.lower()}")
                for a_where, box, label, lesion in anns.get(im["id"], []):
                    labels.add(label.lower())
                    w.add_box(
                        clip_id,
                        index,
                        str(lesion if lesion is not None else 1),
                        box,
                        label=label,
                        source=a_where,
                    )
            pathology = video.get("pathology")
            if pathology is None:
                found = [PATHOLOGY_WORDS[lab] for lab in labels if lab in PATHOLOGY_WORDS]
                pathology = (
                    "malignant"
                    if "malignant" in found
                    else ("benign" if "benign" in found else None)
                )
            else:
                pathology = pathology.strip().lower()
            patient = normalize_id(video.get("patient_id")) or clip_id
            w.add_clip(
                clip_id,
                patient,
                folder,
                source=video_at[vid],
                frames=len(frames),
                size=size,
                declared_by=f"'images' of {video_at[vid]}",
                pathology=pathology,
                fps=video.get("fps"),
            )
    return out


def export_coco_vid(study_root: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Export a study as COCO-VID: ``OUT/annotations.json`` and PNG frames ``OUT/<clip>/``.

    Frame folders are named after the clip ids, made safe and unique
    (:func:`usbkit.io.ids.unique_names`); the exact clip id is kept as the video's ``name``
    in the JSON. Nothing is written outside ``out``.

    Parameters
    ----------
    study_root : str or Path
        The study folder.
    out : str or Path
        New output folder (built aside, swapped in whole; see
        :func:`usbkit.safeio.output_dir`).
    overwrite : bool
        Replace an earlier ``usbkit export`` output at ``out``.

    Returns
    -------
    Path
        The JSON file written.
    """
    from usbkit.io.study import load_study
    from usbkit.safeio import check_output_dir, output_dir

    dest = check_output_dir(out, "export", overwrite)
    study = load_study(study_root)
    with output_dir(dest, "export", overwrite=overwrite) as out:
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
    folders = unique_names(study.manifest["clip_id"])
    videos, images, annotations = [], [], []
    instance = {}
    for vid, row in enumerate(study.manifest.itertuples(index=False), start=1):
        fps = getattr(row, "fps", None)
        clip = open_clip(
            study.clip_path(row.clip_id),
            ReaderSettings(crop=False),
            fps=None if fps is None or np.isnan(fps) else float(fps),
        )
        video = {"id": vid, "name": row.clip_id, "patient_id": row.patient_id, "fps": clip.fps}
        if getattr(row, "pathology", None) and isinstance(row.pathology, str):
            video["pathology"] = row.pathology
        videos.append(video)
        sub = study.boxes(row.clip_id)
        folder = folders[row.clip_id]
        (out / folder).mkdir(parents=True, exist_ok=True)
        for i in range(len(clip)):
            image_id = len(images) + 1
            name = f"{folder}/{i:05d}.png"
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
    return write_text(out / "annotations.json", json.dumps(data, indent=1, ensure_ascii=False))
