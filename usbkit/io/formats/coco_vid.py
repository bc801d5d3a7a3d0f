"""COCO-VID JSON (as used by public breast-ultrasound video datasets) <-> usbkit study.

COCO-VID has ``videos`` (``id``, ``name``), ``images`` (``id``, ``video_id``, ``frame_id``,
``file_name``), ``annotations`` (``image_id``, ``bbox`` = [x, y, w, h], ``instance_id``,
``category_id``) and ``categories``. Frames without annotations are negatives, not errors.

The file is validated at the door: every wrong type, missing key, id used twice, frame id
used twice in a video, frame image the reader cannot read, frame of another size, or box
outside its image is refused with its JSON path (``images[3].file_name``) before a study is
written.

A dataset shipped as one file per split (``train.json`` and ``val.json`` beside
``rawframes/{benign,malignant}/<video>/000000.png``) is imported in one go with
``split_files``: each file's videos get the file's split, the pathology comes from the
category or the class folder, and a video that appears twice (in two files, under two
labels, or as the same frames under another name) is refused naming both places.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.io.decode import IMAGE_SUFFIXES
from usbkit.io.formats.writer import StudyWriter, safe_name
from usbkit.io.ids import _is_absolute, confined_path_reason, normalize_id, unique_names
from usbkit.io.pixels import image_header
from usbkit.io.study import PATHOLOGIES, SPLITS
from usbkit.io.values import COORDINATE, FPS, FRAME, to_number

PATHOLOGY_WORDS = {"benign": "benign", "malignant": "malignant", "normal": "normal"}
_FIX = "Correct the COCO-VID file (see docs/importers.md)"
_TWICE_FIX = (
    "Keep each video once: leave the wrong copy out with --exclude-video NAME (its name or "
    "its frame folder, e.g. benign/VIDEO), or remove it from its annotation file"
)


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


@dataclass
class _File:
    """One COCO-VID file, parsed and validated (everything that needs no frame image)."""

    src: Path
    r: _Reader
    cats: dict
    videos: dict  # video id -> the video object
    video_at: dict  # video id -> "videos[k]"
    image_at: dict  # image id -> "images[k]"
    per_video: dict  # video id -> [(frame_id, k, image object)]
    anns: dict  # image id -> [(where, (x0, y0, x1, y1), label, lesion)]
    split: str | None = None
    root: Path | None = None  # the folder the file names are relative to
    shown: str = ""  # the file as named in messages about several files
    bases: tuple = ()  # folders a video's frame folder may be named relative to


def _parse(src: Path) -> _File:
    """Read and validate one COCO-VID file; every failure names its JSON path."""
    data = _load_json(src)
    r = _Reader(src)

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
        name = str(im["file_name"])
        if _is_absolute(name) or ".." in _parts(name):
            raise r.fail(
                f"{where}.file_name",
                f"'{_shown(name)}' leads outside the dataset folder "
                f"({'an absolute path' if _is_absolute(name) else 'through ..'}); usbkit "
                "imports only frames inside the folder the file names are relative to. Give "
                "the frames as paths inside that folder (or point --images at it)",
            )
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

    for vid in per_video:
        per_video[vid].sort(key=lambda t: t[0])
    return _File(src, r, cats, videos, video_at, image_at, per_video, anns)


def _frame_file(f: _File, root: Path, im: dict, k: int, clip_id: str, fid: int) -> Path:
    """The frame image of ``images[k]``, refused when the reader cannot take it or it is gone."""
    where = f"images[{k}].file_name"
    why = confined_path_reason(root, str(im["file_name"]))
    if why:
        raise f.r.fail(
            where,
            f"'{_shown(im['file_name'])}' cannot be imported: {why}. usbkit imports only "
            "frames inside the folder the file names are relative to (point --images at it)",
        )
    path = root / str(im["file_name"])
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise f.r.fail(
            where,
            f"'{im['file_name']}' is a {path.suffix or 'suffix-less'} file; usbkit reads "
            "frames as PNG, JPEG, BMP or TIFF (convert the frames first)",
        )
    if not path.is_file():
        raise UsbkitError(
            f"{where}: the frame image of video '{clip_id}' (frame_id {fid}) is missing",
            file=path,
            fix="Give the folder the file names are relative to with --images",
        )
    return path


def _copy_frames(
    w: StudyWriter, f: _File, vid, clip_id: str, folder: str, root: Path, prefix: str = ""
) -> tuple[set, tuple[int, int] | None]:
    """Check and copy the frames of video ``vid`` into ``folder`` and add its boxes.

    Returns the lower-case labels of its boxes and its frame size. ``prefix`` is put before
    the JSON path of each box (the file's name, when several files are imported)."""
    size = None
    first_at = None
    labels = set()
    for index, (fid, k, im) in enumerate(f.per_video[vid]):
        where = f"images[{k}].file_name"
        path = _frame_file(f, root, im, k, clip_id, fid)
        try:
            (iw, ih), _wide = image_header(path)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
            raise UsbkitError(
                f"{where}: not a readable image ({exc.__class__.__name__})", file=path
            ) from None
        for key, actual in (("width", iw), ("height", ih)):
            if im.get(key) is not None and int(im[key]) != actual:
                raise f.r.fail(
                    f"{f.image_at[im['id']]}.{key}",
                    f"is {im[key]} but the file '{im['file_name']}' is {iw} x {ih} "
                    "pixels; the boxes would be at the wrong scale",
                )
        if size is None:
            size, first_at = (iw, ih), where
        elif (iw, ih) != size:
            raise f.r.fail(
                where,
                f"'{im['file_name']}' is {iw} x {ih} pixels but the video's first frame "
                f"({first_at}) is {size[0]} x {size[1]}; all frames of a video must have "
                "the same size",
            )
        w.copy_media(path, f"{folder}/{index:05d}{path.suffix.lower()}")
        for a_where, box, label, lesion in f.anns.get(im["id"], []):
            labels.add(label.lower())
            w.add_box(
                clip_id,
                index,
                str(lesion if lesion is not None else 1),
                box,
                label=label,
                source=prefix + a_where,
            )
    return labels, size


def import_coco_vid(
    src: Path,
    out: Path,
    images_root: str | Path | None = None,
    overwrite: bool = False,
    split_files: Mapping[str, str | Path] | Iterable[tuple[str, str | Path]] | None = None,
    exclude_videos: Iterable[str] | None = None,
) -> Path:
    """Import a COCO-VID JSON file, or one file per split, and its frame images as a study.

    Parameters
    ----------
    src : Path
        The JSON file; with ``split_files``, the dataset folder (the one holding
        ``rawframes/``) that the files' ``file_name`` paths are relative to, directly or
        through its ``rawframes/`` folder.
    out : Path
        New study folder.
    images_root : str or Path, optional
        Folder that ``file_name`` paths are relative to (default: the JSON's folder; with
        ``split_files``, ``src`` or ``src/rawframes``).
    overwrite : bool
        Replace an earlier ``usbkit import`` output at ``out``.
    split_files : mapping or pairs of (split, path), optional
        One COCO-VID file per split, ``{"train": "train.json", "test": "val.json"}``; the
        split is ``train``, ``val`` or ``test`` (map other names such as ``trainval``
        yourself). A relative path is looked up in the working folder, then in ``src``.
        The files are merged into one study whose manifest ``split`` is each file's split;
        see :func:`_import_split_files` for the rules.
    exclude_videos : iterable of str, optional
        Videos to leave out, by video name or frame folder (``benign/VIDEO``, relative to
        ``src`` or to the folder the file names are relative to); a name that matches no
        video is an error.
    """
    if split_files is not None:
        return _import_split_files(
            Path(src), Path(out), images_root, overwrite, split_files, exclude_videos
        )
    src = Path(src)
    f = _parse(src)
    root = Path(images_root) if images_root else src.parent
    f.root = root
    excluded = (
        _excluded(_videos_of([f], with_split=False), exclude_videos) if exclude_videos else set()
    )

    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for vid in sorted(f.videos, key=lambda v: str(v)):
            if (0, vid) in excluded:
                continue
            video = f.videos[vid]
            frames = f.per_video[vid]
            if not frames:
                raise f.r.fail(
                    f.video_at[vid], f"(id {_shown(vid)}) has no images; a video needs its frames"
                )
            name = video.get("name")
            clip_id = safe_name(name if name not in (None, "") else f"video_{vid}")
            folder = w.media_name(clip_id)
            labels, size = _copy_frames(w, f, vid, clip_id, folder, root)
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
                source=f.video_at[vid],
                frames=len(frames),
                size=size,
                declared_by=f"'images' of {f.video_at[vid]}",
                pathology=pathology,
                fps=video.get("fps"),
            )
    return out


