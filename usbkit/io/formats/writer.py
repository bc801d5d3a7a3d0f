"""Assemble a study folder in a temporary place and move it into position when complete."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.io.study import ANNOTATION_REQUIRED, write_study_tables
from usbkit.safeio import atomic_dir, refuse_nonempty


def safe_name(text: str) -> str:
    """A file-system-safe identifier made from ``text``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return name or "clip"


class StudyWriter:
    """Collects clips and boxes, then writes the study atomically.

    Use as a context manager: on success the temporary folder becomes ``out``; on any error
    it is removed and ``out`` is untouched.
    """

    def __init__(self, out: str | Path):
        self.out = refuse_nonempty(out)
        self.clips: list[dict] = []
        self.boxes: list[dict] = []
        self.tmp: Path | None = None
        self._folder = None

    def __enter__(self) -> StudyWriter:
        self._folder = atomic_dir(self.out)
        self.tmp = self._folder.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._folder is not None
        if exc_type is None:
            try:
                self._write_tables()
            except BaseException as error:  # the tables failed: nothing is moved into place
                self._folder.__exit__(type(error), error, error.__traceback__)
                raise
        return bool(self._folder.__exit__(exc_type, exc, tb))

    def media_path(self, relative: str) -> Path:
        """Absolute temporary location for media stored at ``relative`` in the study."""
        assert self.tmp is not None
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
                shutil.copy2(src, dest)
        except OSError as e:
            raise UsbkitError(
                f"could not copy this media file ({e.strerror or e})", file=src
            ) from None
        return relative

    def add_clip(self, clip_id: str, patient_id: str, path: str, **extra) -> None:
        """Add a manifest row (``pathology``, ``split``, ``fps`` may be given as keywords)."""
        self.clips.append({"clip_id": clip_id, "patient_id": patient_id, "path": path, **extra})

    def add_box(self, clip_id: str, frame: int, lesion_id: str, box, label: str | None = None):
        """Add one lesion box ``(x0, y0, x1, y1)`` in original-frame pixels."""
        x0, y0, x1, y1 = (float(v) for v in box)
        row = {
            "clip_id": clip_id,
            "frame": int(frame),
            "lesion_id": str(lesion_id),
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
        }
        if label is not None:
            row["label"] = label
        self.boxes.append(row)

    def _write_tables(self) -> None:
        ids = [c["clip_id"] for c in self.clips]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise UsbkitError(f"two source clips map to the same clip id ({', '.join(dup)})")
        manifest = pd.DataFrame(self.clips)
        if manifest.empty:
            raise UsbkitError("the source holds no clips to import")
        for col in ("pathology", "split", "fps"):
            if col in manifest.columns and manifest[col].isna().all():
                manifest = manifest.drop(columns=col)
        ann = pd.DataFrame(
            self.boxes,
            columns=ANNOTATION_REQUIRED
            + (["label"] if any("label" in b for b in self.boxes) else []),
        )
        assert self.tmp is not None
        write_study_tables(self.tmp, manifest, ann)
