"""Training only a sequence detector's temporal part (``TrainConfig.train_part='temporal'``).

The single-frame part (backbone and head) is frozen, so what it makes of each training frame
never changes: :func:`frozen_clips` computes it once per clip (and once for the clip's mirror
image, the augmentation), and every epoch (:func:`train_temporal_epoch`) trains the temporal
part on whole clips, each frame with all the neighbours it has in the clip, exactly as
``usbkit detect`` reads them. The loss is CenterNet's focal loss of the corrected centre
heatmap (box size and offset belong to the frozen head). An epoch visits every clip and its
mirror image once, ``batch`` clips a step, in a seeded order. The rest of the run (validation,
the kept epoch, early stopping, resuming) is :func:`usbkit.models.train.train`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from usbkit.models.centernet import build_targets, focal_loss
from usbkit.models.data import ClipEntry, scale_of, to_input


@dataclass
class FrozenClip:
    """What the frozen single-frame part makes of one clip (or its mirror image)."""

    clip_id: str
    features: torch.Tensor  # (t, c, h, w), half precision
    logit: torch.Tensor  # (t, 1, h, w), the single-frame heat logits
    target: torch.Tensor  # (t, 1, h, w), the CenterNet heat target
    lesions: torch.Tensor  # (k, t, h, w) bool: the cells inside each lesion's box, per frame
    background: torch.Tensor  # (t, h, w) bool: the cells at least one cell away from any box


@torch.no_grad()
def frozen_clips(
    model, clips: list[ClipEntry], cfg, progress: bool = False, chunk: int = 32
) -> list[FrozenClip]:
    """The frozen part's features and heat logits for every clip and its mirror image.

    Parameters
    ----------
    model : SequenceDetector
        With its single-frame part frozen (:meth:`SequenceDetector.freeze_single_frame`).
    clips : list of ClipEntry
        The training clips.
    cfg : TrainConfig
        Working resolution, heat radius, augmentation (``none``: no mirror images).
    progress : bool
        Show a progress bar.
    chunk : int
        Frames per forward pass.
    """
    size = tuple(cfg.model.input_size)
    stride = model.stride
    shape = (size[0] // stride, size[1] // stride)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for e in tqdm(clips, desc="single-frame part on the training clips", disable=not progress):
        sx, sy = scale_of(e.clip, size)
        boxes = [torch.from_numpy(b * np.array([sx, sy, sx, sy], np.float32)) for b in e.boxes]
        for mirror in (False, True) if cfg.augment != "none" else (False,):
            feats, logits = [], []
            for s in range(0, len(e.clip), chunk):
                x = to_input(
                    e.clip.read(np.arange(s, min(s + chunk, len(e.clip)))),
                    size,
                    cfg.model.antialias,
                ).to(device)
                f = model.features(x.flip(-1) if mirror else x)
                feats.append(f.half().cpu())
                logits.append(model.head(f)["heat"].cpu())
            bx = boxes
            if mirror:
                W = size[1]
                bx = [
                    torch.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], 1) if len(b) else b
                    for b in boxes
                ]
            target = build_targets(bx, shape, stride, radius=cfg.heat_radius)["heat"]
            lesions, background = _cell_masks(bx, e.lesion_ids, shape, stride)
            out.append(
                FrozenClip(
                    e.clip_id, torch.cat(feats), torch.cat(logits), target, lesions, background
                )
            )
    model.train(was_training)
    return out


def _cell_masks(boxes: list[torch.Tensor], ids: list[list[str]], shape, stride: int):
    """Each lesion's box cells per frame ``(k, t, h, w)`` and the background cells ``(t, h, w)``
    of a clip whose boxes per frame (input pixels, as the heat target's) belong to the lesions
    ``ids``: a cell is a lesion's when its centre lies inside the box; background when its
    centre is more than one cell outside every box."""
    h, w = shape
    t = len(boxes)
    cy = (torch.arange(h, dtype=torch.float32) + 0.5) * stride
    cx = (torch.arange(w, dtype=torch.float32) + 0.5) * stride
    index = {k: i for i, k in enumerate(sorted({k for frame in ids for k in frame}))}
    lesions = torch.zeros(len(index), t, h, w, dtype=torch.bool)
    near = torch.zeros(t, h, w, dtype=torch.bool)
    for f, (frame_boxes, frame_ids) in enumerate(zip(boxes, ids)):
        for b, lid in zip(frame_boxes.tolist(), frame_ids):
            iny = (cy >= b[1]) & (cy <= b[3])
            inx = (cx >= b[0]) & (cx <= b[2])
            lesions[index[lid], f] |= iny[:, None] & inx[None, :]
            ny = (cy >= b[1] - stride) & (cy <= b[3] + stride)
            nx = (cx >= b[0] - stride) & (cx <= b[2] + stride)
            near[f] |= ny[:, None] & nx[None, :]
    return lesions, ~near


def scan_loss(logit: torch.Tensor, clip: FrozenClip, negatives: int = 8) -> torch.Tensor:
    """The scan-level peak loss of one clip's corrected heat logits ``(t, 1, h, w)``.

    The study's rules rate a lesion by its best mark over all its frames and count a false
    track by its best mark (docs/metrics.md), so this loss looks at those maxima only: for each
    lesion, the highest logit inside its boxes over the clip, pushed up (``softplus(-x)``), and
    the ``negatives`` highest local maxima of the background cells over the clip, pushed down
    (``softplus(x)``). Returns the mean over those peaks (0 when the clip has none)."""
    x = logit[:, 0]
    terms = []
    for m in clip.lesions:
        if m.any():
            terms.append(nn.functional.softplus(-x[m].max()))
    peaks = x == nn.functional.max_pool2d(x[:, None], 3, stride=1, padding=1)[:, 0]
    bg = x[peaks & clip.background]
    if len(bg):
        top = bg.topk(min(negatives, len(bg))).values
        terms.extend(nn.functional.softplus(top))
    if not terms:
        return x.sum() * 0.0
    return torch.stack(terms).mean()


def temporal_steps(clips: list, cfg) -> int:
    """Optimizer steps of one epoch: every training clip and its mirror image (none with
    ``augment='none'``) once, ``batch`` a step."""
    items = len(clips) * (1 if cfg.augment == "none" else 2)
    return max(1, -(-items // cfg.batch))


def train_temporal_epoch(
    model,
    optimizer: torch.optim.Optimizer,
    scheduler,
    frozen: list[FrozenClip],
    cfg,
    epoch: int,
    device: torch.device,
    progress: bool = False,
    average=None,
) -> dict:
    """One epoch of the temporal part; returns the epoch's log row (as
    :func:`usbkit.models.train.train_one_epoch`'s, ``size`` and ``offset`` 0: frozen)."""
    model.train()
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(frozen))
    steps = max(1, -(-len(frozen) // cfg.batch))
    total = 0.0
    bar = tqdm(
        range(steps),
        desc=f"temporal part, epoch {epoch + 1}/{cfg.epochs}",
        disable=not progress,
        unit="step",
    )
    for step in bar:
        items = [frozen[i] for i in order[step * cfg.batch : (step + 1) * cfg.batch]]
        logits, targets = [], []
        for c in items:
            f = c.features.to(device).float()
            logit = c.logit.to(device)
            per = model.temporal.per_frame(f, logit)
            fix = model.temporal.correct(
                per, torch.arange(len(logit)), model.cut_context, model.head.heat
            )
            logits.append(logit + fix)
            targets.append(c.target.to(device))
        loss = focal_loss(torch.cat(logits), torch.cat(targets))
        if cfg.scan_loss > 0:
            peaks = [scan_loss(lg, c) for lg, c in zip(logits, items)]
            loss = loss + cfg.scan_loss * torch.stack(peaks).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update(model)
        total += loss.item()
        bar.set_postfix(loss=f"{total / (step + 1):.3f}")
    mean = total / steps
    return {
        "epoch": epoch + 1,
        "loss": mean,
        "heat": mean,
        "size": 0.0,
        "offset": 0.0,
        "lr": scheduler.get_last_lr()[0],
        "seconds": 0.0,
    }