# -- one file per split ---------------------------------------------------------------------

_CLASS_WORDS = set(PATHOLOGIES)


def _label_pathology(label: str) -> str | None:
    """``benign`` / ``malignant`` / ``normal`` named by a category, or None.

    The category is the word itself (any case) or a phrase with exactly one of the words
    (``Malignant tumour``)."""
    text = str(label).strip().casefold()
    if text in _CLASS_WORDS:
        return text
    words = {w for w in re.findall(r"[^\W\d_]+", text) if w in ("benign", "malignant")}
    return words.pop() if len(words) == 1 else None


def _parts(file_name: str) -> list[str]:
    return [p for p in str(file_name).replace("\\", "/").split("/") if p not in ("", ".")]


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", str(text)).strip().strip("/").casefold()


@dataclass
class _Video:
    """One video of one file, with what the import decides about it."""

    index: int  # of its file
    f: _File
    vid: object
    name: str  # as shown in messages
    clip_id: str
    folder: PurePosixPath | None  # the one folder (as written) holding all its frames
    aliases: set = field(default_factory=set)
    where: str = ""  # "train.json, videos[2]"
    pathology: str | None = None
    patient: str = ""


def _videos_of(files: list[_File], with_split: bool = True) -> list[_Video]:
    """The videos of every file, named and located (nothing is read from the frames)."""
    out = []
    for index, f in enumerate(files):
        folder_of = {}
        for vid in f.videos:
            frames = f.per_video.get(vid, [])
            folders = {PurePosixPath(*_parts(im["file_name"])[:-1]) for _fid, _k, im in frames}
            folder_of[vid] = folders.pop() if len(folders) == 1 else None
        users = defaultdict(int)  # videos per frame folder: a shared folder names none
        for folder in folder_of.values():
            users[folder] += 1
        for vid in sorted(f.videos, key=lambda v: str(v)):
            video = f.videos[vid]
            folder = folder_of[vid]
            name = video.get("name")
            if name in (None, ""):
                if with_split and folder is not None and folder.name and users[folder] == 1:
                    name = folder.name
                elif with_split:
                    name = f"{f.split}_video_{vid}"
                else:
                    name = f"video_{vid}"
            name = str(name)
            v = _Video(index, f, vid, name, safe_name(name), folder)
            v.where = f"{f.shown}, {f.video_at[vid]}" if f.shown else f.video_at[vid]
            v.aliases = {_key(name), _key(v.clip_id)}
            if folder is not None and str(folder) != ".":
                v.aliases.add(_key(folder.as_posix()))
                assert f.root is not None
                full = Path(os.path.normpath(f.root / folder))
                for base in {f.root, *f.bases}:
                    base = Path(os.path.normpath(base))
                    if full.is_relative_to(base):
                        v.aliases.add(_key(full.relative_to(base).as_posix()))
            out.append(v)
    return out


