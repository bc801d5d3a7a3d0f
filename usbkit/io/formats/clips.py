"""A folder of your own clips, as they come off the scanner: every clip becomes part of a study.

``usbkit import clips SRC OUT`` takes

.. code-block:: text

    SRC/scan1.mp4, SRC/scan2.dcm, ...        one patient per clip, or
    SRC/<patient>/<clip files>               one folder per patient (its name is the patient id)
    SRC/annotations.csv                      optional: lesion boxes in the study format

A clip is a video (MP4, AVI, MOV, MKV, ...), a DICOM cine, an animated GIF, a still image or a
folder of PNG/JPEG frames. Its clip id is its file name without the suffix (so an
``annotations.csv`` written beside the clips names them as you see them); a name found in
several patient folders gets the folder in front (``P01/cine1`` -> ``P01_cine1``). Every
problem of ``annotations.csv`` (its own rows, and boxes past a clip's end or outside its
frame) is listed in one error, each with its row. Boxes drawn on key frames only are warned
about, or filled by linear interpolation with ``interpolate=True`` (``--interpolate``). No split is needed
to view clips and their detections; without ``annotations.csv`` every clip is a study of its
own that the detectors and the viewer can read, while sensitivity needs annotations.
"""

from __future__ import annotations

from pathlib import Path

from usbkit.errors import Problem, UsbkitError
from usbkit.io.check import warn_frame_gaps
from usbkit.io.decode import DICOM_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, folder_frames
from usbkit.io.formats.writer import StudyWriter, safe_name
from usbkit.io.keyframes import fill_key_frames
from usbkit.io.notices import warn
from usbkit.io.study import parse_annotations, read_table

MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES | DICOM_SUFFIXES | {".gif"}
ANNOTATIONS = "annotations.csv"


def _is_clip_file(path: Path) -> bool:
    if path.suffix.lower() in MEDIA_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:  # DICOM files often come without a suffix
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _is_frame_folder(path: Path) -> bool:
    visible = [p for p in path.iterdir() if not p.name.startswith(".")]
    return bool(folder_frames(path)) and not any(p.is_dir() for p in visible)


