"""``usbkit train``: one plain training loop for both detectors.

Resumable (the last finished epoch is saved atomically, and starting the same command again
continues from it), seeded and deterministic on CPU, mixed precision on CUDA, multi-process
through ``torchrun`` (gloo on CPU, NCCL on CUDA), with a per-epoch CSV/JSON log holding the
losses and the validation scan-level sensitivity at 0.5 FP/scan; the best epoch is kept.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from usbkit.errors import UsbkitError
from usbkit.io.study import load_study
from usbkit.models import ModelConfig, build_model
from usbkit.models.centernet import build_targets, detection_loss
from usbkit.models.data import WindowSampler, load_clips
from usbkit.models.detect import detections_frame, pick_device
from usbkit.safeio import atomic_path, ensure_writable_dir, write_text


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``RUN/config.json``).

    Attributes
    ----------
    study : str
        Study folder.
    model : ModelConfig
        Architecture and working resolution.
    epochs : int
        Passes over the training windows.
    batch : int
        Windows per step.
    window_length : int
        Consecutive frames per training window.
    window_step : int
        Start-to-start distance of training windows.
    lr, weight_decay : float
        AdamW settings (cosine schedule with warm-up).
    seed : int
        Random seed.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    val_fp_rate : float
        FP/scan rate of the validation sensitivity used to keep the best epoch.
    train_split, val_split : str
        Splits used (``val_split`` may be empty: then no validation, the last epoch is kept).
    """

    study: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 12
    batch: int = 4
    window_length: int = 8
    window_step: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    val_fp_rate: float = 0.5
    train_split: str = "train"
    val_split: str = "val"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        m = {k: tuple(v) if isinstance(v, list) else v for k, v in d["model"].items()}
        return cls(**{**d, "model": ModelConfig(**m)})


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    if world > 1:
        return torch.distributed.get_rank(), world
    return 0, 1


def validate(model, entries, fp_rate: float, device) -> dict:
    """Scan-level sensitivity at ``fp_rate`` and JAFROC FOM on validation clips."""
    from usbkit.evaluation.froc import jafroc_fom, operating_point, rate_scans, scan_froc

    model.eval()
    det = detections_frame(model, entries, device)
    # detections come back in original pixels, so they are compared with the study's boxes
    gt = pd.concat([e.gt for e in entries], ignore_index=True)
    clips = pd.DataFrame(
        {"clip_id": [e.clip_id for e in entries], "patient_id": [e.patient_id for e in entries]}
    )
    n_frames = sum(len(e.clip) for e in entries)
    r = rate_scans(gt, det, clips, n_frames)
    sens = operating_point(scan_froc(r), fp_rate)[0]
    return {"val_sensitivity": sens, "val_jafroc": jafroc_fom(r), "val_detections": len(det)}


