"""Annotating lesions on key frames, as the viewer's annotate mode does, and saving safely.

The data model of the viewer's annotate mode (docs/annotate.md), testable without a browser:

* A :class:`Lesion` is boxed on *key frames*; between two key frames its box moves linearly
  (:func:`usbkit.io.keyframes.interpolate_between`, the rule CVAT uses). A lesion is in view
  from its first key frame to its last; an *outside* key ends its view at that frame (the
  box of the key frame before is held until then, as in CVAT), and a later key frame brings it
  back.
* Every key frame records who made its box (``source``): ``drawn`` (a person drew, moved or
  resized it), ``confirmed`` (a person confirmed an interpolated box as right), ``accepted``
  (a detector's box a person accepted), ``imported`` (from an annotations.csv of unknown
  origin), ``interpolated`` (an interpolated box kept as the last frame of a lesion ended
  after it). Boxes between key frames are ``interpolated``.
* :class:`ClipAnnotation` holds one clip's lesions with the edit operations of the viewer and
  their undo / redo; :class:`AnnotationEditor` holds a whole study, and saves it:

  - ``annotations.csv`` with a row for every frame of every lesion (the study format judges
    every frame), written atomically (:func:`usbkit.safeio.atomic_path`), so an interrupted
    save leaves the previous file whole;
  - the key frames in the side file ``annotation_keyframes.csv`` (:data:`KEYFRAMES_FILE`), so
    editing resumes exactly and a study can report how its ground truth was made;
  - the previous files copied first to ``annotation_backups/`` with the date and time;
  - never over a file changed on disk since it was opened (another window, another person):
    the save is refused with a message saying how to go on, and the refused edits are
    written to a copy in ``annotation_backups/`` so nothing is lost.

Boxes are kept in original-frame pixels whatever the crop and the display size.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.io.keyframes import interpolate_between
from usbkit.io.notices import warn
from usbkit.safeio import atomic_path

BOX = ["x0", "y0", "x1", "y1"]
#: The side file of key frames, in the study folder (docs/annotate.md#the-key-frame-file).
KEYFRAMES_FILE = "annotation_keyframes.csv"
KEYFRAME_COLUMNS = ["clip_id", "lesion_id", "frame", *BOX, "outside", "source"]
#: Where earlier versions are kept, in the study folder.
BACKUP_DIR = "annotation_backups"
#: Who made a key frame's box (docs/annotate.md#who-made-each-box).
SOURCES = ("drawn", "confirmed", "accepted", "imported", "interpolated")
#: Key frames found in a table of per-frame boxes reproduce every box within this (pixels).
IMPORT_TOLERANCE = 0.005
#: A detector's track accepted as a lesion keeps key frames that reproduce it within this
#: share of the box's mean side (and at least 2 pixels): the detector's frame-to-frame jitter
#: is smoothed out, a real movement is kept.
ACCEPT_TOLERANCE = 0.05
UNDO_DEPTH = 200


def _r(v: float) -> float:
    return round(float(v), 3)


@dataclass
class Key:
    """One key frame of a lesion: its box (original pixels) or ``None`` for *outside*."""

    box: tuple[float, float, float, float] | None
    source: str = "drawn"


@dataclass
class Lesion:
    """A lesion of one clip, boxed on key frames.

    Attributes
    ----------
    id : str
        The ``lesion_id`` (unique in its clip).
    keys : dict of int to Key
        Key frames; a key with ``box=None`` is *outside* (the lesion leaves the view there).
    label : str or None
        The lesion's pathology (``benign``, ``malignant``, ...), saved as ``label``.
    """

    id: str
    keys: dict[int, Key] = field(default_factory=dict)
    label: str | None = None

    def box_frames(self) -> list[int]:
        """The key frames that hold a box, in order."""
        return sorted(f for f, k in self.keys.items() if k.box is not None)

    def boxes(self) -> dict[int, tuple[list[float], str]]:
        """Every frame the lesion is in view: ``{frame: (box, source)}``, the source of a
        frame between key frames being ``interpolated``."""
        out: dict[int, tuple[list[float], str]] = {}
        frames = sorted(self.keys)
        for f, nxt in zip(frames, frames[1:] + [None]):
            key = self.keys[f]
            if key.box is None:
                continue
            out[f] = (list(key.box), key.source)
            if nxt is None:
                continue
            after = self.keys[nxt]
            if after.box is not None:
                for g, b in interpolate_between(f, key.box, nxt, after.box):
                    out[g] = (b, "interpolated")
            else:  # held until the outside key (CVAT)
                for g in range(f + 1, nxt):
                    out[g] = (list(key.box), "interpolated")
        return out

    def box_at(self, frame: int) -> tuple[list[float], str] | None:
        """The box on ``frame`` with its source, or None when the lesion is not in view."""
        return self.boxes().get(int(frame))

    @property
    def first(self) -> int | None:
        """The first frame in view."""
        b = self.box_frames()
        return b[0] if b else None

    @property
    def last(self) -> int | None:
        """The last frame in view."""
        seen = self.boxes()
        return max(seen) if seen else None


def keyframes_from_boxes(
    frames, boxes, tolerance: float = IMPORT_TOLERANCE
) -> list[tuple[int, list[float] | None]]:
    """The fewest key frames (greedy, in frame order) whose linear interpolation reproduces
    every box within ``tolerance`` pixels; a run of frames without a box between two boxed
    frames gives an *outside* key (``None``) on its first frame.

    Examples
    --------
    >>> f = [0, 1, 2, 3, 4, 8]
    >>> b = [[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10], [3, 0, 13, 10], [9, 0, 19, 10],
    ...      [9, 0, 19, 10]]
    >>> [k for k, _ in keyframes_from_boxes(f, b)]
    [0, 3, 4, 5, 8]
    """
    frames = np.asarray(frames, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    order = np.argsort(frames, kind="stable")
    frames, boxes = frames[order], boxes[order]
    keys: list[tuple[int, list[float] | None]] = []
    if not len(frames):
        return keys
    breaks = np.flatnonzero(np.diff(frames) > 1) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, len(frames)]
    for r, (s, e) in enumerate(zip(starts, ends)):
        i = s
        keys.append((int(frames[i]), boxes[i].tolist()))
        while i < e - 1:
            j = i + 1
            # extend the segment i..j while the interpolation reproduces every box between
            while j + 1 < e:
                k = j + 1
                t = (np.arange(i + 1, k) - i) / (k - i)
                est = boxes[i] + t[:, None] * (boxes[k] - boxes[i])
                if np.abs(est - boxes[i + 1 : k]).max(initial=0) > tolerance:
                    break
                j = k
            keys.append((int(frames[j]), boxes[j].tolist()))
            i = j
        if r + 1 < len(starts):
            keys.append((int(frames[e - 1]) + 1, None))
    return keys


class ClipAnnotation:
    """One clip's lesions with the viewer's edit operations, undo and redo.

    Every operation that changes something returns True, records an undo step and marks
    the clip as changed. Boxes are in original-frame pixels and are kept inside the frame
    (``width`` x ``height``, when given).

    Parameters
    ----------
    clip_id : str
    n_frames : int, optional
        The clip's frame count (frames past it are refused).
    width, height : float, optional
        The original frame size (boxes are clipped to it).

    Examples
    --------
    >>> c = ClipAnnotation("A", n_frames=30, width=100, height=80)
    >>> lid = c.draw(2, [10, 10, 30, 30])          # a new lesion, key frame 2
    >>> _ = c.draw(6, [18, 10, 38, 30], lid)       # a second key frame of the same lesion
    >>> c.lesions[lid].box_at(4)                   # halfway: interpolated
    ([14.0, 10.0, 34.0, 30.0], 'interpolated')
    >>> _ = c.set_box(lid, 4, [15, 11, 35, 31])    # moved: it becomes a key frame
    >>> c.lesions[lid].box_frames()
    [2, 4, 6]
    >>> _ = c.undo(); c.lesions[lid].box_frames()
    [2, 6]
    >>> len(c.rows())                              # every frame from 2 to 6
    5
    """

    def __init__(
        self,
        clip_id: str,
        n_frames: int | None = None,
        width: float | None = None,
        height: float | None = None,
    ):
        self.clip_id = str(clip_id)
        self.n_frames, self.width, self.height = n_frames, width, height
        self.lesions: dict[str, Lesion] = {}
        #: draft keys (see :meth:`reject_draft`) the annotator rejected
        self.rejected: set[str] = set()
        self._undo: list = []
        self._redo: list = []
        #: whether anything changed since the clip was loaded or last saved
        self.changed = False

    # ------------------------------------------------------------------ undo / redo
    def _snapshot(self):
        return (copy.deepcopy(self.lesions), set(self.rejected))

    def _record(self) -> None:
        self._undo.append(self._snapshot())
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()
        self.changed = True

    def _restore(self, source: list, other: list) -> bool:
        """Go back to the last state of ``source``, keeping the present one on ``other``."""
        if not source:
            return False
        other.append(self._snapshot())
        self.lesions, self.rejected = source.pop()
        self.changed = True
        return True

    def undo(self) -> bool:
        """Take back the last edit (False when there is none)."""
        return self._restore(self._undo, self._redo)

    def redo(self) -> bool:
        """Do again the last edit taken back (False when there is none)."""
        return self._restore(self._redo, self._undo)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # ------------------------------------------------------------------ checks
    def _frame(self, frame) -> int:
        f = int(frame)
        if f < 0 or (self.n_frames is not None and f >= self.n_frames):
            last = f"0 to {self.n_frames - 1}" if self.n_frames else "from 0"
            raise UsbkitError(
                f"frame {f} is not a frame of clip '{self.clip_id}' (frames are numbered {last})",
                frame=f,
            )
        return f

    def _box(self, box) -> tuple[float, float, float, float]:
        b = [float(v) for v in box]
        if len(b) != 4 or not all(np.isfinite(b)):
            raise UsbkitError(f"a box needs four numbers x0, y0, x1, y1, not {box}")
        x0, x1 = sorted((b[0], b[2]))
        y0, y1 = sorted((b[1], b[3]))
        if self.width is not None:
            x0, x1 = min(max(x0, 0.0), self.width), min(max(x1, 0.0), self.width)
        if self.height is not None:
            y0, y1 = min(max(y0, 0.0), self.height), min(max(y1, 0.0), self.height)
        x0, x1 = max(0.0, x0), max(0.0, x1)
        y0, y1 = max(0.0, y0), max(0.0, y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise UsbkitError(
                f"the box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] on clip '{self.clip_id}' is less than "
                "one pixel wide or high",
                fix="Drag over the lesion to draw a larger box",
            )
        return (_r(x0), _r(y0), _r(x1), _r(y1))

    def _lesion(self, lesion_id) -> Lesion:
        lid = str(lesion_id)
        if lid not in self.lesions:
            raise UsbkitError(
                f"clip '{self.clip_id}' has no lesion '{lid}'",
                fix="Pick a lesion from the list beside the frame",
            )
        return self.lesions[lid]

    def new_id(self) -> str:
        """The next free lesion id (1, 2, ...)."""
        used = set(self.lesions)
        k = 1
        while str(k) in used:
            k += 1
        return str(k)

    # ------------------------------------------------------------------ edits
    def draw(self, frame: int, box, lesion_id: str | None = None, source: str = "drawn") -> str:
        """Draw a box on ``frame``: a new lesion (``lesion_id`` None) or a key frame of an
        existing one (replacing its box there). Returns the lesion id."""
        f, b = self._frame(frame), self._box(box)
        self._record()
        if lesion_id is None:
            lid = self.new_id()
            self.lesions[lid] = Lesion(lid)
        else:
            lid = self._lesion(lesion_id).id
        self.lesions[lid].keys[f] = Key(b, source)
        return lid

    def set_box(self, lesion_id: str, frame: int, box, source: str = "drawn") -> bool:
        """Move or resize the lesion's box on ``frame``: the frame becomes a key frame."""
        return self.draw(frame, box, lesion_id, source) is not None

    def confirm(self, lesion_id: str, frame: int) -> bool:
        """Confirm the box shown on ``frame`` (interpolated) as right: it becomes a key frame
        with source ``confirmed``. False when the lesion is not in view there, or the frame
        is already a key frame confirmed or drawn."""
        les, f = self._lesion(lesion_id), self._frame(frame)
        at = les.box_at(f)
        if at is None or (f in les.keys and les.keys[f].source in ("drawn", "confirmed")):
            return False
        self._record()
        les.keys[f] = Key(tuple(_r(v) for v in at[0]), "confirmed")
        return True

    def delete_key(self, lesion_id: str, frame: int) -> bool:
        """Remove a key frame (the box there becomes interpolated, or the lesion shorter);
        a lesion left without a box is removed."""
        les, f = self._lesion(lesion_id), int(frame)
        if f not in les.keys:
            return False
        self._record()
        del les.keys[f]
        if not les.box_frames():
            del self.lesions[les.id]
        else:
            self._trim(les)
        return True

    def _trim(self, les: Lesion) -> None:
        """Drop outside keys with no box before them, and outside keys that follow another."""
        prev_box = False
        for f in sorted(les.keys):
            if les.keys[f].box is None:
                if not prev_box:
                    del les.keys[f]
                prev_box = False
            else:
                prev_box = True

    def end(self, lesion_id: str, frame: int, source: str = "drawn") -> bool:
        """End the lesion at ``frame``: it is out of view from this frame on (its key frames
        from here on are removed; the box of the frame before is kept as its last)."""
        les, f = self._lesion(lesion_id), self._frame(frame)
        first = les.first
        if first is None or f <= first:
            raise UsbkitError(
                f"lesion '{les.id}' of clip '{self.clip_id}' starts on frame {first}: it can "
                f"only be ended on a later frame than that, not on frame {f}",
                fix="Go to the first frame where the lesion is no longer seen and end it there, "
                "or delete the lesion",
            )
        before = les.box_at(f - 1)
        self._record()
        for g in [g for g in les.keys if g >= f]:
            del les.keys[g]
        if before is not None and f - 1 not in les.keys:
            les.keys[f - 1] = Key(tuple(_r(v) for v in before[0]), "interpolated")
        if self.n_frames is None or f < self.n_frames:
            les.keys[f] = Key(None, source)
        self._trim(les)
        return True

    def delete_lesion(self, lesion_id: str) -> bool:
        """Remove a lesion and all its boxes."""
        les = self._lesion(lesion_id)
        self._record()
        del self.lesions[les.id]
        return True

    def set_label(self, lesion_id: str, label: str | None) -> bool:
        """Set the lesion's pathology (saved as ``label``; empty or None: none)."""
        les = self._lesion(lesion_id)
        label = (label or "").strip() or None
        if label == les.label:
            return False
        self._record()
        les.label = label
        return True

    def rename(self, lesion_id: str, new_id: str) -> bool:
        """Give a lesion another id (unique in its clip)."""
        les, new = self._lesion(lesion_id), str(new_id).strip()
        if not new or new == les.id:
            return False
        if new in self.lesions:
            raise UsbkitError(f"clip '{self.clip_id}' already has a lesion '{new}'")
        self._record()
        del self.lesions[les.id]
        les.id = new
        self.lesions[new] = les
        return True

    # ------------------------------------------------------------------ detector drafts
    def accept_draft(
        self, frames, boxes, tolerance: float = ACCEPT_TOLERANCE, lesion_id: str | None = None
    ) -> str:
        """Accept a detector's draft track as a lesion: key frames (source ``accepted``) that
        reproduce its boxes within ``tolerance`` times the mean box side (at least 2
        pixels), interpolated between (frames the track skips included). Returns the new
        lesion's id."""
        frames = np.asarray(frames, dtype=np.int64)
        if not len(frames):
            raise UsbkitError("this draft has no boxes to accept")
        boxes = np.array([self._box(b) for b in boxes], dtype=float)
        # the track may skip frames (the linker bridges gaps): one run, filled by interpolation
        full = np.arange(frames.min(), frames.max() + 1)
        filled = np.column_stack([np.interp(full, frames, boxes[:, c]) for c in range(4)])
        side = float(np.mean((boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2))
        keys = keyframes_from_boxes(full, filled, max(2.0, tolerance * side))
        self._record()
        lid = lesion_id or self.new_id()
        les = Lesion(lid)
        for f, b in keys:
            if b is not None:
                les.keys[int(f)] = Key(tuple(_r(v) for v in b), "accepted")
        self.lesions[lid] = les
        return lid

    def reject_draft(self, key: str) -> bool:
        """Reject a draft (by its :attr:`Draft.key`): it is no longer proposed."""
        if key in self.rejected:
            return False
        self._record()
        self.rejected.add(key)
        return True

    # ------------------------------------------------------------------ rows
    def rows(self) -> list[dict]:
        """Every box of every lesion, one per frame in view (original pixels), with its
        ``source``."""
        out = []
        for les in self.lesions.values():
            for f, (b, src) in sorted(les.boxes().items()):
                row = {"clip_id": self.clip_id, "frame": f, "lesion_id": les.id}
                row.update(zip(BOX, (_r(v) for v in b)))
                row["label"] = les.label
                row["source"] = src
                out.append(row)
        return out

    def key_rows(self) -> list[dict]:
        """The key frames as rows of the key-frame file."""
        out = []
        for les in self.lesions.values():
            for f in sorted(les.keys):
                k = les.keys[f]
                row = {"clip_id": self.clip_id, "lesion_id": les.id, "frame": f}
                row.update(zip(BOX, k.box if k.box is not None else [None] * 4))
                row.update(outside=int(k.box is None), source=k.source)
                out.append(row)
        return out

    def state(self) -> dict:
        """The clip's lesions as plain data (for the viewer): per lesion ``id``, ``label``,
        ``first``, ``last`` and ``keys`` as ``[frame, x0, y0, x1, y1, source]`` (outside:
        ``[frame, None, None, None, None, source]``)."""
        lesions = []
        for les in sorted(self.lesions.values(), key=lambda x: (x.first or 0, x.id)):
            keys = [
                [f, *(les.keys[f].box or (None,) * 4), les.keys[f].source] for f in sorted(les.keys)
            ]
            lesions.append(
                {"id": les.id, "label": les.label, "first": les.first, "last": les.last,
                 "keys": keys}
            )  # fmt: skip
        return {
            "clip_id": self.clip_id,
            "lesions": lesions,
            "can_undo": self.can_undo,
            "can_redo": self.can_redo,
        }


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def csv_bytes(rows: list[dict], columns: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if r.get(c) is None else _cell(r.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if np.isfinite(v) else ""
    return str(v)


class AnnotationEditor:
    """A study's annotations opened for editing: per clip lesions on key frames, saved with
    every frame to ``annotations.csv`` and the key frames to the side file.

    Parameters
    ----------
    root : str or Path
        The study folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "manifest.csv").write_text("clip_id,patient_id,path\\nA,P1,A.mp4\\n")
    >>> _ = (root / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\\n")
    >>> ed = AnnotationEditor(root)
    >>> clip = ed.clip("A", n_frames=20, width=64, height=48)
    >>> lid = clip.draw(3, [10, 10, 20, 20]); _ = clip.draw(5, [12, 10, 22, 20], lid)
    >>> _ = ed.save()
    >>> print((root / "annotations.csv").read_text(), end="")
    clip_id,frame,lesion_id,x0,y0,x1,y1
    A,3,1,10,10,20,20
    A,4,1,11,10,21,20
    A,5,1,12,10,22,20
    >>> print((root / KEYFRAMES_FILE).read_text(), end="")
    clip_id,lesion_id,frame,x0,y0,x1,y1,outside,source
    A,1,3,10,10,20,20,0,drawn
    A,1,5,12,10,22,20,0,drawn
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.clips: dict[str, ClipAnnotation] = {}
        #: what was found while opening (key frames rebuilt from annotations.csv, ...)
        self.notes: list[str] = []
        self.last_backup: Path | None = None
        self._load()

    # ------------------------------------------------------------------ paths and state
    @property
    def annotations_path(self) -> Path:
        return self.root / "annotations.csv"

    @property
    def keyframes_path(self) -> Path:
        return self.root / KEYFRAMES_FILE

    def _fingerprint(self) -> tuple:
        return (_digest(self.annotations_path), _digest(self.keyframes_path))

    def _load(self) -> None:
        from usbkit.io.study import load_study

        study = load_study(self.root)
        self.manifest = study.manifest
        self.table = study.annotations.copy()
        self.keyframes = read_keyframes(self.keyframes_path, set(study.manifest["clip_id"]))
        self.opened = self._fingerprint()
        self.clips = {}

    def reload(self) -> None:
        """Read the files again from disk: every unsaved edit is dropped."""
        self.notes = []
        self._load()

    @property
    def changed_clips(self) -> list[str]:
        """The clips with edits not yet saved."""
        return [c for c, a in self.clips.items() if a.changed]

    @property
    def changed(self) -> bool:
        """Whether any edit is not yet saved."""
        return bool(self.changed_clips)

    def changed_on_disk(self) -> bool:
        """Whether annotations.csv or the key-frame file changed since they were opened (or
        last saved here)."""
        return self._fingerprint() != self.opened

    # ------------------------------------------------------------------ clips
    def clip(
        self,
        clip_id: str,
        n_frames: int | None = None,
        width: float | None = None,
        height: float | None = None,
    ) -> ClipAnnotation:
        """The clip's annotation for editing (made from the files on first use: the key
        frames of the side file where they still match annotations.csv, else key frames
        found in annotations.csv's boxes, source ``imported``)."""
        cid = str(clip_id)
        if cid in self.clips:
            c = self.clips[cid]
            c.n_frames = n_frames or c.n_frames
            c.width, c.height = width or c.width, height or c.height
            return c
        if cid not in set(self.manifest["clip_id"]):
            raise UsbkitError(
                f"clip id '{cid}' is not in the manifest",
                file=self.root / "manifest.csv",
                fix="Use one of the clip ids listed in manifest.csv",
            )
        c = ClipAnnotation(cid, n_frames, width, height)
        rows = self.table.loc[self.table["clip_id"] == cid]
        keys = self.keyframes.loc[self.keyframes["clip_id"] == cid]
        for lid, g in rows.groupby("lesion_id", sort=False):
            les = Lesion(str(lid))
            if "label" in g.columns:
                labels = g["label"].dropna()
                les.label = str(labels.iloc[0]) if len(labels) else None
            mine = keys.loc[keys["lesion_id"] == str(lid)]
            if len(mine):
                for r in mine.itertuples(index=False):
                    box = None if r.outside else tuple(float(getattr(r, k)) for k in BOX)
                    les.keys[int(r.frame)] = Key(box, str(r.source))
                if _same_boxes(les.boxes(), g):
                    c.lesions[les.id] = les
                    continue
                self.notes.append(
                    f"clip '{cid}', lesion '{lid}': annotations.csv was changed outside the "
                    "viewer since its key frames were saved, so its key frames were found "
                    "again in annotations.csv (source 'imported')"
                )
                les.keys = {}
            for f, b in keyframes_from_boxes(g["frame"].to_numpy(), g[BOX].to_numpy(float)):
                les.keys[f] = Key(None if b is None else tuple(b), "imported")
            c.lesions[les.id] = les
        for lid in sorted(set(keys["lesion_id"]) - set(rows["lesion_id"].astype(str))):
            self.notes.append(
                f"clip '{cid}', lesion '{lid}': the key-frame file has key frames of this "
                "lesion but annotations.csv has no box of it (the file of record), so they "
                "were left out"
            )
        self.clips[cid] = c
        return c

    # ------------------------------------------------------------------ saving
    def _rows(self) -> tuple[list[dict], list[dict]]:
        """All rows of annotations.csv and of the key-frame file as they will be saved."""
        table = self.table.loc[~self.table["clip_id"].isin(list(self.clips))]
        rows = table.to_dict("records")
        kept = self.keyframes.loc[~self.keyframes["clip_id"].isin(list(self.clips))]
        keys = kept.to_dict("records")
        for c in self.clips.values():
            rows += c.rows()
            keys += c.key_rows()
        rows.sort(key=lambda r: (str(r["clip_id"]), int(r["frame"]), str(r["lesion_id"])))
        keys.sort(key=lambda r: (str(r["clip_id"]), str(r["lesion_id"]), int(r["frame"])))
        return rows, keys

    def _columns(self, rows: list[dict]) -> list[str]:
        from usbkit.io.study import ANNOTATION_REQUIRED

        has_label = any(r.get("label") not in (None, "") and not pd.isna(r.get("label"))
                        for r in rows)  # fmt: skip
        return ANNOTATION_REQUIRED + (["label"] if has_label else [])

    def save(self, force: bool = False) -> Path:
        """Save every clip's lesions: ``annotations.csv`` (every frame in view of every
        lesion) and the key-frame file, each written atomically, after copying the previous
        ones to ``annotation_backups/``.

        Parameters
        ----------
        force : bool
            Save even over files changed on disk since they were opened (their content is
            kept in the backup folder).

        Returns
        -------
        Path
            The annotations.csv written.

        Raises
        ------
        UsbkitError
            When annotations.csv or the key-frame file changed on disk since they were opened
            (another window or person saved them): nothing is replaced, and the edits are
            written to a copy in ``annotation_backups/`` (named in the message).
        """
        rows, keys = self._rows()
        for r in rows:
            if pd.isna(r.get("label")):
                r["label"] = None
        ann_bytes = csv_bytes(rows, self._columns(rows))
        key_bytes = csv_bytes(keys, KEYFRAME_COLUMNS)
        if self.changed_on_disk() and not force:
            copy_path = self._write_copy("unsaved", ann_bytes, key_bytes)
            raise UsbkitError(
                "this file was changed on disk after the viewer opened it (saved from another "
                "window, or by another person), so your save was refused and the file was left "
                f"as it is. Your edits are still in the viewer, and a copy of them is in "
                f"{copy_path}",
                file=self.annotations_path,
                fix="To see the other changes, reload from disk (the viewer's 'reload' button, "
                "or reload() in Python; your unsaved edits are dropped, redo them from the "
                "copy), or, to replace the other version with yours, save with force "
                "(viewer.save(force=True) in Python; the other version is kept in the backup "
                "folder)",
            )
        self.last_backup = self._backup()
        # key frames first: a save cut off between the two leaves the old annotations.csv,
        # whose boxes no longer match the new key frames, and opening it again finds the key
        # frames in annotations.csv (the file of record)
        with atomic_path(self.keyframes_path) as tmp:
            tmp.write_bytes(key_bytes)
        with atomic_path(self.annotations_path) as tmp:
            write_annotation_bytes(tmp, ann_bytes)
        self._after_save(rows, keys)
        return self.annotations_path

    def _after_save(self, rows: list[dict], keys: list[dict]) -> None:
        from usbkit.io.study import empty_annotations

        self.opened = self._fingerprint()
        table = pd.DataFrame([{k: v for k, v in r.items() if k != "source"} for r in rows])
        self.table = table if len(table) else empty_annotations()
        self.keyframes = _keyframe_table(pd.DataFrame(keys, columns=KEYFRAME_COLUMNS))
        for c in self.clips.values():
            c.changed = False

    def _stamp(self) -> str:
        return datetime.now().strftime("%Y-%m-%d_%H%M%S")

    def _free(self, stem: str, suffix: str = ".csv") -> Path:
        folder = self.root / BACKUP_DIR
        folder.mkdir(exist_ok=True)
        p, k = folder / f"{stem}{suffix}", 1
        while p.exists():
            k += 1
            p = folder / f"{stem}-{k}{suffix}"
        return p

    def _backup(self) -> Path | None:
        """Copy the current annotations.csv (and key-frame file) to the backup folder."""
        if not self.annotations_path.exists():
            return None
        stamp = self._stamp()
        dest = self._free(f"annotations.{stamp}")
        with atomic_path(dest, overwrite=False) as tmp:
            shutil.copyfile(self.annotations_path, tmp)
        if self.keyframes_path.exists():
            kdest = self._free(f"annotation_keyframes.{stamp}")
            with atomic_path(kdest, overwrite=False) as tmp:
                shutil.copyfile(self.keyframes_path, tmp)
        return dest

    def _write_copy(self, what: str, ann_bytes: bytes, key_bytes: bytes) -> Path:
        stamp = self._stamp()
        dest = self._free(f"annotations.{what}.{stamp}")
        with atomic_path(dest, overwrite=False) as tmp:
            tmp.write_bytes(ann_bytes)
        kdest = self._free(f"annotation_keyframes.{what}.{stamp}")
        with atomic_path(kdest, overwrite=False) as tmp:
            tmp.write_bytes(key_bytes)
        return dest

    def provenance(self) -> dict[str, int]:
        """How many saved boxes came from where (see :func:`provenance_counts`)."""
        rows, keys = self._rows()
        return provenance_counts(pd.DataFrame(rows), pd.DataFrame(keys, columns=KEYFRAME_COLUMNS))


def write_annotation_bytes(path: Path, data: bytes) -> None:
    """Write the annotations table's bytes (a seam for the interrupted-save test)."""
    with open(path, "wb") as fh:
        fh.write(data)


def _same_boxes(boxes: dict, rows: pd.DataFrame, tol: float = 0.01) -> bool:
    """Whether key frames give exactly the lesion's rows of annotations.csv."""
    frames = rows["frame"].to_numpy(int)
    if set(boxes) != set(frames.tolist()):
        return False
    want = rows[BOX].to_numpy(float)
    got = np.array([boxes[int(f)][0] for f in frames], dtype=float).reshape(-1, 4)
    return bool(np.abs(want - got).max(initial=0) <= tol)


def _keyframe_table(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in ("clip_id", "lesion_id", "source"):
        df[c] = (
            df[c]
            .astype(object)
            .where(df[c].notna(), None)
            .map(lambda v: None if v is None else str(v))
        )
    df["frame"] = df["frame"].astype(np.int64)
    df["outside"] = df["outside"].fillna(0).astype(int)
    for c in BOX:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def read_keyframes(path: str | Path, clip_ids: set[str] | None = None) -> pd.DataFrame:
    """Read the key-frame file (an empty table when there is none).

    Rows that cannot be used are reported as a warning naming the row and left out; the
    lesions they belong to get their key frames from annotations.csv again.
    """
    from usbkit.io.ids import normalize_ids
    from usbkit.io.study import read_table, spreadsheet_row

    path = Path(path)
    empty = _keyframe_table(pd.DataFrame(columns=KEYFRAME_COLUMNS))
    if not path.exists():
        return empty
    raw = read_table(path, "key-frame")
    missing = [c for c in KEYFRAME_COLUMNS if c not in raw.columns]
    if missing:
        warn(
            f"the key-frame file lacks the column(s) {', '.join(missing)}, so it is not used",
            file=path,
            fix="Key frames are found again in annotations.csv; save from the viewer to write "
            "a new key-frame file",
        )
        return empty
    raw = raw[KEYFRAME_COLUMNS].copy()
    raw["clip_id"] = normalize_ids(raw["clip_id"])
    raw["lesion_id"] = normalize_ids(raw["lesion_id"])
    bad = []
    keep = np.ones(len(raw), bool)
    frame = pd.to_numeric(raw["frame"], errors="coerce")
    outside = pd.to_numeric(raw["outside"], errors="coerce")
    coords = raw[BOX].apply(pd.to_numeric, errors="coerce")
    for i in range(len(raw)):
        f, o = frame.iloc[i], outside.iloc[i]
        ok = (
            pd.notna(f) and float(f).is_integer() and f >= 0 and o in (0, 1)
            and pd.notna(raw["clip_id"].iloc[i]) and pd.notna(raw["lesion_id"].iloc[i])
            and raw["source"].iloc[i] in SOURCES
            and (clip_ids is None or raw["clip_id"].iloc[i] in clip_ids)
        )  # fmt: skip
        if ok and o == 0:
            b = coords.iloc[i].to_numpy(float)
            ok = bool(np.isfinite(b).all() and b[0] < b[2] and b[1] < b[3])
        if not ok:
            keep[i] = False
            bad.append(spreadsheet_row(i))
    if bad:
        warn(
            f"{len(bad)} row(s) of the key-frame file cannot be used (rows "
            f"{', '.join(map(str, bad[:5]))}{' ...' if len(bad) > 5 else ''}); their lesions' "
            "key frames are found again in annotations.csv",
            file=path,
        )
    df = raw.loc[keep].copy()
    df["frame"] = frame[keep].astype(np.int64)
    df["outside"] = outside[keep].astype(int)
    for c in BOX:
        df[c] = coords.loc[keep, c].astype(float)
    drop = df.groupby(["clip_id", "lesion_id"])["frame"].transform(lambda s: s.duplicated().any())
    return _keyframe_table(df.loc[~drop.astype(bool)].reset_index(drop=True))


def provenance_counts(annotations: pd.DataFrame, keyframes: pd.DataFrame) -> dict[str, int]:
    """How the boxes of ``annotations`` were made, by the key-frame file: per source
    (``drawn``, ``confirmed``, ``accepted``, ``imported``, ``interpolated``) the number of
    boxes; boxes of lesions without key frames count as ``unknown``.

    Examples
    --------
    >>> ann = pd.DataFrame({"clip_id": ["A"] * 3, "lesion_id": ["1"] * 3, "frame": [0, 1, 2]})
    >>> keys = pd.DataFrame({"clip_id": ["A", "A"], "lesion_id": ["1", "1"], "frame": [0, 2],
    ...                      "outside": [0, 0], "source": ["drawn", "accepted"]})
    >>> provenance_counts(ann, keys)["interpolated"]
    1
    """
    counts = {s: 0 for s in SOURCES} | {"unknown": 0}
    if annotations is None or not len(annotations):
        return counts
    ann = annotations[["clip_id", "lesion_id", "frame"]].astype({"frame": int})
    ann = ann.assign(clip_id=ann["clip_id"].astype(str), lesion_id=ann["lesion_id"].astype(str))
    k = keyframes.loc[keyframes["outside"].astype(int) == 0, ["clip_id", "lesion_id", "frame",
                                                               "source"]]  # fmt: skip
    k = k.assign(clip_id=k["clip_id"].astype(str), lesion_id=k["lesion_id"].astype(str),
                 frame=k["frame"].astype(int))  # fmt: skip
    m = ann.merge(k, on=["clip_id", "lesion_id", "frame"], how="left")
    keyed = set(map(tuple, k[["clip_id", "lesion_id"]].drop_duplicates().to_numpy()))
    has = np.array([(c, lid) in keyed for c, lid in zip(m["clip_id"], m["lesion_id"])], bool)
    src = m["source"].where(m["source"].notna(), "interpolated").where(has, "unknown")
    for s, n in src.value_counts().items():
        counts[str(s)] = counts.get(str(s), 0) + int(n)
    return counts


def describe_provenance(counts: dict[str, int]) -> str:
    """One sentence on how a study's ground truth was made, for a report or ``usbkit check``."""
    total = sum(counts.values())
    if not total:
        return "no lesion boxes"
    person = counts.get("drawn", 0) + counts.get("confirmed", 0)
    parts = [
        f"{person} drawn or confirmed by a person on key frames",
        f"{counts.get('accepted', 0)} proposed by a detector and accepted by a person",
        f"{counts.get('interpolated', 0)} interpolated between key frames",
    ]
    if counts.get("imported"):
        parts.append(f"{counts['imported']} key frames of imported boxes")
    if counts.get("unknown"):
        parts.append(f"{counts['unknown']} of unknown origin (no key-frame file entry)")
    return f"{total} lesion boxes: " + ", ".join(parts)


def ground_truth_line(study) -> str:
    """How a loaded study's boxes were made, in one sentence (:func:`describe_provenance`)."""
    keys = read_keyframes(study.root / KEYFRAMES_FILE, set(study.manifest["clip_id"]))
    return describe_provenance(provenance_counts(study.annotations, keys))
