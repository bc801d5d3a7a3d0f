"""The study's metrics, exactly as docs/metrics.md defines them.

Lesion ratings, the FP-track linker, the scan-level and frame-level FROC curves, sensitivity
at an FP rate (operating point and linear interpolation), the JAFROC figure of merit (AFROC1
form) and frame-level AP at one or several IoU thresholds (AP50; COCO AP in
:mod:`usbkit.evaluation.literature`). The linker and AP's matching share one greedy
assignment (:func:`greedy_assign`). The hit rule itself lives in
:mod:`usbkit.evaluation.matching`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usbkit.evaluation.matching import BOX, HitRule, iou, match

MAX_GAP = 5
LINK_IOU = 0.3


# --------------------------------------------------------------------------- greedy
def greedy_assign(
    agent: np.ndarray, resource: np.ndarray, priority: np.ndarray, n_resources: int
) -> np.ndarray:
    """Greedy one-to-one assignment in priority order, computed in a few vectorised rounds.

    The sequential rule: agents in increasing ``priority`` each take their most preferred
    resource that no agent before them took, or nothing. Used by the FP-track linker
    (detections taking tracks) and by frame-level AP (detections taking ground-truth boxes).

    Parameters
    ----------
    agent, resource : ndarray of int, shape (n_pairs,)
        The acceptable (agent, resource) pairs, grouped by agent and, inside an agent, in
        its order of preference.
    priority : ndarray of int, shape (n_agents,)
        Each agent's place in the sequential order; agents that can want the same resource
        must have distinct priorities.
    n_resources : int
        Resources are ``0 .. n_resources - 1``.

    Returns
    -------
    ndarray of int, shape (n_agents,)
        The resource each agent takes, -1 for none.

    Notes
    -----
    In each round every undecided agent proposes its best resource still free. A proposal is
    final when no undecided agent of lower priority value finds that resource acceptable
    (so none can take it first); the first undecided agent always is. An undecided agent left
    with no free acceptable resource takes nothing. Rounds needed: one plus the length of
    the longest chain of actual conflicts, not the number of agents.

    Examples
    --------
    Agent 0 prefers resource 1, then 0; agent 1 wants only resource 1:

    >>> greedy_assign(np.array([0, 0, 1]), np.array([1, 0, 1]), np.array([0, 1]), 2).tolist()
    [1, -1]
    """
    agent = np.asarray(agent, dtype=np.int64)
    resource = np.asarray(resource, dtype=np.int64)
    priority = np.asarray(priority, dtype=np.int64)
    n_agents = len(priority)
    choice = np.full(n_agents, -1, dtype=np.int64)
    undecided = np.ones(n_agents, bool)
    taken = np.zeros(n_resources, bool)
    last = np.iinfo(np.int64).max
    while True:
        av = np.flatnonzero(undecided[agent] & ~taken[resource])
        if len(av) == 0:
            return choice
        a_av = agent[av]
        head = av[np.r_[True, a_av[1:] != a_av[:-1]]]  # each agent's current proposal
        claim = np.full(n_resources, last)
        np.minimum.at(claim, resource[av], priority[a_av])
        win = head[claim[resource[head]] == priority[agent[head]]]
        choice[agent[win]] = resource[win]
        taken[resource[win]] = True
        undecided[agent[win]] = False
        still = np.zeros(n_agents, bool)  # agents with a free acceptable resource left
        still[a_av] = True
        undecided &= still


# --------------------------------------------------------------------------- linker
def link_tracks(
    frames: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    max_gap: int = MAX_GAP,
    min_iou: float = LINK_IOU,
    clips: np.ndarray | None = None,
) -> np.ndarray:
    """Link false-positive detections into tracks (docs/metrics.md#fp-tracks-the-linker).

    Frames in increasing order; inside a frame, detections by decreasing score (ties: input
    order); a detection joins the live track whose last box is at most ``max_gap`` frames
    earlier and has the highest IoU >= ``min_iou`` with it (ties: the track created first); a
    track takes at most one detection per frame; otherwise the detection starts a new track.

    Parameters
    ----------
    frames, scores : ndarray, shape (n,)
    boxes : ndarray, shape (n, 4)
    max_gap : int
        A track is live for frame f when its last detection is on a frame >= f - max_gap.
    min_iou : float
        The least IoU with a track's last box that links.
    clips : ndarray of int, shape (n,), optional
        A clip code per detection: tracks never cross clips, and all clips are linked in
        one pass (None: one clip).

    Returns
    -------
    ndarray of int, shape (n,)
        The track of each detection, numbered in creation order within its clip.

    Notes
    -----
    The rule is sequential, but only within a clip and a frame. The clips advance together,
    one step per frame (the k-th frame holding detections of each clip), each clip's live
    tracks in a slot table; inside a step the IoUs of every detection with its clip's live
    tracks are computed at once and the detections take tracks by :func:`greedy_assign` (in
    decreasing score, each its best free track), which needs a few vectorised rounds rather
    than a loop over detections. The result equals the one-detection-at-a-time loop exactly
    (a property test compares them on random inputs with ties).

    Examples
    --------
    Two boxes that overlap on frames 0 and 2, a third far away on frame 1:

    >>> b = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [1, 1, 11, 11]], float)
    >>> link_tracks(np.array([0, 1, 2]), np.array([0.5, 0.4, 0.3]), b).tolist()
    [0, 1, 0]
    """
    n = len(frames)
    track_of = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return track_of
    frames = np.asarray(frames, dtype=np.int64)
    scores = np.asarray(scores, dtype=float)
    boxes = np.asarray(boxes, dtype=float).reshape(n, 4)
    code = np.zeros(n, np.int64) if clips is None else np.asarray(clips, dtype=np.int64)
    code = np.unique(code, return_inverse=True)[1].ravel()
    n_clips = int(code.max()) + 1
    # processing order inside a clip: frame, decreasing score, input order
    order = np.lexsort((np.arange(n), -scores, frames, code))
    c_o, f_o = code[order], frames[order]
    new_group = np.r_[True, (c_o[1:] != c_o[:-1]) | (f_o[1:] != f_o[:-1])]
    group = np.cumsum(new_group) - 1  # (clip, frame) group of each detection
    rank = np.arange(n) - np.flatnonzero(new_group)[group]  # its place in the group
    clip_start = np.r_[True, c_o[1:] != c_o[:-1]]
    step = group - np.maximum.accumulate(np.where(clip_start, group, 0))  # frame ordinal
    # The clips advance together: step s handles the s-th frame (with detections) of each
    # clip; inside a step, detections by clip, then rank.
    visit = np.lexsort((rank, c_o, step))
    det = order[visit]
    d_clip, d_frame, d_rank, d_step = c_o[visit], f_o[visit], rank[visit], step[visit]
    bounds = np.flatnonzero(np.r_[True, d_step[1:] != d_step[:-1], True])
    # Slot table: each clip's tracks, a slot per track (reused once the track is dead).
    K = 8
    s_num = np.zeros((n_clips, K), dtype=np.int64)  # track number within its clip
    s_box = np.zeros((n_clips, K, 4))  # its last box
    s_last = np.full((n_clips, K), np.iinfo(np.int64).min // 2, dtype=np.int64)  # its frame
    per_clip = np.zeros(n_clips, dtype=np.int64)  # tracks created so far in each clip
    for s in range(len(bounds) - 1):
        lo, hi = bounds[s], bounds[s + 1]
        idx, c, f, r = det[lo:hi], d_clip[lo:hi], d_frame[lo:hi], d_rank[lo:hi]
        starts = np.r_[True, c[1:] != c[:-1]]  # c is sorted: clips of the step
        first = np.flatnonzero(starts)
        ucl, inv = c[first], np.cumsum(starts) - 1
        horizon = f[first] - max_gap  # live: last detection on a frame >= f - max_gap
        live = s_last[ucl] >= horizon[:, None]
        pi, pk = np.nonzero(live[inv])  # (detection, slot) pairs with a live track
        ov = iou(boxes[idx[pi]], s_box[c[pi], pk])
        ok = ov >= min_iou
        pi, pk, ov = pi[ok], pk[ok], ov[ok]
        # each detection's candidates, best first: highest IoU, then the oldest track
        o = np.lexsort((s_num[c[pi], pk], -ov, pi))
        pi, pk = pi[o], pk[o]
        cell = greedy_assign(pi, inv[pi] * K + pk, r, len(ucl) * K)  # (clip, slot) or -1
        choice = np.where(cell >= 0, cell % K, -1)  # slot joined, -1: a new track
        join = np.flatnonzero(choice >= 0)
        jc, jk = c[join], choice[join]
        track_of[idx[join]] = s_num[jc, jk]
        s_box[jc, jk] = boxes[idx[join]]
        s_last[jc, jk] = f[join]
        new = np.flatnonzero(choice < 0)
        if len(new) == 0:
            continue
        nc = c[new]
        kth = np.arange(len(new)) - np.searchsorted(nc, nc, side="left")  # k-th new in clip
        nums = per_clip[nc] + kth
        np.add.at(per_clip, nc, 1)
        track_of[idx[new]] = nums
        # place the new tracks in free slots (never used, or holding a dead track)
        free = s_last[ucl] < horizon[:, None]
        short = int((np.bincount(inv[new], minlength=len(ucl)) - free.sum(axis=1)).max())
        if short > 0:
            grow = max(short, K)
            s_num = np.concatenate([s_num, np.zeros((n_clips, grow), np.int64)], 1)
            s_box = np.concatenate([s_box, np.zeros((n_clips, grow, 4))], 1)
            fill = np.full((n_clips, grow), np.iinfo(np.int64).min // 2, np.int64)
            s_last = np.concatenate([s_last, fill], 1)
            free = np.concatenate([free, np.ones((len(ucl), grow), bool)], 1)
            K += grow
        slot = np.argsort(~free, axis=1, kind="stable")[inv[new], kth]
        s_num[nc, slot] = nums
        s_box[nc, slot] = boxes[idx[new]]
        s_last[nc, slot] = f[new]
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
        ``clip_id, patient_id, track, score, frame, x0, y0, x1, y1``: one row per FP track;
        ``score`` is its best detection's, and ``frame`` and the box say where that
        detection is (the first in detection order when scores tie).
    clips : DataFrame
        ``clip_id, patient_id``: every clip evaluated, lesion-free ones included.
    frame_boxes : DataFrame
        ``clip_id, frame, lesion_id, rating``: frame-level units.
    frame_fp_scores : ndarray
        Scores of detections that hit no box (frame-level FPs).
    n_frames : int
        Number of frames evaluated (frame-level normalisation).
    hits : DataFrame, optional
        ``lesion, frame, score``: every (detection, lesion box) pair that hits, ``lesion``
        being the row of ``lesions`` (time to first detection reads these).
    """

    lesions: pd.DataFrame
    tracks: pd.DataFrame
    clips: pd.DataFrame
    frame_boxes: pd.DataFrame
    frame_fp_scores: np.ndarray
    n_frames: int
    hits: pd.DataFrame | None = None


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
    by_lesion = frame_boxes.groupby(["clip_id", "lesion_id"], sort=True)
    lesions = by_lesion["rating"].max().reset_index()
    box_lesion = by_lesion.ngroup().to_numpy()  # the row of `lesions` of each box
    gi = m.pairs["gt_index"].to_numpy(np.int64)
    hits = pd.DataFrame(
        {
            "lesion": box_lesion[gi],
            "frame": gt["frame"].to_numpy(np.int64)[gi],
            "score": m.pairs["score"].to_numpy(float),
        }
    )
    pid = clips.set_index("clip_id")["patient_id"]
    lesions["patient_id"] = lesions["clip_id"].map(pid).to_numpy()
    fps = det.loc[~m.det_hit]
    code, clip_ids = pd.factorize(fps["clip_id"], sort=True)
    tid = link_tracks(
        fps["frame"].to_numpy(),
        fps["score"].to_numpy(float),
        fps[["x0", "y0", "x1", "y1"]].to_numpy(float),
        clips=code,
    )
    # one row per track, by clip id then creation order, described by its best detection
    key = code.astype(np.int64) * (len(tid) + 1) + tid
    uniq, track_of = np.unique(key, return_inverse=True)
    track_of = track_of.ravel()
    scores = fps["score"].to_numpy(float)
    by_track = np.lexsort((-scores, track_of))  # stable: ties keep detection order
    best = by_track[np.flatnonzero(np.diff(track_of[by_track], prepend=-1))]
    tracks = pd.DataFrame(
        {
            "clip_id": pd.Series(np.asarray(clip_ids, dtype=object)[uniq // (len(tid) + 1)]),
            "track": (uniq % (len(tid) + 1)).astype(int),
            "score": scores[best],
            "frame": fps["frame"].to_numpy(np.int64)[best],
            **{c: fps[c].to_numpy(float)[best] for c in ("x0", "y0", "x1", "y1")},
        }
    )
    tracks["patient_id"] = tracks["clip_id"].map(pid).to_numpy()
    return ScanRatings(
        lesions=lesions[["clip_id", "lesion_id", "patient_id", "rating"]],
        tracks=tracks[["clip_id", "patient_id", "track", "score", "frame", "x0", "y0", "x1", "y1"]],
        clips=clips[["clip_id", "patient_id"]].reset_index(drop=True),
        frame_boxes=frame_boxes,
        frame_fp_scores=fps["score"].to_numpy(float),
        n_frames=int(n_frames),
        hits=hits,
    )


@dataclass
class Froc:
    """A FROC curve: one point per threshold, thresholds descending, starting at (0, 0)."""

    threshold: np.ndarray  # first is +inf
    fp_rate: np.ndarray
    sensitivity: np.ndarray

    def to_dict(self, rate_key: str = "fp_per_scan") -> dict:
        """The curve as JSON lists (``threshold`` null for the starting point at infinity)."""
        thr = self.threshold.astype(object)
        thr[~np.isfinite(self.threshold)] = None
        thr = [None if t is None else float(t) for t in thr.tolist()]
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
    """Linear interpolation of the curve at ``x`` (not MONAI's reading: docs/metrics.md).

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


# ------------------------------------------------------------------ frame-level AP
#: The IoU thresholds of COCO AP: 0.50, 0.55, ..., 0.95.
COCO_IOUS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


@dataclass
class RankedMatches:
    """Detections ranked for frame-level AP, each a true or false positive per IoU threshold.

    Attributes
    ----------
    score : ndarray, shape (n,)
        The detections' scores, decreasing (equal scores: input order).
    tp : ndarray of bool, shape (len(iou_thresholds), n)
        Whether the detection at each rank took a ground-truth box at each threshold.
    iou_thresholds : tuple of float
    n_gt : int
        Ground-truth boxes (annotation rows).
    """

    score: np.ndarray
    tp: np.ndarray
    iou_thresholds: tuple
    n_gt: int

    def recall(self, k: int = 0) -> np.ndarray:
        """Recall down the ranked list at threshold number ``k``."""
        return np.cumsum(self.tp[k]) / self.n_gt

    def precision(self, k: int = 0) -> np.ndarray:
        """Precision down the ranked list at threshold number ``k`` (not made monotone)."""
        return np.cumsum(self.tp[k]) / np.arange(1, len(self.score) + 1)

    def average_precision(self, k: int = 0, mode: str = "coco") -> float:
        """AP at threshold number ``k``: COCO's 101-point AP (``mode="coco"``,
        docs/metrics.md#ap50) or the area under the all-point precision envelope
        (``mode="area"``, the mmdetection AP of UltraDet's published code)."""
        if mode not in ("coco", "area"):
            raise ValueError(f"AP mode {mode!r} is not coco or area")
        if self.n_gt == 0:
            return float("nan")
        if len(self.score) == 0:
            return 0.0
        recall = self.recall(k)
        precision = np.maximum.accumulate(self.precision(k)[::-1])[::-1]
        if mode == "area":  # sum of recall steps times the envelope to their right
            steps = np.diff(np.r_[0.0, recall])
            return float((steps * precision).sum())
        idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
        ok = idx < len(precision)
        return float(np.where(ok, precision[np.minimum(idx, len(precision) - 1)], 0).mean())


def rank_matches(
    gt: pd.DataFrame,
    det: pd.DataFrame,
    iou_thresholds: tuple = (0.5,),
    assign: str = "free",
) -> RankedMatches:
    """Match detections to ground-truth boxes as frame-level AP does, at several IoUs at once.

    Detections are taken by decreasing score (equal scores: input order). With
    ``assign="free"`` (COCO's rule, usbkit's AP) each is matched to the still unmatched box
    of its clip and frame with the highest IoU >= threshold (equal IoUs: the earlier
    annotation row), else it is a false positive. With ``assign="argmax"`` (mmdetection's
    rule, in UltraDet's published code) each looks only at the box of its frame with the
    highest IoU (equal IoUs: the earlier row): a true positive when that IoU is >= threshold
    and no detection ranked before it took that box, else a false positive, even when
    another box of the frame is free and overlaps enough. The pairs and their IoUs are
    computed once for all thresholds.

    Examples
    --------
    Boxes G and H overlap; the second detection overlaps G enough but H more, and H is
    taken:

    >>> g = pd.DataFrame({"clip_id": ["A"] * 2, "frame": [0, 0], "x0": [0.0, 2.0],
    ...                   "y0": [0.0, 0.0], "x1": [10.0, 12.0], "y1": [10.0, 10.0]})
    >>> d = pd.DataFrame({"clip_id": ["A"] * 2, "frame": [0, 0], "score": [0.9, 0.8],
    ...                   "x0": [2.0, 1.5], "y0": [0.0, 0.0], "x1": [12.0, 11.5],
    ...                   "y1": [10.0, 10.0]})
    >>> rank_matches(g, d).tp[0].tolist(), rank_matches(g, d, assign="argmax").tp[0].tolist()
    ([True, True], [True, False])
    """
    if assign not in ("free", "argmax"):
        raise ValueError(f"assignment {assign!r} is not free or argmax")
    det = det.reset_index(drop=True)
    scores = det["score"].to_numpy(float)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(det), dtype=np.int64)
    rank[order] = np.arange(len(det))
    tp = np.zeros((len(iou_thresholds), len(det)), bool)
    g = gt.reset_index(drop=True).assign(gt_index=lambda d: np.arange(len(d)))
    pairs = det.assign(det_index=np.arange(len(det)))[
        ["clip_id", "frame", "det_index", *BOX]
    ].merge(
        g[["clip_id", "frame", "gt_index", *BOX]], on=["clip_id", "frame"], suffixes=("_d", "_g")
    )
    if len(pairs):
        ov = iou(
            pairs[[c + "_d" for c in BOX]].to_numpy(float),
            pairs[[c + "_g" for c in BOX]].to_numpy(float),
        )
        pr = rank[pairs["det_index"].to_numpy()]
        pg = pairs["gt_index"].to_numpy()
        if assign == "free":
            keep = ov >= min(iou_thresholds)
            pr, pg, ov = pr[keep], pg[keep], ov[keep]
        o = np.lexsort((pg, -ov, pr))  # by rank; inside a rank, best box first (ties: row)
        pr, pg, ov = pr[o], pg[o], ov[o]
        if assign == "argmax":  # each rank looks at its best box only
            best = np.r_[True, pr[1:] != pr[:-1]]
            pr, pg, ov = pr[best], pg[best], ov[best]
        for k, t in enumerate(iou_thresholds):
            ok = ov >= t
            if assign == "free":
                tp[k] = greedy_assign(pr[ok], pg[ok], np.arange(len(det)), len(g)) >= 0
            else:  # the first (best-ranked) rank to claim a box takes it
                _, first = np.unique(pg[ok], return_index=True)
                tp[k, pr[ok][first]] = True
    return RankedMatches(
        score=scores[order], tp=tp, iou_thresholds=tuple(iou_thresholds), n_gt=len(g)
    )


def average_precision(gt: pd.DataFrame, det: pd.DataFrame, iou_threshold: float = 0.5) -> float:
    """COCO-style frame-level AP at one IoU threshold (101-point interpolation).

    Detections are taken by decreasing score; each is matched to the not yet matched
    ground-truth box of its frame with the highest IoU >= threshold (:func:`rank_matches`).
    """
    return rank_matches(gt, det, (iou_threshold,)).average_precision(0)
