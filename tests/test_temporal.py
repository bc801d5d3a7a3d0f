"""Temporal context: the sequence detector's temporal part starts at the single-frame model,
reads both sides or only the past, streams in any chunks as it reads a whole clip, can be cut
(the ablation), and trains alone on a frozen single-frame part; the tracking arm rescores marks
by how long they persist, exactly as docs/metrics.md says."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from test_models import SMALL, _cfg, easy_study

from usbkit.evaluation.results import NO_CONTEXT, ablation_markdown, temporal_ablation
from usbkit.evaluation.tracking import TrackingConfig, rescore_by_tracks, track_lengths
from usbkit.models import build_model
from usbkit.models.train import train


def _sequence(context="both", seed=0, active=True, compound=0):
    torch.manual_seed(seed)
    model = build_model(replace(SMALL, kind="sequence", context=context, compound=compound)).eval()
    if active:  # a temporal part that does something (a new one starts at zero)
        torch.nn.init.normal_(model.temporal.net[-1].weight, std=0.5)
    return model


def _stream(model, x, chunk):
    state, parts = None, []
    for s in range(0, len(x), chunk):
        out, state = model.stream(x[s : s + chunk], state, final=s + chunk >= len(x))
        parts.append(out["heat"])
    return torch.cat(parts)


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    return easy_study(tmp_path_factory.mktemp("easy_temporal") / "s")


@pytest.mark.parametrize("compound", [0, 1])
def test_a_new_temporal_part_leaves_the_single_frame_model_unchanged(compound):
    torch.manual_seed(0)
    frame = build_model(replace(SMALL, kind="frame")).eval()
    seq = build_model(replace(SMALL, kind="sequence", compound=compound)).eval()
    seq.load_state_dict(frame.state_dict(), strict=False)
    x = torch.rand(1, 7, 1, 64, 80)
    with torch.no_grad():
        assert torch.equal(seq(x)["heat"], frame(x)["heat"])


@pytest.mark.parametrize("compound", [0, 1])
@pytest.mark.parametrize("context", ["both", "causal"])
@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_streaming_in_any_chunks_gives_what_the_whole_clip_gives(context, chunk, compound):
    model = _sequence(context, compound=compound)
    x = torch.rand(1, 11, 1, 64, 80)
    with torch.no_grad():
        whole = model(x)["heat"]
        streamed = _stream(model, x[0], chunk)
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-5)


@pytest.mark.parametrize("compound", [0, 1])
def test_a_causal_model_never_reads_later_frames_and_a_two_sided_one_does(compound):
    x = torch.rand(1, 10, 1, 64, 80)
    x2 = x.clone()
    x2[0, 6:] = torch.rand(4, 1, 64, 80)  # change the future of frame 5
    with torch.no_grad():
        causal = _sequence("causal", compound=compound)
        assert torch.allclose(causal(x2)["heat"][:6], causal(x)["heat"][:6], atol=1e-6)
        both = _sequence("both", compound=compound)
        assert not torch.allclose(both(x2)["heat"][:6], both(x)["heat"][:6], atol=1e-4)


def test_a_causal_model_streams_without_delay_and_a_two_sided_one_waits_for_its_window():
    x = torch.rand(6, 1, 64, 80)
    with torch.no_grad():
        out, _ = _sequence("causal").stream(x, None, final=False)
        assert out["heat"].shape[0] == 6
        both = _sequence("both")
        out, state = both.stream(x, None, final=False)
        assert out["heat"].shape[0] == 6 - both.lookahead == 6 - (SMALL.window - 1)
        out, _ = both.stream(x[:0], state, final=True)
        assert out["heat"].shape[0] == both.lookahead


@pytest.mark.parametrize("compound", [0, 1])
@pytest.mark.parametrize("context", ["both", "causal"])
def test_cutting_the_context_reads_every_frame_as_if_it_had_no_neighbours(context, compound):
    model = _sequence(context, compound=compound)
    model.cut_context = True
    x = torch.rand(1, 8, 1, 64, 80)
    with torch.no_grad():
        together = model(x)["heat"]
        alone = torch.cat([model(x[:, t : t + 1])["heat"] for t in range(8)])
        assert torch.allclose(together, alone, atol=1e-5)
        assert torch.allclose(_stream(model, x[0], 3), together, atol=1e-5)
        model.cut_context = False
        assert not torch.allclose(model(x)["heat"], together, atol=1e-4)


@pytest.mark.parametrize(("context", "frames"), [("both", [3, 4, 5, 6, 7]), ("causal", [1, 2, 3])])
def test_compounding_reads_the_single_frame_head_on_the_mean_of_the_neighbours_features(
    context, frames
):
    # compound 2 with both sides: frames 3..7 for frame 5; causal compound 1: frames 1..3 for 3
    model = build_model(
        replace(
            SMALL,
            kind="sequence",
            window=5,
            context=context,
            compound=2 if context == "both" else 1,
        )
    ).eval()
    x = torch.rand(10, 1, 64, 80)
    with torch.no_grad():
        f = model.features(x)
        per = model.temporal.per_frame(f, model.head(f)["heat"])
        cur = frames[-1] if context == "causal" else 5
        got = model.temporal.compounded(per, torch.tensor([cur]), False, model.head.heat)
        want = model.head.heat(f[frames].mean(0, keepdim=True))
        assert torch.allclose(got, want, atol=1e-5)
        # at the clip's start only the frames inside the clip are averaged
        got0 = model.temporal.compounded(per, torch.tensor([0]), False, model.head.heat)
        first = [0, 1, 2] if context == "both" else [0]
        assert torch.allclose(got0, model.head.heat(f[first].mean(0, keepdim=True)), atol=1e-5)
        # cut: the frame alone, which is the single-frame head's own heat
        cut = model.temporal.compounded(per, torch.tensor([cur]), True, model.head.heat)
        assert torch.allclose(cut, per["logit"][[cur]], atol=1e-6)


def test_compounding_further_than_the_window_or_with_attention_is_refused():
    from usbkit.errors import UsbkitError

    with pytest.raises(UsbkitError, match="compound"):
        replace(SMALL, kind="sequence", window=4, context="both", compound=4)
    with pytest.raises(UsbkitError, match="compound"):
        replace(SMALL, kind="sequence", window=4, context="causal", compound=2)
    with pytest.raises(UsbkitError, match="compound"):
        replace(SMALL, kind="sequence", temporal="attention", context="causal", compound=1)


def test_a_checkpoint_written_before_compounding_loads_without_it(tmp_path):
    from usbkit.models.detect import load_checkpoint

    cfg = replace(SMALL, kind="sequence", compound=0)
    model = build_model(cfg)
    saved = {k: v for k, v in cfg.to_dict().items() if k != "compound"}
    torch.save({"model": model.state_dict(), "model_config": saved}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").cfg.compound == 0


def test_the_earlier_attention_network_still_streams_and_can_be_cut():
    torch.manual_seed(0)
    model = build_model(
        replace(SMALL, kind="sequence", temporal="attention", context="causal")
    ).eval()
    x = torch.rand(1, 6, 1, 64, 80)
    with torch.no_grad():
        assert torch.allclose(_stream(model, x[0], 2), model(x)["heat"], atol=1e-5)
        model.cut_context = True
        alone = torch.cat([model(x[:, t : t + 1])["heat"] for t in range(6)])
        assert torch.allclose(model(x)["heat"], alone, atol=1e-5)


def test_a_checkpoint_written_before_the_temporal_setting_loads_as_the_attention_network(
    tmp_path,
):
    from usbkit.models.detect import load_checkpoint

    cfg = replace(SMALL, kind="sequence", temporal="attention", context="causal")
    model = build_model(cfg)
    saved = {k: v for k, v in cfg.to_dict().items() if k not in ("temporal", "context")}
    torch.save({"model": model.state_dict(), "model_config": saved}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert (loaded.cfg.temporal, loaded.cfg.context) == ("attention", "causal")


def test_training_only_the_temporal_part_keeps_the_single_frame_part_exactly(easy, tmp_path):
    from usbkit.models.detect import load_checkpoint

    frame = train(_cfg(easy, "frame", epochs=2), tmp_path / "frame", progress=False)
    cfg = _cfg(easy, "sequence", epochs=2, init=str(frame), train_part="temporal")
    seq = train(cfg, tmp_path / "seq", progress=False)
    a, b = load_checkpoint(frame).state_dict(), load_checkpoint(seq).state_dict()
    single = [k for k in a if k.startswith(("backbone.", "head."))]
    assert single and all(torch.equal(a[k], b[k]) for k in single)
    assert b["temporal.net.4.weight"].abs().sum() > 0  # the temporal part learned
    log = json.loads((seq / "log.json").read_text())
    assert [r["epoch"] for r in log] == [1, 2] and "val_ap50" in log[0]


def test_training_only_the_temporal_part_needs_a_sequence_model_and_a_start(easy, tmp_path):
    from usbkit.errors import UsbkitError

    with pytest.raises(UsbkitError, match="--init"):
        train(_cfg(easy, "sequence", train_part="temporal"), tmp_path / "r", progress=False)


def test_detect_cuts_the_context_of_a_sequence_checkpoint_and_refuses_a_single_frame_one(
    easy, tmp_path
):
    r = run_cli(
        "detect", str(easy), "--checkpoint", "pretrained:frame", "--out",
        str(tmp_path / "f.csv"), "--context", "none",
    )  # fmt: skip
    assert r.returncode == 1 and "single-frame detector" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "f.csv").exists()
    from usbkit.models.detect import model_config_of

    trained_for = model_config_of("pretrained:sequence").context
    for context, label in (("none", "cut"), ("trained", trained_for)):
        out = tmp_path / f"{context}.csv"
        r = run_cli(
            "detect", str(easy), "--checkpoint", "pretrained:sequence", "--out", str(out),
            "--context", context,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(out.with_name(out.name + ".json").read_text())["context"] == label
    cut, full = pd.read_csv(tmp_path / "none.csv"), pd.read_csv(tmp_path / "trained.csv")
    assert len(cut) and len(full) and not cut["score"].equals(full["score"])


def _dets(rows):
    return pd.DataFrame(rows, columns=["clip_id", "frame", "score", "x0", "y0", "x1", "y1"])


def test_tracking_scales_each_mark_by_its_track_length_over_full_length():
    # clip a: a mark at one place on frames 0-3 (a track of 4), a one-frame mark elsewhere,
    # a mark below min_score on the track's place; clip b: a track of 2 at the same place
    det = _dets(
        [
            ["a", 0, 0.9, 0, 0, 10, 10],
            ["a", 1, 0.8, 0, 0, 10, 10],
            ["a", 2, 0.6, 1, 1, 11, 11],
            ["a", 3, 0.5, 0, 0, 10, 10],
            ["a", 2, 0.7, 50, 50, 60, 60],
            ["a", 4, 0.01, 0, 0, 10, 10],
            ["b", 0, 0.4, 0, 0, 10, 10],
            ["b", 1, 0.4, 0, 0, 10, 10],
        ]
    )
    cfg = TrackingConfig(full_length=4, min_score=0.05)
    assert track_lengths(det, cfg).tolist() == [4, 4, 4, 4, 1, 1, 2, 2]
    out = rescore_by_tracks(det, cfg)
    expected = [0.9, 0.8, 0.6, 0.5, 0.7 / 4, 0.01 / 4, 0.2, 0.2]
    assert np.allclose(out["score"], expected)
    assert out.drop(columns="score").equals(det.drop(columns="score"))
    # a track no shorter than full_length keeps its scores; tracks never cross clips
    assert rescore_by_tracks(det, TrackingConfig(full_length=1))["score"].equals(det["score"])


def test_tracking_follows_the_linkers_gap_and_overlap_rules():
    det = _dets(
        [
            ["a", 0, 0.9, 0, 0, 10, 10],
            ["a", 6, 0.9, 0, 0, 10, 10],  # 6 frames later: beyond max_gap 5, a new track
            ["a", 7, 0.9, 4, 4, 14, 14],  # IoU with the last box 0.22 < 0.3: a new track
        ]
    )
    assert track_lengths(det).tolist() == [1, 1, 1]
    assert track_lengths(det, TrackingConfig(max_gap=6, min_iou=0.2)).tolist() == [3, 3, 3]


@pytest.mark.parametrize(
    "setting", [{"full_length": 0}, {"min_score": 2}, {"max_gap": 0}, {"min_iou": 0}]
)
def test_tracking_refuses_settings_outside_their_range(setting):
    from usbkit.errors import UsbkitError

    with pytest.raises(UsbkitError, match=next(iter(setting))):
        TrackingConfig(**setting)


def test_track_command_writes_the_rescored_file_and_never_replaces_its_input(tmp_path):
    src = tmp_path / "det.csv"
    _dets([["a", f, 0.8, 0, 0, 10, 10] for f in range(3)] + [["a", 1, 0.6, 40, 40, 50, 50]]).to_csv(
        src, index=False
    )
    before = src.read_bytes()
    r = run_cli("track", str(src), "--out", str(src), "--overwrite")
    assert r.returncode == 1 and "replace the file" in r.stderr and src.read_bytes() == before
    out = tmp_path / "tracked.csv"
    r = run_cli("track", str(src), "--out", str(out), "--full-length", "3")
    assert r.returncode == 0, r.stderr
    assert np.allclose(pd.read_csv(out)["score"], [0.8, 0.8, 0.8, 0.2])
    info = json.loads((tmp_path / "tracked.csv.json").read_text())
    assert info["tracking"]["full_length"] == 3 and info["source"] == str(src)
    r = run_cli("track", str(src), "--out", str(out))
    assert r.returncode == 1 and "--overwrite" in r.stderr


def _results_with_ablation(diffs, ps):
    comps = [
        {
            "a": "sequence",
            "b": "sequence" + NO_CONTEXT,
            "fp_rate": x,
            "diff": d,
            "diff_ci95": [d - 0.05, d + 0.05],
            "bootstrap_p": p,
            "mcnemar_p": p,
        }
        for x, d, p in zip((0.1, 0.2, 0.5), diffs, ps)
    ]
    return {"models": {"sequence": {}, "sequence" + NO_CONTEXT: {}}, "comparisons": comps}


def test_the_ablation_sentence_states_what_temporal_context_adds_at_each_rate():
    res = _results_with_ablation([0.06, 0.081, 0.02], [0.01, 0.002, 0.3])
    rows = temporal_ablation(res)
    assert [r["diff"] for r in rows[0]["rates"]] == [0.06, 0.081, 0.02]
    text = ablation_markdown(res)
    assert "+6.0 points at 0.1 FP/scan" in text and "+8.1 points at 0.2" in text
    assert "it reads time" in text
    assert "no significant gain" in ablation_markdown(
        _results_with_ablation([0.0, -0.01, 0.01], [1.0, 0.8, 0.7])
    )
    assert ablation_markdown({"models": {"a": {}}, "comparisons": []}) == ""


def _clip_with(lesion_cells, background_cells, t=3, h=5, w=5):
    from usbkit.models.temporal_training import FrozenClip

    lesions = torch.zeros(len(lesion_cells), t, h, w, dtype=torch.bool)
    for k, cells in enumerate(lesion_cells):
        for f, y, x in cells:
            lesions[k, f, y, x] = True
    background = torch.zeros(t, h, w, dtype=torch.bool)
    for f, y, x in background_cells:
        background[f, y, x] = True
    return FrozenClip("c", None, None, None, lesions, background)


def test_the_scan_loss_rates_each_lesion_by_its_best_cell_over_all_its_frames():
    from usbkit.models.temporal_training import scan_loss

    # one lesion seen on frames 0 and 2; its best logit (2.0, frame 2) is the one it is rated by
    clip = _clip_with([[(0, 1, 1), (2, 3, 3)]], [])
    x = torch.full((3, 1, 5, 5), -9.0)
    x[0, 0, 1, 1], x[2, 0, 3, 3] = -1.0, 2.0
    x.requires_grad_(True)
    loss = scan_loss(x, clip)
    assert loss.item() == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(-2.0))))
    loss.backward()
    assert x.grad[2, 0, 3, 3] < 0 and x.grad[0, 0, 1, 1] == 0  # only the best cell is pushed up


def test_the_scan_loss_pushes_down_only_the_highest_background_peaks():
    from usbkit.models.temporal_training import scan_loss

    # background everywhere on frame 1; peaks at 3.0 and 1.0 (local maxima), the rest lower
    cells = [(1, y, x) for y in range(5) for x in range(5)]
    clip = _clip_with([], cells)
    x = torch.full((3, 1, 5, 5), -9.0)
    x[1, 0] = -5.0
    x[1, 0, 0, 0], x[1, 0, 4, 4], x[1, 0, 0, 1] = 3.0, 1.0, 2.5  # (0, 1) is next to 3.0: no peak
    x.requires_grad_(True)
    loss = scan_loss(x, clip, negatives=2)
    sp = torch.nn.functional.softplus
    assert loss.item() == pytest.approx(float((sp(torch.tensor(3.0)) + sp(torch.tensor(1.0))) / 2))
    loss.backward()
    assert x.grad[1, 0, 0, 0] > 0 and x.grad[1, 0, 4, 4] > 0 and x.grad[1, 0, 0, 1] == 0
    assert x.grad[0].abs().sum() == 0  # frame 0 has no background cells


def test_a_clip_without_lesions_or_background_adds_no_scan_loss():
    from usbkit.models.temporal_training import scan_loss

    x = torch.zeros(3, 1, 5, 5, requires_grad=True)
    assert scan_loss(x, _clip_with([], [])).item() == 0.0


def test_training_the_temporal_part_with_the_scan_loss_learns_and_records_it(easy, tmp_path):
    from usbkit.models.detect import load_checkpoint

    frame = train(_cfg(easy, "frame", epochs=1), tmp_path / "frame", progress=False)
    runs = {}
    for weight in (0.0, 1.0):
        cfg = _cfg(easy, "sequence", epochs=1, init=str(frame), train_part="temporal")
        runs[weight] = train(
            replace(cfg, scan_loss=weight), tmp_path / f"s{weight}", progress=False
        )
    a, b = (load_checkpoint(runs[w]).state_dict()["temporal.net.4.weight"] for w in (0.0, 1.0))
    assert not torch.equal(a, b)  # the scan loss changed what the temporal part learned
    saved = json.loads((runs[1.0] / "config.json").read_text())
    assert saved["scan_loss"] == 1.0


def test_the_scan_loss_is_refused_where_it_would_be_ignored(easy):
    from usbkit.errors import UsbkitError

    with pytest.raises(UsbkitError, match="train_part temporal"):
        _cfg(easy, "sequence", scan_loss=1.0)
    with pytest.raises(UsbkitError, match="scan_loss"):
        _cfg(easy, "sequence", scan_loss=-1.0, init="x", train_part="temporal")
