"""The literature's video-detection metrics and time to first detection, on hand-worked cases
(docs/metrics.md: COCO AP, Pr80 / Pr90, FP80 / FP90, time to first detection)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from usbkit.evaluation.froc import (
    COCO_IOUS,
    RankedMatches,
    average_precision,
    greedy_assign,
    rank_matches,
    rate_scans,
)
from usbkit.evaluation.literature import (
    fp_chains,
    link_chains,
    literature_metrics,
    precision_at_recall,
    recall_threshold,
)
from usbkit.evaluation.matching import iou, match
from usbkit.evaluation.results import EvalConfig, evaluate_models
from usbkit.evaluation.ttfd import paired_difference, summarize, time_to_first_detection

GT_COLS = ["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"]
DET_COLS = ["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]


def gt(*rows):
    return pd.DataFrame(rows, columns=GT_COLS)


def det(*rows):
    return pd.DataFrame(rows, columns=DET_COLS)


# ------------------------------------------------------------------ AP family
def test_coco_ap_ap50_ap75_hand_worked():
    """Box G on frame 0, box H on frame 1. d1 covers G with IoU 0.9, d2 covers H with IoU
    0.8, d3 is G exactly (IoU 1) but ranked last.

    IoU thresholds 0.50-0.80: TP, TP, FP (d3 finds G taken) -> AP 1. At 0.85 and 0.90:
    TP, FP, FP -> precision 1 up to recall 0.5 -> AP = 51/101. At 0.95 only d3 matches, at
    rank 3: precision 1/3 up to recall 0.5 -> AP = 51/303. COCO AP is their mean."""
    g = gt(("A", 0, "1", 0, 0, 10, 10), ("A", 1, "2", 20, 0, 30, 10))
    d = det(
        ("A", 0, 0.9, 0, 0, 10, 9),  # IoU 90/100
        ("A", 1, 0.8, 20, 0, 28, 10),  # IoU 80/100
        ("A", 0, 0.7, 0, 0, 10, 10),  # G itself, ranked last
    )
    rm = rank_matches(g, d, COCO_IOUS)
    aps = [rm.average_precision(k) for k in range(10)]
    assert aps[:7] == [1.0] * 7
    assert aps[7:9] == pytest.approx([51 / 101] * 2)
    assert aps[9] == pytest.approx(51 / 303)
    m = literature_metrics(g, d, {"A": 30}, {"A": 30.0})
    assert m["ap50"] == 1.0 and m["ap75"] == 1.0
    assert m["ap"] == pytest.approx((7 + 2 * 51 / 101 + 51 / 303) / 10)
    assert average_precision(g, d, 0.85) == pytest.approx(51 / 101)


def test_ap_matching_takes_the_best_free_box_and_breaks_ties_by_row():
    # two boxes in one frame; the top detection overlaps both, the better one (H) is taken,
    # the second detection gets G; a third equal-IoU case goes to the earlier row
    g = gt(("A", 0, "1", 0, 0, 10, 10), ("A", 0, "2", 2, 0, 12, 10))
    d = det(("A", 0, 0.9, 2, 0, 12, 10), ("A", 0, 0.8, 0, 0, 10, 10))
    assert rank_matches(g, d).tp[0].tolist() == [True, True]
    tie = det(("A", 0, 0.9, 1, 0, 11, 10))  # IoU 9/11 with both boxes
    g2 = gt(("A", 0, "1", 0, 0, 10, 10), ("A", 0, "2", 2, 0, 12, 10), ("A", 0, "3", 1, 0, 11, 10))
    rm = rank_matches(g2, pd.concat([tie, det(("A", 0, 0.5, 0, 0, 10, 10))]))
    assert rm.tp[0].tolist() == [True, True]  # exact box 3 first, then box 1 (IoU 1)


@pytest.mark.parametrize("seed", range(20))
def test_greedy_assign_equals_the_sequential_rule(seed):
    rng = np.random.default_rng(seed)
    n_agents, n_res = int(rng.integers(1, 30)), int(rng.integers(1, 12))
    pairs = {(a, r) for a, r in zip(rng.integers(0, n_agents, 60), rng.integers(0, n_res, 60))}
    pref = {p: rng.random() for p in pairs}
    order = sorted(pairs, key=lambda p: (p[0], -pref[p]))
    agent = np.array([p[0] for p in order], dtype=np.int64)
    res = np.array([p[1] for p in order], dtype=np.int64)
    priority = rng.permutation(n_agents)
    got = greedy_assign(agent, res, priority, n_res)
    taken, want = set(), np.full(n_agents, -1)
    for a in np.argsort(priority):  # the sequential rule, one agent at a time
        for r in [p[1] for p in order if p[0] == a]:
            if r not in taken:
                taken.add(r)
                want[a] = r
                break
    assert got.tolist() == want.tolist()


# ------------------------------------------------------------------ Pr80 / Pr90
def test_precision_at_recall_hand_worked():
    """Five boxes; ranked TP, TP, FP, TP, FP, TP, TP: the curve's points are (0.2, 1),
    (0.4, 1), (0.6, 3/4), (0.8, 4/6), (1.0, 5/7)."""
    tp = np.array([[1, 1, 0, 1, 0, 1, 1]], bool)
    rm = RankedMatches(score=np.linspace(1, 0.4, 7), tp=tp, iou_thresholds=(0.5,), n_gt=5)
    assert precision_at_recall(rm, 0.8) == pytest.approx(4 / 6)
    assert precision_at_recall(rm, 0.9) == pytest.approx((4 / 6 + 5 / 7) / 2)
    short = RankedMatches(
        score=np.ones(2), tp=np.array([[1, 1]], bool), iou_thresholds=(0.5,), n_gt=5
    )
    assert np.isnan(precision_at_recall(short, 0.8))  # recall 0.4 never reaches 0.8


def test_recall_threshold_is_the_highest_reaching_and_takes_its_tie_group():
    # ten boxes, recall 0.8 first reached at the 8th TP (score 0.6), which ties with a 9th
    scores = np.array([0.9] * 6 + [0.7, 0.6, 0.6, 0.3])
    tp = np.ones((1, 10), bool)
    rm = RankedMatches(score=scores, tp=tp, iou_thresholds=(0.5,), n_gt=10)
    assert recall_threshold(rm, 0.8) == (0.6, 0.9)
    assert recall_threshold(rm, 0.95) == (0.3, 1.0)
    none = RankedMatches(score=scores[:5], tp=tp[:, :5], iou_thresholds=(0.5,), n_gt=10)
    t, r = recall_threshold(none, 0.8)
    assert np.isnan(t) and np.isnan(r)


# ------------------------------------------------------------------ FP80 chains
B = [0.0, 0.0, 10.0, 10.0]


def test_chains_link_within_five_frames_above_iou_one_half():
    boxes = np.array([B, B, B, [0, 0, 10, 20], B, [0, 0, 10, 19], B, B], float)
    frames = np.array([0, 5, 11, 12, 20, 21, 30, 30])
    clips = np.array(["A"] * 7 + ["B"])
    c = link_chains(clips, frames, np.ones(8), boxes)
    assert c[0] == c[1]  # gap 5 links
    assert c[2] != c[1]  # gap 6 does not
    assert c[3] != c[2]  # IoU exactly 0.5 does not link (strictly above)
    assert c[5] == c[4]  # IoU 100/190: links
    assert c[6] != c[7]  # other clip


def test_chain_parent_is_the_best_iou_and_chains_may_branch():
    boxes = np.array([B, [40, 0, 50, 10], [1, 0, 11, 10], [0, 0, 10, 10], [40, 0, 50, 11]], float)
    c = link_chains(np.zeros(5), np.array([0, 0, 1, 2, 2]), np.ones(5), boxes)
    assert c[2] == c[0] and c[3] == c[0]  # two later boxes link to the same chain
    assert c[4] == c[1] and c[1] != c[0]


def test_a_chain_is_an_fp_unless_more_than_90_percent_true():
    g = gt(*[("A", f, "1", 0, 0, 10, 10) for f in range(10)])
    # chain 1: ten detections, 9 inside the box (centre), 1 on a frame without lesion box
    rows = [("A", f, 0.9, 0, 0, 10, 10) for f in range(9)] + [("A", 12, 0.9, 0, 0, 10, 10)]
    assert fp_chains(g, det(*rows), 0.5) == (1, 1)  # 90% true: not more than 90% -> FP
    g11 = gt(*[("A", f, "1", 0, 0, 10, 10) for f in range(10)])
    rows11 = [("A", f, 0.9, 0, 0, 10, 10) for f in range(10)] + [("A", 12, 0.9, 0, 0, 10, 10)]
    assert fp_chains(g11, det(*rows11), 0.5) == (0, 1)  # 10 of 11 true: a true chain
    assert fp_chains(g11, det(*rows11), 0.95) == (0, 0)  # nothing kept


def test_fp80_hand_worked_with_own_and_fixed_frame_rates():
    """Clip A (1,800 frames at 30 fps, one minute) has a lesion on frames 0-9; the model finds
    it on frames 0-8 (score 0.9), marks a mimic on frames 2-5 (0.95, one chain) and a spot on
    frame 20 (0.92), and a faint mark (0.5). Clip B is lesion-free: 900 frames at 15 fps (one
    minute; half a minute at 30 fps).

    Recall at IoU 0.5 first reaches 0.8 at score 0.9 (with its tie group: 9 of 10 boxes), so
    t80 = t90 = 0.9: kept are the 9 true marks (one true chain), the mimic chain and the spot:
    2 FP chains over 2 minutes (own fps) = 1.0 per minute; over 2,700 / 1,800 = 1.5 minutes at
    30 fps = 4/3 per minute. Ranked: 4 mimic, the spot, then 9 TPs: Pr80 = 8/13, Pr90 = 9/14."""
    g = gt(*[("A", f, "1", 0, 0, 10, 10) for f in range(10)])
    d = det(
        *[("A", f, 0.9, 1, 1, 11, 11) for f in range(9)],
        *[("A", f, 0.95, 50, 50, 60, 60) for f in range(2, 6)],
        ("A", 20, 0.92, 80, 80, 90, 90),
        ("A", 30, 0.5, 80, 0, 90, 10),
    )
    m = literature_metrics(g, d, {"A": 1800, "B": 900}, {"A": 30.0, "B": 15.0})
    assert m["pr80"] == pytest.approx(8 / 13) and m["pr90"] == pytest.approx(9 / 14)
    for key in ("fp80", "fp90"):
        assert m[key]["threshold"] == 0.9 and m[key]["recall"] == pytest.approx(0.9)
        assert (m[key]["fp_chains"], m[key]["chains"]) == (2, 3)
        assert m[key]["own_fps"] == pytest.approx(1.0)
        assert m[key]["fps30"] == pytest.approx(4 / 3)


def test_unreached_recall_gives_null_fp80_in_results(tmp_path):
    g = gt(*[("A", f, "1", 0, 0, 10, 10) for f in range(10)])
    d = det(("A", 0, 0.9, 0, 0, 10, 10), ("A", 3, 0.4, 50, 50, 60, 60))
    cl = pd.DataFrame({"clip_id": ["A"], "patient_id": ["P"]})
    res = evaluate_models(g, {"m": d}, cl, {"A": 20}, EvalConfig(n_boot=10), progress=False)
    lit = res["models"]["m"]["literature"]
    assert lit["pr80"] is None and lit["fp80"]["threshold"] is None
    assert lit["fp80"]["own_fps"] is None and lit["fp90"]["fps30"] is None
    assert lit["ap50"] == res["models"]["m"]["ap50"] == pytest.approx(11 / 101)
    assert lit["max_recall"] == pytest.approx(0.1)  # the recall it does reach
    json.dumps(res, allow_nan=False)


# ------------------------------------------------------------- time to first detection
def ttfd_case():
    """Lesion 1 of clip A on frames 3-8 (10 fps); lesion 2 of clip B on frames 0-4 (20 fps).
    Model m hits lesion 1 on frame 6 (0.8) and frame 4 (0.3), lesion 2 on frame 1 (0.6)."""
    g = gt(
        *[("A", f, "1", 0, 0, 10, 10) for f in range(3, 9)],
        *[("B", f, "2", 0, 0, 10, 10) for f in range(5)],
    )
    d = det(("A", 6, 0.8, 2, 2, 8, 8), ("A", 4, 0.3, 2, 2, 8, 8), ("B", 1, 0.6, 2, 2, 8, 8))
    cl = pd.DataFrame({"clip_id": ["A", "B"], "patient_id": ["P1", "P2"]})
    return g, d, cl


def test_time_to_first_detection_hand_worked():
    g, d, cl = ttfd_case()
    r = rate_scans(g, d, cl, 20)
    frames, seconds = time_to_first_detection(r, [0.7, 0.5, 0.2, 0.9], np.array([10.0, 20.0]))
    # thr 0.7: lesion 1 first hit on frame 6 (3 frames after 3), lesion 2 not found
    assert frames[0].tolist()[0] == 3 and np.isnan(frames[0][1])
    # thr 0.5: lesion 2 found on frame 1: 1 frame, 0.05 s
    assert frames[1].tolist() == [3, 1] and seconds[1].tolist() == [0.3, 0.05]
    # thr 0.2: the frame-4 hit counts: 1 frame for lesion 1
    assert frames[2].tolist() == [1, 1]
    assert np.isnan(frames[3]).all()
    s = summarize(frames[1])
    assert s == {"n_found": 2, "n_not_found": 0, "median": 2.0, "iqr": [1.5, 2.5]}
    assert summarize(frames[3])["n_not_found"] == 2 and summarize(frames[3])["median"] is None


def test_ttfd_paired_difference_is_wilcoxon_on_lesions_found_by_both():
    from scipy.stats import wilcoxon

    a = np.array([0.1, 0.5, np.nan, 0.2, 0.0, 1.0, 0.3])
    b = np.array([0.3, 0.5, 0.4, np.nan, 0.4, 1.6, 0.9])
    out = paired_difference(a, b)
    d = np.array([-0.2, 0.0, -0.4, -0.6, -0.6])
    assert out["n_both"] == 5
    assert out["median_diff_seconds"] == pytest.approx(np.median(d))
    assert out["wilcoxon_p"] == pytest.approx(wilcoxon(d[d != 0]).pvalue)
    assert paired_difference(np.array([0.1, 0.2]), np.array([0.1, 0.2]))["wilcoxon_p"] == 1.0
    none = paired_difference(np.array([np.nan]), np.array([0.1]))
    assert none["n_both"] == 0 and none["wilcoxon_p"] is None


def test_results_carry_ttfd_literature_and_frame_rates():
    g, d, cl = ttfd_case()
    later = d.assign(frame=[7, 8, 3], score=[0.9, 0.9, 0.9])
    res = evaluate_models(
        g,
        {"early": d, "late": later},
        cl,
        {"A": 20, "B": 10},
        EvalConfig(fp_rates=(0.5, 1.0), n_boot=20),
        progress=False,
        fps_per_clip={"A": 10.0, "B": 20.0},
    )
    json.dumps(res, allow_nan=False)
    assert res["units"]["clips"]["fps"] == [10.0, 20.0]
    early = res["models"]["early"]
    # no false marks: thr(x) is the lowest lesion rating, 0.6 -> lesion 1 found on frame 6
    assert early["threshold"] == [0.6, 0.6]
    assert res["units"]["ttfd"]["early"]["frames"] == [[3.0, 1.0], [3.0, 1.0]]
    assert res["units"]["ttfd"]["early"]["seconds"] == [[0.3, 0.05], [0.3, 0.05]]
    assert res["units"]["ttfd"]["late"]["frames"][0] == [4.0, 3.0]
    t = early["ttfd"][0]
    assert t["fp_rate"] == 0.5 and t["n_found"] == 2 and t["n_not_found"] == 0
    assert t["median_frames"] == 2.0 and t["median_seconds"] == pytest.approx(0.175)
    n_found = [x["n_found"] for x in early["ttfd"]]
    assert n_found == [round(s * res["n_lesions"]) for s in early["sensitivity"]]
    c = res["ttfd_comparisons"][0]
    assert (c["a"], c["b"], c["fp_rate"], c["n_both"]) == ("early", "late", 0.5, 2)
    assert c["median_diff_frames"] == pytest.approx(-1.5)
    assert set(early["literature"]) == {
        "convention", "ap", "ap50", "ap75", "max_recall", "pr80", "pr90", "fp80", "fp90"
    }  # fmt: skip


@pytest.mark.parametrize("name", ["usbkit.evaluation.literature", "usbkit.evaluation.ttfd"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ------------------------------------------------- UltraDet's published convention
# Each rule where UltraDet's published evaluation code reads differently from usbkit's
# definitions (docs/metrics.md#the-published-convention-ultradet), on a case where the two
# give different numbers.
def _ranked(tp, n_gt, scores=None):
    tp = np.array([tp], bool)
    scores = np.linspace(0.9, 0.4, tp.shape[1]) if scores is None else np.asarray(scores)
    return RankedMatches(score=scores, tp=tp, iou_thresholds=(0.5,), n_gt=n_gt)


def test_ultradet_precision_is_read_through_every_rank():
    """Five boxes; ranked TP, TP, TP, TP, FP, TP. usbkit's points are the true positives:
    (0.8, 1) then (1.0, 5/6), so Pr80 = 1 and Pr90 = (1 + 5/6) / 2. UltraDet's code
    interpolates through every rank: recall 0.8 is held at ranks 4 and 5 and np.interp reads
    the last, after the false positive (precision 4/5); Pr90 runs from there to (1.0, 5/6)."""
    rm = _ranked([1, 1, 1, 1, 0, 1], 5)
    assert precision_at_recall(rm, 0.8) == pytest.approx(1.0)
    assert precision_at_recall(rm, 0.8, convention="ultradet") == pytest.approx(4 / 5)
    assert precision_at_recall(rm, 0.9) == pytest.approx((1 + 5 / 6) / 2)
    assert precision_at_recall(rm, 0.9, convention="ultradet") == pytest.approx((4 / 5 + 5 / 6) / 2)
    # never reached (ten boxes, recall 0.5): usbkit says undefined, the code holds the end
    short = _ranked([1, 1, 1, 1, 0, 1], 10)
    assert np.isnan(precision_at_recall(short, 0.8))
    assert precision_at_recall(short, 0.8, convention="ultradet") == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="not one of usbkit, ultradet"):
        precision_at_recall(rm, 0.8, convention="mmdet")


def test_ultradet_threshold_is_interpolated_and_keeps_strictly_above():
    """Clip A, 1,800 frames: a lesion on frames 0-4, found on each (scores 0.9 ... 0.5) and a
    false mark on frame 10 scoring 0.6, ranked after the equal true mark of frame 3.

    usbkit: recall reaches 0.8 at the 4th true mark, t80 = 0.6, kept: score >= 0.6, i.e. four
    true marks and the false one (1 FP chain); t90 = 0.5 keeps everything (recall 1).
    UltraDet's code: recall 0.8 is held at ranks 4 and 5 (the false mark): np.interp reads
    the false mark's score 0.6, and 'score > 0.6' keeps three true marks (recall 0.6) and no
    false one; at 0.9 it interpolates between (0.8, 0.6) and (1.0, 0.5): 0.55, keeping the
    false mark and four true ones (recall 0.8)."""
    g = gt(*[("A", f, "1", 0, 0, 10, 10) for f in range(5)])
    d = det(
        *[("A", f, s, 0, 0, 10, 10) for f, s in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])],
        ("A", 10, 0.6, 50, 50, 60, 60),
    )
    own = literature_metrics(g, d, {"A": 1800}, {"A": 30.0})
    pub = literature_metrics(g, d, {"A": 1800}, {"A": 30.0}, convention="ultradet")
    assert (own["convention"], pub["convention"]) == ("usbkit", "ultradet")
    assert own["pr80"] == pytest.approx(1.0) and pub["pr80"] == pytest.approx(4 / 5)
    f80, p80 = own["fp80"], pub["fp80"]
    assert (f80["threshold"], f80["recall"], f80["fp_chains"]) == (0.6, 0.8, 1)
    assert (p80["threshold"], p80["recall"], p80["fp_chains"]) == (0.6, 0.6, 0)
    assert f80["fps30"] == pytest.approx(1.0) and p80["fps30"] == 0.0
    f90, p90 = own["fp90"], pub["fp90"]
    assert (f90["threshold"], f90["recall"], f90["fp_chains"]) == (0.5, 1.0, 1)
    assert p90["threshold"] == pytest.approx(0.55)
    assert (p90["recall"], p90["fp_chains"]) == (0.8, 1)
    # the same threshold, kept with >= or with >
    assert fp_chains(g, d, 0.6) == (1, 2)
    assert fp_chains(g, d, 0.6, convention="ultradet") == (0, 1)


def test_ultradet_link_ties_go_to_the_earliest_frame():
    """Box A on frames 0-7 inside the lesion box (true), box B on frame 8 (no lesion box
    there: false), box C on frame 9 (false). IoU(A, B) = 3/7 does not link; C overlaps A and B
    equally (IoU 2/3). usbkit gives the tie to the latest frame: C joins B, chains {A x 8}
    (true) and {B, C}: 1 FP chain. UltraDet's code takes the first maximum of its history,
    the oldest frame: C joins A, whose chain is then 8 of 9 true, not more than 90%: with
    {B}, 2 FP chains."""
    g = gt(*[("A", f, "1", 0, 0, 8, 10) for f in range(8)])
    d = det(
        *[("A", f, 0.9, 0, 0, 10, 10) for f in range(8)],
        ("A", 8, 0.9, 4, 0, 14, 10),
        ("A", 9, 0.9, 2, 0, 12, 10),
    )
    args = (d["clip_id"].to_numpy(), d["frame"].to_numpy(), d["score"].to_numpy(),
            d[["x0", "y0", "x1", "y1"]].to_numpy(float))  # fmt: skip
    latest, earliest = link_chains(*args), link_chains(*args, ties="earliest")
    assert latest[9] == latest[8] != latest[0]
    assert earliest[9] == earliest[0] != earliest[8]
    assert fp_chains(g, d, 0.5) == (1, 2)
    assert fp_chains(g, d, 0.5, convention="ultradet") == (2, 2)


def test_ultradet_matching_looks_at_the_best_box_only():
    """Boxes G and H overlap (IoU 2/3) on one frame. The top detection is H; the second
    overlaps G by 0.74 but H by 0.90. usbkit (COCO) gives it the free box G; mmdetection's
    rule in UltraDet's code looks only at H, taken: a false positive. AP50 falls from 1 to
    1/2 (area under the all-point envelope: recall 1/2 at precision 1)."""
    g = gt(("A", 0, "1", 0, 0, 10, 10), ("A", 0, "2", 2, 0, 12, 10))
    d = det(("A", 0, 0.9, 2, 0, 12, 10), ("A", 0, 0.8, 1.5, 0, 11.5, 10))
    assert rank_matches(g, d).tp[0].tolist() == [True, True]
    assert rank_matches(g, d, assign="argmax").tp[0].tolist() == [True, False]
    own = literature_metrics(g, d, {"A": 1}, {"A": 30.0})
    pub = literature_metrics(g, d, {"A": 1}, {"A": 30.0}, convention="ultradet")
    assert own["ap50"] == 1.0 and own["max_recall"] == 1.0
    assert pub["ap50"] == pytest.approx(0.5) and pub["max_recall"] == 0.5
    # equal IoUs: the earlier box row, in both rules
    tie = det(("A", 0, 0.9, 1, 0, 11, 10))  # IoU 9/11 with G and with H
    assert rank_matches(g, tie, assign="argmax").tp[0].tolist() == [True]


def test_ultradet_ap_is_the_all_point_area_and_coco_ap_divides_by_nine():
    """Two boxes; ranked TP, FP, TP: recall 1/2, 1/2, 1 at precision 1, 1/2, 2/3. The all-point
    envelope gives 1/2 x 1 + 1/2 x 2/3 = 5/6; COCO's 101 points give (51 + 50 x 2/3) / 101.
    UltraDet's code adds the ten APs (0.50 ... 0.95) and divides by nine: a perfect model's
    'AP' is 10/9."""
    rm = _ranked([1, 0, 1], 2)
    assert rm.average_precision(0, "area") == pytest.approx(5 / 6)
    assert rm.average_precision(0) == pytest.approx((51 + 50 * 2 / 3) / 101)
    g = gt(("A", 0, "1", 0, 0, 10, 10), ("A", 1, "1", 0, 0, 10, 10))
    d = det(("A", 0, 0.9, 0, 0, 10, 10), ("A", 1, 0.8, 0, 0, 10, 10))
    own = literature_metrics(g, d, {"A": 2}, {"A": 30.0})
    pub = literature_metrics(g, d, {"A": 2}, {"A": 30.0}, convention="ultradet")
    assert own["ap"] == 1.0 and pub["ap"] == pytest.approx(10 / 9)
    assert pub["ap50"] == pub["ap75"] == 1.0


def _ultradet_loop(g, d, frames_per_clip, level):
    """UltraDet's published reading, one detection at a time (as docs/metrics.md states it):
    the reference the vectorised convention must equal."""
    boxes = ["x0", "y0", "x1", "y1"]
    d = d.reset_index(drop=True)

    def ious(a, bs):
        return [float(iou(np.asarray(a, float), np.asarray(b, float))) for b in bs]

    # mmdetection's matching at IoU 0.5, frame by frame, detections by decreasing score
    tp = np.zeros(len(d), bool)
    for (c, f), rows in d.groupby(["clip_id", "frame"]):
        gb = g.loc[(g["clip_id"] == c) & (g["frame"] == f), boxes].to_numpy(float)
        covered = set()
        for i in rows.sort_values("score", ascending=False, kind="stable").index:
            if len(gb) == 0:
                continue
            ov = ious(d.loc[i, boxes], gb)
            best = int(np.argmax(ov))
            if ov[best] >= 0.5 and best not in covered:
                covered.add(best)
                tp[i] = True
    order = np.argsort(-d["score"].to_numpy(), kind="stable")
    rec = np.cumsum(tp[order]) / len(g)
    prec = np.cumsum(tp[order]) / np.arange(1, len(d) + 1)
    pr = float(np.interp(level, rec, prec))
    thr = float(np.interp(level, rec, d["score"].to_numpy()[order]))
    # chains: keep > thr, link to the first maximum of the previous five frames (oldest first)
    fp = 0
    for c, n in frames_per_clip.items():
        kept = d.loc[(d["clip_id"] == c) & (d["score"] > thr)]
        parent, history = {}, []
        for f in range(n):
            now = kept.loc[kept["frame"] == f].sort_values("score", ascending=False, kind="stable")
            flat = [i for frame in history for i in frame]
            for i in now.index:
                ov = ious(d.loc[i, boxes], [d.loc[j, boxes] for j in flat])
                if ov and max(ov) > 0.5:
                    parent[i] = flat[int(np.argmax(ov))]
            history = (history + [list(now.index)])[-5:]

        chains = {}
        for i in kept.index:
            top = i
            while top in parent:
                top = parent[top]
            chains.setdefault(top, []).append(i)
        for members in chains.values():
            true = match(g, d.loc[members], "center").det_hit
            fp += int(true.mean() <= 0.9)
    return pr, thr, fp / sum(frames_per_clip.values()) * 1800


@pytest.mark.parametrize("seed", range(12))
def test_ultradet_convention_equals_a_one_at_a_time_reading(seed):
    # boxes on a coarse grid, so that equal IoUs (the tie rules) happen often
    rng = np.random.default_rng(seed)
    n_frames = {"A": 12, "B": 9}
    g_rows, d_rows = [], []
    for c, n in n_frames.items():
        for f in range(n):
            for _ in range(int(rng.integers(0, 3))):
                x, y = rng.integers(0, 4, 2) * 4
                g_rows.append((c, f, "1", x, y, x + 8, y + 8))
            for _ in range(int(rng.integers(0, 4))):
                x, y = rng.integers(0, 5, 2) * 3
                w, h = rng.integers(2, 4, 2) * 3
                d_rows.append((c, f, round(float(rng.random()), 3), x, y, x + w, y + h))
    g, d = gt(*g_rows), det(*d_rows)
    m = literature_metrics(g, d, n_frames, dict.fromkeys(n_frames, 30.0), "ultradet")
    for level in ("80", "90"):  # reached or not: the published code gives a number either way
        pr, thr, fp30 = _ultradet_loop(g, d, n_frames, int(level) / 100)
        assert m[f"pr{level}"] == pytest.approx(pr)
        assert m[f"fp{level}"]["threshold"] == pytest.approx(thr)
        assert m[f"fp{level}"]["fps30"] == pytest.approx(fp30)


def test_results_hold_the_published_reading_beside_usbkits(tmp_path):
    g = gt(*[("A", f, "1", 0, 0, 10, 10) for f in range(5)])
    d = det(*[("A", f, s, 0, 0, 10, 10) for f, s in enumerate([0.9, 0.8, 0.7, 0.6, 0.5])])
    cl = pd.DataFrame({"clip_id": ["A"], "patient_id": ["P"]})
    assert EvalConfig().published_conventions == ("ultradet",)
    res = evaluate_models(g, {"m": d}, cl, {"A": 20}, EvalConfig(n_boot=10), progress=False)
    m = res["models"]["m"]
    assert m["literature"]["convention"] == "usbkit"
    assert m["literature_published"]["ultradet"]["convention"] == "ultradet"
    assert m["literature_published"]["ultradet"]["fp80"]["recall"] == pytest.approx(0.6)
    json.dumps(res, allow_nan=False)
    none = EvalConfig(n_boot=10, published_conventions=())
    res = evaluate_models(g, {"m": d}, cl, {"A": 20}, none, progress=False)
    assert res["models"]["m"]["literature_published"] == {}
    from usbkit.errors import UsbkitError

    with pytest.raises(UsbkitError, match="published convention 'usbkit'"):
        EvalConfig(published_conventions=("usbkit",))
