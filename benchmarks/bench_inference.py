"""Detector inference speed at the default working resolution.

Frames/s of the single-frame and the sequence detector (network + decoding + NMS, streamed in
chunks of 16 frames as `usbkit detect` does), on one core and on all cores, and the ratio of
their per-frame costs. Budgets (the budgets table of benchmarks/README.md): sequence >= 30 frames/s on one core;
sequence cost per frame <= 1.5 x single-frame cost.
"""

from __future__ import annotations

import os
import time

import torch
from _common import record

from usbkit.io.detections import MAX_PER_FRAME, MIN_SCORE
from usbkit.models import ModelConfig, build_model


def fps(kind: str, threads: int, n_frames: int = 480, chunk: int = 16) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind)).eval()
    x = torch.rand(n_frames, 1, *model.cfg.input_size)
    with torch.no_grad():
        model.stream(x[:chunk])  # warm-up
        best = 0.0
        for _ in range(3):
            state = None
            t = time.perf_counter()
            for s in range(0, n_frames, chunk):
                out, state = model.stream(x[s : s + chunk], state)
                model.detect(out, top_k=MAX_PER_FRAME, min_score=MIN_SCORE)
            best = max(best, n_frames / (time.perf_counter() - t))
    return best


def main() -> None:
    cores = os.cpu_count() or 1
    rows = []
    res = {}
    for threads in sorted({1, cores}):
        f = fps("frame", threads)
        s = fps("sequence", threads)
        res[threads] = (f, s)
        rows.append([threads, f"{f:.0f}", f"{s:.0f}", f"{f / s:.2f}"])
    cfg = ModelConfig()
    record(
        f"Detector inference, {cfg.input_size[0]}x{cfg.input_size[1]} working resolution (streamed, decode + NMS included)",
        [
            "threads",
            "single-frame frames/s",
            "sequence frames/s",
            "sequence / single-frame cost per frame",
        ],
        rows,
        note="Budgets: sequence >= 30 frames/s on one core; cost ratio <= 1.5.",
    )


if __name__ == "__main__":
    main()
