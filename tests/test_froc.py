"""The study's metrics against hand-worked cases and properties (docs/metrics.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usbkit.evaluation.froc import (
    average_precision,
    froc_curve,
    interpolated_sensitivity,
    jafroc_fom,
    link_tracks,
    operating_point,
    psi,
    rate_scans,
    scan_froc,
)
from usbkit.evaluation.results import EvalConfig, evaluate_models
from usbkit.evaluation.stats import bootstrap_p, mcnemar_exact, paired_bootstrap

GT_COLS = ["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"]
DET_COLS = ["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]


def gt(*rows):
    return pd.DataFrame(rows, columns=GT_COLS)


def det(*rows):
    return pd.DataFrame(rows, columns=DET_COLS)


def clips(*ids, patients=None):
    return pd.DataFrame({"clip_id": list(ids), "patient_id": patients or [f"p_{c}" for c in ids]})


def test_hand_worked_operating_point_and_interpolation():
    c = froc_curve(np.array([0.9, 0.7, 0.4, -np.inf]), np.array([0.8, 0.5, 0.3]), 4, 2)
    assert c.threshold[0] == np.inf and c.fp_rate[0] == 0 and c.sensitivity[0] == 0
    assert c.threshold[1:].tolist() == [0.9, 0.8, 0.7, 0.5, 0.4, 0.3]
    assert c.sensitivity[1:].tolist() == [0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    assert c.fp_rate[1:].tolist() == [0.0, 0.5, 0.5, 1.0, 1.0, 1.5]
    assert operating_point(c, 0.5) == (0.5, 0.7, 0.5)
    assert operating_point(c, 0.2) == (0.25, 0.9, 0.0)
    assert operating_point(c, 1.0) == (0.75, 0.4, 1.0)
    assert interpolated_sensitivity(c, 0.2) == pytest.approx(0.35)
    assert interpolated_sensitivity(c, 0.75) == pytest.approx(0.625)
    assert interpolated_sensitivity(c, 3.0) == pytest.approx(0.75)  # held beyond the end
    none = froc_curve(np.array([0.5]), np.array([0.9]), 1, 1)
    s, t, f = operating_point(none, 0.5)
    assert s == 0 and t == np.inf and f == 0  # only the starting point qualifies


def test_ties_between_a_lesion_rating_and_an_fp_score_enter_together():
    c = froc_curve(np.array([0.6]), np.array([0.6]), 1, 1)
    assert c.sensitivity.tolist() == [0, 1] and c.fp_rate.tolist() == [0, 1]
    assert operating_point(c, 0.5)[0] == 0.0


def test_duplicate_hits_are_neither_tp_nor_fp_and_lesion_free_clips_count():
    g = gt(("a", 0, "L", 0, 0, 10, 10), ("a", 3, "L", 0, 0, 10, 10))
    d = det(
        ("a", 0, 0.9, 2, 2, 8, 8),
        ("a", 0, 0.8, 1, 1, 9, 9),
        ("a", 3, 0.95, 3, 3, 7, 7),
        ("b", 0, 0.5, 50, 50, 60, 60),
    )
    r = rate_scans(g, d, clips("a", "b"), n_frames=20)
    assert r.lesions["rating"].tolist() == [0.95]  # highest hit over all frames
    assert r.tracks["score"].tolist() == [0.5]  # only the detection in the lesion-free clip
    c = scan_froc(r)
    assert operating_point(c, 0.5) == (1.0, 0.5, 0.5)  # 1 FP / 2 clips
    assert operating_point(c, 0.4) == (1.0, 0.95, 0.0)


def test_center_hit_includes_edges_and_iou_rule():
    g = gt(("a", 0, "L", 0, 0, 10, 10))
    edge = det(("a", 0, 0.5, 5, 5, 15, 15))  # centre (10, 10) on the corner
    assert rate_scans(g, edge, clips("a"), 1).lesions["rating"].tolist() == [0.5]
    assert rate_scans(g, edge, clips("a"), 1, "iou:0.3").lesions["rating"].tolist() == [-np.inf]
    assert rate_scans(g, edge, clips("a"), 1, "iou:0.14").lesions["rating"].tolist() == [0.5]


def test_linker_joins_splits_and_breaks_ties_as_specified():
    b = np.array([0, 0, 10, 10], float)
    far = np.array([100, 100, 110, 110], float)
    frames = np.array([0, 1, 7, 13, 14, 14, 19, 19])
    scores = np.array([0.5, 0.6, 0.4, 0.3, 0.2, 0.9, 0.1, 0.1])
    boxes = np.stack([b, b + 1, b, b, far, b, b, b])
    tid = link_tracks(frames, scores, boxes)
    # 0,1 joined (gap 1); frame 7 is 6 after frame 1 -> new track; frame 13 joins it (gap 6? no:
    # 13 - 7 = 6 > 5 -> new track).
    assert tid[0] == tid[1]
    assert tid[2] != tid[1]
    assert tid[3] not in (tid[1], tid[2])
    # frame 14: the 0.9 detection goes first and takes track of frame 13; 'far' starts a track
    assert tid[5] == tid[3] and tid[4] not in tid[:4]
    # frame 19 (gap 5): two identical detections, the first (input order) joins the frame-14
    # track, the second starts anew: a track takes one detection per frame
    assert tid[6] == tid[5] and tid[7] != tid[6]


def test_linker_tie_goes_to_the_track_created_first_and_low_iou_splits():
    frames = np.array([0, 0, 1, 2])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    left = np.array([0, 0, 10, 10.0])
    right = np.array([10, 0, 20, 10.0])
    mid = np.array([5, 0, 15, 10.0])  # IoU 1/3 with both
    tid = link_tracks(frames, scores, np.stack([left, right, mid, np.array([50, 50, 60, 60.0])]))
    assert tid[2] == tid[0]  # tie on IoU -> first-created track
    assert tid[3] not in tid[:3]  # IoU 0 -> new track


def test_perfect_detector_and_monotone_curves_and_row_order():
    rng = np.random.default_rng(0)
    rows_g, rows_d = [], []
    for c in range(12):
        for f in range(5):
            if c % 3:
                x = float(rng.uniform(0, 50))
                rows_g.append((f"c{c}", f, "1", x, x, x + 20, x + 20))
                rows_d.append(
                    (f"c{c}", f, float(rng.uniform(0.6, 1)), x + 2, x + 2, x + 18, x + 18)
                )
            for _ in range(2):
                y = float(rng.uniform(100, 200))
                rows_d.append((f"c{c}", f, float(rng.uniform(0, 0.5)), y, y, y + 10, y + 10))
    g, d = gt(*rows_g), det(*rows_d)
    cl = clips(*[f"c{c}" for c in range(12)], patients=[f"p{c // 2}" for c in range(12)])
    frames = {f"c{c}": 5 for c in range(12)}
    res = evaluate_models(g, {"m": d}, cl, frames, EvalConfig(n_boot=50), progress=False)
    m = res["models"]["m"]
    assert m["sensitivity"] == [1.0, 1.0, 1.0]  # every lesion outranks every FP
    sens, fp = np.array(m["froc"]["sensitivity"]), np.array(m["froc"]["fp_per_scan"])
    assert sens[fp == 0].max() == 1.0  # sensitivity 1 at 0 FP/scan
    assert (np.diff(sens) >= 0).all() and (np.diff(fp) >= 0).all()
    shuffled = {"m": d.sample(frac=1, random_state=3)}
    res2 = evaluate_models(
        g.sample(frac=1, random_state=4),
        shuffled,
        cl,
        frames,
        EvalConfig(n_boot=50),
        progress=False,
    )
    assert res2 == res


def test_mcnemar_matches_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar

    for table in ([[10, 3], [9, 4]], [[5, 0], [7, 1]], [[3, 12], [2, 0]], [[4, 0], [0, 4]]):
        assert mcnemar_exact(np.array(table)) == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_jafroc_matches_a_brute_force_count():
    rng = np.random.default_rng(1)
    g_rows, d_rows = [], []
    for c in range(8):
        for lesion in range(c % 3):
            g_rows.append((f"c{c}", 0, str(lesion), 10 + 30 * lesion, 0, 30 + 30 * lesion, 20))
            if rng.random() < 0.7:
                d_rows.append(
                    (
                        f"c{c}",
                        0,
                        float(rng.choice([0.2, 0.5, 0.8])),
                        12 + 30 * lesion,
                        2,
                        28 + 30 * lesion,
                        18,
                    )
                )
        for _ in range(rng.integers(0, 3)):
            d_rows.append((f"c{c}", 0, float(rng.choice([0.2, 0.5, 0.9])), 200, 200, 210, 210))
    r = rate_scans(gt(*g_rows), det(*d_rows), clips(*[f"c{c}" for c in range(8)]), 8)
    F = [r.tracks.loc[r.tracks.clip_id == f"c{c}", "score"].max() for c in range(8)]
    F = [-np.inf if pd.isna(v) else v for v in F]
    s = r.lesions["rating"].tolist()
    brute = np.mean([psi(fk, sl) for fk in F for sl in s])
    assert jafroc_fom(r) == pytest.approx(brute)
    assert psi(-np.inf, -np.inf) == 0.5


def test_bootstrap_is_reproducible_and_p_value_definition():
    g = gt(*[(f"c{c}", 0, "1", 0, 0, 10, 10) for c in range(10)])
    da = det(*[(f"c{c}", 0, 0.9, 2, 2, 8, 8) for c in range(10)])
    db = det(
        *[(f"c{c}", 0, 0.9 if c < 5 else 0.1, 2, 2, 8, 8) for c in range(10)],
        *[(f"c{c}", 0, 0.5, 50, 50, 60, 60) for c in range(10)],
    )
    cl = clips(*[f"c{c}" for c in range(10)])
    ra, rb = (rate_scans(g, d, cl, 10) for d in (da, db))
    one = paired_bootstrap({"a": ra, "b": rb}, [0.5], n_boot=300, seed=7, progress=False)
    two = paired_bootstrap({"a": ra, "b": rb}, [0.5], n_boot=300, seed=7, progress=False)
    three = paired_bootstrap({"a": ra, "b": rb}, [0.5], n_boot=300, seed=8, progress=False)
    assert np.array_equal(one["sens"]["a"], two["sens"]["a"])
    assert not np.array_equal(one["sens"]["b"], three["sens"]["b"])
    assert np.all(one["sens"]["a"] == 1.0)
    assert bootstrap_p(np.array([1, 2, 3, -1.0])) == pytest.approx(0.5)
    assert bootstrap_p(np.array([0, 0, 0.0])) == 1.0


def test_bootstrap_replicate_equals_direct_recomputation():
    """A replicate with weights w must equal the curve of the explicitly duplicated cohort."""
    from usbkit.evaluation.stats import _prepare, _replicate_block

    rng = np.random.default_rng(2)
    g_rows, d_rows = [], []
    for c in range(6):
        g_rows.append((f"c{c}", 0, "1", 0, 0, 10, 10))
        d_rows.append((f"c{c}", 0, float(rng.uniform()), 2, 2, 8, 8))
        for k in range(int(rng.integers(0, 3))):
            d_rows.append((f"c{c}", k, float(rng.uniform()), 100, 100, 110, 110))
    cl = clips(*[f"c{c}" for c in range(6)])
    r = rate_scans(gt(*g_rows), det(*d_rows), cl, 6)
    w = np.array([[2, 0, 1, 0, 3, 0]], float)
    index = {p: i for i, p in enumerate(sorted(cl["patient_id"]))}
    sens, fom = _replicate_block(_prepare(r, index), w, np.array([0.5, 1.0]))
    keep = np.repeat(np.arange(6), w[0].astype(int))
    les = np.concatenate([r.lesions.loc[r.lesions.clip_id == f"c{c}", "rating"] for c in keep])
    trk = np.concatenate([r.tracks.loc[r.tracks.clip_id == f"c{c}", "score"] for c in keep])
    curve = froc_curve(les, trk, len(les), len(keep))
    assert sens[0, 0] == operating_point(curve, 0.5)[0]
    assert sens[0, 1] == operating_point(curve, 1.0)[0]


def test_ap50_hand_case():
    g = gt(("a", 0, "1", 0, 0, 10, 10), ("a", 1, "1", 0, 0, 10, 10))
    d = det(("a", 0, 0.9, 0, 0, 10, 10), ("a", 0, 0.8, 0, 0, 10, 10), ("a", 1, 0.7, 50, 50, 60, 60))
    # ranks: TP, FP (duplicate), FP -> recall reaches 0.5 at precision 1
    assert average_precision(g, d) == pytest.approx(np.mean(np.linspace(0, 1, 101) <= 0.5))


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_replicates_match_direct_curves_with_ties(seed):
    """Random cohorts with tied scores: every replicate equals the duplicated-cohort curve."""
    from usbkit.evaluation.stats import _prepare, _replicate_block

    rng = np.random.default_rng(seed)
    g_rows, d_rows = [], []
    n = 9
    for c in range(n):
        for lesion in range(int(rng.integers(0, 3))):
            g_rows.append((f"c{c}", 0, str(lesion), 40 * lesion, 0, 40 * lesion + 10, 10))
            if rng.random() < 0.8:
                d_rows.append(
                    (
                        f"c{c}",
                        0,
                        round(float(rng.uniform()), 1),
                        40 * lesion + 2,
                        2,
                        40 * lesion + 8,
                        8,
                    )
                )
        for k in range(int(rng.integers(0, 4))):
            d_rows.append((f"c{c}", 10 * k, round(float(rng.uniform()), 1), 300, 300, 310, 310))
    cl = clips(*[f"c{c}" for c in range(n)], patients=[f"p{c // 2}" for c in range(n)])
    r = rate_scans(gt(*g_rows), det(*d_rows), cl, n)
    index = {p: i for i, p in enumerate(sorted(set(cl["patient_id"])))}
    xs = np.array([0.0, 0.1, 0.25, 0.5, 1.0, 2.0])
    W = rng.integers(0, 3, size=(6, len(index))).astype(float)
    W[:, 0] += 1
    sens, fom = _replicate_block(_prepare(r, index), W, xs)
    pat = cl["patient_id"].map(index).to_numpy()
    for row in range(len(W)):
        keep = np.concatenate(
            [np.repeat(np.flatnonzero(pat == p), int(W[row, p])) for p in range(len(index))]
        )
        ids = [f"c{c}" for c in keep]
        les = np.concatenate([r.lesions.loc[r.lesions.clip_id == i, "rating"] for i in ids])
        trk = np.concatenate([r.tracks.loc[r.tracks.clip_id == i, "score"] for i in ids])
        if len(les) == 0:
            assert np.isnan(sens[row]).all()
            continue
        curve = froc_curve(les, trk, len(les), len(ids))
        for k, x in enumerate(xs):
            assert sens[row, k] == pytest.approx(operating_point(curve, x)[0])


def reference_link(frames, scores, boxes, max_gap=5, min_iou=0.3):
    """The linker of docs/metrics.md#fp-tracks-the-linker, one detection at a time."""
    from usbkit.evaluation.matching import iou

    order = sorted(range(len(frames)), key=lambda i: (frames[i], -scores[i], i))
    last = []  # per track, in creation order: (index of its last detection, its frame)
    out = [-1] * len(frames)
    for i in order:
        best, best_t = -1.0, -1
        for t, (j, f) in enumerate(last):
            if f == frames[i] or f < frames[i] - max_gap:  # taken this frame, or not live
                continue
            v = float(iou(np.asarray(boxes[i], float), np.asarray(boxes[j], float)))
            if v >= min_iou and v > best:  # strict: equal IoUs go to the older track
                best, best_t = v, t
        if best_t < 0:
            best_t = len(last)
            last.append(None)
        out[i] = best_t
        last[best_t] = (i, frames[i])
    return np.array(out, dtype=np.int64)


