"""Running a trained detector over clips: streaming, causal, boxes back in original pixels.

``usbkit detect STUDY --checkpoint RUN --out detections.csv [--split test]`` streams one clip
at a time (frames memory-mapped from the cache, processed in chunks), so the study is never in
memory. The sequence model carries its temporal state across chunks, so each frame's backbone
features are computed exactly once.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from usbkit.config import config_from_dict
from usbkit.errors import UsbkitError
from usbkit.io.clip import Clip, ReaderSettings, clamp_boxes, open_clip
from usbkit.io.detections import (
    DETECTION_COLUMNS,
    MAX_PER_FRAME,
    MIN_SCORE,
    detections_info_path,
    is_detections_file,
)
from usbkit.models import FrameDetector, ModelConfig, build_model
from usbkit.models.data import scale_of, to_input
from usbkit.safeio import atomic_path, check_output_file, write_text

PRETRAINED = ("frame", "sequence")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda, then mps, then cpu; a device that is not there is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsbkitError(f"unknown device '{name}'", fix="Use auto, cpu, cuda or mps") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
    }.get(device.type, False)
    if device.type == "cuda" and available and device.index is not None:
        available = device.index < torch.cuda.device_count()
    if not available:
        raise UsbkitError(
            f"the device '{name}' is not available on this computer (this PyTorch sees "
            f"{'a GPU' if torch.cuda.is_available() else 'no GPU'})",
            fix="Use --device auto (a GPU when there is one, else the CPU) or --device cpu",
        )
    return device


def pretrained_path(kind: str) -> Path:
    """The checkpoint of a model shipped in the package (trained on the synthetic cohort)."""
    return Path(str(resources.files("usbkit.models") / "weights" / f"{kind}.pt"))


def checkpoint_file(ref: str | Path) -> Path:
    """The ``.pt`` file of a checkpoint reference: a run folder (its ``best.pt``, else
    ``last.pt``), a ``.pt`` file, or ``pretrained:frame`` / ``pretrained:sequence``."""
    ref = str(ref)
    if ref.startswith("pretrained:"):
        kind = ref.split(":", 1)[1]
        if kind not in PRETRAINED:
            raise UsbkitError(
                f"no shipped model '{kind}'", fix="Use pretrained:frame or pretrained:sequence"
            )
        return pretrained_path(kind)
    path = Path(ref)
    if path.is_dir():
        path = path / "best.pt" if (path / "best.pt").exists() else path / "last.pt"
    if not path.exists():
        raise UsbkitError(
            "no checkpoint found here",
            file=path,
            fix="Give a training run folder (with best.pt) or a .pt file",
        )
    return path


def checkpoint_payload(ref: str | Path) -> dict:
    """The saved content of a checkpoint (weights, configs, training log): the one place a
    checkpoint file is read.

    Loaded with ``weights_only=True``: a file that holds anything but tensors and plain
    values (code that would run on loading) is refused, never executed.
    """
    import pickle
    import zipfile

    path = checkpoint_file(ref)
    not_ours = "Give a best.pt or last.pt written by `usbkit train`, or pretrained:frame"
    try:
        with warnings.catch_warnings():
            # torch's notes on the file's pickle protocol are not for the user: usbkit's one
            # paragraph below says what is wrong with the file
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower() and not _pickle_imports(path):  # garbage
            raise UsbkitError(
                "this file is not a PyTorch checkpoint (or it is damaged)",
                file=path,
                fix=not_ours,
            ) from None
        raise UsbkitError(
            "this file holds more than model weights (objects that could run code when "
            "loaded), so usbkit does not load it",
            file=path,
            fix=not_ours,
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UsbkitError(
            f"this checkpoint cannot be read; it looks damaged or cut short "
            f"({exc.__class__.__name__})",
            file=path,
            fix="Copy it again, or for a training run delete last.pt to restart from scratch",
        ) from None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("model"), dict)
        or not isinstance(state.get("model_config"), dict)
        or not all(isinstance(v, torch.Tensor) for v in state["model"].values())
    ):
        raise UsbkitError(
            "this file is not a usbkit checkpoint (it has no model weights and config)",
            file=path,
            fix=not_ours,
        )
    return state


def operating_point_of(ref: str | Path) -> dict | None:
    """The operating point a checkpoint carries: ``{"fp_rate", "threshold", "source"}``.

    A checkpoint of ``usbkit train`` carries its best epoch's validation operating point (the
    threshold at which it made ``val_fp_rate`` false positives per scan on the validation
    split); a shipped checkpoint carries the one recorded when it was made. None when the
    checkpoint has none (no validation split).
    """
    state = checkpoint_payload(ref)
    point = state.get("operating_point")
    if isinstance(point, dict) and point.get("threshold") is not None:
        return {k: point[k] for k in ("fp_rate", "threshold", "source") if k in point}
    log = state.get("log") or []
    epoch = state.get("epoch")
    rows = [r for r in log if r.get("epoch") == (epoch + 1 if epoch is not None else None)]
    cfg = state.get("train_config") or {}
    if rows and rows[0].get("val_threshold") is not None:
        return {
            "fp_rate": cfg.get("val_fp_rate"),
            "threshold": float(rows[0]["val_threshold"]),
            "source": f"validation split of its training study, epoch {epoch + 1}",
        }
    return None


def _model_config(state: dict, path: Path) -> ModelConfig:
    saved = dict(state["model_config"])
    saved.setdefault("blocks", [0, 1, 1])  # written before the setting existed: that network
    if "temporal" not in saved and saved.get("kind") == "sequence":
        # written before the residual temporal part existed: the causal attention network
        saved.update(temporal="attention", context="causal")
    saved.setdefault("compound", 0)  # written before compounding existed: none
    return config_from_dict(ModelConfig, saved, source=path)


def model_config_of(ref: str | Path) -> ModelConfig:
    """The network (kind, working resolution, sizes) of a checkpoint reference."""
    path = checkpoint_file(ref)
    return _model_config(checkpoint_payload(path), path)


def _pickle_imports(path: Path) -> bool:
    """Whether the plain pickle file ``path`` names any Python object to import or call (what
    code in a pickle needs); read with :mod:`pickletools`, which never runs it."""
    import pickletools

    try:
        with open(path, "rb") as fh:
            for op, _arg, _pos in pickletools.genops(fh):
                if op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ"):
                    return True
    except Exception:  # noqa: BLE001 - not a readable pickle: nothing to import
        return False
    return False


def load_checkpoint(ref: str | Path, device: torch.device | None = None) -> FrameDetector:
    """Load a detector from a run folder (its ``best.pt``), a ``.pt`` file, or
    ``pretrained:frame`` / ``pretrained:sequence``; its weights are checked against its
    config before use."""
    path = checkpoint_file(ref)
    state = checkpoint_payload(path)
    cfg = _model_config(state, path)
    try:
        model = build_model(cfg)
    except ValueError as exc:
        raise UsbkitError(
            f"this checkpoint's model config is not valid ({exc})", file=path
        ) from None
    expected = model.state_dict()
    weights = state["model"]
    wrong = [
        k for k, v in expected.items() if k not in weights or tuple(weights[k].shape) != v.shape
    ]
    extra = [k for k in weights if k not in expected]
    if wrong or extra:
        raise UsbkitError(
            f"this checkpoint's weights do not fit its own model config ({len(wrong)} missing "
            f"or of the wrong shape, {len(extra)} unknown; e.g. {(wrong + extra)[0]})",
            file=path,
            fix="The file is damaged or was edited; use the checkpoint as usbkit train wrote it",
        )
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    model.eval()
    return model.to(device or torch.device("cpu"))


CONTEXTS = ("trained", "none")


def set_context(model: FrameDetector, context: str = "trained", source=None) -> FrameDetector:
    """Run a sequence model with the temporal context it was trained for (``trained``) or
    with it cut (``none``: each frame read as if it had no neighbours, the study's temporal
    ablation, docs/metrics.md); returns the model.

    Raises
    ------
    UsbkitError
        For ``none`` on a single-frame model (it has no temporal context to cut).
    """
    if context not in CONTEXTS:
        raise UsbkitError(
            f"unknown temporal context '{context}'",
            fix="Use --context trained (as the checkpoint was trained) or --context none "
            "(each frame read alone)",
        )
    if context == "none" and model.cfg.kind != "sequence":
        raise UsbkitError(
            "--context none cuts a sequence detector's temporal context, but this checkpoint "
            "is a single-frame detector: it reads each frame alone already",
            file=source,
            fix="Give a sequence checkpoint (e.g. pretrained:sequence), or leave out --context",
        )
    if model.cfg.kind == "sequence":
        model.cut_context = context == "none"
    return model


def context_label(model: FrameDetector) -> str:
    """How a model reads time: ``single frame``, ``causal``, ``both`` or ``cut``."""
    if model.cfg.kind != "sequence":
        return "single frame"
    return "cut" if model.cut_context else model.cfg.context


@torch.no_grad()
def detect_clip(
    model: FrameDetector, clip: Clip, chunk: int = 16, device: torch.device | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(frame, boxes, scores)`` for every frame in order, boxes in original-frame
    pixels (a model that reads following frames yields each frame once those are read)."""
    device = device or next(model.parameters()).device
    size = tuple(model.cfg.input_size)
    sx, sy = scale_of(clip, size)
    scale = np.array([sx, sy, sx, sy])
    state = None
    done = 0
    for start in range(0, len(clip), chunk):
        stop = min(start + chunk, len(clip))
        frames = clip.read(np.arange(start, stop))
        x = to_input(frames, size, model.cfg.antialias).to(device)
        out, state = model.stream(x, state, final=stop == len(clip))
        for boxes, scores in model.detect(out, top_k=MAX_PER_FRAME, min_score=MIN_SCORE):
            b = clamp_boxes(boxes.cpu().numpy() / scale, clip.width, clip.height)
            ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            yield done, clip.to_original(b[ok]), scores.cpu().numpy()[ok]
            done += 1


