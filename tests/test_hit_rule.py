"""Every view labels a mark exactly as the numbers count it, under the run's hit rule.

The case: one lesion box [10, 10, 50, 50] on frames 0-3. On frame 1 a small mark sits in
its middle (centre inside the box, IoU 0.01): a hit by the centre rule, a false positive by
``iou:0.3``. On frame 2 a mark covers the box (IoU 0.83): a hit by both rules.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from usbkit.io.encode import write_video
from usbkit.io.study import load_study

SMALL = [28.0, 28.0, 32.0, 32.0]
LARGE = [8.0, 8.0, 52.0, 52.0]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("hitrule")
    study = root / "study"
    (study / "clips").mkdir(parents=True)
    frames = np.random.default_rng(1).integers(20, 230, (6, 64, 80), dtype=np.uint8)
    write_video(frames, study / "clips" / "A.mp4", fps=10)
    (study / "manifest.csv").write_text("clip_id,patient_id,path\nA,P1,clips/A.mp4\n")
    rows = "".join(f"A,{f},1,10,10,50,50\n" for f in range(4))
    (study / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n" + rows)
    det = root / "det.csv"
    det.write_text(
        "clip_id,frame,score,x0,y0,x1,y1\n"
        f"A,1,0.9,{','.join(map(str, SMALL))}\n"
        f"A,2,0.8,{','.join(map(str, LARGE))}\n"
    )
    out = {}
    for rule in ("center", "iou:0.3"):
        dest = root / rule.replace(":", "_")
        figures = ["--figures"] if rule != "center" else []  # one figure export is enough
        r = run_cli(
            "evaluate", study, "--detections", f"m={det}", "--out", dest,
            "--hit", rule, "--fp-rates", "1", "--bootstrap", "20", *figures,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        out[rule] = json.loads((dest / "results.json").read_text())
        assert (dest / "fig3_gallery.html").exists() == bool(figures)
    return study, pd.read_csv(det), out


def test_the_numbers_count_the_small_mark_by_the_rule(case):
    _, _, results = case
    center, iou = results["center"], results["iou:0.3"]
    assert center["hit"] == "center" and iou["hit"] == "iou:0.3"
    assert center["units"]["fp_tracks"]["m"]["score"] == []
    assert iou["units"]["fp_tracks"]["m"]["score"] == [0.9]
    assert center["units"]["ratings"]["m"] == [0.9]  # the small mark rates the lesion
    assert iou["units"]["ratings"]["m"] == [0.8]  # only the large one hits under IoU


def test_the_gallery_labels_marks_as_the_numbers_count_them(case):
    from usbkit.report.figures import gallery_examples

    study_root, det, results = case
    study = load_study(study_root)
    for rule, fp_frames in (("center", []), ("iou:0.3", [1])):
        ex = gallery_examples(study, {"m": det}, results[rule], fp_rate=1)["m"]
        assert ex["false positive"]["frame"].tolist() == fp_frames, rule
        # centre rule: the lesion is rated 0.9, the operating threshold is 0.9, so the 0.8
        # mark on frame 2 is below it; IoU rule: rating 0.8, threshold 0.8, both marks shown
        tp = sorted(ex["true positive"]["frame"].tolist())
        assert tp == ([1] if rule == "center" else [2]), rule


def test_the_scrubber_labels_marks_as_the_numbers_count_them(case):
    from usbkit.viewer.scrubber import Scrubber

    study_root, det, results = case
    study = load_study(study_root)
    for rule, hit_flags, fp_frames in (
        ("center", [True, True], []),
        ("iou:0.3", [False, True], [1]),
    ):
        scrubber = Scrubber(study, {"m": det}, results[rule], fp_rate=1)
        view = scrubber.view
        assert view.models["m"].hit.tolist() == hit_flags, rule
        assert view.events("m")["fp"].tolist() == fp_frames, rule
        # what the browser receives: the same labels, and thresholds at the operating point
        sent = scrubber.viewer.clip["models"][0]
        assert sent["marks"]["hit"] == [int(v) for v in hit_flags], rule
        assert sent["threshold"] == pytest.approx(results[rule]["models"]["m"]["threshold"][0])
        assert scrubber.viewer.clip["hit_rule"] == rule
        # the false-positive tracks the "next false positive" button steps through
        assert [t["frames"] for t in sent["tracks"]] == ([[1]] if fp_frames else []), rule


def test_scrubber_outcome_filters_work_per_lesion():
    """'b found a lesion a missed' needs one and the same lesion found by b and missed by a.

    Clip X: both models find lesion 1 and both miss lesion 2 (no disagreement at all; a
    filter that asks "b found any, a missed any" would wrongly list it). Clip Z: a finds
    lesion 1 only, b lesion 2 only (each found a lesion the other missed).
    """
    from usbkit.evaluation.results import clip_outcomes
    from usbkit.viewer.clipview import outcome_filters

    results = {
        "fp_rates": [0.5],
        "view_fp_rate": 0.5,
        "models": {"a": {"threshold": [0.5]}, "b": {"threshold": [0.5]}},
        "units": {
            "clips": {"clip_id": ["X", "Z"], "patient_id": ["P", "Q"], "n_frames": [5, 5]},
            "lesions": {
                "clip_id": ["X", "X", "Z", "Z"],
                "lesion_id": ["1", "2", "1", "2"],
                "patient_id": ["P", "P", "Q", "Q"],
                "first_frame": [0, 0, 0, 0],
                "frames_in_view": [3, 3, 3, 3],
            },
            "ratings": {"a": [0.9, 0.1, 0.9, 0.1], "b": [0.8, None, 0.1, 0.9]},
            "fp_tracks": {"a": {"clip_id": [], "score": []}, "b": {"clip_id": [], "score": []}},
        },
    }
    rows = clip_outcomes(results).set_index("clip_id")
    filters = outcome_filters(["a", "b"])
    listed = {name: [c for c, r in rows.iterrows() if rule(r)] for name, rule in filters.items()}
    assert listed["b found a lesion a missed"] == ["Z"]
    assert listed["a found a lesion b missed"] == ["Z"]
    assert listed["a missed a lesion"] == ["X", "Z"] and listed["b missed a lesion"] == ["X", "Z"]
    assert listed["all clips"] == ["X", "Z"]
