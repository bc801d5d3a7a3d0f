"""Metrics of the published breast-ultrasound video-detection work (docs/metrics.md).

Frame level, all evaluated frames pooled: COCO AP (IoU 0.50:0.95), AP50 and AP75; precision
at recall 0.8 and 0.9 (Pr80, Pr90) on the IoU-0.5 precision-recall curve; and false-positive
chains per minute at the thresholds where the IoU-0.5 frame recall reaches 0.8 and 0.9
(FP80, FP90), with each clip's own frame rate and with the literature's fixed 30 frames per
second. The matching of AP is :func:`usbkit.evaluation.froc.rank_matches` (the one behind
AP50); a chain's detections are judged true or false by the centre rule of
:mod:`usbkit.evaluation.matching`.

Two conventions (``convention``): ``"usbkit"``, the definitions of docs/metrics.md, and
``"ultradet"``, the reading of UltraDet's published evaluation code (its
``ultrasound_vid/evaluation``: mmdetection's ``eval_map`` and ``calculate_video_level_fp``),
so that numbers can be set beside the published tables. They differ in five rules, each
documented in docs/metrics.md#the-published-convention-ultradet and each one switch of the
same code: the box each detection takes for AP (:func:`rank_matches`' ``assign``), AP's
integration (``RankedMatches.average_precision``'s ``mode``) and COCO AP's divisor, the
precision read at a recall (:func:`precision_at_recall`), the score threshold of FP80 / FP90
and which detections it keeps (:func:`recall_threshold`, :func:`fp_chains`), and ties when
chains are linked (:func:`link_chains`' ``ties``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from usbkit.evaluation.froc import COCO_IOUS, RankedMatches, rank_matches
from usbkit.evaluation.matching import BOX, iou, match

#: Recall levels of Pr80 / Pr90 and FP80 / FP90.
RECALL_LEVELS = (0.8, 0.9)
#: A chain links a detection to one on the previous CHAIN_GAP frames ...
CHAIN_GAP = 5
#: ... when their IoU is above CHAIN_IOU (strictly).
CHAIN_IOU = 0.5
#: A chain is a false positive unless more than this share of its detections are true.
CHAIN_TP_SHARE = 0.9
#: The published convention: 1,800 frames are one minute.
LITERATURE_FPS = 30.0
#: UltraDet's published code divides the sum of the ten APs (IoU 0.50 ... 0.95) by nine.
ULTRADET_AP_DIVISOR = 9
#: Candidate pairs linked per block (bounds the memory of a crowded clip).
_PAIR_BLOCK = 2_000_000
#: The conventions of the literature metrics: usbkit's definitions (docs/metrics.md), and the
#: reading of UltraDet's published evaluation code.
Convention = Literal["usbkit", "ultradet"]
CONVENTIONS: tuple[Convention, ...] = ("usbkit", "ultradet")
#: What each convention is called in tables and figures.
CONVENTION_NAMES = {"usbkit": "usbkit", "ultradet": "UltraDet's code"}


def check_convention(convention: str) -> Convention:
    """``convention`` when it is one of :data:`CONVENTIONS`, else a ValueError naming them."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r} is not one of {', '.join(CONVENTIONS)}")
    return convention  # type: ignore[return-value]


def precision_at_recall(
    rm: RankedMatches, recall: float, k: int = 0, convention: Convention = "usbkit"
) -> float:
    """Precision at ``recall`` on the ranked precision-recall curve (Pr80, Pr90).

    ``convention="usbkit"``: the curve's points are its true positives down the ranked list
    (recall strictly rising, precision the share of true positives among the detections
    ranked so far); the value is ``np.interp`` of precision at ``recall`` through them. NaN
    when the list never reaches that recall (or there are no ground-truth boxes).

    ``convention="ultradet"`` (UltraDet's published code): ``np.interp`` through every rank,
    false positives included, so a recall is held over a run of points. NumPy then reads the
    last point of a run: at a recall reached exactly, the precision after the false positives
    that follow the true positive; between two recalls, the line from that last point to the
    next true positive. Beyond the highest recall reached it returns the last rank's precision
    (``np.interp`` holds the end value); NaN only without ground-truth boxes or detections.

    Examples
    --------
    Four ground-truth boxes; ranked detections TP, FP, TP, TP, FP, TP:

    >>> tp = np.array([[1, 0, 1, 1, 0, 1]], bool)
    >>> rm = RankedMatches(score=np.linspace(1, 0.5, 6), tp=tp, iou_thresholds=(0.5,), n_gt=4)
    >>> round(precision_at_recall(rm, 0.8), 4)  # between (0.75, 3/4) and (1.0, 4/6)
    0.7333
    >>> round(precision_at_recall(rm, 0.8, convention="ultradet"), 4)  # (0.75, 3/5) to (1.0, 4/6)
    0.6133
    """
    if rm.n_gt == 0:
        return float("nan")
    if check_convention(convention) == "ultradet":
        if len(rm.score) == 0:
            return float("nan")
        return float(np.interp(recall, rm.recall(k), rm.precision(k)))
    at = np.flatnonzero(rm.tp[k])
    if len(at) == 0:
        return float("nan")
    rec = np.arange(1, len(at) + 1) / rm.n_gt
    if rec[-1] < recall - 1e-12:
        return float("nan")
    prec = np.arange(1, len(at) + 1) / (at + 1)
    return float(np.interp(recall, rec, prec))


