"""Detector inference speed at the default working resolution.

Frames/s of the single-frame and the sequence detector (network + decoding + NMS, streamed in
chunks of 16 frames as `usbkit detect` does), on one core and on all cores, and the ratio of
their per-frame costs. Budgets (the budgets table of benchmarks/README.md): sequence >= 30 frames/s on one core;
sequence cost per frame <= 1.3 x single-frame cost.
"""

from __future__ import annotations

import os
import time

import torch
from _common import record

from usbkit.io.detections import MAX_PER_FRAME, MIN_SCORE
from usbkit.models import ModelConfig, build_model


def fps(
    kind: str, threads: int, n_frames: int = 480, chunk: int = 16, context: str = "causal"
) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, context=context)).eval()
    x = torch.rand(n_frames, 1, *model.cfg.input_size)
    with torch.no_grad():
        model.stream(x[:chunk])  # warm-up
        best = 0.0
        for _ in range(3):
            state = None
            t = time.perf_counter()
            for s in range(0, n_frames, chunk):
                out, state = model.stream(x[s : s + chunk], state, final=s + chunk >= n_frames)
                model.detect(out, top_k=MAX_PER_FRAME, min_score=MIN_SCORE)
            best = max(best, n_frames / (time.perf_counter() - t))
    return best


def detect_fps(checkpoint: str, patients: int = 4) -> tuple[float, int, str]:
    """``usbkit detect`` end to end on real H.264 clips of the synthetic cohort, in this
    process pinned to one core: decoding into an empty frame cache, cropping, resizing,
    the network, peak decoding, NMS and writing the CSV."""
    import tempfile

    import av

    from usbkit.models.detect import detect_study
    from usbkit.synth import preset_config, synthesize

    with tempfile.TemporaryDirectory(prefix="usbkit-bench-") as tmp:
        cfg = preset_config("quick", patients=patients, seed=5)
        study = synthesize(f"{tmp}/study", config=cfg, progress=False)
        frames, size = 0, None
        for path in sorted(study.glob("clips/*/*.mp4")):
            with av.open(str(path)) as c:
                frames += sum(1 for _ in c.decode(video=0))
                s = c.streams.video[0]
                size = f"{s.height}x{s.width}"
        os.environ["USBKIT_CACHE"] = f"{tmp}/cache"  # cold: decoding is part of the time
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(affinity)})
        torch.set_num_threads(1)
        try:
            t = time.perf_counter()
            detect_study(study, checkpoint, f"{tmp}/det.csv", progress=False)
            seconds = time.perf_counter() - t
        finally:
            os.sched_setaffinity(0, affinity)
    return frames / seconds, frames, size


def main() -> None:
    cores = os.cpu_count() or 1
    rows = []
    for threads in sorted({1, cores}):
        f = fps("frame", threads)
        s = fps("sequence", threads, context="causal")
        b = fps("sequence", threads, context="both")
        rows.append([threads, f"{f:.0f}", f"{s:.0f}", f"{f / s:.2f}", f"{b:.0f}", f"{f / b:.2f}"])
    cfg = ModelConfig()
    record(
        f"Detector inference, {cfg.input_size[0]}x{cfg.input_size[1]} working resolution (network, peak decoding and NMS, streamed in chunks of 16)",
        [
            "threads",
            "single-frame frames/s",
            "sequence, causal, frames/s",
            "causal sequence / single-frame cost per frame",
            "sequence, both sides, frames/s",
            "both-sided sequence / single-frame cost per frame",
        ],
        rows,
        note="Budgets (causal mode, live use): sequence >= 30 frames/s on one core; cost "
        "ratio <= 1.3. The both-sided mode (stored cine, the study's setting) reads twice as "
        "many neighbours and delays each frame's marks by window - 1 frames.",
    )
    e2e = []
    for kind in ("frame", "sequence"):
        rate, frames, size = detect_fps(f"pretrained:{kind}")
        e2e.append([kind, size, frames, f"{rate:.0f}"])
    record(
        "`usbkit detect` end to end on one core (H.264 decoding into an empty cache, crop, resize, network, NMS, CSV)",
        ["shipped model", "clip size (h x w)", "frames", "frames/s"],
        e2e,
        note="Budget: sequence >= 30 frames/s on one core (process pinned to one core).",
    )


if __name__ == "__main__":
    main()
