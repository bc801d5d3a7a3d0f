"""The hit rule: when a detection counts as landing on a ground-truth box.

This is the one implementation of the rule (docs/metrics.md#hit); the evaluation, the
gallery of the report and the scrubber all call it, so a mark is labelled true or false
exactly as the study's numbers count it, under the run's hit rule (``center`` or ``iou:T``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usbkit.errors import UsbkitError

BOX = ["x0", "y0", "x1", "y1"]


@dataclass(frozen=True)
class HitRule:
    """A parsed hit rule.

    Attributes
    ----------
    mode : {'center', 'iou'}
        ``center``: the detection's centre lies inside the box, edges included.
        ``iou``: the intersection over union reaches ``threshold``.
    threshold : float
        The IoU threshold (0 for ``center``).
    """

    mode: str
    threshold: float = 0.0

    def __str__(self) -> str:
        return "center" if self.mode == "center" else f"iou:{self.threshold:g}"


def parse_hit(hit: str | HitRule) -> HitRule:
    """``'center'`` or ``'iou:T'`` (0 < T <= 1) -> :class:`HitRule`.

    Examples
    --------
    >>> parse_hit("iou:0.3")
    HitRule(mode='iou', threshold=0.3)
    """
    if isinstance(hit, HitRule):
        return hit
    text = str(hit).strip()
    if text == "center":
        return HitRule("center")
    if text.startswith("iou:"):
        try:
            t = float(text[4:])
        except ValueError:
            t = -1.0
        if 0 < t <= 1:
            return HitRule("iou", t)
    raise UsbkitError(
        f"unknown hit rule '{hit}'", fix="Use --hit center or --hit iou:T with 0 < T <= 1"
    )


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise IoU of box arrays ``(..., 4)`` (broadcasting)."""
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def hits(det_boxes: np.ndarray, gt_boxes: np.ndarray, hit: str | HitRule = "center") -> np.ndarray:
    """Elementwise hit test of detection boxes against ground-truth boxes (broadcasting).

    Examples
    --------
    >>> d = np.array([[0.0, 0.0, 10.0, 10.0]])  # centre (5, 5)
    >>> g = np.array([[4.0, 4.0, 30.0, 30.0]])  # contains the centre, IoU 36 / 740
    >>> bool(hits(d, g, "center")[0]), bool(hits(d, g, "iou:0.3")[0])
    (True, False)
    """
    rule = parse_hit(hit)
    det_boxes = np.asarray(det_boxes, float)
    gt_boxes = np.asarray(gt_boxes, float)
    if rule.mode == "center":
        cx = (det_boxes[..., 0] + det_boxes[..., 2]) / 2
        cy = (det_boxes[..., 1] + det_boxes[..., 3]) / 2
        return (
            (cx >= gt_boxes[..., 0])
            & (cx <= gt_boxes[..., 2])
            & (cy >= gt_boxes[..., 1])
            & (cy <= gt_boxes[..., 3])
        )
    return iou(det_boxes, gt_boxes) >= rule.threshold


def match_pairs(gt: pd.DataFrame, det: pd.DataFrame, hit: str | HitRule = "center") -> pd.DataFrame:
    """All (detection, ground-truth box) pairs on the same clip and frame that hit.

    Parameters
    ----------
    gt : DataFrame
        Ground-truth boxes: ``clip_id, frame, x0, y0, x1, y1``.
    det : DataFrame
        Detections: ``clip_id, frame, score, x0, y0, x1, y1``.
    hit : str or HitRule
        The hit rule.

    Returns
    -------
    DataFrame
        ``det_index, gt_index, score``: positions (0-based, in the given row order) of each
        detection and box that hit, with the detection's score.
    """
    cols = ["clip_id", "frame"]
    d = det[cols + ["score", *BOX]].reset_index(drop=True)
    g = gt[cols + BOX].reset_index(drop=True)
    pairs = d.assign(det_index=np.arange(len(d))).merge(
        g.assign(gt_index=np.arange(len(g))), on=cols, suffixes=("_d", "_g")
    )
    if pairs.empty:
        return pd.DataFrame(
            {
                "det_index": pd.Series(dtype=np.int64),
                "gt_index": pd.Series(dtype=np.int64),
                "score": pd.Series(dtype=float),
            }
        )
    ok = hits(
        pairs[[c + "_d" for c in BOX]].to_numpy(float),
        pairs[[c + "_g" for c in BOX]].to_numpy(float),
        hit,
    )
    return pairs.loc[ok, ["det_index", "gt_index", "score"]].reset_index(drop=True)


@dataclass
class Matches:
    """Which detections hit a ground-truth box and how well each box is rated.

    Attributes
    ----------
    pairs : DataFrame
        ``det_index, gt_index, score`` of every hitting pair (see :func:`match_pairs`).
    det_hit : ndarray of bool, shape (n_detections,)
        The detection hits at least one ground-truth box of its frame (a true mark).
    box_rating : ndarray of float, shape (n_boxes,)
        The highest score of a detection hitting each box; ``-inf`` when none does.
    """

    pairs: pd.DataFrame
    det_hit: np.ndarray
    box_rating: np.ndarray


def match(gt: pd.DataFrame, det: pd.DataFrame, hit: str | HitRule = "center") -> Matches:
    """Match detections to ground-truth boxes under a hit rule.

    Examples
    --------
    >>> gt = pd.DataFrame({"clip_id": ["A"], "frame": [0], "x0": [4.0], "y0": [4.0],
    ...                    "x1": [30.0], "y1": [30.0]})
    >>> det = pd.DataFrame({"clip_id": ["A", "A"], "frame": [0, 0], "score": [0.9, 0.4],
    ...                     "x0": [0.0, 40.0], "y0": [0.0, 40.0], "x1": [10.0, 50.0],
    ...                     "y1": [10.0, 50.0]})
    >>> m = match(gt, det, "center")
    >>> m.det_hit.tolist(), m.box_rating.tolist()
    ([True, False], [0.9])
    """
    pairs = match_pairs(gt, det, hit)
    det_hit = np.zeros(len(det), dtype=bool)
    det_hit[pairs["det_index"].to_numpy(np.int64)] = True
    box_rating = np.full(len(gt), -np.inf)
    if len(pairs):
        best = pairs.groupby("gt_index")["score"].max()
        box_rating[best.index.to_numpy(np.int64)] = best.to_numpy(float)
    return Matches(pairs=pairs, det_hit=det_hit, box_rating=box_rating)