def _excluded(videos: list[_Video], names: Iterable[str] | None) -> set:
    """``{(file index, video id)}`` of the videos ``names`` leave out; unknown names refused."""
    if names is None:
        return set()
    if isinstance(names, str):
        names = [names]
    out = set()
    for name in names:
        hits = [v for v in videos if _key(name) in v.aliases]
        if not hits:
            raise UsbkitError(
                f"no video is named '{name}' (asked to leave it out); a video is named by its "
                "name in the annotation file or by its frame folder (for example "
                "benign/VIDEO)",
                fix="Check the spelling against the annotation files",
            )
        out.update((v.index, v.vid) for v in hits)
    return out


def _split_entries(src: Path, split_files) -> list[tuple[str, Path]]:
    """``[(split, annotation file)]``: splits checked, paths found, no file given twice."""
    pairs = list(split_files.items()) if isinstance(split_files, Mapping) else list(split_files)
    if not pairs:
        raise UsbkitError(
            "no split file was given",
            fix="Give each annotation file with its split, "
            "for example train=train.json test=val.json",
        )
    out: list[tuple[str, Path]] = []
    seen: dict[Path, str] = {}
    for item in pairs:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise UsbkitError(
                f"the split file {item!r} is not a pair SPLIT=FILE",
                fix="Give each annotation file as SPLIT=FILE, for example train=train.json",
            )
        split, path = item
        name = str(split).strip().lower()
        if name not in SPLITS:
            raise UsbkitError(
                f"'{split}' (for {path}) is not a split; a study's splits are {', '.join(SPLITS)}",
                fix="Name the split each file stands for: for example trainval.json as "
                "train=trainval.json and test.json as test=test.json, or the original "
                "release's val.json, on which published results are reported, as "
                "test=val.json",
            )
        path = Path(path)
        if not path.is_absolute() and not path.exists() and (src / path).exists():
            path = src / path
        real = Path(os.path.realpath(path))
        if real in seen:
            raise UsbkitError(
                f"the annotation file is given twice (as {seen[real]} and as {name})",
                file=path,
                fix="Give each annotation file once, with its own split",
            )
        seen[real] = name
        out.append((name, path))
    return out