def recall_threshold(
    rm: RankedMatches, recall: float, k: int = 0, convention: Convention = "usbkit"
) -> tuple[float, float]:
    """The score threshold of FP80 / FP90 at ``recall``, and the recall of what it keeps.

    ``convention="usbkit"``: the highest threshold whose frame recall reaches ``recall``,
    detections kept when they score >= it. Lowering the threshold from the top, recall first
    reaches the level at the rank of some detection; the threshold is that detection's score
    (its equal-score neighbours come in with it, so the recall there may be higher).
    ``(nan, nan)`` when it is never reached.

    ``convention="ultradet"`` (UltraDet's published code): ``np.interp`` of the ranked
    scores at ``recall`` against the recall of every rank (read as in
    :func:`precision_at_recall`), detections kept when they score strictly above it. The
    threshold is usually the score of the last rank before the next true positive, or a
    value between two scores, so what it keeps usually stops short of the recall level; past
    the highest recall it is the lowest score. ``(nan, nan)`` only without ground-truth boxes
    or detections.

    Examples
    --------
    Five boxes; ranked TP, TP, TP, FP, TP, TP at scores 0.9 ... 0.4:

    >>> tp = np.array([[1, 1, 1, 0, 1, 1]], bool)
    >>> rm = RankedMatches(score=np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]), tp=tp,
    ...                    iou_thresholds=(0.5,), n_gt=5)
    >>> recall_threshold(rm, 0.8)  # kept: score >= 0.5, four true positives
    (0.5, 0.8)
    >>> recall_threshold(rm, 0.8, convention="ultradet")  # kept: score > 0.5, three
    (0.5, 0.6)
    """
    if rm.n_gt == 0 or len(rm.score) == 0:
        return float("nan"), float("nan")
    if check_convention(convention) == "ultradet":
        t = float(np.interp(recall, rm.recall(k), rm.score))
        return t, float(rm.tp[k][rm.score > t].sum() / rm.n_gt)
    ctp = np.cumsum(rm.tp[k])
    reach = np.flatnonzero(ctp >= recall * rm.n_gt - 1e-9)
    if len(reach) == 0:
        return float("nan"), float("nan")
    t = float(rm.score[reach[0]])
    last = np.searchsorted(-rm.score, -t, side="right") - 1  # end of its tie group
    return t, float(ctp[last] / rm.n_gt)


