"""Paired statistics for two detectors on the same scans.

McNemar's exact test on the lesions each model detects at its own operating threshold, and
a paired bootstrap over patients (all clips of a resampled patient go in, for both models at
once) for the difference in sensitivity at an FP rate and in the JAFROC figure of merit.
The bootstrap is vectorised: scores are sorted once, and every replicate is a weighted
cumulative sum over that fixed order, so 2,000 replicates of a 506-patient study take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from usbkit.evaluation.froc import ScanRatings, highest_fp_per_clip

EPS = 1e-12


def mcnemar_exact(table: np.ndarray) -> float:
    """Two-sided exact McNemar p value of a 2x2 paired table [[n11, n10], [n01, n00]]."""
    from scipy.stats import binomtest

    b, c = int(table[0][1]), int(table[1][0])
    if b + c == 0:
        return 1.0
    return float(min(1.0, binomtest(min(b, c), b + c, 0.5).pvalue))


def paired_table(detected_a: np.ndarray, detected_b: np.ndarray) -> list[list[int]]:
    """[[both, A only], [B only, neither]] from per-lesion detection flags."""
    a, b = np.asarray(detected_a, bool), np.asarray(detected_b, bool)
    return [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]


@dataclass
class _Prepared:
    track_patient: np.ndarray  # FP tracks by decreasing score
    track_score: np.ndarray
    group_floor: np.ndarray  # group_floor[j]: items in whole tie groups among the first j
    lesion_rating: np.ndarray  # lesions by increasing rating
    lesion_patient: np.ndarray
    lesions_per_patient: np.ndarray
    clips_per_patient: np.ndarray
    clip_patient_sorted: np.ndarray
    fom_lesion_patient: np.ndarray
    pos_less: np.ndarray
    pos_le: np.ndarray


def _prepare(r: ScanRatings, index: dict) -> _Prepared:
    rating = r.lesions["rating"].to_numpy(float)
    les_p = r.lesions["patient_id"].map(index).to_numpy(int)
    trk_p = r.tracks["patient_id"].map(index).to_numpy(int)
    trk_s = r.tracks["score"].to_numpy(float)
    order = np.argsort(-trk_s, kind="stable")
    ts = trk_s[order]
    starts = np.flatnonzero(np.concatenate([[True], ts[1:] != ts[:-1], [True]]))
    # For a prefix of j tracks, the tracks of complete tie groups it holds.
    floor = starts[np.searchsorted(starts, np.arange(len(ts) + 1), side="right") - 1]
    lorder = np.argsort(rating, kind="stable")
    n_p = len(index)
    clip_p = r.clips["patient_id"].map(index).to_numpy(int)
    F = highest_fp_per_clip(r)
    forder = np.argsort(F, kind="stable")
    Fs = F[forder]
    return _Prepared(
        track_patient=trk_p[order],
        track_score=ts,
        group_floor=floor,
        lesion_rating=rating[lorder],
        lesion_patient=les_p[lorder],
        lesions_per_patient=np.bincount(les_p, minlength=n_p).astype(float),
        clips_per_patient=np.bincount(clip_p, minlength=n_p).astype(float),
        clip_patient_sorted=clip_p[forder],
        fom_lesion_patient=les_p,
        pos_less=np.searchsorted(Fs, rating, side="left"),
        pos_le=np.searchsorted(Fs, rating, side="right"),
    )


def _replicate_block(p: _Prepared, W: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity at each x (operating point) and the JAFROC FOM for a block of replicates.

    For FP rate x the operating point keeps the longest run of FP-track tie groups (by
    decreasing score) whose weighted count stays <= x * (weighted clips); with s* the score of
    the first group left out, the sensitivity is the weighted share of lesions rated above s*.
    Only the top tracks are summed: enough to pass the largest x in every replicate.
    """
    n_rows = W.shape[0]
    c_tot = W @ p.clips_per_patient
    l_tot = W @ p.lesions_per_patient
    limits = np.outer(c_tot, xs + EPS)  # fp <= x  <=>  weighted FPs <= x * weighted clips
    n_t = len(p.track_score)
    k = min(n_t, max(64, int(4 * limits.max() + 16)))
    while True:
        cum_f = np.cumsum(W[:, p.track_patient[:k]], axis=1)
        if k == n_t or (cum_f[:, -1] > limits.max(axis=1)).all():
            break
        k = min(n_t, 4 * k)
    lw = W[:, p.lesion_patient]
    tail = np.concatenate([np.cumsum(lw[:, ::-1], axis=1)[:, ::-1], np.zeros((n_rows, 1))], axis=1)
    sens = np.zeros((n_rows, len(xs)))
    for row in range(n_rows):
        j = np.searchsorted(cum_f[row], limits[row], side="right") if k else np.zeros(len(xs), int)
        included = p.group_floor[j]
        s_star = (
            np.where(included < n_t, p.track_score[np.minimum(included, n_t - 1)], -np.inf)
            if n_t
            else np.full(len(xs), -np.inf)
        )
        above = np.searchsorted(p.lesion_rating, s_star, side="right")
        # lesions never hit (rating -inf) are never above s*
        sens[row] = tail[row, above]
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = sens / l_tot[:, None]
    sens[l_tot == 0] = np.nan
    # JAFROC: A_l = sum_k w_k psi(F_k, s_l) through cumulative clip weights in F order.
    wk = W[:, p.clip_patient_sorted]
    cw = np.concatenate([np.zeros((n_rows, 1)), np.cumsum(wk, axis=1)], axis=1)
    A = cw[:, p.pos_less] + 0.5 * (cw[:, p.pos_le] - cw[:, p.pos_less])
    wl = W[:, p.fom_lesion_patient]
    with np.errstate(invalid="ignore", divide="ignore"):
        fom = (A * wl).sum(1) / (wk.sum(1) * wl.sum(1))
    return sens, fom


