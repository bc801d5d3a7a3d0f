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
    """Two-sided exact McNemar p value of a 2x2 paired table [[n11, n10], [n01, n00]].

    Examples
    --------
    >>> mcnemar_exact(np.array([[10, 6], [1, 3]]))  # 2 x P(X <= 1), X ~ Binomial(7, 1/2)
    0.125
    """
    return float(mcnemar_p(np.array([table[0][1]]), np.array([table[1][0]]))[0])


def mcnemar_p(n10: np.ndarray, n01: np.ndarray, exact: bool = True) -> np.ndarray:
    """McNemar p values of many paired tables at once, from their discordant counts.

    ``exact``: the two-sided exact binomial test, min(1, 2 P(X <= min(n10, n01))) for
    X ~ Binomial(n10 + n01, 1/2) (docs/metrics.md#mcnemars-exact-test); otherwise the
    uncorrected chi-square form, (n10 - n01)^2 / (n10 + n01) on 1 degree of freedom, which
    the closed-form sample size assumes. P = 1 without discordant lesions. (statsmodels'
    ``mcnemar`` computes the same for one table; a test checks that they agree.)
    """
    from scipy.stats import binom, chi2

    b = np.rint(np.asarray(n10, float))
    c = np.rint(np.asarray(n01, float))
    n = b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        if exact:
            p = np.minimum(1.0, 2 * binom.cdf(np.minimum(b, c), n, 0.5))
        else:
            p = chi2.sf((b - c) ** 2 / n, 1)
    return np.where(n > 0, p, 1.0)


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


def _group_floor(ts: np.ndarray) -> np.ndarray:
    """For a prefix of j of the tracks (scores ``ts``, decreasing), the tracks of the complete
    tie groups it holds."""
    starts = np.flatnonzero(np.concatenate([[True], ts[1:] != ts[:-1], [True]]))
    return starts[np.searchsorted(starts, np.arange(len(ts) + 1), side="right") - 1]


def restrict_tracks(p: _Prepared, patients: np.ndarray) -> _Prepared:
    """The FP tracks and clips of some patients only, renumbered 0 .. len(patients) - 1 in
    the given order: what :func:`operating_cut` needs for replicates drawn from them (the
    lesion and JAFROC fields are left empty)."""
    local = np.full(len(p.clips_per_patient), -1, dtype=np.int64)
    local[patients] = np.arange(len(patients))
    keep = local[p.track_patient] >= 0
    ts = p.track_score[keep]
    none_f, none_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return _Prepared(
        track_patient=local[p.track_patient[keep]],
        track_score=ts,
        group_floor=_group_floor(ts),
        lesion_rating=none_f,
        lesion_patient=none_i,
        lesions_per_patient=none_f,
        clips_per_patient=p.clips_per_patient[patients],
        clip_patient_sorted=none_i,
        fom_lesion_patient=none_i,
        pos_less=none_i,
        pos_le=none_i,
    )


def _prepare(r: ScanRatings, index: dict) -> _Prepared:
    rating = r.lesions["rating"].to_numpy(float)
    les_p = r.lesions["patient_id"].map(index).to_numpy(int)
    trk_p = r.tracks["patient_id"].map(index).to_numpy(int)
    trk_s = r.tracks["score"].to_numpy(float)
    order = np.argsort(-trk_s, kind="stable")
    ts = trk_s[order]
    floor = _group_floor(ts)
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


