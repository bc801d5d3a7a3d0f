"""`usbkit evaluate` end to end: results.json shape, tables, figures, bad detections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import pattern_frames, run_cli, tree_hash, write_study

from usbkit.io.encode import write_video


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev") / "s"
    (root / "clips").mkdir(parents=True)
    rows, ann = [], []
    for c in range(8):
        write_video(pattern_frames(n=4), root / f"clips/c{c}.mp4", fps=10)
        rows.append(f"c{c},p{c // 2},clips/c{c}.mp4,{'test' if c < 6 else 'train'}")
        if c % 2 == 0:
            ann += [f"c{c},{f},1,10,10,30,30" for f in range(4)]
    return write_study(
        root,
        "clip_id,patient_id,path,split\n" + "\n".join(rows) + "\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n" + "\n".join(ann) + "\n",
    )


def _dets(path, hit_clips, fp_clips, score=0.9):
    rows = [(f"c{c}", 1, score, 12, 12, 28, 28) for c in hit_clips]
    rows += [(f"c{c}", 2, 0.4, 40, 30, 60, 46) for c in fp_clips]
    rows += [("c7", 0, 0.99, 12, 12, 28, 28)]  # a train-split clip: ignored with --split test
    pd.DataFrame(rows, columns=["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]).to_csv(
        path, index=False
    )
    return path


def test_evaluate_writes_the_documented_results(study, tmp_path):
    a = _dets(tmp_path / "a.csv", [0, 2, 4], [1])
    b = _dets(tmp_path / "b.csv", [0], [1, 3, 5])
    r = run_cli(
        "evaluate",
        study,
        "--detections",
        f"frame={a}",
        "--detections",
        f"sequence={b}",
        "--out",
        tmp_path / "out",
        "--split",
        "test",
        "--bootstrap",
        "200",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "out/results.json").read_text())
    assert {
        "level",
        "hit",
        "fp_rates",
        "n_clips",
        "n_patients",
        "n_lesions",
        "models",
        "comparisons",
    } <= set(res)
    assert res["n_clips"] == 6 and res["n_patients"] == 3 and res["n_lesions"] == 3
    m = res["models"]["frame"]
    assert {
        "sensitivity",
        "sensitivity_interp",
        "threshold",
        "fp_per_scan_at_threshold",
        "ci95",
        "jafroc_fom",
        "frame_sensitivity",
        "ap50",
        "froc",
    } <= set(m)
    # frame model: 3/3 lesions at 0.9, one FP track at 0.4 over 6 clips = 0.167 FP/scan
    assert m["sensitivity"] == [1.0, 1.0, 1.0]
    # thr(x) is the lowest qualifying threshold: 0.4 (the FP track) once x >= 1/6
    assert m["fp_per_scan_at_threshold"] == pytest.approx([0.0, 1 / 6, 1 / 6])
    assert m["threshold"] == pytest.approx([0.9, 0.4, 0.4])
    s = res["models"]["sequence"]
    assert s["sensitivity"] == pytest.approx([1 / 3] * 3)
    assert s["fp_per_scan_at_threshold"][2] == pytest.approx(0.5)
    comp = [c for c in res["comparisons"] if c["fp_rate"] == 0.5][0]
    assert comp["table"] == [[1, 2], [0, 0]]
    assert comp["mcnemar_p"] == pytest.approx(0.5)
    table = (tmp_path / "out/table.md").read_text()
    assert table.startswith("| sensitivity at FP/scan |")
    # the frame-level AP50 of each model stands next to the scan-level numbers
    ap = ", ".join(f"{n} {res['models'][n]['ap50']:.3f}" for n in res["models"])
    assert f"Frame-level AP50 (every annotated frame, IoU 0.5): {ap}." in table
    assert pd.read_csv(tmp_path / "out/table.csv").shape[0] == 4


def test_evaluate_draws_the_four_figures(study, tmp_path):
    from usbkit.report.figures import browser_path

    a = _dets(tmp_path / "a.csv", [0, 2], [1])
    r = run_cli(
        "evaluate",
        study,
        "--detections",
        f"frame={a}",
        "--detections",
        f"seq={a}",
        "--out",
        tmp_path / "o",
        "--bootstrap",
        "50",
        "--figures",
    )
    assert r.returncode == 0, r.stderr
    for stem in ("fig1_froc", "fig2_sensitivity", "fig3_gallery", "fig4_frame_froc"):
        assert (tmp_path / "o" / f"{stem}.html").stat().st_size > 1000
        if browser_path():
            png = (tmp_path / "o" / f"{stem}.png").read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert (tmp_path / "o" / f"{stem}.svg").read_text().lstrip().startswith("<svg")


@pytest.mark.parametrize(
    "header,row,message",
    [
        ("clip_id,frame,x0,y0,x1,y1", "c0,0,1,1,5,5", "score"),
        ("clip_id,frame,score,x0,y0,x1,y1", "c0,0,1.5,1,1,5,5", "outside [0, 1]"),
        ("clip_id,frame,score,x0,y0,x1,y1", "nope,0,0.5,1,1,5,5", "not in the study"),
        ("clip_id,frame,score,x0,y0,x1,y1", "c0,0,0.5,nan,1,5,5", "NaN"),
        ("clip_id,frame,score,x0,y0,x1,y1", "c0,0,0.5,9,1,5,5", "x0 < x1"),
        ("clip_id,frame,score,x0,y0,x1,y1", "c0,99,0.5,1,1,5,5", "only 4 frames"),
    ],
)
def test_malformed_detections_name_the_row_and_keep_old_results(
    study, tmp_path, header, row, message
):
    good = _dets(tmp_path / "good.csv", [0], [])
    out = tmp_path / "out"
    assert (
        run_cli(
            "evaluate", study, "--detections", f"m={good}", "--out", out, "--bootstrap", "20"
        ).returncode
        == 0
    )
    before = tree_hash(out)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"{header}\nc0,1,0.5,1,1,5,5\n{row}\n" if "score" in header else f"{header}\n{row}\n"
    )
    r = run_cli(
        "evaluate", study, "--detections", f"m={bad}", "--out", out, "--bootstrap", "20",
        "--overwrite",
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert message in r.stderr and "bad.csv" in r.stderr
    if "score" in header:
        assert "row 3" in r.stderr
    assert tree_hash(out) == before


def test_evaluation_is_reproducible_from_the_seed(study, tmp_path):
    from usbkit.evaluation.results import EvalConfig, evaluate_study

    a = _dets(tmp_path / "a.csv", [0, 2], [1, 3])
    b = _dets(tmp_path / "b.csv", [0, 4], [5])
    cfg = EvalConfig(n_boot=100, seed=3)
    r1 = evaluate_study(study, {"a": a, "b": b}, tmp_path / "r1", cfg, progress=False)
    r2 = evaluate_study(study, {"a": a, "b": b}, tmp_path / "r2", cfg, progress=False)
    assert r1 == r2
    assert np.isfinite(r1["models"]["a"]["jafroc_fom"])


def test_static_images_of_nested_export_blocks_are_drawn_together_when_the_outer_block_ends(
    tmp_path, monkeypatch
):
    import kaleido
    import plotly.graph_objects as go

    from usbkit.report.figures import browser_path, save_figure, static_export

    if browser_path() is None:  # pragma: no cover - make install provides Chromium
        pytest.skip("no system Chromium")
    sessions = []  # each call of kaleido's batch writer is one browser session
    batch = kaleido.write_fig_from_object_sync
    monkeypatch.setattr(
        kaleido,
        "write_fig_from_object_sync",
        lambda specs, **kw: sessions.append(1) or batch(specs, **kw),
    )
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[2, 0, 1]))
    with static_export():
        with static_export():
            save_figure(fig, tmp_path / "a")
        save_figure(fig, tmp_path / "b")
        assert not (tmp_path / "a.png").exists()  # drawn when the outer block ends
    assert len(sessions) == 1
    with pytest.raises(RuntimeError), static_export():
        save_figure(fig, tmp_path / "c")
        raise RuntimeError("a step failed")
    assert not list(tmp_path.glob("c.*[gp]"))  # nothing half-done: no c.png, no c.svg
    for stem in "ab":
        assert (tmp_path / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"{stem}.svg").read_text().lstrip().startswith("<svg")