def patient_weights(n_patients: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights (B x P): how often each patient is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
    W = np.zeros((n_boot, n_patients))
    np.add.at(W, (np.repeat(np.arange(n_boot), n_patients), draws.ravel()), 1.0)
    return W


def paired_bootstrap(
    models: dict[str, ScanRatings],
    fp_rates: list[float],
    n_boot: int,
    seed: int = 0,
    grid: np.ndarray | None = None,
    progress: bool = True,
    block: int = 100,
) -> dict:
    """Resample patients with replacement and recompute every model's curve per replicate.

    Parameters
    ----------
    models : dict of str to ScanRatings
        Models rated on the same clips.
    fp_rates : list of float
        FP/scan rates at which sensitivity is recorded.
    n_boot : int
        Number of replicates.
    seed : int
        Random seed (same seed, same replicates).
    grid : ndarray, optional
        Extra FP/scan values at which sensitivity is recorded (for curve bands).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``{"sens": {name: (B, len(fp_rates))}, "grid": {name: (B, len(grid))},
        "fom": {name: (B,)}}``.
    """
    patients = sorted(set().union(*[set(r.clips["patient_id"]) for r in models.values()]))
    index = {p: i for i, p in enumerate(patients)}
    W = patient_weights(len(patients), n_boot, seed)
    grid = np.zeros(0) if grid is None else np.asarray(grid, float)
    xs = np.concatenate([np.asarray(fp_rates, float), grid])
    prepared = {name: _prepare(r, index) for name, r in models.items()}
    sens = {name: np.zeros((n_boot, len(xs))) for name in models}
    fom = {name: np.zeros(n_boot) for name in models}
    starts = range(0, n_boot, block)
    for s in tqdm(starts, desc="bootstrap", unit="block", disable=not progress):
        Wb = W[s : s + block]
        for name, p in prepared.items():
            sens[name][s : s + block], fom[name][s : s + block] = _replicate_block(p, Wb, xs)
    k = len(fp_rates)
    return {
        "sens": {n: v[:, :k] for n, v in sens.items()},
        "grid": {n: v[:, k:] for n, v in sens.items()},
        "fom": fom,
        "n_patients": len(patients),
    }


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> list[float]:
    """Percentile interval of bootstrap samples (NaN replicates dropped)."""
    s = np.asarray(samples, float)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(s, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return [float(lo), float(hi)]


def bootstrap_p(diff: np.ndarray) -> float:
    """Two-sided p = min(1, 2 min(P(diff <= 0), P(diff >= 0)))."""
    d = np.asarray(diff, float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    return float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())))