def _shown_file(path: Path, src: Path) -> str:
    full, base = Path(os.path.abspath(path)), Path(os.path.abspath(src))
    return full.relative_to(base).as_posix() if full.is_relative_to(base) else str(path)


def _frame_root(f: _File, candidates: list[Path]) -> Path:
    """The first candidate folder under which the file's first frame image exists."""
    first = next((im for frames in f.per_video.values() for _fid, _k, im in frames), None)
    if first is not None:
        for base in candidates:
            if (base / str(first["file_name"])).is_file():
                return base
    return candidates[0]


def _import_split_files(
    src: Path,
    out: Path,
    images_root,
    overwrite: bool,
    split_files,
    exclude_videos: Iterable[str] | None,
) -> Path:
    """Merge one COCO-VID file per split into one study.

    Each file is validated as a single file is. Then, across the files:

    * a video is keyed by its file and its name (its frame folder when it has none), never
      by its id: each file numbers its own videos;
    * the same video twice is refused naming both places: the same name (last path part,
      any case) in two places, the same frame folder under two class folders
      (``benign/V`` and ``malignant/V``), one frame file used twice, or two videos whose
      frames are more than half byte-identical;
    * the pathology comes from the video's ``pathology``, the categories of its boxes
      (``benign`` / ``malignant``, any case; malignant when both) and the class folder in
      its frame paths (``rawframes/benign/...``); any two that disagree are refused;
    * each video is its own patient unless it has ``patient_id``; a patient in two splits
      is refused;
    * frames without boxes are negatives; a file that lists only some frames of a video
      (frame ids with gaps) is imported as listed, with one warning per file.
    """
    from usbkit.io.notices import warn

    if not src.is_dir():
        raise UsbkitError(
            "with split files, SRC is the dataset folder the frame paths are relative to "
            "(the one holding rawframes/), not " + ("a file" if src.exists() else "a missing path"),
            file=src,
            fix="Give the dataset folder as SRC and each annotation file as SPLIT=FILE",
        )
    base = Path(images_root) if images_root else src
    files = []
    for split, path in _split_entries(src, split_files):
        f = _parse(path)
        f.split, f.shown = split, _shown_file(path, src)
        f.root = _frame_root(f, [base, base / "rawframes"])
        f.bases = (src, base, base / "rawframes")
        files.append(f)
    videos = _videos_of(files)
    excluded = _excluded(videos, exclude_videos)
    videos = [v for v in videos if (v.index, v.vid) not in excluded]
    for v in videos:
        if not v.f.per_video.get(v.vid):
            raise v.f.r.fail(
                v.f.video_at[v.vid],
                f"(id {_shown(v.vid)}) has no images; a video needs its frames",
            )
    _refuse_same_video(videos)
    for v in videos:
        v.pathology = _pathology(v)
        v.patient = normalize_id(v.f.videos[v.vid].get("patient_id")) or v.clip_id
    _refuse_patient_in_two_splits(videos)
    _refuse_same_frames(videos)
    for f in files:
        gaps = [
            v
            for v in videos
            if v.f is f and (fr := v.f.per_video[v.vid])[-1][0] - fr[0][0] + 1 != len(fr)
        ]
        if gaps:
            fr = gaps[0].f.per_video[gaps[0].vid]
            warn(
                f"{len(gaps)} of its videos list only some of their frames (video "
                f"'{gaps[0].name}' lists {len(fr)} frame ids from {fr[0][0]} to {fr[-1][0]}); "
                "each becomes a clip of the listed frames only, one after the other, so the "
                "time between them is lost (FP per minute, time to first detection and the "
                "sequence model see jumps)",
                file=f.src,
                fix="Use an annotation file that lists every frame of these videos where the "
                "dataset has one",
            )

    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for v in videos:
            folder = w.media_name(v.clip_id)
            _labels, size = _copy_frames(
                w, v.f, v.vid, v.clip_id, folder, v.f.root, prefix=f"{v.f.shown}, "
            )
            w.add_clip(
                v.clip_id,
                v.patient,
                folder,
                source=v.where,
                frames=len(v.f.per_video[v.vid]),
                size=size,
                declared_by=f"'images' of {v.where}",
                pathology=v.pathology,
                split=v.f.split,
                fps=v.f.videos[v.vid].get("fps"),
            )
    return out


