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

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.io.annotation_edit import BOX, KEYFRAME_COLUMNS, KEYFRAMES_FILE, csv_bytes
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
                    box.get("keyframe", "1") != "0",
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
        boxes, keys = {}, {}
        for i, ((f, c, out, occ, key), nxt) in enumerate(zip(listed, listed[1:] + [None])):
            prev_out = i == 0 or listed[i - 1][2]
            if out:
                if not prev_out:
                    keys[f] = None  # the lesion leaves the view here
                continue
            boxes[f] = (c, occ)
            if key or prev_out or nxt is None:
                keys[f] = c  # key frames, the first box of each stretch and the last box
            if nxt is not None:
                for g, between in interpolate_between(f, c, nxt[0], nxt[1]):
                    boxes[g] = (between, occ)
        last = max(keys, default=None)
        if last is not None and keys[last] is None and keys.get(last - 1) is not None:
            del keys[last]  # the end of the track: its last box ends it already
        named = next((a.text for a in track.iter("attribute") if a.get("name") == "lesion_id"),
                     None)  # fmt: skip
        lesion = (named or "").strip() or tid
        tracks.append(
            {"id": tid, "lesion_id": lesion, "label": track.get("label"), "boxes": boxes,
             "keys": keys}
        )  # fmt: skip
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
        key_rows = []
        for track in tracks:
            for frame, (coords, _occ) in sorted(track["boxes"].items()):
                w.add_box(
                    clip_id,
                    frame,
                    track["lesion_id"],
                    coords,
                    label=track["label"],
                    source=f"track {track['id']}, frame {frame}",
                )
            for frame, coords in sorted(track["keys"].items()):
                row = {"clip_id": clip_id, "lesion_id": track["lesion_id"], "frame": frame}
                row.update(zip(BOX, coords if coords is not None else [None] * 4))
                row.update(outside=int(coords is None), source="imported")
                key_rows.append(row)
        # the key frames, so that the viewer's annotate mode resumes on them (docs/annotate.md)
        (w.tmp / KEYFRAMES_FILE).write_bytes(csv_bytes(key_rows, KEYFRAME_COLUMNS))
    return out


def _xml_number(v: float) -> str:
    return f"{float(v):.3f}".rstrip("0").rstrip(".")


def cvat_track_xml(
    lesion_id: str,
    track_id: int,
    label: str,
    rows: dict[int, list[float]],
    keys: set[int],
    n_frames: int,
) -> ET.Element:
    """One lesion as a CVAT ``<track>``: a box on every frame in view (``keyframe="1"`` on
    its key frames), and an ``outside`` box on the first frame of each stretch out of view
    (after its last frame too, unless that is the clip's last), holding the box before it.
    The lesion id travels as the track's ``lesion_id`` attribute."""
    track = ET.Element("track", id=str(track_id), label=label, source="manual")
    frames = sorted(rows)

    def box(f, b, outside, keyframe):
        e = ET.SubElement(
            track,
            "box",
            frame=str(f),
            keyframe=str(int(keyframe)),
            outside=str(int(outside)),
            occluded="0",
            xtl=_xml_number(b[0]),
            ytl=_xml_number(b[1]),
            xbr=_xml_number(b[2]),
            ybr=_xml_number(b[3]),
            z_order="0",
        )
        ET.SubElement(e, "attribute", name="lesion_id").text = str(lesion_id)

    for i, f in enumerate(frames):
        prev_gap = i == 0 or frames[i - 1] != f - 1
        nxt_gap = i == len(frames) - 1 or frames[i + 1] != f + 1
        box(f, rows[f], False, f in keys or prev_gap or (nxt_gap and f + 1 >= n_frames))
        if nxt_gap and f + 1 < n_frames:
            box(f + 1, rows[f], True, True)
    return track


