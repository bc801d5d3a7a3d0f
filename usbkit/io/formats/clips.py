"""A folder of your own clips, as they come off the scanner: every clip becomes part of a study.

``usbkit import clips SRC OUT`` takes

.. code-block:: text

    SRC/scan1.mp4, SRC/scan2.dcm, ...        one patient per clip, or
    SRC/<patient>/<clip files>               one folder per patient (its name is the patient id)
    SRC/annotations.csv                      optional: lesion boxes in the study format

A clip is a video (MP4, AVI, MOV, MKV, ...), a DICOM cine, an animated GIF, a still image or a
folder of PNG/JPEG frames. Its clip id is its file name without the suffix (so an
``annotations.csv`` written beside the clips names them as you see them). No split is needed
to view clips and their detections; without ``annotations.csv`` every clip is a study of its
own that the detectors and the viewer can read, while sensitivity needs annotations.
"""

from __future__ import annotations

from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.io.decode import DICOM_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, folder_frames
from usbkit.io.formats.writer import StudyWriter, safe_name
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


def import_clips(src: Path, out: Path, overwrite: bool = False) -> Path:
    """Make a study of a folder of clips (with or without annotations).

    Parameters
    ----------
    src : Path
        The folder of clips (see the module description for its layout).
    out : Path
        The new study folder.
    overwrite : bool
        Replace an earlier ``usbkit import`` output at ``out``.

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
    ids = {}
    for path, _ in clips:
        clip_id = safe_name(path.stem if path.is_file() else path.name)
        if clip_id in ids:
            raise UsbkitError(
                f"two clips would both be called '{clip_id}' ({ids[clip_id]} and "
                f"{path.relative_to(src)}); a clip id is the file name without its suffix",
                file=src,
                fix="Rename one of them",
            )
        ids[clip_id] = path.relative_to(src)
    boxes = None
    ann_path = src / ANNOTATIONS
    if ann_path.is_file():
        boxes, problems = parse_annotations(read_table(ann_path, "annotations"), ann_path, set(ids))
        if problems:
            shown = "; ".join(str(p) for p in problems[:5])
            raise UsbkitError(
                f"the annotations beside the clips have {len(problems)} problem(s): {shown}",
                file=ann_path,
                fix="Clip ids are the clips' file names without suffix; fix these rows",
            )
    with StudyWriter(out, source=src, overwrite=overwrite) as w:
        for (path, patient), clip_id in zip(clips, ids):
            suffix = path.suffix.lower() if path.is_file() else ""
            rel = w.copy_media(path, w.media_name(clip_id, suffix, folder=patient))
            w.add_clip(clip_id, patient, rel, source=str(ids[clip_id]))
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
