"""The viewer's annotate mode, kernel side: edits from the browser applied to the study's
annotations, the detector's draft lesions, saving.

The browser (``assets/viewer.js``) draws, drags and scrubs on its own and sends each finished
edit as a message (``{"op": "draw", "frame": 12, "box": [...], "lesion": "1"}``); the
:class:`AnnotateSession` applies it to the study's :class:`~usbkit.io.annotation_edit.AnnotationEditor`
(which owns the state, the undo history and the saving) and answers with the clip's lesions
as data (:meth:`AnnotateSession.payload`). The browser works in the pixels of the cropped
frame it shows; the session turns them into original-frame pixels, so the saved boxes do not
depend on the crop or the display size.

Operations (``op``): ``draw`` (``frame, box, lesion`` or null for a new lesion), ``set``
(``lesion, frame, box``: move or resize, the frame becomes a key frame), ``confirm``
(``lesion, frame``), ``delete_key`` (``lesion, frame``), ``delete_lesion`` (``lesion``),
``end`` (``lesion, frame``), ``label`` (``lesion, label``), ``rename`` (``lesion, new``),
``propose`` (``threshold``; the detector's drafts, shown until ``hide_drafts``),
``accept`` / ``reject`` (``key``: a draft), ``undo``, ``redo``, ``save`` (``force``), ``reload``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.evaluation.proposals import propose_drafts
from usbkit.io.annotation_edit import AnnotationEditor, describe_provenance

BOX = ["x0", "y0", "x1", "y1"]


def detections_of_clip(checkpoint: str | Path, clip, device: str = "cpu") -> pd.DataFrame:
    """Run a detector checkpoint (a run folder, a ``.pt`` file or ``pretrained:NAME``) over
    one opened clip: its detections, in original-frame pixels."""
    from usbkit.models.detect import detect_clip, load_checkpoint, pick_device

    dev = pick_device(device)
    model = load_checkpoint(checkpoint, dev)
    rows = []
    for f, boxes, scores in detect_clip(model, clip, device=dev):
        for b, s in zip(boxes, scores):
            rows.append((f, float(s), *map(float, b[:4])))
    return pd.DataFrame(rows, columns=["frame", "score", *BOX])


class AnnotateSession:
    """The annotate mode's state for one study: which clip is open, the drafts shown.

    Parameters
    ----------
    study_root : str or Path
        The study folder (its annotations.csv is what is edited and saved).
    propose : DataFrame or str, optional
        Where draft lesions come from: a detections table (``clip_id, frame, score, x0, y0,
        x1, y1``), or a checkpoint (run folder, ``.pt`` file or ``pretrained:NAME``) run on
        each clip when its drafts are first asked for.
    threshold : float
        The drafts' starting score threshold.
    min_length : int
        A draft is a track of at least this many marks.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, pandas as pd
    >>> from usbkit.io.encode import write_video
    >>> from usbkit.io.study import load_study
    >>> from usbkit.viewer.clipview import ClipView
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_video(np.full((8, 48, 64), 90, np.uint8), root / "A.mp4", fps=10)
    >>> _ = (root / "manifest.csv").write_text("clip_id,patient_id,path\\nA,P1,A.mp4\\n")
    >>> _ = (root / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\\n")
    >>> det = pd.DataFrame({"clip_id": "A", "frame": range(8), "score": 0.9,
    ...                     "x0": 10.0, "y0": 10.0, "x1": 30.0, "y1": 30.0})
    >>> s = AnnotateSession(root, propose=det)
    >>> _ = s.open(ClipView(load_study(root), "A", {}))
    >>> p = s.handle({"op": "propose", "threshold": 0.5})
    >>> len(p["drafts"]), p["drafts"][0]["frames"][-1]
    (1, 7)
    >>> p = s.handle({"op": "accept", "key": p["drafts"][0]["key"]})
    >>> [(l["id"], l["first"], l["last"]) for l in p["lesions"]], p["drafts"]
    ([('1', 0, 7)], [])
    >>> _ = s.handle({"op": "save"})
    >>> len(load_study(root).boxes("A"))
    8
    """

    def __init__(
        self,
        study_root: str | Path,
        propose: pd.DataFrame | str | Path | None = None,
        threshold: float = 0.5,
        min_length: int = 3,
    ):
        self.root = Path(study_root)
        self.editor = AnnotationEditor(self.root)
        self.propose_source = propose
        self.threshold = float(threshold)
        self.min_length = int(min_length)
        self.proposing = False
        self.view = None
        self.clip = None
        self._detections: dict[str, pd.DataFrame] = {}
        self._drafts: list = []
        self.version = 0

    @property
    def can_propose(self) -> bool:
        return self.propose_source is not None

    def source_label(self) -> str:
        """What the drafts come from, in words."""
        src = self.propose_source
        if src is None:
            return ""
        if isinstance(src, pd.DataFrame):
            return "the detections given"
        return f"the detector {src}"

    # ------------------------------------------------------------------ clips
    def open(self, view) -> dict:
        """Open a clip (a :class:`~usbkit.viewer.clipview.ClipView`) for editing."""
        self.view = view
        h, w = view.clip.original_size
        self.clip = self.editor.clip(view.clip_id, n_frames=view.n, width=w, height=h)
        self.offset = np.asarray(view.clip.offset[:2], dtype=float)
        self._drafts = []
        note = " ".join(self.editor.notes)
        self.editor.notes = []
        return self.payload(note)

    def _detections_of(self) -> pd.DataFrame:
        cid = self.clip.clip_id
        if cid not in self._detections:
            src = self.propose_source
            if isinstance(src, pd.DataFrame):
                d = src.loc[src["clip_id"].astype(str) == cid]
            else:
                d = detections_of_clip(src, self.view.clip)
            self._detections[cid] = d[["frame", "score", *BOX]].reset_index(drop=True)
        return self._detections[cid]

    def drafts(self) -> list:
        """The drafts shown now (rejected ones and those on annotated lesions left out)."""
        if not (self.proposing and self.can_propose and self.clip is not None):
            return []
        lesions = {
            lid: {f: b for f, (b, _) in les.boxes().items()}
            for lid, les in self.clip.lesions.items()
        }
        self._drafts = propose_drafts(
            self._detections_of(),
            self.threshold,
            self.min_length,
            lesions=lesions,
            rejected=self.clip.rejected,
        )
        return self._drafts

    # ------------------------------------------------------------------ coordinates
    def _to_original(self, box) -> list[float]:
        dx, dy = self.offset
        b = [float(v) for v in box]
        return [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy]

    def payload(self, message: str = "", error: bool = False) -> dict:
        """The open clip's lesions and drafts for the browser (crop pixels)."""
        self.version += 1
        if self.clip is None:
            return {"version": self.version, "lesions": [], "drafts": []}
        dx, dy = self.offset
        state = self.clip.state()
        for les in state["lesions"]:
            les["keys"] = [
                [k[0]] + ([float(round(k[1] - dx, 2)), float(round(k[2] - dy, 2)), float(round(k[3] - dx, 2)),
                           float(round(k[4] - dy, 2))] if k[1] is not None else [None] * 4) + [k[5]]
                for k in les["keys"]
            ]  # fmt: skip
        drafts = [d.to_dict((dx, dy)) for d in self.drafts()]
        return {
            **state,
            "version": self.version,
            "drafts": drafts,
            "proposing": self.proposing,
            "can_propose": self.can_propose,
            "propose_source": self.source_label(),
            "threshold": self.threshold,
            "dirty": self.editor.changed,
            "clip_dirty": self.clip.changed,
            "changed_clips": self.editor.changed_clips,
            "message": message,
            "error": bool(error),
        }

    # ------------------------------------------------------------------ edits
    def handle(self, msg: dict) -> dict:
        """Apply one edit message from the browser; return the new :meth:`payload` (with a
        message in plain words; an error message when the edit was refused)."""
        before = set(self.clip.lesions) if self.clip is not None else set()
        try:
            text = self._apply(msg)
        except UsbkitError as exc:
            return self.payload(str(exc), error=True)
        out = self.payload(text or "")
        new = sorted(set(self.clip.lesions) - before) if self.clip is not None else []
        out["touched"] = new[0] if new else msg.get("lesion")
        out["op"] = msg.get("op")
        return out

    def _draft(self, key: str):
        for d in self._drafts or self.drafts():
            if d.key == key:
                return d
        raise UsbkitError("this draft is no longer proposed (the threshold or the lesions changed)")

    def _apply(self, msg: dict) -> str | None:
        op = msg.get("op")
        c = self.clip
        if c is None:
            raise UsbkitError("no clip is open")
        if op == "draw":
            lid = c.draw(msg["frame"], self._to_original(msg["box"]), msg.get("lesion"))
            return f"lesion {lid}: key frame {int(msg['frame'])}"
        if op == "set":
            c.set_box(msg["lesion"], msg["frame"], self._to_original(msg["box"]))
            return f"lesion {msg['lesion']}: key frame {int(msg['frame'])}"
        if op == "confirm":
            if c.confirm(msg["lesion"], msg["frame"]):
                return f"lesion {msg['lesion']}: box on frame {int(msg['frame'])} confirmed"
            return "nothing to confirm here (not in view, or already a key frame)"
        if op == "delete_key":
            if c.delete_key(msg["lesion"], msg["frame"]):
                return f"lesion {msg['lesion']}: key frame {int(msg['frame'])} removed"
            return f"frame {int(msg['frame'])} is not a key frame of lesion {msg['lesion']}"
        if op == "delete_lesion":
            c.delete_lesion(msg["lesion"])
            return f"lesion {msg['lesion']} deleted (undo brings it back)"
        if op == "end":
            c.end(msg["lesion"], msg["frame"])
            return f"lesion {msg['lesion']} ends: out of view from frame {int(msg['frame'])} on"
        if op == "label":
            c.set_label(msg["lesion"], msg.get("label"))
            return f"lesion {msg['lesion']}: pathology {msg.get('label') or 'not given'}"
        if op == "rename":
            c.rename(msg["lesion"], msg["new"])
            return f"lesion {msg['lesion']} is now lesion {msg['new']}"
        if op == "undo":
            return "undone" if c.undo() else "nothing to undo"
        if op == "redo":
            return "redone" if c.redo() else "nothing to redo"
        if op == "propose":
            if not self.can_propose:
                raise UsbkitError(
                    "no detections to propose from",
                    fix="Open the viewer with propose= a detections table or a checkpoint, for "
                    "example Scrubber(study, {}, annotate=True, propose='pretrained:sequence')",
                )
            self.threshold = float(msg.get("threshold", self.threshold))
            self.proposing = True
            n = len(self.drafts())
            return (
                f"{n} draft lesion(s) from {self.source_label()} at score >= {self.threshold:.2f}"
                ": accept (A), correct after accepting, or reject (X) each"
            )
        if op == "hide_drafts":
            self.proposing = False
            return "drafts hidden"
        if op == "accept":
            d = self._draft(msg["key"])
            lid = c.accept_draft(d.frames, d.boxes)
            return (
                f"draft accepted as lesion {lid} (frames {int(d.frames[0])}-{int(d.frames[-1])}, "
                f"{len(c.lesions[lid].box_frames())} key frames): check and correct its boxes"
            )
        if op == "reject":
            c.reject_draft(self._draft(msg["key"]).key)
            return "draft rejected"
        if op == "save":
            path = self.editor.save(force=bool(msg.get("force")))
            how = describe_provenance(self.editor.provenance())
            backup = self.editor.last_backup
            return (
                f"saved {path}"
                + (
                    f" (the previous version is kept as {backup.name} in {backup.parent.name}/)"
                    if backup
                    else ""
                )  # fmt: skip
                + f". Ground truth: {how}."
            )
        if op == "reload":
            cid = self.clip.clip_id
            self.editor.reload()
            self.clip = None
            self.open(self.view)
            return f"reloaded annotations.csv from disk (clip {cid})"
        raise UsbkitError(f"unknown annotate operation '{op}'")