def export_cvat_video(study_root: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Export a study as CVAT for video 1.1: ``OUT/<clip>/annotations.xml`` and the clip's
    media beside it, one folder per clip (a CVAT task is one video).

    Each lesion is a track (label: the lesion's ``label``, else ``lesion``); every frame in
    view has its box, the key frames of the viewer's key-frame file (or, without one, the
    fewest key frames that reproduce the boxes by interpolation) are marked
    ``keyframe="1"``, and a lesion leaving the view gets an ``outside`` box, so CVAT shows the
    same boxes. ``usbkit import cvat-video OUT/<clip>`` gives the same boxes back, and the
    same key frames in the key-frame file.

    Parameters
    ----------
    study_root : str or Path
        The study folder.
    out : str or Path
        New output folder (built aside and swapped in whole).
    overwrite : bool
        Replace an earlier ``usbkit export`` output at ``out``.

    Returns
    -------
    Path
        The output folder.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from usbkit.io.encode import write_video
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "study").mkdir()
    >>> _ = write_video(np.zeros((6, 48, 64), np.uint8), root / "study" / "A.mp4", fps=10)
    >>> _ = (root / "study" / "manifest.csv").write_text("clip_id,patient_id,path\\nA,P1,A.mp4\\n")
    >>> _ = (root / "study" / "annotations.csv").write_text(
    ...     "clip_id,frame,lesion_id,x0,y0,x1,y1\\nA,1,1,10,10,20,20\\nA,2,1,12,10,22,20\\n")
    >>> out = export_cvat_video(root / "study", root / "cvat")
    >>> sorted(p.name for p in (out / "A").iterdir())
    ['A.mp4', 'annotations.xml']
    """
    from usbkit.io.annotation_edit import AnnotationEditor
    from usbkit.io.clip import ReaderSettings, open_clip
    from usbkit.io.ids import unique_names
    from usbkit.io.study import load_study
    from usbkit.safeio import check_output_dir, output_dir

    dest = check_output_dir(out, "export", overwrite)
    study = load_study(study_root)
    editor = AnnotationEditor(study_root)
    folders = unique_names(study.manifest["clip_id"])
    with output_dir(dest, "export", overwrite=overwrite, inputs=[study_root]) as tmp:
        for row in study.manifest.itertuples(index=False):
            cid = row.clip_id
            media = study.clip_path(cid)
            clip = open_clip(media, ReaderSettings(crop=False))
            n = clip.meta["n_frames"]
            h, w = clip.original_size
            folder = tmp / folders[cid]
            folder.mkdir(parents=True)
            name = media.name
            if media.is_dir():
                shutil.copytree(media, folder / name)
            else:
                shutil.copyfile(media, folder / name)
            boxes = study.boxes(cid)
            keys = editor.clip(cid, n_frames=n, width=w, height=h)
            labels = sorted(
                {str(v) for v in boxes.get("label", pd.Series(dtype=object)).dropna()}
            ) or ["lesion"]
            if "lesion" not in labels:
                labels.append("lesion")
            root = ET.Element("annotations")
            ET.SubElement(root, "version").text = "1.1"
            task = ET.SubElement(ET.SubElement(root, "meta"), "task")
            for tag, text in (
                ("id", "1"), ("name", str(cid)), ("size", str(n)), ("mode", "interpolation"),
                ("overlap", "0"), ("start_frame", "0"), ("stop_frame", str(n - 1)),
            ):  # fmt: skip
                ET.SubElement(task, tag).text = text
            lab = ET.SubElement(task, "labels")
            for lname in labels:
                el = ET.SubElement(lab, "label")
                ET.SubElement(el, "name").text = lname
                ET.SubElement(el, "type").text = "rectangle"
                attrs = ET.SubElement(el, "attributes")
                a = ET.SubElement(attrs, "attribute")
                for tag, text in (("name", "lesion_id"), ("mutable", "False"),
                                  ("input_type", "text"), ("default_value", ""),
                                  ("values", "")):  # fmt: skip
                    ET.SubElement(a, tag).text = text
            size = ET.SubElement(task, "original_size")
            ET.SubElement(size, "width").text = str(w)
            ET.SubElement(size, "height").text = str(h)
            ET.SubElement(task, "source").text = name
            lesion_ids = list(dict.fromkeys(boxes["lesion_id"].astype(str)))
            numeric = all(x.isdigit() for x in lesion_ids) and len(
                set(map(int, lesion_ids))
            ) == len(lesion_ids)
            for k, lid in enumerate(lesion_ids):
                g = boxes.loc[boxes["lesion_id"].astype(str) == lid]
                rows = {int(r.frame): [r.x0, r.y0, r.x1, r.y1] for r in g.itertuples()}
                les = keys.lesions.get(lid)
                kf = set(les.box_frames()) if les is not None else set()
                label = "lesion"
                if "label" in g.columns and g["label"].notna().any():
                    label = str(g["label"].dropna().iloc[0])
                tid = int(lid) if numeric else k
                root.append(cvat_track_xml(lid, tid, label, rows, kf, n))
            ET.indent(root)
            ET.ElementTree(root).write(
                folder / "annotations.xml", encoding="utf-8", xml_declaration=True
            )
    return dest
