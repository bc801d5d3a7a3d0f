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

    def batch(self, ids, size: tuple[int, int], rng: np.random.Generator | None = None):
        """Frames ``(b, t, 1, H, W)`` and a flat list of per-frame box tensors (b*t)."""
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
            xs.append(x)
            boxes += bx
        return torch.stack(xs), boxes
