"""Time to first detection (docs/metrics.md#time-to-first-detection).

At FP rate x, for lesion l: f0 = the first frame with a box of l; f1 = the first frame >= f0
on which a detection scoring >= thr(x) hits one of l's boxes (the run's hit rule, the hits
:func:`usbkit.evaluation.froc.rate_scans` found); TTFD = f1 - f0 frames, divided by the
clip's frame rate in seconds. A lesion with no such hit is *not found* and stays out of the
distribution. Two models are compared on the lesions both find: the median paired
difference and the two-sided Wilcoxon signed-rank test of the differences in seconds
(scipy's ``wilcoxon``; zero differences dropped, Wilcoxon's convention).
"""

from __future__ import annotations

import numpy as np

from usbkit.evaluation.froc import ScanRatings


def first_frames(r: ScanRatings) -> np.ndarray:
    """f0 of every lesion of ``r.lesions`` (its first frame with a box)."""
    first = r.frame_boxes.groupby(["clip_id", "lesion_id"], sort=True)["frame"].min()
    return first.to_numpy(np.int64)


def first_hit_frames(r: ScanRatings, thresholds) -> np.ndarray:
    """f1 of every lesion at each threshold: the first frame on which a detection scoring
    >= the threshold hits the lesion (NaN: never; an infinite threshold finds nothing).

    Returns
    -------
    ndarray, shape (len(thresholds), n_lesions)
    """
    thresholds = np.asarray(thresholds, float)
    out = np.full((len(thresholds), len(r.lesions)), np.inf)
    h = r.hits
    lesion, frame, score = (h[c].to_numpy() for c in ("lesion", "frame", "score"))
    for k, t in enumerate(thresholds):
        ok = score >= t
        np.minimum.at(out[k], lesion[ok].astype(np.int64), frame[ok].astype(float))
    out[~np.isfinite(out)] = np.nan
    return out


def time_to_first_detection(
    r: ScanRatings, thresholds, fps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """TTFD of every lesion at each threshold, in frames and in seconds (NaN: not found).

    Parameters
    ----------
    r : ScanRatings
        One model's ratings (with its hits).
    thresholds : sequence of float
        thr(x) at each FP rate.
    fps : ndarray, shape (n_lesions,)
        The frame rate of each lesion's clip.

    Returns
    -------
    frames, seconds : ndarray, shape (len(thresholds), n_lesions)

    Examples
    --------
    A lesion seen from frame 3, hit on frame 5 (score 0.9) and frame 4 (score 0.4):

    >>> import pandas as pd
    >>> from usbkit.evaluation.froc import rate_scans
    >>> gt = pd.DataFrame({"clip_id": "A", "frame": [3, 4, 5], "lesion_id": "1", "x0": 0.0,
    ...                    "y0": 0.0, "x1": 10.0, "y1": 10.0})
    >>> det = pd.DataFrame({"clip_id": "A", "frame": [5, 4], "score": [0.9, 0.4], "x0": 2.0,
    ...                     "y0": 2.0, "x1": 8.0, "y1": 8.0})
    >>> r = rate_scans(gt, det, pd.DataFrame({"clip_id": ["A"], "patient_id": ["P"]}), 10)
    >>> frames, seconds = time_to_first_detection(r, [0.5, 0.3, np.inf], np.array([10.0]))
    >>> frames[:, 0].tolist(), seconds[:, 0].tolist()
    ([2.0, 1.0, nan], [0.2, 0.1, nan])
    """
    frames = first_hit_frames(r, thresholds) - first_frames(r)[None, :]
    return frames, frames / np.asarray(fps, float)[None, :]


def summarize(values: np.ndarray) -> dict:
    """Distribution of one model's TTFD at one FP rate: found / not found, median, IQR."""
    v = np.asarray(values, float)
    found = v[np.isfinite(v)]
    if len(found) == 0:
        return {"n_found": 0, "n_not_found": int(len(v)), "median": None, "iqr": [None, None]}
    q1, med, q3 = np.percentile(found, [25, 50, 75])
    return {
        "n_found": int(len(found)),
        "n_not_found": int(len(v) - len(found)),
        "median": float(med),
        "iqr": [float(q1), float(q3)],
    }


def paired_difference(a_seconds, b_seconds, a_frames=None, b_frames=None) -> dict:
    """Model A minus model B on the lesions both find (negative: A marks them sooner).

    Returns ``n_both``, ``median_diff_seconds`` (and ``median_diff_frames`` when frames are
    given), ``mean_diff_seconds``, ``n_a_first`` / ``n_b_first`` / ``n_same`` (lesions A
    marks sooner, B marks sooner, both on the same frame; present when some lesion is found
    by both) and ``wilcoxon_p``: the two-sided Wilcoxon signed-rank test of the differences
    in seconds (zero differences dropped; P = 1 when none is left; None without lesions).
    The median is often 0 (most lesions marked on the same frame) while the test, driven by
    the lesions where the models differ, is significant: say who is first and the mean too.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a_seconds, float), np.asarray(b_seconds, float)
    both = np.isfinite(a) & np.isfinite(b)
    d = a[both] - b[both]
    out = {"n_both": int(both.sum()), "median_diff_seconds": None, "wilcoxon_p": None}
    if a_frames is not None:
        out["median_diff_frames"] = None
    if not both.any():
        return out
    out["median_diff_seconds"] = float(np.median(d))
    out["mean_diff_seconds"] = float(np.mean(d))
    # who marks each lesion first (ties, the same frame, are many: the median is often 0)
    out["n_a_first"] = int((d < -1e-12).sum())
    out["n_b_first"] = int((d > 1e-12).sum())
    out["n_same"] = int(len(d) - out["n_a_first"] - out["n_b_first"])
    if a_frames is not None:
        df = np.asarray(a_frames, float)[both] - np.asarray(b_frames, float)[both]
        out["median_diff_frames"] = float(np.median(df))
    nonzero = d[np.abs(d) > 1e-12]
    out["wilcoxon_p"] = (
        1.0 if len(nonzero) == 0 else float(wilcoxon(nonzero, zero_method="wilcox").pvalue)
    )
    return out
