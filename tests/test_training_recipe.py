"""The training recipe: a set number of frame visits per epoch, the same windows and
augmentation whatever the number of data workers, augmentation that moves boxes with the
picture, a moving average of the weights, early stopping, and a checkpoint that records the
command that repeats it."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_models import SMALL, _cfg, easy_study

from usbkit.errors import UsbkitError
from usbkit.models.config import ModelConfig, TrainConfig
from usbkit.models.data import epoch_windows, ultrasound_jitter
from usbkit.models.ema import WeightAverage
from usbkit.models.train import stale_epochs, train, train_command


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    return easy_study(tmp_path_factory.mktemp("easy-recipe") / "s")


def test_an_epoch_has_the_set_number_of_frame_visits_whatever_the_number_of_windows():
    cfg = TrainConfig(frames_per_epoch=256, window_length=8, batch=4)
    for n_windows in (3, 32, 1000):
        items = epoch_windows(n_windows, cfg, epoch=0)
        assert len(items) * cfg.window_length == 256
        assert all(0 <= w < n_windows for _, _, w in items)
    few = epoch_windows(3, cfg, epoch=0)  # shuffles repeat: every window used about equally
    counts = np.bincount([w for _, _, w in few], minlength=3)
    assert counts.max() - counts.min() <= 1


def test_zero_frames_per_epoch_visits_every_window_once_in_whole_batches():
    cfg = TrainConfig(frames_per_epoch=0, batch=4)
    items = epoch_windows(18, cfg, epoch=2)
    assert len(items) == 16 and len({w for _, _, w in items}) == 16


def test_processes_share_one_epoch_plan_and_split_it_without_overlap():
    cfg = TrainConfig(frames_per_epoch=512, window_length=8, batch=2)
    one = epoch_windows(50, cfg, epoch=1)
    two = [epoch_windows(50, cfg, epoch=1, rank=r, world=2) for r in range(2)]
    positions = sorted(p for part in two for _, p, _ in part)
    assert positions == sorted(p for _, p, _ in one) and len(two[0]) == len(two[1])
    assert epoch_windows(50, cfg, epoch=1) == one != epoch_windows(50, cfg, epoch=2)


def test_ultrasound_jitter_moves_each_box_with_the_picture():
    rng = np.random.default_rng(0)
    h, w = 96, 128
    for trial in range(20):
        x = torch.zeros(2, 1, h, w)
        box = torch.tensor([[40.0, 30.0, 70.0, 55.0]])
        x[:, :, 30:55, 40:70] = 1.0
        y, moved = ultrasound_jitter(x, [box, box], np.random.default_rng([trial, 7]))
        bright = (y[0, 0] > 0.5 * y[0, 0].max()).nonzero()
        if len(moved[0]) == 0:
            continue
        x0, y0, x1, y1 = moved[0][0].tolist()
        ys, xs = bright[:, 0].float(), bright[:, 1].float()
        # the bright patch lies inside its moved box (a pixel of slack for resampling)
        assert (
            xs.min() >= x0 - 2 and xs.max() <= x1 + 1 and ys.min() >= y0 - 2 and ys.max() <= y1 + 1
        )
        # and fills most of it (a rotation of at most 6 degrees adds little)
        assert (xs.max() - xs.min() + 1) >= 0.8 * (x1 - x0) - 2
        assert torch.equal(moved[0], moved[1])  # the same for every frame of a window
    assert rng is not None


def test_the_moving_average_follows_the_weights_with_its_ramped_decay():
    net = torch.nn.Linear(2, 1)
    avg = WeightAverage(net, decay=0.99)
    start = avg.model.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    avg.update(net)
    d = min(0.99, 2 / 11)
    assert torch.allclose(avg.model.weight, d * start + (1 - d) * net.weight)
    assert not avg.model.weight.requires_grad


def test_stale_epochs_counts_the_epochs_since_the_best_validation():
    cfg = TrainConfig(patience=2, select_by="jafroc")
    # the key is the JAFROC figure of merit, then the sensitivity
    log = [
        {"val_jafroc": 0.5, "val_sensitivity": 0.5},
        {"val_jafroc": 0.7, "val_sensitivity": 0.5},
        {"val_jafroc": 0.6, "val_sensitivity": 0.9},
        {"val_jafroc": 0.7, "val_sensitivity": 0.4},
    ]
    assert stale_epochs(log, cfg, validated=True) == 2
    assert stale_epochs(log[:2], cfg, validated=True) == 0
    assert stale_epochs(log, cfg, validated=False) == 0


def test_the_default_key_is_frame_level_ap50_with_jafroc_breaking_ties():
    cfg = TrainConfig(patience=2)
    assert cfg.select_by == "ap50"
    log = [
        {"val_ap50": 0.40, "val_jafroc": 0.74},  # best JAFROC, but the lowest AP50
        {"val_ap50": 0.55, "val_jafroc": 0.70},
        {"val_ap50": 0.55, "val_jafroc": 0.71},  # same AP50, better JAFROC: the best
        {"val_ap50": 0.50, "val_jafroc": 0.73},
    ]
    assert stale_epochs(log, cfg, validated=True) == 1
    assert stale_epochs(log, replace(cfg, select_by="jafroc"), validated=True) == 3
    with pytest.raises(UsbkitError, match="select_by 'sensitivity' is not one of ap50, jafroc"):
        TrainConfig(select_by="sensitivity")


def test_training_stops_early_when_validation_no_longer_improves(easy, tmp_path, monkeypatch):
    from usbkit.models import train as train_module

    flat = {"val_sensitivity": 0.5, "val_threshold": 0.3, "val_jafroc": 0.5, "val_ap50": 0.1}
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: dict(flat))
    run = train(_cfg(easy, "frame", epochs=6, patience=2), tmp_path / "run", progress=False)
    log = json.loads((run / "log.json").read_text())
    # epoch 1 is the best (the latest of equal keys wins, so every epoch is "best"): the
    # equal keys keep the run going; a worse key after them stops it
    assert len(log) == 6
    seq = iter([0.9, 0.5, 0.5, 0.5, 0.5, 0.5])
    monkeypatch.setattr(train_module, "evaluate", lambda *a, **k: {**flat, "val_ap50": next(seq)})
    run = train(_cfg(easy, "frame", epochs=6, patience=2), tmp_path / "run2", progress=False)
    log = json.loads((run / "log.json").read_text())
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_the_same_run_with_and_without_data_workers_learns_the_same_weights(easy, tmp_path):
    a = train(_cfg(easy, "frame", epochs=1, workers=0, augment="ultrasound"), tmp_path / "a", False)
    b = train(_cfg(easy, "frame", epochs=1, workers=2, augment="ultrasound"), tmp_path / "b", False)
    wa = torch.load(a / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_every_checkpoint_records_the_command_that_repeats_it(easy, tmp_path):
    cfg = replace(_cfg(easy, "sequence", epochs=1), lr=0.004)
    run = train(cfg, tmp_path / "run", progress=False)
    for name in ("best.pt", "last.pt"):
        state = torch.load(run / name, weights_only=True)
        assert state["command"] == train_command(cfg)
    cmd = train_command(cfg)
    assert cmd.startswith(f"usbkit train {easy} --model sequence --out RUN")
    assert "--input-size 64x80" in cmd and "--lr 0.004" in cmd and "--frames-per-epoch 0" in cmd
    assert "--epochs 1" in cmd and "--kind" not in cmd


def test_the_train_command_line_accepts_every_option_the_recorded_command_uses(easy, tmp_path):
    from usbkit.cli import build_parser

    cfg = replace(
        TrainConfig(study=str(easy), model=replace(SMALL, kind="frame")),
        ema=0.0,
        patience=0,
        augment="none",
        workers=0,
    )
    argv = train_command(cfg, out=str(tmp_path / "run")).split()[1:]
    args = build_parser().parse_args(argv)
    assert args.train__ema == 0.0 and args.model__input_size == (64, 80)
    assert ModelConfig().input_size == (160, 192)


def test_a_checkpoint_written_before_the_blocks_setting_loads_as_the_network_it_holds(tmp_path):
    from usbkit.models import build_model
    from usbkit.models.detect import load_checkpoint

    old = replace(SMALL, kind="frame", blocks=(0, 1, 1))
    net = build_model(old)
    config = old.to_dict()
    del config["blocks"]  # what earlier versions saved
    torch.save({"model": net.state_dict(), "model_config": config}, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded.cfg.blocks == (0, 1, 1)
    x = torch.rand(1, 1, 1, 64, 80)
    with torch.no_grad():
        assert torch.allclose(loaded(x)["heat"], net.eval()(x)["heat"])


def test_the_training_figure_shows_loss_validation_froc_sensitivity_and_ap50_per_epoch():
    import pandas as pd

    from usbkit.report.steps import loss_figure

    log = pd.DataFrame(
        {
            "epoch": [1, 2],
            "loss": [5.0, 4.0],
            "val_jafroc": [0.4, 0.6],
            "val_sensitivity": [0.5, 0.7],
            "val_ap50": [0.2, 0.5],
        }
    )
    fig = loss_figure({"single frame": log, "sequence": log.drop(columns="val_ap50")})
    assert len(fig.data) == 4 + 3
    assert [list(t.y) for t in fig.data[:4]] == [[5.0, 4.0], [0.4, 0.6], [0.5, 0.7], [0.2, 0.5]]


def test_a_run_saved_before_select_by_existed_resumes_keeping_by_jafroc(easy, tmp_path):
    from usbkit.models.train import resume_state

    cfg = _cfg(easy, "frame", epochs=1)
    run = train(cfg, tmp_path / "run", progress=False)
    assert resume_state(run, replace(cfg, epochs=2))[0].select_by == "ap50"
    state = torch.load(run / "last.pt", weights_only=True)
    del state["train_config"]["select_by"]  # as written by earlier versions
    torch.save(state, run / "last.pt")
    from usbkit.errors import UsbkitWarning

    with pytest.warns(UsbkitWarning, match="--select-by jafroc there, ap50 asked for"):
        resumed, start, log, _, _ = resume_state(run, replace(cfg, epochs=2))
    assert resumed.select_by == "jafroc" and start == 1 and len(log) == 1


def test_a_fine_tuned_run_starts_from_the_weights_it_names(easy, tmp_path, monkeypatch):
    from usbkit.models import distributed
    from usbkit.models import train as train_module

    first = train(_cfg(easy, "frame", epochs=1), tmp_path / "first", progress=False)
    at_start = {}
    real_wrap = distributed.wrap

    def spy(model, device):  # the model as training is about to begin
        at_start.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real_wrap(model, device)

    monkeypatch.setattr(train_module.distributed, "wrap", spy)
    cfg = replace(_cfg(easy, "frame", epochs=1), init=str(first))
    second = train(cfg, tmp_path / "second", progress=False)
    saved = torch.load(first / "best.pt", weights_only=True)["model"]
    assert at_start and all(torch.equal(at_start[k], saved[k].float()) for k in saved)
    state = torch.load(second / "best.pt", weights_only=True)
    assert f"--init {first}" in state["command"]  # the command that repeats it names them
    at_start.clear()
    train(_cfg(easy, "frame", epochs=1), tmp_path / "third", progress=False)
    assert not all(torch.equal(at_start[k], saved[k].float()) for k in saved)  # random start


def test_fine_tuning_refuses_weights_of_another_network_and_says_which_setting_differs(
    easy, tmp_path
):
    first = train(_cfg(easy, "frame", epochs=1), tmp_path / "first", progress=False)
    other = replace(_cfg(easy, "frame", epochs=1), init=str(first))
    other = replace(other, model=replace(other.model, input_size=(48, 64)))
    with pytest.raises(UsbkitError, match="another network: --input-size 64x80 there, 48x64 asked"):
        train(other, tmp_path / "second", progress=False)
    assert not (tmp_path / "second").exists()  # nothing made for a run that cannot start


def test_the_train_command_takes_the_network_of_the_checkpoint_it_fine_tunes(
    easy, tmp_path, capsys
):
    from usbkit.cli import main

    first = train(_cfg(easy, "frame", epochs=1), tmp_path / "first", progress=False)
    argv = ["--quiet", "train", str(easy), "--model", "frame", "--out", str(tmp_path / "ft")]
    argv += ["--init", str(first), "--epochs", "1", "--frames-per-epoch", "64", "--workers", "0"]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert tuple(saved["model"]["input_size"]) == (64, 80)  # the checkpoint's, not the default
    capsys.readouterr()
    bad = [*argv[:-6], "--init", "pretrained:sequence", "--out", str(tmp_path / "x")]
    assert main(bad) == 1
    assert "a sequence detector's; they cannot start a frame detector" in capsys.readouterr().err


def test_notebook_train_settings_reach_both_models_by_their_config_names(tmp_path, monkeypatch):
    from usbkit.models import train as train_module
    from usbkit.report.steps import train_or_load

    seen = []
    monkeypatch.setattr(train_module, "train", lambda cfg, out, **kw: seen.append(cfg) or out)
    run = SimpleNamespace(study="s", folder=tmp_path, save=lambda: None)
    settings = {"input_size": [192, 224], "lr": 0.002, "augment": "ultrasound"}
    train_or_load(run, train=True, epochs=3, seed=2, settings=settings, progress=False)
    assert [c.model.kind for c in seen] == ["frame", "sequence"]
    for cfg in seen:
        assert cfg.model.input_size == (192, 224) and cfg.lr == 0.002
        assert cfg.augment == "ultrasound" and cfg.epochs == 3 and cfg.seed == 2


def test_a_misspelt_or_doubled_train_setting_is_an_error_that_names_it(tmp_path):
    from usbkit.report.steps import train_or_load

    with pytest.raises(UsbkitError, match="unknown TrainConfig setting.*inputsize"):
        TrainConfig().with_settings({"inputsize": [192, 224]})
    run = SimpleNamespace(study="s", folder=tmp_path, save=lambda: None)
    with pytest.raises(UsbkitError, match="may not set epochs"):
        train_or_load(run, train=True, settings={"epochs": 3}, progress=False)
    with pytest.raises(UsbkitError, match="may not set init.*usbkit train --init"):
        train_or_load(run, train=True, settings={"init": "pretrained:frame"}, progress=False)


def test_shrinking_a_large_image_averages_its_speckle_instead_of_aliasing_it():
    from usbkit.models.data import to_input

    # a fine checkerboard: averaged it is flat grey; sampled at 4 of every 25 pixels it is not
    board = (np.indices((800, 960)).sum(0) % 2 * 255).astype(np.uint8)[None]
    smooth = to_input(board, (160, 192), antialias=True)
    aliased = to_input(board, (160, 192), antialias=False)
    assert float(smooth.std()) < 0.01 and abs(float(smooth.mean()) - 0.5) < 0.01
    assert float(aliased.std()) > 0.1


def test_a_checkpoint_written_before_the_antialias_setting_keeps_resizing_without_it(tmp_path):
    from usbkit.models import build_model
    from usbkit.models.detect import load_checkpoint

    assert not ModelConfig().antialias  # the default is the shipped detectors' resizing
    old = replace(SMALL, kind="frame")
    config = old.to_dict()
    del config["antialias"]  # what earlier versions saved
    torch.save({"model": build_model(old).state_dict(), "model_config": config}, tmp_path / "o.pt")
    assert load_checkpoint(tmp_path / "o.pt").cfg.antialias is False


def test_fine_tuning_may_change_how_frames_are_resized_but_not_the_network(easy, tmp_path):
    from usbkit.models.train import starting_weights

    first = train(_cfg(easy, "frame", epochs=1), tmp_path / "first", progress=False)
    cfg = replace(_cfg(easy, "frame"), init=str(first))
    assert starting_weights(replace(cfg, model=replace(cfg.model, antialias=True)))
    with pytest.raises(UsbkitError, match="--width 16 there, 24 asked for"):
        starting_weights(replace(cfg, model=replace(cfg.model, width=24)))


def test_a_config_files_model_settings_are_checked_against_the_checkpoint_it_fine_tunes(
    easy, tmp_path, capsys
):
    from usbkit.cli import main

    first = train(_cfg(easy, "frame", epochs=1), tmp_path / "first", progress=False)
    (tmp_path / "c.json").write_text(json.dumps({"model": {"input_size": [96, 112]}}))
    argv = ["--quiet", "train", str(easy), "--model", "frame", "--out", str(tmp_path / "ft")]
    argv += ["--config", str(tmp_path / "c.json"), "--init", str(first)]
    assert main(argv) == 1
    assert "--input-size 64x80 there, 96x112 asked for" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["no", "yes", 0, None])
def test_a_yes_no_setting_given_as_text_or_a_number_is_refused_not_read_as_yes(value):
    with pytest.raises(UsbkitError, match="antialias .* must be true or false"):
        TrainConfig().with_settings({"antialias": value})


def test_resuming_with_other_settings_warns_that_the_run_keeps_its_own(easy, tmp_path):
    from usbkit.io.notices import UsbkitWarning

    train(_cfg(easy, "frame", epochs=1), tmp_path / "run", progress=False)
    with pytest.warns(UsbkitWarning, match="--lr 0.005 there, 0.002 asked for"):
        train(replace(_cfg(easy, "frame", epochs=1), lr=0.002), tmp_path / "run", progress=False)


def test_the_training_figures_panel_titles_fit_above_their_panels():
    """Four panels side by side left each title wider than its panel (they overlapped)."""
    import pandas as pd

    from usbkit.report.steps import loss_figure

    log = pd.DataFrame({"epoch": [1, 2], "loss": [5.0, 4.0], "val_jafroc": [0.4, 0.6],
                        "val_sensitivity": [0.5, 0.7], "val_ap50": [0.2, 0.5]})  # fmt: skip
    fig = loss_figure({"single frame": log})
    layout = fig.layout
    plot_width = layout.width - layout.margin.l - layout.margin.r
    size = layout.font.size
    assert len(layout.annotations) == 4
    for k, title in enumerate(layout.annotations):  # the titles, in the panels' order
        axis = layout[f"xaxis{k + 1 if k else ''}"]
        panel = (axis.domain[1] - axis.domain[0]) * plot_width
        assert 0.55 * size * len(title.text) < panel, title.text  # ~0.55 em per character


def test_the_loss_figure_of_the_shipped_checkpoints_says_whose_training_it_shows():
    """With train=False the curves are the shipped checkpoints' own training on the synthetic
    cohort: a clinician running the notebook on her clips must not read them as hers."""
    from types import SimpleNamespace

    from usbkit.report.steps import loss_figure, training_logs

    run = SimpleNamespace(checkpoints={"single frame": "pretrained:frame"})
    logs = training_logs(run)
    assert logs["single frame"].attrs["checkpoint"] == "pretrained:frame"
    title = loss_figure(logs).layout.title.text
    assert "shipped checkpoints" in title and "not this study" in title
    own = {"single frame": logs["single frame"].copy()}
    own["single frame"].attrs["checkpoint"] = "checkpoints/frame.pt"
    assert loss_figure(own).layout.title.text == "Training"


def test_make_weights_runs_exactly_the_training_each_shipped_checkpoint_records():
    """`make weights` is what every shipped checkpoint says reproduces it: each model's
    `usbkit train` line in the Makefile, read by usbkit's own option parser, asks for the
    settings the checkpoint recorded (its `command`: every setting away from the defaults),
    so the two cannot drift apart."""
    import shlex
    from pathlib import Path

    from usbkit.cli import build_parser
    from usbkit.models.config import ModelConfig, TrainConfig
    from usbkit.models.train import train_command

    root = Path(__file__).resolve().parents[1]
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nweights:", 1)[1].split("\n\n", 1)[0]
    lines = [ln.strip() for ln in recipe.splitlines() if "/usbkit train " in ln]

    def settings(argv: list[str]) -> str:
        args = build_parser().parse_args(argv[argv.index("train") :])
        chosen = {k: v for k, v in vars(args).items() if v is not None}
        train = {k[len("train__") :]: v for k, v in chosen.items() if k.startswith("train__")}
        model = {k[len("model__") :]: v for k, v in chosen.items() if k.startswith("model__")}
        cfg = TrainConfig(study="STUDY", model=ModelConfig(kind=args.model, **model), **train)
        return train_command(cfg)

    made = {}
    for line in lines:
        argv = shlex.split(line.replace("$(WEIGHTS_RUNS)", "runs/weights"))
        made[argv[argv.index("--model") + 1]] = settings(argv)
    assert set(made) == {"frame", "sequence"}
    for model, wanted in made.items():
        state = torch.load(
            root / "usbkit" / "models" / "weights" / f"{model}.pt", weights_only=True
        )
        assert state["reproduce"] == "make weights"
        assert settings(shlex.split(state["command"])) == wanted, model
