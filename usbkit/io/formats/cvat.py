"""CVAT "for video 1.1" XML: tracks of boxes with ``outside`` and ``occluded`` flags.

A track is one lesion. A box with ``outside="1"`` ends the track's visibility there. Frames
between two listed boxes of a visible stretch are filled by linear interpolation, as CVAT
does for its key frames. Occluded boxes are kept (the lesion is there, only hidden).

The video is the one the XML names in ``<source>`` (beside the XML, or given with
``--media``); a named video that is missing is an error, never replaced by another file.
Only when the XML names no source may an ``images/`` folder or the single video beside it be
used. The task's frame count (``<size>``) and frame size (``<original_size>``) are checked
against the media, and every box must lie on a frame of the video and inside it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.io.decode import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from usbkit.io.formats.writer import StudyWriter, safe_name
from usbkit.io.keyframes import interpolate_between
from usbkit.io.values import COORDINATE, FRAME, to_number

_FIX = "Correct the CVAT file, or export it again from CVAT ('CVAT for video 1.1')"


def _media_for(xml_path: Path, source: str | None, media: Path | None) -> Path:
    if media is not None:
        if not media.exists():
            raise UsbkitError("the media given with --media does not exist", file=media)
        return media
    folder = xml_path.parent
    if source:
        for candidate in (folder / source, folder / Path(source.replace("\\", "/")).name):
            if candidate.exists() and candidate.resolve().is_relative_to(folder.resolve()):
                return candidate
        raise UsbkitError(
            f"the video '{source}' named in the annotation's <source> is not beside it",
            file=xml_path,
            fix="Put that video next to the XML file, or give it with --media",
        )
    if (folder / "images").is_dir():
        return folder / "images"
    videos = [p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
    if len(videos) == 1:
        return videos[0]
    raise UsbkitError(
        "the annotation names no video (<source>) and there is not exactly one video beside it"
        + (f" ({len(videos)} found)" if videos else ""),
        file=xml_path,
        fix="Give the video with --media",
    )


def _int_text(task, path: str) -> int | None:
    text = task.findtext(path) if task is not None else None
    if text is None or not text.strip():
        return None
    value = to_number(text)
    return int(value) if FRAME.accepts(value) else None


def parse_cvat_tracks(xml_path: Path) -> tuple[dict, list[dict]]:
    """Read a CVAT video XML; return task meta and a list of tracks with per-frame boxes.

    Meta holds ``name``, ``source``, ``size`` (frame count) and ``original_size`` (width,
    height) when the file gives them.
    """
    if xml_path.is_dir() or not xml_path.exists():
        raise UsbkitError("the CVAT annotation file is missing", file=xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise UsbkitError(f"not valid XML ({exc})", file=xml_path, fix=_FIX) from None
    except OSError as exc:
        raise UsbkitError(
            f"the CVAT annotation file cannot be read ({exc.strerror or exc})", file=xml_path
        ) from None
    if root.tag != "annotations":
        raise UsbkitError(
            "this is not a CVAT annotations file (root is not <annotations>)", file=xml_path
        )
    if root.find("image") is not None and root.find("track") is None:
        raise UsbkitError(
            "this is a CVAT 'for images' file (boxes per <image>), not 'CVAT for video 1.1'",
            file=xml_path,
            fix="Export the task again from CVAT as 'CVAT for video 1.1'",
        )
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")
    width = _int_text(task, "original_size/width")
    height = _int_text(task, "original_size/height")
    meta = {
        "name": task.findtext("name") if task is not None else None,
        "source": (
            (task.findtext("source") if task is not None else None)
            or root.findtext("meta/source")
            or ""
        ).strip()
        or None,
        "size": _int_text(task, "size"),
        "original_size": (width, height) if width and height else None,
    }
    tracks = []
    for t_index, track in enumerate(root.iter("track")):
        tid = track.get("id", str(t_index))
        listed = []
        for b_index, box in enumerate(track.iter("box")):
            where = f"track {tid}, box {b_index}"
            frame, problem = FRAME.check(box.get("frame"))
            if problem:
                raise UsbkitError(f"{where}: {problem}", file=xml_path, fix=_FIX)
            coords = []
            for k in ("xtl", "ytl", "xbr", "ybr"):
                value, problem = COORDINATE.check(box.get(k))
                if problem:
                    raise UsbkitError(
                        f"{where} (frame {int(frame)}): {k} {problem}", file=xml_path, fix=_FIX
                    )
                coords.append(value)
            if not (coords[0] < coords[2] and coords[1] < coords[3]):
                raise UsbkitError(
                    f"track {tid} box on frame {int(frame)} is empty or swapped {coords}",
                    file=xml_path,
                    fix=_FIX,
                )
            listed.append(
                (
                    int(frame),
                    coords,
                    box.get("outside", "0") == "1",
                    box.get("occluded", "0") == "1",
                )
            )
        if not listed and len(track):
            shapes = sorted({child.tag for child in track})
            raise UsbkitError(
                f"track {tid} holds {', '.join(shapes)} shapes but no boxes; usbkit reads boxes",
                file=xml_path,
                fix="Draw the lesions as rectangles (boxes) in CVAT and export again",
            )
        listed.sort(key=lambda b: b[0])
        frames = [b[0] for b in listed]
        if len(set(frames)) != len(frames):
            dup = sorted({f for f in frames if frames.count(f) > 1})
            raise UsbkitError(
                f"track {tid} has two boxes on frame {dup[0]}", file=xml_path, fix=_FIX
            )
        boxes = {}
        for (f, c, out, occ), nxt in zip(listed, listed[1:] + [None]):
            if out:
                continue
            boxes[f] = (c, occ)
            if nxt is not None:
                for g, between in interpolate_between(f, c, nxt[0], nxt[1]):
                    boxes[g] = (between, occ)
        tracks.append({"id": tid, "label": track.get("label"), "boxes": boxes})
    return meta, tracks


def import_cvat_video(
    src: Path,
    out: Path,
    media: str | Path | None = None,
    patient_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Import a CVAT for video 1.1 annotation and its video as a one-clip study.

    Parameters
    ----------
    src : Path
        The XML file, or the export folder holding ``annotations.xml``.
    out : Path
        New study folder.
    media : str or Path, optional
        The video file or frame folder (default: the ``<source>`` video beside the XML).
    patient_id : str, optional
        Patient id for the clip (default: the clip id).
    """
    src = Path(src)
    xml_path = src / "annotations.xml" if src.is_dir() else src
    meta, tracks = parse_cvat_tracks(xml_path)
    mpath = _media_for(xml_path, meta["source"], Path(media) if media else None)
    source_name = Path(meta["source"].replace("\\", "/")).name if meta["source"] else mpath.name
    clip_id = safe_name(Path(source_name).stem or meta["name"] or "clip")
    with StudyWriter(out, source=xml_path, overwrite=overwrite) as w:
        if mpath.is_dir():
            suffix = ""
        elif mpath.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES | {".gif", ".dcm"}:
            suffix = mpath.suffix
        else:
            suffix = ""
        rel = w.copy_media(mpath, w.media_name(clip_id, suffix))
        w.add_clip(
            clip_id,
            patient_id or clip_id,
            rel,
            source=str(mpath),
            frames=meta["size"],
            size=meta["original_size"],
            declared_by="the annotation's <size>/<original_size>",
        )
        for track in tracks:
            for frame, (coords, _occ) in sorted(track["boxes"].items()):
                w.add_box(
                    clip_id,
                    frame,
                    track["id"],
                    coords,
                    label=track["label"],
                    source=f"track {track['id']}, frame {frame}",
                )
    return out