def _count_at_most(cum: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Row by row, how many entries of ``cum`` are <= each limit (``searchsorted``, side
    right, of every row at once). ``cum``: non-decreasing rows of whole counts (int);
    ``limits``: (rows, m), >= 0."""
    rows, k = cum.shape
    li = np.floor(limits).astype(np.int64)  # a count is <= a limit iff <= its floor
    if k == 0:
        return np.zeros(li.shape, dtype=np.int64)
    if li.shape[1] <= 4:  # few limits: compare directly
        return np.stack([(cum <= li[:, [m]]).sum(axis=1) for m in range(li.shape[1])], axis=1)
    span = int(max(cum[:, -1].max(), li.max(), 0)) + 2
    offset = np.arange(rows, dtype=np.int64)[:, None] * span  # keeps the rows apart
    pos = np.searchsorted((cum + offset).ravel(), (li + offset).ravel(), side="right")
    return pos.reshape(li.shape) - np.arange(rows, dtype=np.int64)[:, None] * k


def operating_cut(p: _Prepared, W: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """s* of each replicate (row of patient counts ``W``) and FP rate: at the operating point.

    For FP rate x the operating point keeps the longest run of FP-track tie groups (by
    decreasing score) whose weighted count stays <= x * (weighted clips); s* is the score of
    the first group left out (-inf when every track is in). A lesion is detected at the
    operating point exactly when its rating is above s* (its threshold thr(x) is the lowest
    curve threshold above s*). Only the top tracks are summed: enough to pass the largest x
    in every replicate.

    Returns
    -------
    ndarray, shape (n_rows, len(xs))
    """
    xs = np.asarray(xs, float)
    n_rows, n_t = W.shape[0], len(p.track_score)
    if n_t == 0:
        return np.full((n_rows, len(xs)), -np.inf)
    counts = np.rint(W).astype(np.int64)  # whole patient counts
    c_tot = counts @ p.clips_per_patient.astype(np.int64)
    limits = np.outer(c_tot, xs + EPS)  # fp <= x  <=>  weighted FPs <= x * weighted clips
    # tracks to sum: twice what the mean patient weight needs to pass the largest limit
    w_mean = max(float(counts.sum(axis=1).mean()) / W.shape[1], 1e-3)
    k = min(n_t, max(64, int(2 * limits.max() / w_mean + 16)))
    while True:
        cum = np.cumsum(counts[:, p.track_patient[:k]], axis=1)
        if k == n_t or (cum[:, -1] > limits.max(axis=1)).all():
            break
        k = min(n_t, 2 * k)
    included = p.group_floor[_count_at_most(cum, limits)]
    return np.where(included < n_t, p.track_score[np.minimum(included, n_t - 1)], -np.inf)


def _replicate_block(p: _Prepared, W: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensitivity at each x (operating point) and the JAFROC FOM for a block of replicates.

    The sensitivity is the weighted share of lesions rated above s* (:func:`operating_cut`).
    """
    n_rows = W.shape[0]
    l_tot = W @ p.lesions_per_patient
    s_star = operating_cut(p, W, xs)
    lw = W[:, p.lesion_patient]
    tail = np.concatenate([np.cumsum(lw[:, ::-1], axis=1)[:, ::-1], np.zeros((n_rows, 1))], axis=1)
    # lesions never hit (rating -inf) are never above s*
    above = np.searchsorted(p.lesion_rating, s_star, side="right")
    sens = np.take_along_axis(tail, above, axis=1)
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


def draw_counts(rng: np.random.Generator, n_rows: int, n_patients: int, n_draws: int) -> np.ndarray:
    """Patient counts (rows x patients) of ``n_draws`` draws with replacement per row."""
    draws = rng.integers(0, n_patients, size=(n_rows, n_draws))
    flat = (draws + np.arange(n_rows)[:, None] * n_patients).ravel()
    counts = np.bincount(flat, minlength=n_rows * n_patients)
    return counts.reshape(n_rows, n_patients).astype(float)


def patient_weights(n_patients: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights (B x P): how often each patient is drawn in each replicate."""
    return draw_counts(np.random.default_rng(seed), n_boot, n_patients, n_patients)


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
    # the bar counts replicates (2000/2000), not the blocks they are computed in
    with tqdm(total=n_boot, desc="bootstrap", unit="replicate", disable=not progress) as bar:
        for s in range(0, n_boot, block):
            Wb = W[s : s + block]
            for name, p in prepared.items():
                sens[name][s : s + block], fom[name][s : s + block] = _replicate_block(p, Wb, xs)
            bar.update(len(Wb))
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
    return float(bootstrap_p_rows(np.asarray(diff, float)[None, :])[0])


def bootstrap_p_rows(diff: np.ndarray) -> np.ndarray:
    """:func:`bootstrap_p` of each row of replicate differences (NaN replicates dropped; NaN
    for a row without any)."""
    d = np.asarray(diff, float)
    fin = np.isfinite(d)
    n = fin.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        le = ((d <= 0) & fin).sum(axis=1) / n
        ge = ((d >= 0) & fin).sum(axis=1) / n
    return np.where(n > 0, np.minimum(1.0, 2 * np.minimum(le, ge)), np.nan)
