"""The study's metrics, exactly as docs/metrics.md defines them.

Lesion ratings, the FP-track linker, the scan-level and frame-level FROC curves, sensitivity
at an FP rate (operating point and linear interpolation), the JAFROC figure of merit (AFROC1
form) and frame-level AP50. The hit rule itself lives in :mod:`usbkit.evaluation.matching`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usbkit.evaluation.matching import HitRule, iou, match

MAX_GAP = 5
LINK_IOU = 0.3
#: Clips with at most this many FP detections get their pairwise IoUs in one computation.
PAIR_LIMIT = 1500


# --------------------------------------------------------------------------- linker
def link_tracks(
    frames: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    max_gap: int = MAX_GAP,
    min_iou: float = LINK_IOU,
) -> np.ndarray:
    """Link one clip's false-positive detections into tracks.

    Frames in increasing order; inside a frame, detections by decreasing score (ties: input
    order); a detection joins the live track whose last box is at most ``max_gap`` frames
    earlier and has the highest IoU >= ``min_iou`` with it (ties: the track created first); a
    track takes at most one detection per frame; otherwise the detection starts a new track.

    Parameters
    ----------
    frames, scores : ndarray, shape (n,)
    boxes : ndarray, shape (n, 4)

    Returns
    -------
    ndarray of int, shape (n,)
        The track id of each detection (tracks numbered in creation order).
    """
    n = len(frames)
    track_of = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return track_of
    frames = np.asarray(frames, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=float)
    order = np.lexsort((np.arange(n), -np.asarray(scores, float), frames))
    # The IoU with a track is the IoU with its last detection: for a clip of moderate size
    # every pair is computed at once and the greedy loop below runs on plain Python lists.
    pairs = iou(boxes[:, None, :], boxes[None, :, :]).tolist() if n <= PAIR_LIMIT else None
    fl = frames.tolist()
    last_det: list[int] = []
    last_frame: list[int] = []
    live: list[int] = []  # live track ids, in creation order
    current = None
    for i in order.tolist():
        f = fl[i]
        if f != current:
            current = f
            live = [t for t in live if last_frame[t] >= f - max_gap]
        if pairs is not None:
            row = pairs[i]
        elif live:
            cand = np.asarray([last_det[t] for t in live])
            vals = iou(boxes[i][None], boxes[cand]).tolist()
            row = dict(zip(cand.tolist(), vals))
        best, best_t = -1.0, -1
        for t in live:
            if last_frame[t] == f:  # a track takes at most one detection per frame
                continue
            v = row[last_det[t]]
            if v >= min_iou and v > best:  # strict: ties go to the track created first
                best, best_t = v, t
        if best_t >= 0:
            track_of[i] = best_t
            last_det[best_t] = i
            last_frame[best_t] = f
        else:
            track_of[i] = len(last_det)
            live.append(len(last_det))
            last_det.append(i)
            last_frame.append(f)
    return track_of


# ----------------------------------------------------------------------- scan level
@dataclass
class ScanRatings:
    """Per-lesion ratings and per-clip FP-track scores of one model.

    Attributes
    ----------
    lesions : DataFrame
        ``clip_id, lesion_id, patient_id, rating`` (``-inf`` when never hit).
    tracks : DataFrame
        ``clip_id, patient_id, track, score``: one row per FP track.
    clips : DataFrame
        ``clip_id, patient_id``: every clip evaluated, lesion-free ones included.
    frame_boxes : DataFrame
        ``clip_id, frame, lesion_id, rating``: frame-level units.
    frame_fp_scores : ndarray
        Scores of detections that hit no box (frame-level FPs).
    n_frames : int
        Number of frames evaluated (frame-level normalisation).
    """

    lesions: pd.DataFrame
    tracks: pd.DataFrame
    clips: pd.DataFrame
    frame_boxes: pd.DataFrame
    frame_fp_scores: np.ndarray
    n_frames: int


def rate_scans(
    gt: pd.DataFrame,
    det: pd.DataFrame,
    clips: pd.DataFrame,
    n_frames: int,
    hit: str | HitRule = "center",
) -> ScanRatings:
    """Lesion ratings, FP tracks and frame-level units of one model's detections.

    Parameters
    ----------
    gt : DataFrame
        Annotations of the evaluated clips.
    det : DataFrame
        Detections of the evaluated clips.
    clips : DataFrame
        ``clip_id, patient_id`` of every evaluated clip.
    n_frames : int
        Total frames of the evaluated clips.
    hit : str
        ``'center'`` or ``'iou:T'``.
    """
    gt = gt.reset_index(drop=True)
    det = det.reset_index(drop=True).assign(det_index=lambda d: np.arange(len(d)))
    m = match(gt, det, hit)
    # Frame-level: each box rated by the best detection hitting it.
    frame_boxes = gt[["clip_id", "frame", "lesion_id"]].assign(rating=m.box_rating)
    lesions = frame_boxes.groupby(["clip_id", "lesion_id"], sort=True)["rating"].max().reset_index()
    pid = clips.set_index("clip_id")["patient_id"]
    lesions["patient_id"] = lesions["clip_id"].map(pid).to_numpy()
    fps = det.loc[~m.det_hit]
    rows = []
    for clip_id, g in fps.groupby("clip_id", sort=True):
        g = g.sort_values("det_index")
        tid = link_tracks(
            g["frame"].to_numpy(),
            g["score"].to_numpy(float),
            g[["x0", "y0", "x1", "y1"]].to_numpy(float),
        )
        best = pd.Series(g["score"].to_numpy(float)).groupby(tid).max()
        rows.append(
            pd.DataFrame({"clip_id": clip_id, "track": best.index, "score": best.to_numpy()})
        )
    tracks = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(
            {
                "clip_id": pd.Series(dtype=object),
                "track": pd.Series(dtype=int),
                "score": pd.Series(dtype=float),
            }
        )
    )
    tracks["patient_id"] = tracks["clip_id"].map(pid).to_numpy()
    return ScanRatings(
        lesions=lesions[["clip_id", "lesion_id", "patient_id", "rating"]],
        tracks=tracks[["clip_id", "patient_id", "track", "score"]],
        clips=clips[["clip_id", "patient_id"]].reset_index(drop=True),
        frame_boxes=frame_boxes,
        frame_fp_scores=fps["score"].to_numpy(float),
        n_frames=int(n_frames),
    )


@dataclass
class Froc:
    """A FROC curve: one point per threshold, thresholds descending, starting at (0, 0)."""

    threshold: np.ndarray  # first is +inf
    fp_rate: np.ndarray
    sensitivity: np.ndarray

    def to_dict(self, rate_key: str = "fp_per_scan") -> dict:
        """The curve as JSON lists (``threshold`` null for the starting point at infinity)."""
        thr = [None if not np.isfinite(t) else float(t) for t in self.threshold]
        return {
            "threshold": thr,
            rate_key: self.fp_rate.tolist(),
            "sensitivity": self.sensitivity.tolist(),
        }

    def corners(self) -> Froc:
        """The same step curve with only its corners: for each sensitivity level the point
        of lowest FP rate, and the last point. Lossless for the curve's shape (sensitivity
        at any FP rate is unchanged); used to store long frame-level curves compactly.

        Examples
        --------
        >>> c = froc_curve(np.array([0.9, 0.5]), np.array([0.8, 0.7, 0.6]), 2, 1)
        >>> c.fp_rate.tolist(), c.sensitivity.tolist()
        ([0.0, 0.0, 1.0, 2.0, 3.0, 3.0], [0.0, 0.5, 0.5, 0.5, 0.5, 1.0])
        >>> k = c.corners()
        >>> k.fp_rate.tolist(), k.sensitivity.tolist()
        ([0.0, 0.0, 3.0], [0.0, 0.5, 1.0])
        """
        n = len(self.fp_rate)
        if n <= 2:
            return self
        # last point of each run of equal FP rate (its highest sensitivity) ...
        last_of_rate = np.r_[self.fp_rate[1:] != self.fp_rate[:-1], True]
        idx = np.flatnonzero(last_of_rate)
        # ... then the first of each run of equal sensitivity, and the final point
        sens = self.sensitivity[idx]
        first_of_level = np.r_[True, sens[1:] != sens[:-1]]
        first_of_level[-1] = True
        keep = np.union1d([0], idx[first_of_level])
        return Froc(self.threshold[keep], self.fp_rate[keep], self.sensitivity[keep])


def froc_curve(ratings: np.ndarray, fp_scores: np.ndarray, n_units: int, n_norm: int) -> Froc:
    """FROC from lesion ratings and FP-mark scores.

    sensitivity(t) = #{ratings >= t} / n_units; FP rate(t) = #{fp_scores >= t} / n_norm;
    thresholds are the distinct finite ratings and FP scores; the curve starts at (0, 0).
    """
    ratings = np.asarray(ratings, float)
    fp_scores = np.asarray(fp_scores, float)
    thr = np.unique(np.concatenate([ratings[np.isfinite(ratings)], fp_scores]))[::-1]
    r_sorted = np.sort(ratings)
    f_sorted = np.sort(fp_scores)
    tp = len(r_sorted) - np.searchsorted(r_sorted, thr, side="left")
    fp = len(f_sorted) - np.searchsorted(f_sorted, thr, side="left")
    sens = tp / n_units if n_units else np.zeros(len(thr))
    rate = fp / n_norm if n_norm else np.zeros(len(thr))
    return Froc(
        threshold=np.concatenate([[np.inf], thr]),
        fp_rate=np.concatenate([[0.0], rate]),
        sensitivity=np.concatenate([[0.0], sens]),
    )


def operating_point(curve: Froc, x: float) -> tuple[float, float, float]:
    """Sensitivity at FP rate ``x``: the highest sensitivity over thresholds with FP rate <= x.

    Returns ``(sensitivity, threshold, fp_rate_at_threshold)``; the threshold is the lowest
    qualifying one (``inf`` when only the starting point qualifies).
    """
    ok = curve.fp_rate <= x + 1e-12
    idx = int(np.flatnonzero(ok)[-1])  # fp non-decreasing as the threshold falls
    return float(curve.sensitivity[idx]), float(curve.threshold[idx]), float(curve.fp_rate[idx])


def interpolated_sensitivity(curve: Froc, x: float) -> float:
    """Linear interpolation of the curve at ``x`` (MONAI / nnDetection / LUNA16 style).

    The curve is taken as FP rate ascending with the highest sensitivity at each FP rate; the
    last sensitivity is held beyond the last point.
    """
    fp = pd.Series(curve.sensitivity).groupby(curve.fp_rate).max()
    return float(np.interp(x, fp.index.to_numpy(float), fp.to_numpy(float)))


def scan_froc(r: ScanRatings) -> Froc:
    """Scan-level FROC of a model (FP tracks per clip, all clips counted)."""
    return froc_curve(
        r.lesions["rating"].to_numpy(), r.tracks["score"].to_numpy(), len(r.lesions), len(r.clips)
    )


def frame_froc(r: ScanRatings) -> Froc:
    """Frame-level FROC (units lesion boxes, each unmatched detection an FP, per frame)."""
    return froc_curve(
        r.frame_boxes["rating"].to_numpy(), r.frame_fp_scores, len(r.frame_boxes), r.n_frames
    )


# --------------------------------------------------------------------------- JAFROC
def psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The AFROC kernel: 1 if y > x, 0.5 if y == x, else 0."""
    return np.where(y > x, 1.0, np.where(y == x, 0.5, 0.0))


