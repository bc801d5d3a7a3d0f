"""The study's scale (506 patients) on the 2-core CPU: measured per-epoch cost, extrapolated total.

``usbkit report --preset paper --train`` synthesizes 506 patients (1-3 sweeps of 60-120 frames
each), trains both detectors and runs them over the test split. Where no GPU is lent, this
script measures each part on a sample of the same preset and extrapolates:

- synthesis: seconds per frame on all cores, times the preset's expected frames;
- training: one epoch of each detector (a set number of frame visits, ``frames_per_epoch``,
  so it does not grow with the cohort) plus its validation, whose cost grows with the
  validation split (seconds per validation frame measured, times the paper preset's);
- detection: seconds per frame of both detectors over the test split.

The total assumes every epoch of ``TrainConfig.epochs`` runs (early stopping can only
shorten it).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from _common import record

from usbkit.io.study import load_study
from usbkit.models.config import ModelConfig, TrainConfig
from usbkit.models.detect import detect_study
from usbkit.models.train import train
from usbkit.synth import synthesize
from usbkit.synth.cohort import plan_cohort
from usbkit.synth.config import preset_config


def frames_of(study) -> dict[str, int]:
    import av

    out = {}
    for row in study.manifest.itertuples():
        with av.open(str(study.root / row.path)) as c:
            out[row.clip_id] = c.streams.video[0].frames
    return out


def main(sample: int = 24) -> None:
    with tempfile.TemporaryDirectory(prefix="usbkit-paper-") as tmp:
        tmp = Path(tmp)
        os.environ["USBKIT_CACHE"] = str(tmp / "cache")
        cfg = preset_config("paper", patients=sample, seed=3)
        t = time.perf_counter()
        root = synthesize(tmp / "study", config=cfg, progress=False)
        synth_s = time.perf_counter() - t
        study = load_study(root)
        frames = frames_of(study)
        per_frame_synth = synth_s / sum(frames.values())
        split = study.manifest.set_index("clip_id")["split"]
        val_frames = sum(n for c, n in frames.items() if split[c] == "val")
        test_frames = sum(n for c, n in frames.items() if split[c] == "test")
        epoch = {}
        for kind in ("frame", "sequence"):
            tc = TrainConfig(study=str(root), model=ModelConfig(kind=kind), epochs=1)
            run = train(tc, tmp / f"run-{kind}", progress=False)
            row = json.loads((run / "log.json").read_text())[0]
            t = time.perf_counter()
            detect_study(root, run, tmp / f"{kind}.csv", split="test", progress=False)
            detect_s = (time.perf_counter() - t) / max(test_frames, 1)
            epoch[kind] = (row["seconds"], detect_s)
        # the paper preset's expected frames, from its plan (clips per patient, clip lengths)
        full = preset_config("paper")
        specs = plan_cohort(full)
        mean_len = sum(full.sweep.frames) / 2
        total_frames = len(specs) * mean_len
        frac_val, frac_test = full.split_fractions[1], full.split_fractions[2]
        epochs = TrainConfig().epochs
        sample_val_frac = val_frames / sum(frames.values())
        rows = []
        total = per_frame_synth * total_frames
        for kind, (ep_s, det_s) in epoch.items():
            # the measured epoch's validation part (at the detection rate) grows with the
            # validation split; its training part (frames_per_epoch) does not
            val_s = det_s * val_frames
            train_s = max(ep_s - val_s, 0.0)
            full_epoch = train_s + det_s * total_frames * frac_val
            total += epochs * full_epoch + det_s * total_frames * frac_test
            rows.append(
                [
                    kind,
                    f"{ep_s:.0f} ({train_s:.0f} training + {val_s:.0f} validating "
                    f"{val_frames} frames)",
                    f"{full_epoch / 60:.1f}",
                    f"{1 / det_s:.0f}",
                ]
            )
        record(
            "The study's scale on the 2-core CPU: `usbkit report --preset paper --train` (506 "
            "patients), measured on a sample and extrapolated",
            [
                "model",
                f"one epoch on {sample} paper patients (s)",
                "one epoch at 506 patients (min, extrapolated)",
                "detection frames/s",
            ],
            rows,
            note=(
                f"Sample: {sample} patients, {len(frames)} clips, {sum(frames.values())} frames "
                f"(synthesis {1 / per_frame_synth:.0f} frames/s on all cores; sample validation "
                f"share {sample_val_frac:.2f}). At 506 patients: about {len(specs)} clips, "
                f"{total_frames:.0f} frames; synthesis {per_frame_synth * total_frames / 60:.0f}"
                f" min, {epochs} epochs per model; extrapolated total {total / 3600:.1f} h on "
                "this CPU (a GPU run needs a lent GPU)."
            ),
        )


if __name__ == "__main__":
    main()
