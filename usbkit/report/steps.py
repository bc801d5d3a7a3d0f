"""The study's steps as single calls, for notebooks and ``usbkit report``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from usbkit.errors import UsbkitError

MODEL_NAMES = {"frame": "single frame", "sequence": "sequence"}


def ensure_study(
    study: str | Path | None,
    out: str | Path,
    preset: str = "quick",
    seed: int = 0,
    patients: int | None = None,
    progress: bool = True,
) -> Path:
    """The study to use: ``study`` when given, else the synthetic cohort in ``out/study``
    (synthesized on first use)."""
    from usbkit.synth import synthesize

    if study:
        path = Path(study)
        if not (path / "manifest.csv").exists():
            raise UsbkitError("this is not a study folder (no manifest.csv)", file=path)
        return path
    path = Path(out) / "study"
    if not (path / "manifest.csv").exists():
        synthesize(path, preset=preset, patients=patients, seed=seed, progress=progress)
    return path


def train_or_load(
    study: str | Path,
    out: str | Path,
    train: bool = False,
    epochs: int = 15,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    on_epoch=None,
) -> dict[str, str]:
    """Checkpoint reference per model: freshly trained runs, or the shipped checkpoints."""
    from dataclasses import replace

    from usbkit.models import ModelConfig
    from usbkit.models.train import TrainConfig
    from usbkit.models.train import train as run_training

    refs = {}
    for kind in ("frame", "sequence"):
        if train:
            cfg = replace(
                TrainConfig(study=str(study), model=ModelConfig(kind=kind)),
                epochs=epochs,
                device=device,
                seed=seed,
            )
            callback = (
                None if on_epoch is None else (lambda log, n=MODEL_NAMES[kind]: on_epoch(n, log))
            )
            run = run_training(cfg, Path(out) / "runs" / kind, progress=progress, on_epoch=callback)
            refs[MODEL_NAMES[kind]] = str(run)
        else:
            refs[MODEL_NAMES[kind]] = f"pretrained:{kind}"
    return refs


def training_logs(refs: dict[str, str]) -> dict[str, pd.DataFrame]:
    """The per-epoch log of each model (from its run or its shipped checkpoint)."""
    import torch

    from usbkit.models.detect import pretrained_path

    logs = {}
    for name, ref in refs.items():
        if ref.startswith("pretrained:"):
            state = torch.load(
                pretrained_path(ref.split(":")[1]), map_location="cpu", weights_only=False
            )
            logs[name] = pd.DataFrame(state.get("log") or [])
        else:
            logs[name] = pd.read_csv(Path(ref) / "log.csv")
    return logs


def loss_figure(logs: dict[str, pd.DataFrame]) -> go.Figure:
    """Training loss and validation sensitivity per epoch of each model."""
    from plotly.subplots import make_subplots

    from usbkit.report.figures import _style, model_colors

    colors = model_colors(list(logs))
    fig = make_subplots(
        1, 2, subplot_titles=("training loss", "validation sensitivity at 0.5 FP/scan")
    )
    for name, log in logs.items():
        if log.empty:
            continue
        fig.add_scatter(
            x=log["epoch"], y=log["loss"], name=name, line=dict(color=colors[name]), row=1, col=1
        )
        if "val_sensitivity" in log:
            fig.add_scatter(
                x=log["epoch"],
                y=log["val_sensitivity"],
                name=name,
                showlegend=False,
                line=dict(color=colors[name], dash="dot"),
                row=1,
                col=2,
            )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    return _style(fig, "Training")


class LiveLoss:
    """A loss figure that redraws after every epoch: pass ``live.update`` as ``on_epoch``."""

    def __init__(self):
        self.widget = go.FigureWidget(loss_figure({}))
        self.logs: dict[str, pd.DataFrame] = {}

    def update(self, name: str, log: list[dict]) -> None:
        self.logs[name] = pd.DataFrame(log)
        fig = loss_figure(self.logs)
        with self.widget.batch_update():
            self.widget.data = []
            for trace in fig.data:
                self.widget.add_trace(trace)


def detect_all(
    study: str | Path,
    refs: dict[str, str],
    out: str | Path,
    split: str | None = "test",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Path]:
    """Run every model over a split; returns the detections file of each."""
    from usbkit.models.detect import detect_study

    paths = {}
    for name, ref in refs.items():
        dest = Path(out) / f"detections_{name.replace(' ', '_')}.csv"
        paths[name] = detect_study(
            study, ref, dest, split=split, device=device, progress=progress, overwrite=True
        )
    return paths


def read_detections(paths: dict[str, str | Path]) -> dict[str, pd.DataFrame]:
    from usbkit.io.detections import load_detections

    return {name: load_detections(p) for name, p in paths.items()}
