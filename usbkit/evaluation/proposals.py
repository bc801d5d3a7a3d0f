"""Draft lesions from a detector's marks, for the viewer's annotate mode to accept or reject.

A clip's detections at or above a threshold are linked into tracks by the evaluation's own
linker (:func:`usbkit.evaluation.froc.link_tracks`, docs/metrics.md#fp-tracks-the-linker);
each track long enough is a *draft lesion*: its boxes on the frames it holds, its best score,
and a ``key`` that stays the same when the threshold moves (its best mark's frame and box), so
a draft the annotator rejected stays rejected. Drafts that lie on a lesion already annotated
(most of their boxes hit it by IoU) are left out: they are what the annotator has already.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usbkit.evaluation.froc import LINK_IOU, MAX_GAP, link_tracks

BOX = ["x0", "y0", "x1", "y1"]


@dataclass
class Draft:
    """A draft lesion: one linked track of a detector's marks (original pixels).

    Attributes
    ----------
    key : str
        Stable name (best mark's frame and box): what a rejection remembers.
    frames : ndarray of int
    boxes : ndarray, shape (n, 4)
    scores : ndarray of float
    score : float
        The track's best score.
    """

    key: str
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    score: float

    def to_dict(self, offset=(0.0, 0.0)) -> dict:
        """Plain data, boxes shifted by ``-offset`` (to crop pixels for the viewer)."""
        dx, dy = offset
        shift = np.array([dx, dy, dx, dy])
        return {
            "key": self.key,
            "score": round(float(self.score), 4),
            "frames": self.frames.astype(int).tolist(),
            "boxes": [[round(float(v), 1) for v in b] for b in self.boxes - shift],
            "scores": [round(float(v), 3) for v in self.scores],
        }


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of paired boxes (n, 4) and (n, 4)."""
    x0 = np.maximum(a[:, 0], b[:, 0])
    y0 = np.maximum(a[:, 1], b[:, 1])
    x1 = np.minimum(a[:, 2], b[:, 2])
    y1 = np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def propose_drafts(
    detections: pd.DataFrame,
    threshold: float = 0.5,
    min_length: int = 3,
    lesions: dict[str, dict[int, list[float]]] | None = None,
    rejected: set[str] | None = None,
    max_gap: int = MAX_GAP,
    min_iou: float = LINK_IOU,
) -> list[Draft]:
    """Draft lesions of one clip from its detections.

    Parameters
    ----------
    detections : DataFrame
        ``frame, score, x0, y0, x1, y1`` of one clip (original pixels).
    threshold : float
        Marks at or above it are linked.
    min_length : int
        Tracks of fewer marks are not proposed (a mass persists over frames).
    lesions : dict, optional
        The lesions annotated already, ``{lesion_id: {frame: box}}``: a draft whose boxes
        mostly (over half of the frames they share) overlap one of them with IoU >= 0.3 is
        left out.
    rejected : set of str, optional
        Keys of drafts the annotator rejected (left out).
    max_gap, min_iou : int, float
        The linker's settings.

    Returns
    -------
    list of Draft
        By first frame.

    Examples
    --------
    >>> det = pd.DataFrame({"frame": [0, 1, 2, 3, 5], "score": [0.9, 0.8, 0.7, 0.6, 0.2],
    ...                     "x0": 10.0, "y0": 10.0, "x1": 30.0, "y1": 30.0})
    >>> [d.frames.tolist() for d in propose_drafts(det, threshold=0.5)]
    [[0, 1, 2, 3]]
    >>> propose_drafts(det, threshold=0.5, lesions={"1": {0: [10, 10, 30, 30]}})
    []
    """
    d = detections.loc[detections["score"] >= threshold]
    if d.empty:
        return []
    frames = d["frame"].to_numpy(np.int64)
    scores = d["score"].to_numpy(float)
    boxes = d[BOX].to_numpy(float)
    tid = link_tracks(frames, scores, boxes, max_gap=max_gap, min_iou=min_iou)
    drafts = []
    for t in np.unique(tid):
        sel = np.flatnonzero(tid == t)
        if len(sel) < min_length:
            continue
        sel = sel[np.argsort(frames[sel], kind="stable")]
        best = sel[np.argmax(scores[sel])]
        key = f"{int(frames[best])}:" + ",".join(f"{v:.0f}" for v in boxes[best])
        if rejected and key in rejected:
            continue
        draft = Draft(key, frames[sel], boxes[sel], scores[sel], float(scores[sel].max()))
        if lesions and _covered(draft, lesions):
            continue
        drafts.append(draft)
    drafts.sort(key=lambda x: (int(x.frames[0]), -x.score))
    return drafts


def _covered(draft: Draft, lesions: dict[str, dict[int, list[float]]]) -> bool:
    for boxes in lesions.values():
        shared = [i for i, f in enumerate(draft.frames) if int(f) in boxes]
        if not shared:
            continue
        a = draft.boxes[shared]
        b = np.array([boxes[int(draft.frames[i])] for i in shared], dtype=float)
        if (_iou(a, b) >= 0.3).sum() * 2 > len(shared):
            return True
    return False
