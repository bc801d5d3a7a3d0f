"""Detectors: training lowers the loss, boxes land on an easy lesion, streaming is causal and
computes each frame once, interrupted runs resume exactly, two-process gloo training runs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli, write_study

from usbkit.io.encode import write_video
from usbkit.models import ModelConfig, build_model
from usbkit.models.train import TrainConfig, train

SMALL = ModelConfig(input_size=(64, 80), width=16, window=4, embed=4)


def easy_study(root, n_clips=4, n_frames=12, seed=0):
    """Clips of speckle-like noise with one dark disc drifting across: an easy lesion."""
    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True)
    rows, ann = [], []
    H, W = 96, 128
    yy, xx = np.mgrid[0:H, 0:W]
    for c in range(n_clips):
        frames = np.clip(rng.normal(150, 25, (n_frames, H, W)), 0, 255)
        cx0, cy, r = rng.uniform(30, 60), rng.uniform(30, 60), rng.uniform(10, 16)
        for f in range(n_frames):
            cx = cx0 + 2 * f
            frames[f][(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 40
            ann.append(f"c{c},{f},1,{cx - r:.1f},{cy - r:.1f},{cx + r:.1f},{cy + r:.1f}")
        write_video(frames.astype(np.uint8), root / f"clips/c{c}.mp4", fps=10, crf=10)
        rows.append(f"c{c},p{c},clips/c{c}.mp4,{'val' if c == n_clips - 1 else 'train'}")
    return write_study(
        root,
        "clip_id,patient_id,path,split\n" + "\n".join(rows) + "\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n" + "\n".join(ann) + "\n",
    )


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    return easy_study(tmp_path_factory.mktemp("easy") / "s")


def _cfg(study, kind, epochs=1, **kw):
    return TrainConfig(
        study=str(study),
        model=replace(SMALL, kind=kind),
        epochs=epochs,
        batch=2,
        window_length=4,
        window_step=2,
        lr=5e-3,
        **{"frames_per_epoch": 0, "workers": 0, "patience": 0, "augment": "basic", **kw},
    )


@pytest.mark.parametrize("kind", ["frame", "sequence"])
def test_training_lowers_the_loss_and_finds_the_easy_lesion(easy, tmp_path, kind):
    import json

    from usbkit.models.detect import detect_study

    run = train(_cfg(easy, kind, epochs=10), tmp_path / "run", progress=False)
    log = json.loads((run / "log.json").read_text())
    assert len(log) == 10 and log[-1]["loss"] < 0.5 * log[0]["loss"]
    assert {"val_sensitivity", "val_jafroc"} <= set(log[0])
    out = detect_study(easy, run, tmp_path / "det.csv", split="val", progress=False)
    det = pd.read_csv(out)
    ann = pd.read_csv(easy / "annotations.csv")
    ann = ann[ann.clip_id == "c3"]
    top = (
        det.sort_values("score")
        .groupby("frame")
        .tail(1)
        .merge(ann, on="frame", suffixes=("", "_g"))
    )
    cx, cy = (top.x0 + top.x1) / 2, (top.y0 + top.y1) / 2
    inside = (cx >= top.x0_g) & (cx <= top.x1_g) & (cy >= top.y0_g) & (cy <= top.y1_g)
    assert inside.mean() >= 0.8
    assert det["score"].between(0.001, 1).all() and det.groupby("frame").size().max() <= 100


def test_causal_sequence_streaming_is_causal_and_chunking_does_not_change_outputs():
    torch.manual_seed(0)
    model = build_model(replace(SMALL, kind="sequence", context="causal")).eval()
    torch.nn.init.normal_(model.temporal.net[-1].weight)  # a temporal part that does something
    x = torch.rand(1, 9, 1, 64, 80)
    with torch.no_grad():
        full = model(x)["heat"]
        state, parts = None, []
        for s in range(0, 9, 2):
            out, state = model.stream(x[0, s : s + 2], state)
            parts.append(out["heat"])
        streamed = torch.cat(parts)
        assert torch.allclose(full, streamed, atol=1e-5)
        x2 = x.clone()
        x2[0, 6:] = torch.rand(3, 1, 64, 80)  # change the future
        assert torch.allclose(model(x2)["heat"][:6], full[:6], atol=1e-5)


def test_backbone_runs_once_per_frame_when_streaming():
    model = build_model(replace(SMALL, kind="sequence")).eval()
    calls = []
    model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    state = None
    with torch.no_grad():
        for s in range(0, 10, 3):
            _, state = model.stream(torch.rand(min(3, 10 - s), 1, 64, 80), state)
    assert sum(calls) == 10


def test_interrupted_run_resumes_from_its_last_epoch_and_matches_an_uninterrupted_one(
    easy, tmp_path, monkeypatch
):
    import json

    from usbkit.models import data as clipdata

    cfg = _cfg(easy, "sequence", epochs=3)
    ref = train(cfg, tmp_path / "ref", progress=False)
    original = clipdata.WindowSampler.batch
    calls = {"n": 0}
    per_epoch = json.loads((ref / "log.json").read_text())  # noqa: F841

    def flaky(self, *a, **k):
        calls["n"] += 1
        # dies in the middle of epoch 2 (one call per window; 15 windows // batch 2 = 7 steps
        # = 14 windows per epoch)
        if calls["n"] > 18:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(clipdata.WindowSampler, "batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [r["epoch"] for r in saved] == [1]
    monkeypatch.setattr(clipdata.WindowSampler, "batch", original)
    train(cfg, tmp_path / "run", progress=False)
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert log[0] == saved[0]
    a = torch.load(ref / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_different_run_in_the_same_folder_is_refused(easy, tmp_path):
    train(_cfg(easy, "frame"), tmp_path / "run", progress=False)
    r = run_cli("train", easy, "--model", "sequence", "--out", tmp_path / "run", "--epochs", "1")
    assert r.returncode == 1 and "different training run" in r.stderr


def test_two_process_gloo_training(easy, tmp_path):
    code = (
        "import sys; from dataclasses import replace; from usbkit.models.train import TrainConfig, train;"
        "from usbkit.models import ModelConfig;"
        f"cfg = TrainConfig(study={str(easy)!r}, model=ModelConfig(kind='sequence', input_size=(64, 80),"
        " width=16, window=4, embed=4), epochs=2, batch=2, window_length=4, window_step=2,"
        " frames_per_epoch=64, device='cpu');"
        f"train(cfg, {str(tmp_path / 'ddp')!r}, progress=False)"
    )
    script = tmp_path / "ddp_train.py"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    log = json.loads((tmp_path / "ddp" / "log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2]
    assert (tmp_path / "ddp" / "best.pt").exists()


def test_shipped_checkpoints_load_and_detect(tmp_path):
    from usbkit.models.detect import load_checkpoint, pretrained_path

    for kind in ("frame", "sequence"):
        assert pretrained_path(kind).stat().st_size < 5 * 2**20
        model = load_checkpoint(f"pretrained:{kind}")
        assert model.cfg.kind == kind
        out, _ = model.stream(torch.rand(3, 1, *model.cfg.input_size))
        assert out["heat"].shape[0] == 3


def test_every_training_setting_is_a_documented_command_line_option():
    import dataclasses

    from usbkit.cli import build_parser
    from usbkit.config import attribute_docs
    from usbkit.models.config import ModelConfig, TrainConfig

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    options = {a.option_strings[0]: a for a in train._actions if a.option_strings}
    for cls, skip in ((TrainConfig, {"study", "model"}), (ModelConfig, {"kind"})):
        docs = attribute_docs(cls)
        for f in dataclasses.fields(cls):
            if f.name in skip:
                continue
            action = options["--" + f.name.replace("_", "-")]
            assert docs[f.name] and docs[f.name] in action.help, f.name


def test_train_options_override_a_config_file(tmp_path, monkeypatch):
    import json

    import usbkit.models.train as train_module
    from usbkit.cli import main

    seen = {}
    monkeypatch.setattr(
        train_module, "train", lambda cfg, out, progress: seen.setdefault("cfg", cfg) and out
    )
    (tmp_path / "c.json").write_text(json.dumps({"batch": 7, "lr": 0.01, "model": {"width": 32}}))
    code = main(
        ["--quiet", "train", str(tmp_path), "--model", "sequence", "--out", str(tmp_path / "r"),
         "--config", str(tmp_path / "c.json"), "--lr", "0.002", "--input-size", "128x160"]
    )  # fmt: skip
    cfg = seen["cfg"]
    assert code == 0 and cfg.batch == 7 and cfg.lr == 0.002
    assert cfg.model.kind == "sequence" and cfg.model.width == 32
    assert cfg.model.input_size == (128, 160) and cfg.study == str(tmp_path)


def test_giou_box_loss_is_zero_for_a_perfect_box_and_grows_with_a_wrong_size():
    import math

    from usbkit.models.centernet import build_targets, giou_loss

    box = torch.tensor([[17.0, 13.0, 49.0, 41.0]])
    tgt = build_targets([box], (24, 28), 4, radius="centernet")
    iy, ix = [int(v) for v in torch.nonzero(tgt["mask"][0, 0])[0]]
    size = torch.zeros(1, 2, 24, 28)
    offset = torch.zeros(1, 2, 24, 28)
    size[0, :, iy, ix] = torch.tensor([math.log(32 / 4), math.log(28 / 4)])
    offset[0, :, iy, ix] = tgt["offset"][0, :, iy, ix]
    perfect = giou_loss({"size": size, "offset": offset}, tgt)
    assert float(perfect) == pytest.approx(0.0, abs=1e-5)
    size[0, :, iy, ix] -= 1.0  # boxes e times too small, as the weak baseline makes them
    assert float(giou_loss({"size": size, "offset": offset}, tgt)) > 0.5


def test_centernet_peaks_are_tighter_than_proportional_ones_and_grow_with_the_box():
    from usbkit.models.centernet import centernet_sigma, gaussian_radius

    small, large = centernet_sigma(3, 3), centernet_sigma(30, 24)
    assert 0.7 <= small < large
    assert large < float(gaussian_radius(torch.tensor(30.0), torch.tensor(24.0)))


def test_ultrasound_jitter_moves_boxes_with_the_picture():
    from usbkit.models.data import ultrasound_jitter

    x = torch.full((2, 1, 96, 112), 0.2)
    x[:, :, 30:60, 40:80] = 1.0  # a bright block whose box is known
    box = torch.tensor([[40.0, 30.0, 80.0, 60.0]])
    for seed in range(5):
        out, moved = ultrasound_jitter(x.clone(), [box, box], np.random.default_rng(seed))
        bright = torch.nonzero(out[0, 0] > 0.75 * out[0, 0].max())
        y0, x0 = bright.min(0).values.tolist()
        y1, x1 = (bright.max(0).values + 1).tolist()
        assert moved[0].shape == (1, 4)
        assert torch.allclose(
            moved[0][0], torch.tensor([x0, y0, x1, y1], dtype=torch.float32), atol=3
        )