def _described(v: _Video) -> str:
    claimed = _claimed(v)
    label = f", {claimed}" if claimed else ""
    folder = f", frames in {v.folder.as_posix()}/" if v.folder is not None else ""
    return f"'{v.name}' ({v.where}{folder}{label})"


def _same_video(a: _Video, b: _Video, why: str) -> UsbkitError:
    files = f"in {a.f.src} and in {b.f.src}" if a.f is not b.f else f"twice in {a.f.src}"
    return UsbkitError(
        f"the same video appears {files}: video {_described(a)} and video "
        f"{_described(b)} {why}; a video imported twice would be scored twice, possibly "
        "under two labels or in two splits",
        fix=_TWICE_FIX,
    )


def _refuse_same_video(videos: list[_Video]) -> None:
    """Same name, same frame folder under two class folders, or one frame file twice."""
    by_name: dict[str, _Video] = {}
    for v in videos:
        key = _key(_parts(v.name)[-1] if _parts(v.name) else v.name)
        if key in by_name:
            raise _same_video(by_name[key], v, "have the same name")
        by_name[key] = v
    by_folder: dict[tuple, _Video] = {}
    for v in videos:
        if v.folder is None or not v.folder.parts:
            continue
        parts = tuple(_key(p) for p in v.folder.parts)
        if not any(p in _CLASS_WORDS for p in parts):
            continue
        key = tuple("*" if p in _CLASS_WORDS else p for p in parts)
        first = by_folder.setdefault(key, v)
        if first is not v and (first.f.root / first.folder) != (v.f.root / v.folder):
            raise _same_video(first, v, "are the same frame folder under two class folders")
    by_file: dict[Path, tuple[_Video, str]] = {}
    for v in videos:
        for _fid, k, im in v.f.per_video[v.vid]:
            real = Path(os.path.realpath(v.f.root / str(im["file_name"])))
            where = f"{v.f.shown}, images[{k}]"
            if real in by_file:
                first, first_where = by_file[real]
                if first is v:
                    raise UsbkitError(
                        f"{where} and {first_where} are the same frame file "
                        f"'{im['file_name']}' twice in video '{v.name}'",
                        file=v.f.src,
                        fix=_FIX,
                    )
                raise _same_video(
                    first,
                    v,
                    f"use the same frame file '{im['file_name']}' ({first_where} and {where})",
                )
            by_file[real] = (v, where)


def _claimed(v: _Video) -> str | None:
    """A label the video carries (for messages only): its own, its category's, its folder's."""
    video = v.f.videos[v.vid]
    if video.get("pathology") is not None:
        return str(video["pathology"]).strip().lower()
    found = _category_pathologies(v)
    if found:
        return "malignant" if "malignant" in found else sorted(found)[0]
    folder = _folder_pathologies(v)
    return next(iter(folder)) if len(folder) == 1 else None


