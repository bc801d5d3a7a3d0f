"""Training samples: windows of consecutive frames with their boxes, read from the cache.

Frames are memory-mapped and resized to the working resolution per window, so memory stays
flat whatever the size of the study (the budgets table of benchmarks/README.md: never all frames in RAM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from usbkit.io.clip import Clip, ReaderSettings, clamp_boxes, open_clip
from usbkit.io.study import Study


@dataclass
class ClipEntry:
    """One opened training clip: ids, the clip, its boxes per frame (crop pixels), its rows."""

    clip_id: str
    patient_id: str
    clip: Clip
    boxes: list[np.ndarray]  # per frame, (k, 4) in crop pixels
    gt: pd.DataFrame  # the study's annotation rows of the clip (original pixels)


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
        ann = study.boxes(row.clip_id)
        if len(ann):
            crop = clamp_boxes(
                clip.to_crop(ann[["x0", "y0", "x1", "y1"]].to_numpy(float)), clip.width, clip.height
            )
            for f, b in zip(ann["frame"].to_numpy(), crop):
                if f < len(per) and b[2] - b[0] >= 1 and b[3] - b[1] >= 1:
                    per[f] = np.vstack([per[f], b[None].astype(np.float32)])
        out.append(ClipEntry(row.clip_id, row.patient_id, clip, per, ann))
    return out


def to_input(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 frames ``(n, h, w)`` -> float tensor ``(n, 1, H, W)`` in [0, 1] at ``size``."""
    # copies only when the frames are not already a writable contiguous array (Clip.read copies)
    x = torch.from_numpy(np.require(frames, np.uint8, ["C", "W"])).float().div_(255.0)[:, None]
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
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
            x = to_input(e.clip.read(idx), size)
            sx, sy = scale_of(e.clip, size)
            bx = [
                torch.from_numpy(e.boxes[f] * np.array([sx, sy, sx, sy], np.float32)) for f in idx
            ]
            if rng is not None:
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
    (time-gain) ramp, multiplicative speckle-like noise, and a zoom/shift of the whole window
    (boxes moved with it, clipped to the frame; boxes that leave it are dropped)."""
    t, _, h, w = x.shape
    x = x.clamp(1e-4, 1) ** float(rng.uniform(0.75, 1.35))
    ramp = 1 + float(rng.uniform(-0.25, 0.25)) * (torch.linspace(-0.5, 0.5, h)[:, None])
    x = x * ramp
    noise = torch.from_numpy(rng.normal(1.0, float(rng.uniform(0.0, 0.08)), (1, 1, h, w)))
    x = (x * noise.float()).clamp_(0, 1)
    zoom = float(rng.uniform(0.85, 1.15))
    dx, dy = (float(v) for v in rng.uniform(-0.08, 0.08, 2))
    theta = torch.tensor([[1 / zoom, 0, -dx * 2], [0, 1 / zoom, -dy * 2]], dtype=torch.float32)
    grid = F.affine_grid(theta[None].expand(t, -1, -1), (t, 1, h, w), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    moved = []
    for b in boxes:
        if len(b):
            cx, cy = w / 2, h / 2
            nb = b.clone()
            nb[:, [0, 2]] = (b[:, [0, 2]] - cx) * zoom + cx + dx * w
            nb[:, [1, 3]] = (b[:, [1, 3]] - cy) * zoom + cy + dy * h
            nb[:, [0, 2]] = nb[:, [0, 2]].clamp(0, w)
            nb[:, [1, 3]] = nb[:, [1, 3]].clamp(0, h)
            keep = ((nb[:, 2] - nb[:, 0]) >= 1) & ((nb[:, 3] - nb[:, 1]) >= 1)
            b = nb[keep]
        moved.append(b)
    return x, moved
