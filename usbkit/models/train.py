"""``usbkit train``: one plain training loop for both detectors.

One recipe for both detectors: the same windows, augmentation, frame visits and schedule; the
sequence model only adds temporal context. Each epoch (:func:`train_one_epoch`) draws
``frames_per_epoch`` frame visits as windows of consecutive frames (a seeded shuffle,
:func:`usbkit.models.data.epoch_windows`), which a ``torch.utils.data.DataLoader`` with
``workers`` processes reads from the memory-mapped frame cache, resizes, augments and turns
into targets; the model minimises the CenterNet loss (focal heatmap + scale-aware box loss +
offset, :mod:`usbkit.models.centernet`) with AdamW under a warm-up-then-cosine schedule, and
an exponential moving average of its weights (:class:`usbkit.models.ema.WeightAverage`) is
kept. Rank 0 then validates the averaged weights (:func:`evaluate`: frame-level AP50, the
JAFROC figure of merit of the scan-level FROC curve and scan-level sensitivity at
``val_fp_rate`` FP/scan, as defined in docs/metrics.md), appends a row to
``log.csv``/``log.json``, and saves ``last.pt`` (atomically) and, when the epoch is the best so
far by ``TrainConfig.select_by`` (:func:`epoch_key`), ``best.pt`` (:func:`save_checkpoint`).
Training stops early when that key has not improved for ``patience`` epochs.

Resumable (starting the same command again continues after the last finished epoch, see
:func:`resume_state`), seeded and deterministic on CPU, mixed precision on CUDA, and
multi-process through ``torchrun`` (gloo on CPU, NCCL on CUDA; the plumbing is in
:mod:`usbkit.models.distributed`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from usbkit.errors import UsbkitError
from usbkit.io.notices import warn
from usbkit.io.study import load_study
from usbkit.models import build_model, distributed
from usbkit.models.centernet import detection_loss
from usbkit.models.config import TEMPORAL_SETTINGS, TrainConfig, setting_differences
from usbkit.models.data import (
    ClipEntry,
    WindowDataset,
    WindowSampler,
    collate_windows,
    epoch_windows,
    load_clips,
)
from usbkit.models.detect import (
    checkpoint_file,
    checkpoint_payload,
    detections_frame,
    load_checkpoint,
    pick_device,
)
from usbkit.models.ema import WeightAverage
from usbkit.models.temporal_training import frozen_clips, temporal_steps, train_temporal_epoch
from usbkit.safeio import (
    atomic_path,
    ensure_writable_dir,
    mark_output,
    output_owner,
    write_csv,
    write_text,
)


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

    Returns
    -------
    Path
        The run folder ``out``.
    """
    if cfg.train_part == "temporal" and not (cfg.model.kind == "sequence" and cfg.init):
        raise UsbkitError(
            "train_part temporal trains only a sequence detector's temporal part on top of a "
            "trained single-frame part, so it needs a sequence model and weights to start from",
            fix="Give --model sequence and --init (e.g. --init pretrained:frame or the "
            "single-frame training run), or leave out --train-part",
        )
    rank, world = distributed.init()
    out = Path(out)
    cfg, start_epoch, log, best_key, state = resume_state(out, cfg)
    # checked before the run folder is made and the data loaded
    start = starting_weights(cfg) if state is None and cfg.init else None
    if rank == 0:
        ensure_writable_dir(out)
        mark_output(out, "train")
    device = distributed.device_for_rank(pick_device(cfg.device), rank)
    torch.manual_seed(cfg.seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    train_clips, val_clips = load_data(cfg, progress=progress and rank == 0)
    if state is None:
        cfg = for_still_images(cfg, train_clips)
    if rank == 0:
        write_text(out / "config.json", json.dumps(cfg.to_dict(), indent=2))
    sampler = WindowSampler(train_clips, cfg.window_length, cfg.window_step)
    model = build_model(cfg.model)
    if start is not None:
        model.load_state_dict(start, strict=False)  # a frame start leaves the temporal part new
    if cfg.train_part == "temporal":
        model.freeze_single_frame()
    model = model.to(device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    frozen = None
    if cfg.train_part == "temporal":
        if world > 1:
            raise UsbkitError(
                "training only the temporal part runs in one process",
                fix="Start it without torchrun (it takes minutes on a CPU)",
            )
        steps = temporal_steps(train_clips, cfg)
    else:
        steps = steps_per_epoch(sampler, cfg, world)
    scheduler = warmup_cosine(optimizer, steps, cfg.epochs)
    average = WeightAverage(model, cfg.ema)
    if state is not None:
        model.load_state_dict(state.get("train_model") or state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        average.load_state_dict(state["model"], state.get("ema_updates", 0))
    if cfg.train_part == "temporal":  # the frozen part's outputs, once (resumed weights loaded)
        frozen = frozen_clips(model, train_clips, cfg, progress=progress)
    net = distributed.wrap(model, device)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    for epoch in range(start_epoch, cfg.epochs):
        if stale_epochs(log, cfg, validated=bool(val_clips)) >= cfg.patience > 0:
            break  # early stopping (also when resuming a run that had stopped)
        t0 = time.perf_counter()
        if frozen is not None:
            row = train_temporal_epoch(
                model, optimizer, scheduler, frozen, cfg, epoch, device, progress, average
            )
        else:
            row = train_one_epoch(
                net,
                optimizer,
                scheduler,
                scaler,
                sampler,
                cfg,
                epoch,
                device,
                rank,
                world,
                progress,
                average=average,
            )
        if rank == 0:
            if val_clips:
                row.update(evaluate(average.model, val_clips, cfg.val_fp_rate, device))
            row["seconds"] = time.perf_counter() - t0
            log.append(row)
            key = epoch_key(row, epoch, validated=bool(val_clips), select_by=cfg.select_by)
            if key >= best_key:
                best_key = key
                save_checkpoint(out / "best.pt", average.model, cfg, epoch, log)
            save_checkpoint(
                out / "last.pt",
                average.model,
                cfg,
                epoch,
                log,
                optimizer,
                scheduler,
                best_key,
                trained=model,
                ema_updates=average.updates,
            )
            log_epoch(out, log, on_epoch, progress)
        distributed.barrier()
    distributed.teardown()
    return out


def starting_weights(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights of the checkpoint ``cfg.init`` (fine-tuning), checked to fit ``cfg.model``:
    the same kind, working resolution and sizes (``antialias``, how frames are resized, may
    differ).

    Raises
    ------
    UsbkitError
        When the checkpoint is another network.
    """
    path = checkpoint_file(cfg.init)
    start = load_checkpoint(path)
    frame_to_sequence = start.cfg.kind == "frame" and cfg.model.kind == "sequence"
    if start.cfg.kind != cfg.model.kind and not frame_to_sequence:
        raise UsbkitError(
            f"the weights to start from (init) are a {start.cfg.kind} detector's; they cannot "
            f"start a {cfg.model.kind} detector",
            file=path,
            fix=f"Start from a {cfg.model.kind} checkpoint (pretrained:{cfg.model.kind} or a "
            f"{cfg.model.kind} training run), or train from random weights without init",
        )
    differ = [
        there_and_asked(name, there, asked)
        for name, there, asked in setting_differences(start.cfg, cfg.model)
        if name != "antialias" and not (frame_to_sequence and name in TEMPORAL_SETTINGS)
    ]
    if differ:
        raise UsbkitError(
            "the weights to start from (init) belong to another network: " + "; ".join(differ),
            file=path,
            fix="Leave out the model settings that differ (a fine-tuned run keeps the network "
            "of the checkpoint it starts from), or train from random weights without init",
        )
    return start.state_dict()


def there_and_asked(name: str, there, asked) -> str:
    """A setting that differs, as the command line spells it (``--lr 0.003 there, 0.002 asked
    for``)."""
    return f"{option(name)} {spelled(name, there)} there, {spelled(name, asked)} asked for"


def option(name: str) -> str:
    """The command-line option of a setting (``input_size`` -> ``--input-size``)."""
    return "--" + name.replace("_", "-")


def spelled(name: str, value) -> str:
    """Setting ``name``'s value as the command line spells it (``160x192``, ``1,2,2``, ``yes``).

    Examples
    --------
    >>> spelled("input_size", (160, 192)), spelled("blocks", (1, 2, 2)), spelled("ema", 0.5)
    ('160x192', '1,2,2', '0.5')
    >>> spelled("antialias", True)
    'yes'
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ("x" if name.endswith("size") else ",").join(str(v) for v in value)
    return str(value)


def for_still_images(cfg: TrainConfig, clips: list[ClipEntry]) -> TrainConfig:
    """Settings for a training set of still images (every clip one frame, as an imported
    image set): windows of one frame, and ``window_length`` times as many per step, so a
    step still sees ``batch x window_length`` frames and an epoch ``frames_per_epoch``
    frame visits, without the same image repeated along a window. Other sets are unchanged.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> still = SimpleNamespace(clip=[0])  # a one-frame clip
    >>> c = for_still_images(TrainConfig(batch=4, window_length=8), [still, still])
    >>> c.batch, c.window_length
    (32, 1)
    """
    if cfg.window_length == 1 or not clips or any(len(e.clip) != 1 for e in clips):
        return cfg
    return replace(cfg, batch=cfg.batch * cfg.window_length, window_length=1)


def stale_epochs(log: list[dict], cfg: TrainConfig, validated: bool) -> int:
    """Epochs since the best validation key (0 without validation: never stops early).

    Parameters
    ----------
    log : list of dict
        The log rows so far.
    cfg : TrainConfig
        The run's settings.
    validated : bool
        Whether the run has validation clips.

    Returns
    -------
    int
        How many epochs of ``log`` came after the last one with the best :func:`epoch_key`.
    """
    if not validated or not log:
        return 0
    keys = [epoch_key(r, i, validated=True, select_by=cfg.select_by) for i, r in enumerate(log)]
    best = max(range(len(keys)), key=lambda i: (keys[i], i))
    return len(keys) - 1 - best


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    sampler: WindowSampler,
    cfg: TrainConfig,
    epoch: int,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    progress: bool = False,
    average: WeightAverage | None = None,
) -> dict:
    """One epoch: ``frames_per_epoch`` frame visits; returns the epoch's log row (mean losses).

    Every process draws the same windows (:func:`usbkit.models.data.epoch_windows`) and
    takes every ``world``-th one from ``rank`` on; each window's augmentation draws from a
    generator seeded by the seed, the epoch and its position, so a run is the same whatever
    the number of data workers, and a resumed run repeats an uninterrupted one exactly.

    Parameters
    ----------
    model : torch.nn.Module
        The detector, possibly wrapped by :func:`usbkit.models.distributed.wrap`.
    optimizer : torch.optim.Optimizer
        AdamW over the model's parameters.
    scheduler : torch.optim.lr_scheduler.LRScheduler
        Stepped once per step (:func:`warmup_cosine`).
    scaler : torch.amp.GradScaler
        Loss scaler; enabled means mixed precision (CUDA).
    sampler : WindowSampler
        The training windows.
    cfg : TrainConfig
        The run's settings (seed, batch, model input size, epochs for the progress bar).
    epoch : int
        Zero-based epoch number.
    device : torch.device
        Where the model lives.
    rank, world : int
        This process's rank and the number of processes.
    progress : bool
        Show a progress bar (on rank 0 only).
    average : WeightAverage, optional
        Updated after every step.

    Returns
    -------
    dict
        ``epoch`` (one-based), ``loss``, ``heat``, ``size``, ``offset`` (means over the steps
        of this process), ``lr`` (after the last step) and ``seconds`` (0.0, filled in by
        :func:`train`).
    """
    stride = distributed.unwrap(model).stride
    n_steps = steps_per_epoch(sampler, cfg, world)
    model.train()
    items = epoch_windows(len(sampler), cfg, epoch, rank, world)
    loader = torch.utils.data.DataLoader(
        WindowDataset(sampler, cfg, stride),
        batch_size=cfg.batch,
        sampler=items,
        num_workers=cfg.workers,
        collate_fn=collate_windows,
        drop_last=True,
    )
    sums = {"loss": 0.0, "heat": 0.0, "size": 0.0, "offset": 0.0}
    bar = tqdm(
        loader,
        total=n_steps,
        desc=f"{cfg.model.kind} epoch {epoch + 1}/{cfg.epochs}",
        disable=not progress or rank != 0,
        unit="step",
    )
    step = 0
    for step, (x, targets) in enumerate(bar, 1):
        tgt = {k: v.to(device) for k, v in targets.items()}
        with torch.autocast(device.type, enabled=scaler.is_enabled()):
            outputs = model(x.to(device))
        losses = detection_loss(
            {k: v.float() for k, v in outputs.items()}, tgt, box_loss=cfg.box_loss
        )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if average is not None:
            average.update(distributed.unwrap(model))
        for k in sums:
            sums[k] += losses[k].item()
        bar.set_postfix(loss=f"{sums['loss'] / step:.3f}")
    n_steps = max(step, 1)
    return {
        "epoch": epoch + 1,
        **{k: v / n_steps for k, v in sums.items()},
        "lr": scheduler.get_last_lr()[0],
        "seconds": 0.0,
    }


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, clips: list[ClipEntry], fp_rate: float, device: torch.device
) -> dict:
    """Validation metrics of a model on opened clips.

    The detector runs causally over every clip; its detections (in original pixels) are
    compared with the study's boxes as in docs/metrics.md: scan-level FROC, sensitivity at
    ``fp_rate`` FP/scan ("Sensitivity at an FP rate", the operating point) and the JAFROC
    figure of merit.

    Parameters
    ----------
    model : torch.nn.Module
        The plain (unwrapped) detector; it is left in eval mode.
    clips : list of ClipEntry
        Validation clips from :func:`usbkit.models.data.load_clips`.
    fp_rate : float
        FP/scan rate of the operating point.
    device : torch.device
        Where the model lives.

    Returns
    -------
    dict
        ``val_sensitivity``, ``val_threshold`` (the operating point's score threshold, the
        one a viewer of unannotated clips shows marks at; None when no mark qualifies),
        ``val_jafroc``, ``val_ap50`` (frame-level AP at IoU 0.5, docs/metrics.md) and
        ``val_detections`` (number of detections).
    """
    from usbkit.evaluation.froc import (
        average_precision,
        jafroc_fom,
        operating_point,
        rate_scans,
        scan_froc,
    )

    model.eval()
    det = detections_frame(model, clips, device)
    gt = pd.concat([e.gt for e in clips], ignore_index=True)
    scans = pd.DataFrame(
        {"clip_id": [e.clip_id for e in clips], "patient_id": [e.patient_id for e in clips]}
    )
    r = rate_scans(gt, det, scans, sum(len(e.clip) for e in clips))
    sens, thr, _ = operating_point(scan_froc(r), fp_rate)
    return {
        "val_sensitivity": sens,
        "val_threshold": float(thr) if math.isfinite(thr) else None,
        "val_jafroc": jafroc_fom(r),
        "val_ap50": average_precision(gt, det),
        "val_detections": len(det),
    }


def load_data(cfg: TrainConfig, progress: bool = False) -> tuple[list[ClipEntry], list[ClipEntry]]:
    """Open the training and validation clips of the run's study.

    Parameters
    ----------
    cfg : TrainConfig
        Gives the study and the two split names.
    progress : bool
        Show a progress bar while opening the training clips.

    Returns
    -------
    train_clips, val_clips : list of ClipEntry
        ``val_clips`` is empty when ``cfg.val_split`` is empty or names no clip.

    Raises
    ------
    UsbkitError
        When the training split holds no clip.
    """
    study = load_study(cfg.study)
    train_clips = load_clips(study, cfg.train_split, progress=progress)
    if not train_clips:
        raise UsbkitError(
            f"no clips in split '{cfg.train_split}'",
            file=study.manifest_path,
            fix="Run `usbkit split STUDY` first",
        )
    if not any(len(b) for e in train_clips for b in e.boxes):
        raise UsbkitError(
            f"the '{cfg.train_split}' split has no lesion boxes, so a detector trained on it "
            "would only learn that there is never a mass",
            file=study.annotations_path,
            fix="Annotate the lesions of the training clips (or use the shipped detectors: "
            "usbkit detect --checkpoint pretrained:sequence)",
        )
    val_clips = []
    if (
        cfg.val_split
        and "split" in study.manifest.columns
        and (study.manifest["split"] == cfg.val_split).any()
    ):
        val_clips = load_clips(study, cfg.val_split)
    return train_clips, val_clips


def steps_per_epoch(sampler: WindowSampler, cfg: TrainConfig, world: int) -> int:
    """Optimizer steps per epoch: whole batches over all processes, at least one.

    Parameters
    ----------
    sampler : WindowSampler
        The training windows.
    cfg : TrainConfig
        Gives ``frames_per_epoch``, the window length and the batch size (per process).
    world : int
        Number of processes.

    Returns
    -------
    int
        ``max(1, windows // (batch * world))``, where ``windows`` is
        ``frames_per_epoch // window_length`` (every window once when it is 0), as
        :func:`usbkit.models.data.epoch_windows` draws them.
    """
    want = len(sampler)
    if cfg.frames_per_epoch:
        want = max(1, cfg.frames_per_epoch // cfg.window_length)
    return max(1, want // (cfg.batch * world))


def warmup_cosine(
    optimizer: torch.optim.Optimizer, steps: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning-rate schedule: linear warm-up over the first epoch, then cosine decay to 0.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer (its ``lr`` is the peak).
    steps : int
        Steps per epoch (the warm-up length).
    epochs : int
        Epochs of the run (the decay ends after ``steps * epochs`` steps).

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
        To be stepped after every optimizer step.
    """
    total = steps * epochs
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            min(1.0, (s + 1) / max(1, steps))
            * 0.5
            * (1 + math.cos(math.pi * min(s, total) / total))
        ),
    )


def epoch_key(
    row: dict, epoch: int, validated: bool, select_by: str = "ap50"
) -> tuple[float, float]:
    """Sort key of an epoch for keeping the best one (the latest wins ties).

    Parameters
    ----------
    row : dict
        The epoch's log row.
    epoch : int
        Zero-based epoch number.
    validated : bool
        Whether the run has validation clips.
    select_by : {'ap50', 'jafroc'}
        ``TrainConfig.select_by``.

    Returns
    -------
    tuple of float
        With validation: ``(val_ap50, val_jafroc)`` for ``ap50``, ``(val_jafroc,
        val_sensitivity)`` for ``jafroc`` (a missing value counts as minus infinity).
        Without validation: ``(epoch, 0)``, so the last epoch is kept. Frame-level AP50 is
        computed over every annotated validation frame, so it moves smoothly from epoch to
        epoch; the scan-level figures of a small validation split move by whole lesions.

    Examples
    --------
    >>> epoch_key({"val_ap50": 0.6, "val_jafroc": 0.7}, 3, validated=True)
    (0.6, 0.7)
    >>> epoch_key({"val_jafroc": 0.7, "val_sensitivity": 0.5}, 3, True, select_by="jafroc")
    (0.7, 0.5)
    >>> epoch_key({}, 3, validated=False)
    (3.0, 0.0)
    """
    if not validated:
        return float(epoch), 0.0
    first, second = (
        ("val_ap50", "val_jafroc") if select_by == "ap50" else ("val_jafroc", "val_sensitivity")
    )
    return row.get(first, -math.inf), row.get(second, -math.inf)


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    cfg: TrainConfig,
    epoch: int,
    log: list[dict],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    best_key: tuple[float, float] | None = None,
    trained: torch.nn.Module | None = None,
    ema_updates: int = 0,
) -> Path:
    """Write a checkpoint atomically (a crash never leaves a half-written file).

    Parameters
    ----------
    path : Path
        ``RUN/best.pt`` (weights only) or ``RUN/last.pt`` (with the state to resume from).
    model : torch.nn.Module
        The plain (unwrapped) detector whose weights detect with: the moving average of the
        trained weights (or the trained weights when ``TrainConfig.ema`` is 0).
    cfg : TrainConfig
        The run's settings.
    epoch : int
        Zero-based number of the epoch just finished.
    log : list of dict
        The log so far.
    optimizer, scheduler : optional
        Given for ``last.pt``: their states are saved to resume from; ``best.pt`` saves
        ``optimizer: None`` and neither ``scheduler`` nor ``best_key``.
    best_key : tuple of float, optional
        The best :func:`epoch_key` so far (saved with the optimizer).
    trained : torch.nn.Module, optional
        For ``last.pt``: the weights being trained (saved as ``train_model`` to resume from).
    ema_updates : int
        For ``last.pt``: steps averaged so far (the decay's ramp).

    Returns
    -------
    Path
        ``path``. Keys: ``model``, ``model_config``, ``train_config``, ``epoch``, ``log``,
        ``optimizer``, ``command`` (the command line that reproduces the run) and, for
        ``last.pt``, ``scheduler``, ``best_key``, ``train_model`` and ``ema_updates``.
    """
    payload = {
        "model": model.state_dict(),
        "model_config": cfg.model.to_dict(),
        "train_config": cfg.to_dict(),
        "epoch": epoch,
        "log": log,
        "optimizer": None,
        "command": train_command(cfg),
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
        payload["scheduler"] = scheduler.state_dict()
        payload["best_key"] = list(best_key)
        payload["train_model"] = (trained if trained is not None else model).state_dict()
        payload["ema_updates"] = int(ema_updates)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def resume_state(
    out: Path, cfg: TrainConfig
) -> tuple[TrainConfig, int, list[dict], tuple[float, float], dict | None]:
    """Where to start: after the last finished epoch of the run in ``out``, if there is one.

    Resuming keeps the run's own settings (model size, batch, ...); only the model kind and
    the study must match, and ``cfg.epochs`` may extend the run.

    Parameters
    ----------
    out : Path
        Run folder.
    cfg : TrainConfig
        The settings asked for.

    Returns
    -------
    cfg : TrainConfig
        The settings to train with (the run's own, with ``cfg.epochs``).
    start_epoch : int
        Zero-based first epoch to run.
    log : list of dict
        The log rows so far.
    best_key : tuple of float
        The best :func:`epoch_key` so far.
    state : dict or None
        The ``last.pt`` payload to restore model, optimizer and scheduler from, or None for
        a fresh run.

    Raises
    ------
    UsbkitError
        When ``out`` holds a run of another model kind or study.
    """
    last = out / "last.pt"
    if out.exists() and not out.is_dir():
        raise UsbkitError("this run folder is a file", file=out, fix="Give a new --out folder")
    if out.is_dir() and any(out.iterdir()) and output_owner(out) != "train":
        raise UsbkitError(
            "this folder holds files that are not a usbkit training run, and usbkit never "
            "writes over them",
            file=out,
            fix="Choose a new --out folder (a run resumes only in its own folder)",
        )
    if not last.exists():
        return cfg, 0, [], (-math.inf, -math.inf), None
    state = checkpoint_payload(last)
    old = TrainConfig.from_dict(state["train_config"])
    if "select_by" not in state["train_config"]:  # saved before the setting: it kept by JAFROC
        old = replace(old, select_by="jafroc")
    if old.model.kind != cfg.model.kind or Path(old.study).resolve() != Path(cfg.study).resolve():
        raise UsbkitError(
            "this folder holds a different training run (another model or study)",
            file=out,
            fix="Choose a new --out folder, or repeat the original command to resume",
        )
    changed = changed_settings(old, cfg)
    if changed:
        warn(
            "this folder holds a training run with other settings ("
            + "; ".join(changed)
            + "); it continues with its own settings",
            file=out,
            fix="To train with the new settings, give a new output folder",
        )
    best_key = tuple(state.get("best_key", (-math.inf, -math.inf)))
    return replace(old, epochs=cfg.epochs), state["epoch"] + 1, state["log"], best_key, state


#: Settings a resumed run may be given differently without changing what it learns (or that
#: training itself adapts: batch and window length for still images).
RESUME_FREE = {"study", "epochs", "device", "workers", "init", "batch", "window_length"}


def changed_settings(saved: TrainConfig, asked: TrainConfig) -> list[str]:
    """The settings of ``asked`` that differ from a saved run's, spelled as options
    (``--lr 0.003 there, 0.002 asked for``).

    Examples
    --------
    >>> changed_settings(TrainConfig(lr=0.003), TrainConfig(lr=0.002, epochs=40))
    ['--lr 0.003 there, 0.002 asked for']
    """
    return [
        there_and_asked(name, there, now)
        for name, there, now in setting_differences(saved, asked)
        if name not in RESUME_FREE
    ]


def log_epoch(out: Path, log: list[dict], on_epoch=None, progress: bool = False) -> None:
    """Write ``log.csv`` and ``log.json`` atomically, then report the last row.

    Parameters
    ----------
    out : Path
        Run folder.
    log : list of dict
        One row per finished epoch.
    on_epoch : callable, optional
        Called with a copy of ``log`` (live loss curves).
    progress : bool
        Also print the last row.
    """
    write_csv(out / "log.csv", pd.DataFrame(log))
    write_text(out / "log.json", json.dumps(log, indent=1))
    if on_epoch is not None:
        on_epoch(list(log))
    if progress:
        tqdm.write(
            ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in log[-1].items()
            )
        )


def train_command(cfg: TrainConfig, out: str = "RUN") -> str:
    """The ``usbkit train`` command line that repeats a run's settings (saved in every
    checkpoint as ``command``): the study, the model and every setting that differs from
    the defaults, each spelled as its command-line option.

    Examples
    --------
    >>> from usbkit.models.config import ModelConfig, TrainConfig
    >>> train_command(TrainConfig(study="study", model=ModelConfig(kind="sequence"), seed=3))
    'usbkit train study --model sequence --out RUN --seed 3'
    """
    parts = ["usbkit", "train", cfg.study or "STUDY", "--model", cfg.model.kind, "--out", out]
    for name, value, _ in setting_differences(cfg, TrainConfig()):
        parts += [option(name), spelled(name, value)]
    return " ".join(parts)