def _category_pathologies(v: _Video) -> dict[str, str]:
    """``{pathology: where}`` named by the categories of the video's boxes."""
    found: dict[str, str] = {}
    for _fid, _k, im in v.f.per_video[v.vid]:
        for where, _box, label, _lesion in v.f.anns.get(im["id"], []):
            p = _label_pathology(label)
            if p is not None:
                found.setdefault(p, f"{where}, category '{label}'")
    return found


def _folder_pathologies(v: _Video) -> dict[str, str]:
    """``{pathology: where}`` named by class folders in the video's frame paths."""
    found: dict[str, str] = {}
    for _fid, k, im in v.f.per_video[v.vid]:
        for part in _parts(im["file_name"])[:-1]:
            if _key(part) in _CLASS_WORDS:
                found.setdefault(_key(part), f"images[{k}].file_name '{im['file_name']}'")
    return found


def _pathology(v: _Video) -> str | None:
    """The video's pathology; its own field, its categories and its class folder must agree."""
    video = v.f.videos[v.vid]
    claims = []  # (pathology, what says so)
    if video.get("pathology") is not None:
        claims.append(
            (str(video["pathology"]).strip().lower(), f"its {v.f.video_at[v.vid]}.pathology")
        )
    cats = _category_pathologies(v)
    if cats:
        p = "malignant" if "malignant" in cats else sorted(cats)[0]
        claims.append((p, f"the category of its boxes ({cats[p]})"))
    folders = _folder_pathologies(v)
    if len(folders) > 1:
        (a, wa), (b, wb) = sorted(folders.items())[:2]
        raise UsbkitError(
            f"{v.f.video_at[v.vid]}: the frames of video '{v.name}' lie in two class "
            f"folders, {a} ({wa}) and {b} ({wb})",
            file=v.f.src,
            fix="Keep the frames of one video in one folder, or correct the file names",
        )
    if folders:
        p, where = next(iter(folders.items()))
        claims.append((p, f"the class folder of its frames ({where})"))
    for p, why in claims[1:]:
        if p != claims[0][0]:
            raise UsbkitError(
                f"{v.f.video_at[v.vid]}: video '{v.name}' is {claims[0][0]} by "
                f"{claims[0][1]} but {p} by {why}",
                file=v.f.src,
                fix="Correct the category or move the video's frames to the right class "
                "folder (or leave the video out with --exclude-video NAME)",
            )
    return claims[0][0] if claims else None


def _refuse_patient_in_two_splits(videos: list[_Video]) -> None:
    first: dict[str, _Video] = {}
    for v in videos:
        other = first.setdefault(v.patient, v)
        if other.f.split != v.f.split:
            raise UsbkitError(
                f"patient '{v.patient}' has video '{other.name}' in the {other.f.split} split "
                f"({other.where}) and video '{v.name}' in the {v.f.split} split ({v.where}); "
                "a patient belongs to one split, or test results are optimistic",
                fix="Move the patient's videos into one split file, or correct the patient_id",
            )


def _refuse_same_frames(videos: list[_Video]) -> None:
    """Two videos whose frames are more than half byte-identical are one video twice."""
    owners: dict[bytes, list[int]] = defaultdict(list)
    counts = []
    for i, v in enumerate(videos):
        digests = set()
        for fid, k, im in v.f.per_video[v.vid]:
            path = _frame_file(v.f, v.f.root, im, k, v.clip_id, fid)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise UsbkitError(
                    f"images[{k}].file_name: cannot be read ({exc.strerror or exc})", file=path
                ) from None
            digests.add(hashlib.blake2b(data, digest_size=16).digest())
        for d in digests:
            owners[d].append(i)
        counts.append(len(digests))
    shared: dict[tuple[int, int], int] = defaultdict(int)
    for ids in owners.values():
        for a_i, a in enumerate(ids):
            for b in ids[a_i + 1 :]:
                shared[(a, b)] += 1
    for (a, b), n in sorted(shared.items()):
        smaller = min(counts[a], counts[b])
        if 2 * n > smaller:
            raise _same_video(
                videos[a],
                videos[b],
                f"have the same frames ({n} of the {smaller} distinct frames of the shorter "
                "are byte-identical)",
            )


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
    with output_dir(dest, "export", overwrite=overwrite, inputs=[study_root]) as out:
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