@pytest.mark.parametrize("seed", range(60))
def test_fast_linker_equals_the_reference_loop_on_random_inputs_with_ties(seed):
    """Crowded frames, equal scores, equal IoUs (integer boxes), gaps around max_gap, several
    clips linked in one pass: the fast linker gives exactly the reference's tracks."""
    from usbkit.evaluation.froc import link_tracks

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    frames = rng.integers(0, int(rng.integers(1, 25)), n) * int(rng.integers(1, 4))
    scores = np.round(rng.uniform(size=n), 1)  # many equal scores
    centres = rng.uniform(0, 40, (int(rng.integers(1, 5)), 2)).round()
    xy = centres[rng.integers(0, len(centres), n)] + rng.integers(0, 4, (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(5, 12, (n, 2))], 1).astype(float)
    clip = rng.integers(0, 3, n)
    gap, thr = int(rng.integers(1, 7)), float(rng.choice([0.1, 0.3, 0.5]))
    fast = link_tracks(frames, scores, boxes, max_gap=gap, min_iou=thr, clips=clip)
    for c in np.unique(clip):
        sel = clip == c
        ref = reference_link(frames[sel], scores[sel], boxes[sel], gap, thr)
        assert np.array_equal(fast[sel], ref)
        one = link_tracks(frames[sel], scores[sel], boxes[sel], max_gap=gap, min_iou=thr)
        assert np.array_equal(one, ref)  # a clip alone links as it does among others