def link_chains(
    clips: np.ndarray,
    frames: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    max_gap: int = CHAIN_GAP,
    min_iou: float = CHAIN_IOU,
    ties: Literal["latest", "earliest"] = "latest",
) -> np.ndarray:
    """Chains of detections: each linked to its best match on the previous frames.

    Within each clip, a detection on frame f is linked to the detection of highest IoU among
    those on frames f - ``max_gap`` .. f - 1, when that IoU is above ``min_iou``; equal IoUs
    go to the later frame (``ties="latest"``, usbkit) or the earlier frame
    (``ties="earliest"``: UltraDet's published code takes the first maximum of its history,
    oldest frame first), then the higher score, then the earlier row. Linked detections form
    a chain (a connected group: a detection may be the best match of several later ones, so
    chains may branch).

    Returns
    -------
    ndarray of int, shape (n,)
        The chain of each detection (0 .. number of chains - 1).

    Examples
    --------
    >>> b = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [40, 40, 50, 50], [0, 0, 10, 10.0]])
    >>> link_chains(np.zeros(4), np.array([0, 1, 1, 7]), np.ones(4), b).tolist()
    [0, 0, 1, 2]

    A box on frame 2 overlaps the one of frame 0 and the one of frame 1 equally (IoU 2/3),
    which do not link (IoU 3/7):

    >>> b = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [2, 0, 12, 10.0]])
    >>> args = np.zeros(3), np.array([0, 1, 2]), np.ones(3), b
    >>> link_chains(*args).tolist(), link_chains(*args, ties="earliest").tolist()
    ([0, 1, 1], [0, 1, 0])
    """
    if ties not in ("latest", "earliest"):
        raise ValueError(f"ties {ties!r} is not latest or earliest")
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(frames)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    code = np.unique(np.asarray(clips), return_inverse=True)[1].ravel().astype(np.int64)
    frames = np.asarray(frames, dtype=np.int64)
    scores = np.asarray(scores, dtype=float)
    boxes = np.asarray(boxes, dtype=float).reshape(n, 4)
    order = np.lexsort((frames, code))
    span = int(frames.max() - frames.min()) + max_gap + 2
    key = code[order] * span + (frames[order] - frames.min())
    lo = np.searchsorted(key, key - max_gap, side="left")
    hi = np.searchsorted(key, key, side="left")  # candidates: sorted positions lo .. hi - 1
    count = hi - lo
    child, parent = [], []
    start = 0
    while start < n:  # blocks of children, at most _PAIR_BLOCK candidate pairs each
        cum = np.cumsum(count[start:])
        stop = start + max(1, int(np.searchsorted(cum, _PAIR_BLOCK, side="right")))
        kids = np.arange(start, stop)
        c = count[kids]
        ci = np.repeat(kids, c)
        pj = np.repeat(lo[kids] - np.cumsum(c) + c, c) + np.arange(c.sum())
        i, j = order[ci], order[pj]
        ov = iou(boxes[i], boxes[j])
        ok = ov > min_iou
        i, j, ov = i[ok], j[ok], ov[ok]
        # best candidate first: IoU, later (earliest: earlier) frame, higher score, earlier row
        later = -frames[j] if ties == "latest" else frames[j]
        o = np.lexsort((j, -scores[j], later, -ov, i))
        i, j = i[o], j[o]
        first = np.ones(len(i), bool)
        first[1:] = i[1:] != i[:-1]
        child.append(i[first])
        parent.append(j[first])
        start = stop
    child, parent = np.concatenate(child), np.concatenate(parent)
    graph = coo_matrix((np.ones(len(child)), (child, parent)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def fp_chains(
    gt: pd.DataFrame, det: pd.DataFrame, threshold: float, convention: Convention = "usbkit"
) -> tuple[int, int]:
    """False-positive chains among the detections kept at ``threshold``.

    Kept: the detections scoring >= ``threshold`` (``convention="usbkit"``) or strictly
    above it (``"ultradet"``, as UltraDet's published code). A kept detection is a true
    positive when its box centre lies inside any ground-truth box of its clip and frame;
    chains are :func:`link_chains`, equal IoUs going to the later frame (usbkit) or the
    earlier one (ultradet); a chain is one false positive unless more than 90% of its
    detections are true positives.

    Returns
    -------
    (int, int)
        False-positive chains, all chains.
    """
    score = det["score"].to_numpy(float)
    published = check_convention(convention) == "ultradet"
    kept = det.loc[score > threshold if published else score >= threshold].reset_index(drop=True)
    if kept.empty:
        return 0, 0
    true = match(gt, kept, "center").det_hit
    chain = link_chains(
        kept["clip_id"].to_numpy(),
        kept["frame"].to_numpy(),
        kept["score"].to_numpy(float),
        kept[BOX].to_numpy(float),
        ties="earliest" if published else "latest",
    )
    size = np.bincount(chain)
    share = np.bincount(chain, weights=true.astype(float)) / size
    return int((share <= CHAIN_TP_SHARE).sum()), len(size)


def literature_metrics(
    gt: pd.DataFrame,
    det: pd.DataFrame,
    frames_per_clip: dict[str, int],
    fps_per_clip: dict[str, float],
    convention: Convention = "usbkit",
) -> dict:
    """COCO AP, AP50, AP75, Pr80, Pr90, FP80 and FP90 of one model on the evaluated clips.

    Parameters
    ----------
    gt, det : DataFrame
        Annotations and detections of the evaluated clips.
    frames_per_clip, fps_per_clip : dict
        Frame count and frame rate of every evaluated clip (lesion-free clips included:
        their minutes count for FP80 / FP90).
    convention : {"usbkit", "ultradet"}
        usbkit's definitions, or the reading of UltraDet's published code (module docstring;
        docs/metrics.md#the-published-convention-ultradet): mmdetection's matching and
        all-point AP, COCO AP as the sum of the ten APs divided by 9 (the published code's
        divisor), precision and threshold by ``np.interp`` over every rank, detections kept
        strictly above the threshold, link ties to the earliest frame.

    Returns
    -------
    dict
        ``{"convention", "ap", "ap50", "ap75", "max_recall", "pr80", "pr90", "fp80",
        "fp90"}`` (``max_recall``: the IoU-0.5 frame recall with every detection kept, the
        highest recall the model reaches; Pr80 ... FP90 are undefined above it, usbkit's
        convention gives NaN there, UltraDet's code a number); ``fp80`` and ``fp90`` are
        ``{"threshold", "recall", "fp_chains", "chains", "own_fps", "fps30"}`` (``recall``:
        the frame recall of the detections kept; FP chains per minute with each clip's own
        frame rate and at 30 fps); NaN where undefined (no ground truth; a recall level never
        reached).

    Examples
    --------
    One clip of 1,800 frames at 30 fps (one minute); a lesion seen on frames 0 and 1, found
    on both (scores 0.9 and 0.7); a false mark on frames 0 to 3 (score 0.8), one chain:

    >>> box, far = [0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]
    >>> gt = pd.DataFrame([("A", f, "1", *box) for f in (0, 1)],
    ...                   columns=["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"])
    >>> det = pd.DataFrame([("A", 0, 0.9, *box), ("A", 1, 0.7, *box)]
    ...                    + [("A", f, 0.8, *far) for f in range(4)],
    ...                    columns=["clip_id", "frame", "score", "x0", "y0", "x1", "y1"])
    >>> m = literature_metrics(gt, det, {"A": 1800}, {"A": 30.0})
    >>> round(m["ap50"], 4), round(m["pr80"], 4)  # ranked TP, FP x 4, TP
    (0.67, 0.6)
    >>> m["fp80"]["threshold"], m["fp80"]["chains"], m["fp80"]["fp_chains"], m["fp80"]["fps30"]
    (0.7, 2, 1, 1.0)

    UltraDet's code reads precision from the last of the four false marks (recall 0.5,
    precision 1/5) towards (1.0, 2/6), and its threshold likewise between their scores, 0.8
    and 0.7; what scores above it keeps half the lesion boxes:

    >>> u = literature_metrics(gt, det, {"A": 1800}, {"A": 30.0}, convention="ultradet")
    >>> round(u["pr80"], 4), u["fp80"]["threshold"], u["fp80"]["recall"], u["fp80"]["fp_chains"]
    (0.28, 0.74, 0.5, 1)
    """
    published = check_convention(convention) == "ultradet"
    rm = rank_matches(gt, det, COCO_IOUS, assign="argmax" if published else "free")
    k50, k75 = COCO_IOUS.index(0.5), COCO_IOUS.index(0.75)
    aps = [rm.average_precision(k, "area" if published else "coco") for k in range(len(COCO_IOUS))]
    ids = list(frames_per_clip)
    n_frames = np.array([frames_per_clip[c] for c in ids], float)
    fps = np.array([fps_per_clip[c] for c in ids], float)
    minutes_own = float((n_frames / fps).sum() / 60)
    minutes_30 = float(n_frames.sum() / LITERATURE_FPS / 60)
    if not rm.n_gt:
        ap = float("nan")
    elif published:  # the published code adds the ten APs and divides by nine
        ap = float(np.sum(aps) / ULTRADET_AP_DIVISOR)
    else:
        ap = float(np.mean(aps))
    out = {
        "convention": convention,
        "ap": ap,
        "ap50": aps[k50],
        "ap75": aps[k75],
        # the frame recall at IoU 0.5 with every detection kept: the most the model reaches
        "max_recall": float(rm.tp[k50].sum() / rm.n_gt) if rm.n_gt else float("nan"),
    }
    for level in RECALL_LEVELS:
        tag = f"{round(100 * level)}"
        out[f"pr{tag}"] = precision_at_recall(rm, level, k50, convention)
        t, reached = recall_threshold(rm, level, k50, convention)
        entry = dict.fromkeys(("fp_chains", "chains", "own_fps", "fps30"), float("nan"))
        if np.isfinite(t):
            n_fp, n_all = fp_chains(gt, det, t, convention)
            entry = {
                "fp_chains": n_fp,
                "chains": n_all,
                "own_fps": n_fp / minutes_own if minutes_own else float("nan"),
                "fps30": n_fp / minutes_30 if minutes_30 else float("nan"),
            }
        out[f"fp{tag}"] = {"threshold": t, "recall": reached, **entry}
    return out