def _save(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def train(cfg: TrainConfig, out: str | Path, progress: bool = True, on_epoch=None) -> Path:
    """Train (or resume) a detector; returns the run folder.

    Parameters
    ----------
    cfg : TrainConfig
        The run's settings. When ``out`` already holds a run, it must be the same model kind
        and study; training resumes after the last finished epoch (up to ``cfg.epochs``).
    out : str or Path
        Run folder: ``config.json``, ``log.csv``, ``log.json``, ``last.pt``, ``best.pt``.
    progress : bool
        Show progress bars.
    on_epoch : callable, optional
        Called with the log (a list of dicts) after every epoch (live loss curves).
    """
    rank, world = _dist()
    out = Path(out)
    last = out / "last.pt"
    start_epoch, log, best_key = 0, [], (-math.inf, -math.inf)
    resume = None
    if last.exists():
        resume = torch.load(last, map_location="cpu", weights_only=False)
        old = TrainConfig.from_dict(resume["train_config"])
        # Resuming keeps the run's own settings (model size, batch, ...); only the kind of model
        # and the study must match, and --epochs may extend the run.
        if (
            old.model.kind != cfg.model.kind
            or Path(old.study).resolve() != Path(cfg.study).resolve()
        ):
            raise UsbkitError(
                "this folder holds a different training run (another model or study)",
                file=out,
                fix="Choose a new --out folder, or repeat the original command to resume",
            )
        cfg = replace(old, epochs=cfg.epochs)
        start_epoch, log = resume["epoch"] + 1, resume["log"]
        best_key = tuple(resume.get("best_key", best_key))
    if rank == 0:
        ensure_writable_dir(out)
        write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    device = pick_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
    torch.manual_seed(cfg.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    study = load_study(cfg.study)
    train_clips = load_clips(study, cfg.train_split, progress=progress and rank == 0)
    if not train_clips:
        raise UsbkitError(
            f"no clips in split '{cfg.train_split}'",
            file=study.manifest_path,
            fix="Run `usbkit split STUDY` first",
        )
    val_clips = []
    if (
        cfg.val_split
        and "split" in study.manifest.columns
        and (study.manifest["split"] == cfg.val_split).any()
    ):
        val_clips = load_clips(study, cfg.val_split)
    sampler = WindowSampler(train_clips, cfg.window_length, cfg.window_step)
    model = build_model(cfg.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(sampler) // (cfg.batch * world))
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / max(1, steps_per_epoch))
            * 0.5
            * (1 + math.cos(math.pi * min(s, total) / total))
        ),
    )
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    stride = model.stride
    out_shape = (cfg.model.input_size[0] // stride, cfg.model.input_size[1] // stride)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(len(sampler))[: steps_per_epoch * cfg.batch * world]
        mine = order[rank::world]
        sums = {"loss": 0.0, "heat": 0.0, "size": 0.0, "offset": 0.0}
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"{cfg.model.kind} epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress or rank != 0,
            unit="step",
        )
        aug = np.random.default_rng([cfg.seed, epoch, rank, 1])
        for step in bar:
            ids = mine[step * cfg.batch : (step + 1) * cfg.batch]
            x, boxes = sampler.batch(ids, cfg.model.input_size, aug)
            tgt = {k: v.to(device) for k, v in build_targets(boxes, out_shape, stride).items()}
            with torch.autocast(device.type, enabled=use_amp):
                outputs = net(x.to(device))
            losses = detection_loss({k: v.float() for k, v in outputs.items()}, tgt)
            opt.zero_grad(set_to_none=True)
            scaler.scale(losses["loss"]).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            for k in sums:
                sums[k] += losses[k].item()
            bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.3f}")
        row = {
            "epoch": epoch + 1,
            **{k: v / steps_per_epoch for k, v in sums.items()},
            "lr": sched.get_last_lr()[0],
            "seconds": 0.0,
        }
        if rank == 0:
            if val_clips:
                row.update(validate(model, val_clips, cfg.val_fp_rate, device))
            row["seconds"] = time.perf_counter() - t0
            log.append(row)
            key = (
                (row.get("val_sensitivity", -math.inf), row.get("val_jafroc", -math.inf))
                if val_clips
                else (float(epoch), 0.0)
            )
            payload = {
                "model": model.state_dict(),
                "model_config": cfg.model.to_dict(),
                "train_config": cfg.to_dict(),
                "epoch": epoch,
                "log": log,
            }
            if key >= best_key:
                best_key = key
                _save(out / "best.pt", {**payload, "optimizer": None})
            _save(
                last,
                {
                    **payload,
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "best_key": list(best_key),
                },
            )
            pd.DataFrame(log).to_csv(out / ".log.csv.tmp", index=False)
            os.replace(out / ".log.csv.tmp", out / "log.csv")
            write_text(out / "log.json", json.dumps(log, indent=1))
            if on_epoch is not None:
                on_epoch(list(log))
            if progress:
                msg = ", ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                )
                tqdm.write(msg)
        if world > 1:
            torch.distributed.barrier()
    if world > 1:
        torch.distributed.destroy_process_group()
    return out


def cli_train(args) -> int:
    cfg = TrainConfig(
        study=str(args.study),
        model=ModelConfig(kind=args.model),
        seed=args.seed,
        device=args.device,
    )
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    out = train(cfg, args.out, progress=not args.quiet)
    print(f"training run in {out} (best checkpoint: {out / 'best.pt'})")
    return 0