def test_linker_links_a_large_clip_like_the_reference():
    from usbkit.evaluation.froc import link_tracks

    rng = np.random.default_rng(4)
    n = 300
    frames = np.sort(rng.integers(0, 40, n))
    scores = np.round(rng.uniform(size=n), 2)
    xy = rng.uniform(0, 60, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(8, 20, (n, 2))], 1)
    a = link_tracks(frames, scores, boxes)
    assert np.array_equal(a, reference_link(frames, scores, boxes))
    assert a.max() < n - 1  # some detections were linked


def test_rate_scans_tracks_are_per_clip_in_creation_order():
    g = gt(("a", 0, "L", 0, 0, 10, 10))
    d = det(
        ("b", 0, 0.2, 50, 50, 60, 60),
        ("a", 2, 0.7, 50, 50, 60, 60),
        ("b", 1, 0.9, 51, 50, 61, 60),
        ("a", 0, 0.4, 80, 80, 90, 90),
        ("b", 0, 0.3, 0, 0, 5, 5),
    )
    r = rate_scans(g, d, clips("a", "b"), n_frames=6)
    t = r.tracks
    assert t["clip_id"].tolist() == ["a", "a", "b", "b"]
    assert t["track"].tolist() == [0, 1, 0, 1]
    # clip a: frame 0 (0.4) then frame 2 (0.7, far away); clip b: frame 0 by score: the
    # 0.3 box starts track 0, the 0.2 box track 1, which the frame-1 box (0.9) joins
    assert t["score"].tolist() == [0.4, 0.7, 0.3, 0.9]
    assert t["patient_id"].tolist() == ["p_a", "p_a", "p_b", "p_b"]
    # each track says where its best detection is (the 0.9 box of frame 1 for b's track 1)
    assert t["frame"].tolist() == [0, 2, 0, 1]
    assert t[["x0", "y0", "x1", "y1"]].to_numpy().tolist() == [
        [80, 80, 90, 90],
        [50, 50, 60, 60],
        [0, 0, 5, 5],
        [51, 50, 61, 60],
    ]


