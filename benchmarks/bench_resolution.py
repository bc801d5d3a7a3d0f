"""Choosing the default working resolution by measurement.

For each candidate input size (height x width) this measures what the resolution buys and what
it costs:

- **cells**: how many stride-4 output cells a 3 mm mass spans on a 40 mm-wide clip (the
  smallest mass the study's scanners show, on a typical linear-probe field of view), when the
  clip's B-mode width is resized to the input width;
- **sequence frames/s on one core**: the sequence detector streamed in chunks of 16 with
  decoding of its outputs and NMS (as ``usbkit detect`` runs it, decoding of the video aside);
- **train step (s)**: one forward and backward pass of the sequence detector on a batch of
  4 windows of 8 frames, both cores.

The rule (the default in ``ModelConfig.input_size``): the largest candidate whose 3 mm mass
spans at least 3 output cells, whose sequence detector still runs at twice the budget of
30 frames/s on one core (the other half is left for decoding real-size clips), and at which a
full training with the default recipe (``epochs x frames_per_epoch`` = 81,920 frame visits of
the sequence model, the dearer of the two) fits in 20 minutes on the 2-core CPU (the
still-image acceptance's training budget).
"""

from __future__ import annotations

import os
import time

import torch
from _common import record

from usbkit.io.detections import MAX_PER_FRAME, MIN_SCORE
from usbkit.models import ModelConfig, TrainConfig, build_model
from usbkit.models.centernet import build_targets, detection_loss

CANDIDATES = [(96, 112), (128, 160), (160, 192), (192, 224), (224, 272), (256, 320)]
MASS_MM, FIELD_MM, BUDGET_FPS = 3.0, 40.0, 30.0
#: a full training with the default recipe: epochs x frames_per_epoch frame visits
TRAIN_FRAMES = TrainConfig().epochs * TrainConfig().frames_per_epoch
TRAIN_BUDGET_S = 20 * 60


def stream_fps(size: tuple[int, int], n_frames: int = 192, chunk: int = 16) -> float:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="sequence", input_size=size)).eval()
    x = torch.rand(n_frames, 1, *size)
    best = 0.0
    with torch.no_grad():
        model.stream(x[:chunk])
        for _ in range(2):
            state, t = None, time.perf_counter()
            for s in range(0, n_frames, chunk):
                out, state = model.stream(x[s : s + chunk], state)
                model.detect(out, top_k=MAX_PER_FRAME, min_score=MIN_SCORE)
            best = max(best, n_frames / (time.perf_counter() - t))
    return best


def train_step_seconds(size: tuple[int, int], batch: int = 4, window: int = 8) -> float:
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="sequence", input_size=size)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, window, 1, *size)
    h, w = size[0] // model.stride, size[1] // model.stride
    box = torch.tensor([[size[1] * 0.4, size[0] * 0.4, size[1] * 0.6, size[0] * 0.6]])
    tgt = build_targets([box] * (batch * window), (h, w), model.stride, radius="centernet")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        loss = detection_loss(model(x), tgt, box_loss="giou")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    rows, chosen = [], None
    for size in CANDIDATES:
        cells = MASS_MM / FIELD_MM * size[1] / 4
        fps = stream_fps(size)
        step = train_step_seconds(size)
        train_min = step / 32 * TRAIN_FRAMES / 60
        ok = cells >= 3 and fps >= 2 * BUDGET_FPS and train_min * 60 <= TRAIN_BUDGET_S
        if ok:
            chosen = size
        rows.append(
            [
                f"{size[0]}x{size[1]}",
                f"{cells:.1f}",
                f"{fps:.0f}",
                f"{step:.2f}",
                f"{train_min:.0f}",
                "yes" if ok else "no",
            ]
        )
        print(rows[-1], flush=True)
    default = ModelConfig().input_size
    record(
        "Working resolution: what each candidate buys and costs",
        [
            "input (h x w)",
            "cells across a 3 mm mass (40 mm field)",
            "sequence frames/s, one core",
            "train step (s), 4 x 8 frames, 2 cores",
            f"full training, {TRAIN_FRAMES:,} frame visits (min)",
            "meets the rule",
        ],
        rows,
        note=(
            f"Rule: the largest size with >= 3 cells, >= {2 * BUDGET_FPS:.0f} frames/s "
            f"(twice the budget) and a full default training in <= 20 min. Chosen by this "
            f"run: {'x'.join(map(str, chosen)) if chosen else '-'}; ModelConfig default: "
            f"{default[0]}x{default[1]}."
        ),
    )


if __name__ == "__main__":
    main()