def jafroc_fom(r: ScanRatings) -> float:
    """JAFROC figure of merit (AFROC1): mean over clips k and lesions l of psi(F_k, s_l).

    F_k is the highest FP-track score of clip k (-inf when it has none).
    """
    F = highest_fp_per_clip(r)
    s = r.lesions["rating"].to_numpy(float)
    if len(s) == 0 or len(F) == 0:
        return float("nan")
    Fs = np.sort(F)
    below = np.searchsorted(Fs, s, side="left")
    equal = np.searchsorted(Fs, s, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(F) * len(s)))


def highest_fp_per_clip(r: ScanRatings) -> np.ndarray:
    """F_k for every evaluated clip, in the order of ``r.clips``."""
    top = r.tracks.groupby("clip_id")["score"].max()
    return r.clips["clip_id"].map(top).fillna(-np.inf).to_numpy(float)


# ----------------------------------------------------------------------------- AP50
def average_precision(gt: pd.DataFrame, det: pd.DataFrame, iou_threshold: float = 0.5) -> float:
    """COCO-style frame-level AP at one IoU threshold (101-point interpolation).

    Detections are taken by decreasing score; each is matched to the not yet matched
    ground-truth box of its frame with the highest IoU >= threshold.
    """
    n_gt = len(gt)
    if n_gt == 0:
        return float("nan")
    if len(det) == 0:
        return 0.0
    det = det.reset_index(drop=True)
    order = np.argsort(-det["score"].to_numpy(float), kind="stable")
    rank = np.empty(len(det), dtype=np.int64)
    rank[order] = np.arange(len(det))
    g = gt.reset_index(drop=True).assign(gt_index=lambda d: np.arange(len(d)))
    pairs = det.assign(det_index=np.arange(len(det)))[
        ["clip_id", "frame", "det_index", "x0", "y0", "x1", "y1"]
    ].merge(
        g[["clip_id", "frame", "gt_index", "x0", "y0", "x1", "y1"]],
        on=["clip_id", "frame"],
        suffixes=("_d", "_g"),
    )
    tp = np.zeros(len(det), bool)
    if len(pairs):
        ov = iou(
            pairs[["x0_d", "y0_d", "x1_d", "y1_d"]].to_numpy(float),
            pairs[["x0_g", "y0_g", "x1_g", "y1_g"]].to_numpy(float),
        )
        cand = pairs.assign(iou=ov, rank=rank[pairs["det_index"].to_numpy()]).loc[
            ov >= iou_threshold
        ]
        used = np.zeros(len(g), bool)
        # Greedy in score order: each detection takes its best still-free box.
        cand = cand.sort_values(["rank", "iou", "gt_index"], ascending=[True, False, True])
        for rk, gi in zip(cand["rank"].to_numpy().tolist(), cand["gt_index"].to_numpy().tolist()):
            if not tp[rk] and not used[gi]:
                used[gi] = True
                tp[rk] = True
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    grid = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, grid, side="left")
    return float(
        np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0).mean()
    )