def test_rate_scans_with_no_false_positive_has_no_tracks():
    g = gt(("a", 0, "L", 0, 0, 10, 10))
    r = rate_scans(g, det(("a", 0, 0.8, 1, 1, 9, 9)), clips("a"), n_frames=1)
    assert r.tracks.empty
    assert list(r.tracks.columns)[:4] == ["clip_id", "patient_id", "track", "score"]


def test_metrics_doc_gives_both_interpolated_readings_of_its_worked_example():
    """docs/metrics.md: usbkit reads 0.625 at 0.5 FP/scan, MONAI's np.interp over every point
    reads 0.5; AP's recall levels are np.linspace(0, 1, 101), as pycocotools builds them."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    c = froc_curve(
        ratings=np.array([0.9, 0.4, 0.6, -np.inf]),
        fp_scores=np.array([0.8, 0.6, 0.5, 0.3]),
        n_units=4,
        n_norm=5,
    )
    assert interpolated_sensitivity(c, 0.5) == pytest.approx(0.625)
    order = np.argsort(c.fp_rate, kind="stable")
    monai = np.interp(0.5, c.fp_rate[order], c.sensitivity[order])
    assert monai == pytest.approx(0.5)
    assert "usbkit gives 0.625 and\n  MONAI 0.5" in doc and "= **0.5** at x = 0.5" in doc
    assert "As MONAI, nnDetection" not in doc
    assert "`np.linspace(0, 1, 101)`" in doc and "0, 0.01, …," not in doc
    for rule in ("**Equal scores.**", "**Equal IoU.**"):
        assert rule in doc


def test_bootstrap_progress_bar_counts_replicates_not_blocks(capsys):
    """2,000 replicates read 2000/2000 on the bar (it read 20/20 blocks)."""
    g = gt(*[(f"c{c}", 0, "1", 0, 0, 10, 10) for c in range(4)])
    d = det(*[(f"c{c}", 0, 0.9, 2, 2, 8, 8) for c in range(4)])
    r = rate_scans(g, d, clips(*[f"c{c}" for c in range(4)]), 10)
    paired_bootstrap({"a": r, "b": r}, [0.5], n_boot=250, seed=0, progress=True)
    bar = capsys.readouterr().err
    assert "250/250" in bar and "replicate" in bar and "block" not in bar