def find_clips(src: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    """The clips of a source folder with their patient ids, and the files that are not clips."""
    clips: list[tuple[Path, str]] = []
    other: list[Path] = []
    for item in sorted(p for p in src.iterdir() if not p.name.startswith(".")):
        if item.is_file():
            if item.name == ANNOTATIONS:
                continue
            if _is_clip_file(item):
                clips.append((item, safe_name(item.stem)))
            else:
                other.append(item)
        elif item.is_dir() and _is_frame_folder(item):
            clips.append((item, safe_name(item.name)))
        elif item.is_dir():  # a patient's folder
            patient = safe_name(item.name)
            for sub in sorted(p for p in item.iterdir() if not p.name.startswith(".")):
                if (sub.is_file() and _is_clip_file(sub)) or (
                    sub.is_dir() and _is_frame_folder(sub)
                ):
                    clips.append((sub, patient))
                else:
                    other.append(sub)
    return clips, other


def clip_ids(clips: list[tuple[Path, str]], src: Path) -> list[str]:
    """The clip id of each clip: its file name without the suffix, or, where that name occurs
    in more than one patient folder (scanners export ``IMG0001.dcm`` in every folder),
    ``<patient folder>_<name>`` (``P01/cine1`` -> ``P01_cine1``); one line says so. Two clips
    that still share an id are refused."""
    names = [safe_name(path.stem if path.is_file() else path.name) for path, _ in clips]
    folders: dict[str, set[str]] = {}
    for (path, patient), name in zip(clips, names):
        if path.parent != src:  # in a patient's folder
            folders.setdefault(name, set()).add(patient)
    shared = {name for name, patients in folders.items() if len(patients) > 1}
    ids = [
        safe_name(f"{patient}_{name}") if name in shared and path.parent != src else name
        for (path, patient), name in zip(clips, names)
    ]
    seen: dict[str, Path] = {}
    for (path, _), clip_id in zip(clips, ids):
        if clip_id in seen:
            raise UsbkitError(
                f"two clips would both be called '{clip_id}' ({seen[clip_id]} and "
                f"{path.relative_to(src)}); a clip id is the file name without its suffix "
                "(with its patient folder in front when the name occurs in several folders)",
                file=src,
                fix="Rename one of them",
            )
        seen[clip_id] = path.relative_to(src)
    if shared:
        renamed = [
            f"{path.relative_to(src).as_posix()} -> {clip_id}"
            for (path, _), name, clip_id in zip(clips, names, ids)
            if name in shared and path.parent != src
        ]
        print(
            f"usbkit import: {len(renamed)} clips share a file name with a clip of another "
            f"patient, so their clip id starts with the patient folder: "
            f"{', '.join(renamed[:4])}{', ...' if len(renamed) > 4 else ''}",
            flush=True,
        )
    return ids


def _media_problems(boxes, clips, ids, ann_path: Path) -> list[Problem]:
    """The rows of ``boxes`` (valid in themselves) that do not fit their clip's media: past
    its last frame or outside its frame; each clip with boxes is opened once."""
    from usbkit.io.check import _box_problems
    from usbkit.io.clip import ReaderSettings, open_clip

    problems: list[Problem] = []
    paths = dict(zip(ids, (path for path, _ in clips)))
    for cid, sub in boxes.groupby("clip_id", sort=False):
        try:
            media = open_clip(paths[cid], ReaderSettings(crop=False))
        except UsbkitError:
            continue  # the clip itself is refused, with its reason, when it is imported
        problems += _box_problems(sub, media, cid, ann_path)
    return problems


def _row_ranges(rows: list[int]) -> str:
    """``[2, 3, 4, 7]`` -> ``'rows 2-4, 7'`` (``'row 5'`` for one)."""
    spans: list[list[int]] = []
    for r in sorted(set(rows)):
        if spans and r == spans[-1][1] + 1:
            spans[-1][1] = r
        else:
            spans.append([r, r])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return f"row {text}" if len(rows) == 1 else f"rows {text}"


def _problems_error(
    problems: list[Problem], ann_path: Path, renamed: dict[str, list[str]] | None = None
) -> UsbkitError:
    """Every problem of the annotations beside the clips, each with its row, in one error; the
    rows of one and the same problem (a clip id written wrong on every row) in one line.
    ``renamed``: each file name that got its patient folder in front -> the clip ids it
    became, to say which id an annotation for it needs."""
    problems = sorted(problems, key=lambda p: p.row if p.row is not None else 0)
    here = "which is not one of the clips in this folder"
    groups: dict[str, list[int | None]] = {}
    for p in problems:
        groups.setdefault(p.message.replace("which is not in manifest.csv", here), []).append(p.row)
    lines = []
    for message, rows in groups.items():
        numbered = [r for r in rows if r is not None]
        if numbered:
            lines.append(f"  - {_row_ranges(numbered)}: {message}")
        if len(numbered) < len(rows):
            lines.append(f"  - {message}")
    hints = [
        f"'{name}' is the file name of clips in several patient folders, so their ids are "
        f"{', '.join(ids)}: write those"
        for name, ids in (renamed or {}).items()
        if any(f"clip '{name}', {here}" in m for m in groups)
    ]
    return UsbkitError(
        f"the annotations beside the clips have {len(problems)} problem(s) (rows counted as "
        f"in a spreadsheet, the header is row 1):\n"
        + "\n".join(lines)
        + "\n"
        + "".join(f"{h}.\n" for h in hints)
        + "Clip ids are the clips' file names without suffix (with the patient folder in "
        "front where a name occurs in several patient folders); fix these rows and run "
        "`usbkit import clips` again",
        file=ann_path,
    )


def import_clips(src: Path, out: Path, overwrite: bool = False, interpolate: bool = False) -> Path:
    """Make a study of a folder of clips (with or without annotations).

    Parameters
    ----------
    src : Path
        The folder of clips (see the module description for its layout).
    out : Path
        The new study folder.
    overwrite : bool
        Replace an earlier ``usbkit import`` output at ``out``.
    interpolate : bool
        ``annotations.csv`` boxes lesions on key frames only: fill the frames between two
        boxes of a lesion by linear interpolation (:func:`usbkit.io.keyframes.fill_key_frames`,
        as CVAT does). Without it, a lesion whose boxes skip frames is only warned about.

    Returns
    -------
    Path
        The study folder: ``manifest.csv`` (no split), ``annotations.csv`` and ``clips/``.
    """
    src = Path(src)
    if not src.is_dir():
        raise UsbkitError(
            "the folder of clips does not exist", file=src, fix="Give the folder holding the clips"
        )
    clips, other = find_clips(src)
    if not clips:
        raise UsbkitError(
            "no clip found in this folder (videos, DICOM cine, GIF, images or frame folders)",
            file=src,
            fix="Put the clips directly in it, or in one subfolder per patient",
        )
    if other:
        names = ", ".join(str(p.relative_to(src)) for p in other[:5])
        warn(
            f"{len(other)} item(s) that are not clips are left out ({names}"
            f"{', ...' if len(other) > 5 else ''})",
            file=src,
            fix="Move them elsewhere if one of them is a clip in an unusual format",
        )
    ids = clip_ids(clips, src)
    boxes = None
    ann_path = src / ANNOTATIONS
    if ann_path.is_file():
        boxes, problems = parse_annotations(read_table(ann_path, "annotations"), ann_path, set(ids))
        if not any(p.row == 1 for p in problems):  # the columns are there: check the media
            problems += _media_problems(boxes, clips, ids, ann_path)
        if problems:
            renamed: dict[str, list[str]] = {}
            for (path, _), clip_id in zip(clips, ids):
                name = safe_name(path.stem if path.is_file() else path.name)
                if clip_id != name:
                    renamed.setdefault(name, []).append(clip_id)
            raise _problems_error(problems, ann_path, renamed)
        if interpolate:
            boxes, added = fill_key_frames(boxes)
            if added:
                print(f"usbkit import: {added} boxes filled in by interpolation between key frames")
        else:
            warn_frame_gaps(boxes, ann_path)
    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for (path, patient), clip_id in zip(clips, ids):
            suffix = path.suffix.lower() if path.is_file() else ""
            rel = w.copy_media(path, w.media_name(clip_id, suffix, folder=patient))
            w.add_clip(clip_id, patient, rel, source=str(path.relative_to(src)))
        if boxes is not None:
            for b in boxes.itertuples(index=False):
                label = getattr(b, "label", None)
                w.add_box(
                    b.clip_id,
                    int(b.frame),
                    str(b.lesion_id),
                    (b.x0, b.y0, b.x1, b.y1),
                    label=label if isinstance(label, str) else None,
                    source=f"{ANNOTATIONS} (clip '{b.clip_id}', frame {int(b.frame)})",
                )
    return Path(out)
