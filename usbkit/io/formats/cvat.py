"""CVAT "for video 1.1" XML: tracks of boxes with ``outside`` and ``occluded`` flags.

A track is one lesion. A box with ``outside="1"`` ends the track's visibility there. Frames
between two listed boxes of a visible stretch are filled by linear interpolation, as CVAT
does for its key frames. Occluded boxes are kept (the lesion is there, only hidden).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.io.decode import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from usbkit.io.formats.writer import StudyWriter, safe_name


def _media_for(xml_path: Path, source: str | None, media: Path | None) -> Path:
    if media is not None:
        return media
    folder = xml_path.parent
    if source and (folder / source).exists():
        return folder / source
    if (folder / "images").is_dir():
        return folder / "images"
    videos = [p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
    if len(videos) == 1:
        return videos[0]
    raise UsbkitError(
        f"cannot find the video this annotation belongs to (source '{source}')",
        file=xml_path,
        fix="Put the video next to the XML file, or give it with --media",
    )


def parse_cvat_tracks(xml_path: Path) -> tuple[dict, list[dict]]:
    """Read a CVAT video XML; return task meta and a list of tracks with per-frame boxes."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise UsbkitError(f"not valid XML ({exc})", file=xml_path) from None
    except OSError:
        raise UsbkitError("the CVAT annotation file is missing", file=xml_path) from None
    if root.tag != "annotations":
        raise UsbkitError(
            "this is not a CVAT annotations file (root is not <annotations>)", file=xml_path
        )
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")
    meta = {
        "name": task.findtext("name") if task is not None else None,
        "source": (task.findtext("source") if task is not None else None)
        or root.findtext("meta/source"),
    }
    tracks = []
    for t_index, track in enumerate(root.iter("track")):
        listed = []
        for b_index, box in enumerate(track.iter("box")):
            try:
                frame = int(box.get("frame"))
                coords = [float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
            except (TypeError, ValueError):
                raise UsbkitError(
                    f"track {track.get('id')} box {b_index} has a missing or non-numeric frame "
                    "or coordinate",
                    file=xml_path,
                ) from None
            if not (coords[0] < coords[2] and coords[1] < coords[3]):
                raise UsbkitError(
                    f"track {track.get('id')} box on frame {frame} is empty or swapped {coords}",
                    file=xml_path,
                )
            listed.append(
                (frame, coords, box.get("outside", "0") == "1", box.get("occluded", "0") == "1")
            )
        listed.sort(key=lambda b: b[0])
        boxes = {}
        for (f, c, out, occ), nxt in zip(listed, listed[1:] + [None]):
            if out:
                continue
            boxes[f] = (c, occ)
            if nxt is not None and nxt[0] > f + 1:
                f2, c2 = nxt[0], nxt[1]
                for g in range(f + 1, f2):
                    a = (g - f) / (f2 - f)
                    boxes[g] = ([u + a * (v - u) for u, v in zip(c, c2)], occ)
        tracks.append(
            {"id": track.get("id", str(t_index)), "label": track.get("label"), "boxes": boxes}
        )
    return meta, tracks


def import_cvat_video(
    src: Path, out: Path, media: str | Path | None = None, patient_id: str | None = None
) -> Path:
    """Import a CVAT for video 1.1 annotation and its video as a one-clip study.

    Parameters
    ----------
    src : Path
        The XML file, or the export folder holding ``annotations.xml``.
    out : Path
        New study folder.
    media : str or Path, optional
        The video file or frame folder (default: found beside the XML).
    patient_id : str, optional
        Patient id for the clip (default: the clip id).
    """
    xml_path = src / "annotations.xml" if src.is_dir() else src
    meta, tracks = parse_cvat_tracks(xml_path)
    mpath = _media_for(xml_path, meta["source"], Path(media) if media else None)
    clip_id = safe_name(Path(meta["source"] or mpath.name).stem or meta["name"] or "clip")
    with StudyWriter(out) as w:
        if mpath.is_dir():
            rel = w.copy_media(mpath, f"clips/{clip_id}")
        elif mpath.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES | {".gif", ".dcm"}:
            rel = w.copy_media(mpath, f"clips/{clip_id}{mpath.suffix.lower()}")
        else:
            rel = w.copy_media(mpath, f"clips/{mpath.name}")
        w.add_clip(clip_id, patient_id or clip_id, rel)
        for track in tracks:
            for frame, (coords, _occ) in sorted(track["boxes"].items()):
                w.add_box(clip_id, frame, track["id"], coords, label=track["label"])
    return out
