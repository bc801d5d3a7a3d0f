"""Training samples: windows of consecutive frames with their boxes, read from the cache.

Frames are memory-mapped and resized to the working resolution per window, so memory stays
flat whatever the size of the study (the budgets table of benchmarks/README.md: never all frames in RAM).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from usbkit.io.clip import Clip, ReaderSettings, clamp_boxes, open_clip
from usbkit.io.study import Study
from usbkit.models.centernet import build_targets


@dataclass
class ClipEntry:
    """One opened training clip: ids, the clip, its boxes per frame (crop pixels) with their
    lesions, its rows."""

    clip_id: str
    patient_id: str
    clip: Clip
    boxes: list[np.ndarray]  # per frame, (k, 4) in crop pixels
    gt: pd.DataFrame  # the study's annotation rows of the clip (original pixels)
    lesion_ids: list[list[str]] = field(default_factory=list)  # per frame, of each box


def load_clips(
    study: Study, split: str | None, settings: ReaderSettings | None = None, progress: bool = False
) -> list[ClipEntry]:
    """Open every clip of a split (cropped, cached) with its boxes in crop coordinates."""
    from tqdm.auto import tqdm

    rows = study.clips(split)
    out = []
    for row in tqdm(
        list(rows.itertuples(index=False)),
        desc="opening clips",
        disable=not progress,
        unit="clip",
        leave=False,
    ):
        clip = open_clip(study.root / row.path, settings, fps=study.clip_fps(row.clip_id))
        per = [np.zeros((0, 4), np.float32) for _ in range(len(clip))]
        ids: list[list[str]] = [[] for _ in range(len(clip))]
        ann = study.boxes(row.clip_id)
        if len(ann):
            crop = clamp_boxes(
                clip.to_crop(ann[["x0", "y0", "x1", "y1"]].to_numpy(float)), clip.width, clip.height
            )
            lesion = ann["lesion_id"].astype(str)
            for f, b, lid in zip(ann["frame"].to_numpy(), crop, lesion):
                if f < len(per) and b[2] - b[0] >= 1 and b[3] - b[1] >= 1:
                    per[f] = np.vstack([per[f], b[None].astype(np.float32)])
                    ids[f].append(lid)
        out.append(ClipEntry(row.clip_id, row.patient_id, clip, per, ann, ids))
    return out


def to_input(frames: np.ndarray, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    """uint8 frames ``(n, h, w)`` -> float tensor ``(n, 1, H, W)`` in [0, 1] at ``size``
    (bilinear; averaging every covered pixel when shrinking with ``antialias``, see
    :attr:`ModelConfig.antialias`)."""
    # copies only when the frames are not already a writable contiguous array (Clip.read copies)
    x = torch.from_numpy(np.require(frames, np.uint8, ["C", "W"])).float().div_(255.0)[:, None]
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    return x


def scale_of(clip: Clip, size: tuple[int, int]) -> tuple[float, float]:
    """Working-resolution pixels per crop pixel (sx, sy)."""
    return size[1] / clip.width, size[0] / clip.height


class WindowSampler:
    """All windows of ``length`` consecutive frames (stride ``step``) of a set of clips."""

    def __init__(self, clips: list[ClipEntry], length: int, step: int):
        self.clips = clips
        self.length = length
        self.index = []
        for ci, e in enumerate(clips):
            n = len(e.clip)
            starts = range(0, max(1, n - length + 1), step) if n >= length else [0]
            self.index += [(ci, s) for s in starts]

    def __len__(self) -> int:
        return len(self.index)

    def batch(
        self,
        ids,
        size: tuple[int, int],
        rng: np.random.Generator | None = None,
        augment: str = "basic",
        antialias: bool = False,
    ):
        """Frames ``(b, t, 1, H, W)`` and a flat list of per-frame box tensors (b*t).

        With ``rng``, windows are augmented (TrainConfig.augment): ``basic`` flips and scales
        the gain; ``ultrasound`` adds gamma, a depth ramp, multiplicative speckle-like noise
        and scale/translation jitter, each drawn once per window.
        """
        xs, boxes = [], []
        for i in ids:
            ci, s = self.index[i]
            e = self.clips[ci]
            n = len(e.clip)
            idx = np.clip(np.arange(s, s + self.length), 0, n - 1)
            x = to_input(e.clip.read(idx), size, antialias)
            sx, sy = scale_of(e.clip, size)
            bx = [
                torch.from_numpy(e.boxes[f] * np.array([sx, sy, sx, sy], np.float32)) for f in idx
            ]
            if rng is not None and augment != "none":
                if rng.random() < 0.5:  # horizontal flip
                    x = x.flip(-1)
                    W = size[1]
                    bx = [
                        torch.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], 1)
                        if len(b)
                        else b
                        for b in bx
                    ]
                x = (x * float(rng.uniform(0.8, 1.2))).clamp_(0, 1)
                if augment == "ultrasound":
                    x, bx = ultrasound_jitter(x, bx, rng)
            xs.append(x)
            boxes += bx
        return torch.stack(xs), boxes


def ultrasound_jitter(x: torch.Tensor, boxes: list[torch.Tensor], rng: np.random.Generator):
    """Augment one window ``(t, 1, H, W)`` the way ultrasound images vary: gamma, a depth
    (time-gain) ramp, multiplicative speckle-like noise, and a zoom (above 1 a random crop,
    below 1 a shrink with a dark margin), shift and small rotation (up to 6 degrees) of the
    whole window. Boxes move with the picture: each is the bounding box of its rotated
    corners, clipped to the frame; boxes that leave it are dropped."""
    t, _, h, w = x.shape
    x = x.clamp(1e-4, 1) ** float(rng.uniform(0.75, 1.35))
    ramp = 1 + float(rng.uniform(-0.25, 0.25)) * (torch.linspace(-0.5, 0.5, h)[:, None])
    x = x * ramp
    noise = torch.from_numpy(rng.normal(1.0, float(rng.uniform(0.0, 0.08)), (1, 1, h, w)))
    x = (x * noise.float()).clamp_(0, 1)
    zoom = float(rng.uniform(0.85, 1.2))
    dx, dy = (float(v) for v in rng.uniform(-0.08, 0.08, 2))
    angle = float(np.deg2rad(rng.uniform(-6.0, 6.0)))
    # forward map in pixels (about the centre): p' = zoom * R(angle) (p - c) + c + (dx w, dy h)
    c, s_ = np.cos(angle), np.sin(angle)
    fwd = zoom * np.array([[c, -s_], [s_, c]])
    inv = np.linalg.inv(fwd)
    # affine_grid works in normalised coordinates (-1..1 per axis): rescale the pixel map
    S = np.diag([w / 2, h / 2])
    a = np.linalg.inv(S) @ inv @ S
    b = -a @ np.array([2 * dx, 2 * dy])
    theta = torch.tensor(np.hstack([a, b[:, None]]), dtype=torch.float32)
    grid = F.affine_grid(theta[None].expand(t, -1, -1), (t, 1, h, w), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    moved = []
    cx, cy = w / 2, h / 2
    m = torch.tensor(fwd, dtype=torch.float32)
    for bb in boxes:
        if len(bb):
            corners = torch.stack(
                [bb[:, [0, 1]], bb[:, [2, 1]], bb[:, [0, 3]], bb[:, [2, 3]]], 1
            ) - torch.tensor([cx, cy])
            p = corners @ m.T + torch.tensor([cx + dx * w, cy + dy * h])
            nb = torch.cat([p.min(1).values, p.max(1).values], 1)
            nb[:, [0, 2]] = nb[:, [0, 2]].clamp(0, w)
            nb[:, [1, 3]] = nb[:, [1, 3]].clamp(0, h)
            keep = ((nb[:, 2] - nb[:, 0]) >= 1) & ((nb[:, 3] - nb[:, 1]) >= 1)
            bb = nb[keep]
        moved.append(bb)
    return x, moved


def epoch_windows(n_windows: int, cfg, epoch: int, rank: int = 0, world: int = 1) -> list:
    """This process's training items of one epoch: ``(epoch, position, window)`` triples.

    The windows are a seeded shuffle of all ``n_windows`` (``default_rng([seed, epoch])``,
    a fresh shuffle appended whenever one runs out) cut to ``frames_per_epoch / window_length``
    windows (all of them once when ``frames_per_epoch`` is 0), then to whole steps of
    ``batch x world``; every ``world``-th item from ``rank`` on is this process's. The
    position numbers the window within the epoch and seeds its augmentation, so a run
    draws the same windows and the same augmentation whatever the number of data workers,
    and a resumed run repeats an uninterrupted one.
    """
    want = n_windows
    if cfg.frames_per_epoch:
        want = max(1, cfg.frames_per_epoch // cfg.window_length)
    per_step = cfg.batch * world
    want = max(per_step, want // per_step * per_step)
    rng = np.random.default_rng([cfg.seed, epoch])
    order = np.concatenate(
        [rng.permutation(n_windows) for _ in range(-(-want // max(n_windows, 1)))]
    )[:want]
    return [(epoch, int(p), int(w)) for p, w in enumerate(order)][rank::world]


class WindowDataset(torch.utils.data.Dataset):
    """The training windows as a map-style dataset for ``torch.utils.data.DataLoader``.

    An item key is ``(epoch, position, window)`` (:func:`epoch_windows`); the item is the
    window's frames ``(t, 1, H, W)`` at the working resolution, augmented with a generator
    seeded by ``[seed, epoch, position, 1]``, and its CenterNet targets per frame.
    """

    def __init__(self, sampler: WindowSampler, cfg, stride: int):
        self.sampler, self.cfg, self.stride = sampler, cfg, stride

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, key):
        epoch, position, window = key
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, epoch, position, 1])
        size = tuple(cfg.model.input_size)
        x, boxes = self.sampler.batch(
            [window], size, rng, augment=cfg.augment, antialias=cfg.model.antialias
        )
        shape = (size[0] // self.stride, size[1] // self.stride)
        return x[0], build_targets(boxes, shape, self.stride, radius=cfg.heat_radius)


def collate_windows(items):
    """Stack windows ``(b, t, 1, H, W)``; concatenate their per-frame targets (``b*t`` rows,
    the order of the model's outputs)."""
    x = torch.stack([i[0] for i in items])
    keys = items[0][1].keys()
    return x, {k: torch.cat([i[1][k] for i in items]) for k in keys}
