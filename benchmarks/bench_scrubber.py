"""Scrubber frame-change latency in the kernel: new image ready after a frame change.

A 300-frame synthetic clip (B-mode 160 x 192, shown with ground truth and both shipped
models' marks) in the ipywidgets scrubber; every frame is visited in random order after the
clip is loaded (decoded and pre-encoded once), and the time ``Scrubber.show`` takes is
recorded. Budget (the budgets table of benchmarks/README.md): median <= 20 ms.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import record

from usbkit.io.study import load_study
from usbkit.report.steps import detect_all, start_run, train_or_load
from usbkit.synth import preset_config, synthesize
from usbkit.viewer.scrubber import Scrubber


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        cfg = preset_config("quick", patients=1, seed=3)
        cfg = replace(
            cfg,
            sweep=replace(cfg.sweep, frames=(300, 300)),
            lesions=replace(cfg.lesions, normal_fraction=0.0),
            split_fractions=(0, 0, 1),
        )
        study = synthesize(tmp / "s", config=cfg, progress=False)
        run = start_run(tmp / "run", study)
        train_or_load(run)
        detect_all(run, split=None, progress=False)
        S = load_study(study)
        t = time.perf_counter()
        sc = Scrubber(S, run.read_detections(), thresholds={"single frame": 0.2, "sequence": 0.2})
        load = time.perf_counter() - t
        rng = np.random.default_rng(0)
        lat = []
        for i in rng.permutation(sc.view.n):
            t = time.perf_counter()
            sc.slider.value = int(i)  # the same path as a slider move: observer -> show()
            lat.append((time.perf_counter() - t) * 1000)
        lat = np.array(lat)
        marks = sum(len(sc.view.visible_marks(i)) > 0 for i in range(sc.view.n))
        record(
            "Scrubber frame change (kernel side, ipywidgets)",
            [
                "frames",
                "frames with overlays",
                "clip load + pre-encode (s)",
                "median (ms)",
                "95th pct (ms)",
                "budget median (ms)",
            ],
            [
                [
                    sc.view.n,
                    marks,
                    f"{load:.2f}",
                    f"{np.median(lat):.2f}",
                    f"{np.percentile(lat, 95):.2f}",
                    20,
                ]
            ],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
