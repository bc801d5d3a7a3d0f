"""Assemble a study folder in a temporary place and move it into position when complete.

Every importer writes through :class:`StudyWriter`, which checks what it writes against the
media before anything is moved into place:

* ids are safe (:mod:`usbkit.io.ids`) and unique; media go to names it chooses itself, inside
  the new study, never to a name taken from the source;
* every copied clip decodes (whole: a clip cut short is refused), and has the frame count and
  frame size its source declares;
* every box lies on a frame of its clip and inside the frame, and no lesion has two boxes on
  one frame.

The study is built through :func:`usbkit.safeio.output_dir` (command ``import``): a failure
at any point removes the temporary folder and leaves ``out`` untouched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.io.ids import ID_FIX, confined_path_reason, safe_name, unsafe_name_reason
from usbkit.io.study import ANNOTATION_REQUIRED, write_study_tables
from usbkit.io.values import COORDINATE, FRAME
from usbkit.safeio import check_output_dir, inside, output_dir

__all__ = ["StudyWriter", "safe_name"]


@dataclass
class _Clip:
    row: dict
    source: str
    frames: int | None = None
    size: tuple[int, int] | None = None
    declared_by: str = ""


class StudyWriter:
    """Collects clips and boxes, checks them against the media, then writes the study.

    Use as a context manager: on success the temporary folder becomes ``out``; on any error
    it is removed and ``out`` is untouched.

    Parameters
    ----------
    out : str or Path
        The new study folder (must not exist, or be empty).
    source : str or Path, optional
        The annotation file or folder being imported, named in error messages.
    overwrite : bool
        Replace an earlier ``usbkit import`` output at ``out`` (kept until the new study is
        complete); any other non-empty folder is refused.
    """

    def __init__(self, out: str | Path, source: str | Path | None = None, overwrite: bool = False):
        self.out = check_output_dir(out, "import", overwrite)
        self.overwrite = overwrite
        self.source = str(source) if source is not None else None
        self.clips: dict[str, _Clip] = {}
        self.boxes: list[dict] = []
        self.tmp: Path | None = None
        self._folder = None
        self._names: set[str] = set()
        self._copied: dict[Path, Path] = {}

    def __enter__(self) -> StudyWriter:
        if self.source is not None and self.out.exists() and inside(self.source, self.out):
            # the import's source (and the frames beside it) would go with the earlier output
            raise UsbkitError(
                f"the import's source {self.source} lies inside this output folder, which "
                "--overwrite would replace, removing the source with it",
                file=self.out,
                fix="Move the source out of the output folder first, or choose another output "
                "folder",
            )
        self._folder = output_dir(self.out, "import", overwrite=self.overwrite)
        self.tmp = self._folder.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._folder is not None
        if exc_type is None:
            try:
                self._check_media()
                self._write_tables()
            except BaseException as error:  # nothing is moved into place
                self._folder.__exit__(type(error), error, error.__traceback__)
                raise
        return bool(self._folder.__exit__(exc_type, exc, tb))

    # -- media ---------------------------------------------------------------------------

    def media_name(self, name: str, suffix: str = "", folder: str = "") -> str:
        """A new relative media path ``clips/[<folder>/]<safe, unique name><suffix>``."""
        base = safe_name(name)
        sub = f"{safe_name(folder)}/" if folder else ""
        stem, k = base, 1
        while f"{sub}{stem}".casefold() in self._names:
            k += 1
            stem = f"{base}_{k}"
        self._names.add(f"{sub}{stem}".casefold())
        return f"clips/{sub}{stem}{suffix.lower()}"

    def media_path(self, relative: str) -> Path:
        """Absolute temporary location for media stored at ``relative`` in the study."""
        assert self.tmp is not None
        why = confined_path_reason(self.tmp, relative)
        if why:  # names come from media_name; this guards against misuse
            raise UsbkitError(f"internal error: media path '{relative}' {why}")
        p = self.tmp / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def copy_media(self, src: Path, relative: str) -> str:
        """Copy a file or a frame folder into the study; return its relative path."""
        dest = self.media_path(relative)
        try:
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                shutil.copyfile(src, dest)
        except OSError as e:
            raise UsbkitError(
                f"could not copy this media file ({e.strerror or e})", file=src
            ) from None
        self._copied[dest] = Path(src)
        return relative

    def _source_of(self, path: str | Path | None) -> str | None:
        """The user's file behind a path inside the temporary study (for messages)."""
        if path is None:
            return None
        p = Path(path)
        for dest, src in self._copied.items():
            if p == dest:
                return str(src)
            if p.is_relative_to(dest):
                return str(src / p.relative_to(dest))
        return str(p)

    # -- rows ----------------------------------------------------------------------------

    def add_clip(
        self,
        clip_id: str,
        patient_id: str,
        path: str,
        *,
        source: str = "",
        frames: int | None = None,
        size: tuple[int, int] | None = None,
        declared_by: str = "",
        **extra,
    ) -> None:
        """Add a manifest row.

        Parameters
        ----------
        clip_id, patient_id : str
            Ids (the clip id must be safe as a file name).
        path : str
            The media's relative path in the study (from :meth:`copy_media`).
        source : str
            Where the clip comes from, for messages (``videos[2]``, a file name).
        frames : int, optional
            Frame count the source declares; checked against the media.
        size : tuple of int, optional
            ``(width, height)`` the source declares; checked against the media.
        declared_by : str
            What declares ``frames`` / ``size`` (for messages).
        **extra
            ``pathology``, ``split``, ``fps``.
        """
        why = unsafe_name_reason(clip_id)
        if why:
            raise UsbkitError(
                f"{source or 'a clip'}: clip id '{clip_id}' cannot be used: {why}",
                file=self.source,
                fix=ID_FIX,
            )
        if clip_id in self.clips:
            first = self.clips[clip_id].source
            raise UsbkitError(
                f"{source or 'a clip'} and {first or 'another clip'} both become clip "
                f"'{clip_id}'; clip ids must be unique",
                file=self.source,
                fix="Give the source clips names that differ in letters or digits",
            )
        row = {"clip_id": clip_id, "patient_id": patient_id, "path": path, **extra}
        self.clips[clip_id] = _Clip(row, source, frames, size, declared_by)

    def add_box(
        self,
        clip_id: str,
        frame: int,
        lesion_id: str,
        box,
        label: str | None = None,
        source: str = "",
    ) -> None:
        """Add one lesion box ``(x0, y0, x1, y1)`` in original-frame pixels.

        ``source`` names the box in the imported file (``annotations[5]``) for messages.
        """
        where = source or f"the box of lesion '{lesion_id}' on frame {frame}"
        value, problem = FRAME.check(frame)
        if problem:
            raise UsbkitError(f"{where}: {problem}", file=self.source)
        coords = []
        for v in box:
            c, problem = COORDINATE.check(v)
            if problem:
                raise UsbkitError(f"{where}: box {list(box)}: {problem}", file=self.source)
            coords.append(c)
        x0, y0, x1, y1 = coords
        if not (x0 < x1 and y0 < y1):
            raise UsbkitError(
                f"{where}: box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is empty or swapped",
                file=self.source,
                fix="A box needs x0 < x1 and y0 < y1 (a positive width and height)",
            )
        row = {
            "clip_id": clip_id,
            "frame": int(value),
            "lesion_id": str(lesion_id),
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "_source": where,
        }
        if label is not None:
            row["label"] = label
        self.boxes.append(row)

    # -- checks against the media --------------------------------------------------------

    def _check_media(self) -> None:
        from usbkit.io.clip import ReaderSettings, open_clip

        assert self.tmp is not None
        if not self.clips:
            raise UsbkitError("the source holds no clips to import", file=self.source)
        by_clip: dict[str, list[dict]] = {}
        seen: dict[tuple, str] = {}
        for b in self.boxes:
            if b["clip_id"] not in self.clips:
                raise UsbkitError(
                    f"{b['_source']}: box for clip '{b['clip_id']}', which has no media",
                    file=self.source,
                )
            key = (b["clip_id"], b["frame"], b["lesion_id"])
            if key in seen:
                raise UsbkitError(
                    f"{b['_source']} and {seen[key]} are two boxes of lesion '{b['lesion_id']}' "
                    f"on frame {b['frame']} of clip '{b['clip_id']}'; a lesion has one box per "
                    "frame",
                    file=self.source,
                    fix="Give each lesion its own instance or track id",
                )
            seen[key] = b["_source"]
            by_clip.setdefault(b["clip_id"], []).append(b)
        for cid, clip in self.clips.items():
            try:
                media = open_clip(self.tmp / clip.row["path"], ReaderSettings(crop=False))
            except UsbkitError as exc:
                raise UsbkitError(
                    f"clip '{cid}' ({clip.source}) cannot be imported: {exc.message}",
                    file=self._source_of(exc.file),
                    frame=exc.frame,
                    fix=exc.fix,
                ) from None
            n = media.meta["n_frames"]
            h, w = media.original_size
            if clip.frames is not None and clip.frames != n:
                raise UsbkitError(
                    f"{clip.declared_by or clip.source} declares {clip.frames} frames for clip "
                    f"'{cid}', but its media has {n}",
                    file=self.source,
                    fix="Check that the annotation file belongs to this video and that the "
                    "video is complete",
                )
            if clip.size is not None and tuple(clip.size) != (w, h):
                raise UsbkitError(
                    f"{clip.declared_by or clip.source} declares frames of {clip.size[0]} x "
                    f"{clip.size[1]} pixels for clip '{cid}', but its media has {w} x {h}",
                    file=self.source,
                    fix="Check that the annotation file belongs to this media (the boxes "
                    "would be at the wrong scale)",
                )
            for b in by_clip.get(cid, []):
                if b["frame"] >= n:
                    raise UsbkitError(
                        f"{b['_source']}: box on frame {b['frame']}, past the end of clip "
                        f"'{cid}', which has {n} frames (0 to {n - 1})",
                        file=self.source,
                        fix="Check that the annotation file belongs to this media and that "
                        "the media is complete",
                    )
                if b["x0"] < 0 or b["y0"] < 0 or b["x1"] > w or b["y1"] > h:
                    raise UsbkitError(
                        f"{b['_source']}: box [{b['x0']:g}, {b['y0']:g}, {b['x1']:g}, "
                        f"{b['y1']:g}] reaches outside the frame of clip '{cid}' ({w} x {h} "
                        "pixels)",
                        file=self.source,
                        fix="Correct the box, or check that the annotations belong to this media",
                    )

    def _write_tables(self) -> None:
        manifest = pd.DataFrame([c.row for c in self.clips.values()])
        for col in ("pathology", "split", "fps"):
            if col in manifest.columns and manifest[col].isna().all():
                manifest = manifest.drop(columns=col)
        rows = [{k: v for k, v in b.items() if not k.startswith("_")} for b in self.boxes]
        ann = pd.DataFrame(
            rows,
            columns=ANNOTATION_REQUIRED + (["label"] if any("label" in b for b in rows) else []),
        )
        assert self.tmp is not None
        write_study_tables(self.tmp, manifest, ann)