def detect_study(
    study_root: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    split: str | None = None,
    device: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
    context: str = "trained",
) -> Path:
    """Run a detector over the clips of a study (or one split) and write detections.csv.

    ``context``: ``trained`` (as the checkpoint was trained) or ``none`` (a sequence
    checkpoint with its temporal context cut, :func:`set_context`)."""
    from usbkit.io.study import load_study

    out = check_output_file(out, overwrite, is_detections_file)
    study = load_study(study_root)
    dev = pick_device(device)
    model = set_context(load_checkpoint(checkpoint, dev), context, checkpoint)
    rows = study.clips(split)
    if rows.empty:
        raise UsbkitError(f"no clips in split '{split}'", file=study.manifest_path)
    with atomic_path(out) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            # the csv module quotes an id holding ',', '"' or a line break (check allows them)
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(DETECTION_COLUMNS)
            bar = tqdm(
                list(rows.itertuples(index=False)),
                desc=f"detecting ({model.cfg.kind})",
                unit="clip",
                disable=not progress,
            )
            for row in bar:
                clip = open_clip(
                    study.root / row.path, ReaderSettings(), fps=study.clip_fps(row.clip_id)
                )
                for f, boxes, scores in detect_clip(model, clip, device=dev):
                    writer.writerows(
                        (row.clip_id, f, f"{s:.5f}", *(f"{v:.2f}" for v in b[:4]))
                        for b, s in zip(boxes, scores)
                    )
    write_text(
        detections_info_path(out),
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "model": model.cfg.kind,
                "context": context_label(model),
                "split": split,
                "operating_point": operating_point_of(checkpoint),
            },
            indent=1,
        ),
    )
    return out


def detections_info(detections: str | Path) -> dict:
    """What :func:`detections_info_path` holds, or ``{}`` for a file usbkit did not write."""
    try:
        return json.loads(detections_info_path(detections).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def detections_frame(model: FrameDetector, entries, device=None) -> pd.DataFrame:
    """Detections of a model on opened clips, as a DataFrame (used for validation)."""
    rows = []
    for e in entries:
        for f, boxes, scores in detect_clip(model, e.clip, device=device):
            for b, s in zip(boxes, scores):
                rows.append((e.clip_id, f, float(s), *map(float, b)))
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


def export_checkpoint(run: str | Path, dest: str | Path, reproduce: str | None = None) -> Path:
    """Write a run's best weights in half precision, without optimizer state (for shipping).

    The checkpoint keeps the run's ``command`` (the ``usbkit train`` line) and, given
    ``reproduce``, the whole procedure that makes it from nothing (``make weights``)."""
    state = checkpoint_payload(run)
    slim = {
        "model": {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()},
        "model_config": state["model_config"],
        "train_config": state.get("train_config"),
        "epoch": state.get("epoch"),
        "log": state.get("log"),
        "command": state.get("command"),
        "reproduce": reproduce,
    }
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        torch.save(slim, tmp)
    return dest


def record_operating_point(
    checkpoint: str | Path, study_root: str | Path, split: str = "val", fp_rate: float = 0.5
) -> dict:
    """Measure a checkpoint's operating point on a study's split and store it in the file.

    The threshold at which the model makes ``fp_rate`` false-positive marks per scan on that
    split (docs/metrics.md#sensitivity-at-an-fp-rate) is what a viewer of unannotated clips
    shows marks at. Used to give the shipped checkpoints theirs (see weights/README.md).
    """
    from usbkit.evaluation.froc import operating_point, rate_scans, scan_froc
    from usbkit.io.study import load_study
    from usbkit.models.data import load_clips

    path = checkpoint_file(checkpoint)
    study = load_study(study_root)
    entries = load_clips(study, split)
    det = detections_frame(load_checkpoint(path), entries)
    gt = pd.concat([e.gt for e in entries], ignore_index=True)
    scans = pd.DataFrame(
        {"clip_id": [e.clip_id for e in entries], "patient_id": [e.patient_id for e in entries]}
    )
    sens, thr, _ = operating_point(
        scan_froc(rate_scans(gt, det, scans, sum(len(e.clip) for e in entries))), fp_rate
    )
    point = {
        "fp_rate": fp_rate,
        "threshold": float(thr) if np.isfinite(thr) else None,
        "sensitivity": float(sens),
        "source": f"{split} split of {Path(study_root).name} ({len(entries)} clips)",
    }
    state = checkpoint_payload(path)
    with atomic_path(path) as tmp:
        torch.save({**state, "operating_point": point}, tmp)
    return point
