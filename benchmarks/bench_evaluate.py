"""Scan-level FROC + 2,000-replicate paired bootstrap at 50, 506 and 5,000 patients.

Budget (DESIGN.md section 6): 506 patients in at most 10 s. The inputs are simulated
detections (two models, 2 clips per patient, 60 frames per clip, about 3 false-positive
detections per frame down to score 0.001), so that the cost of the linker and the bootstrap
is measured at a realistic size.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _common import record

from usbkit.evaluate import EvalConfig, evaluate_models


def cohort(n_patients: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    clips, gt, dets = [], [], {"single": [], "sequence": []}
    for p in range(n_patients):
        for c in range(2):
            cid = f"p{p}_c{c}"
            clips.append((cid, f"p{p}"))
            lesion = rng.random() < 0.6
            x = rng.uniform(20, 150)
            for f in range(60):
                if lesion and 10 <= f < 40:
                    gt.append((cid, f, "1", x, 40, x + 30, 70))
                for name, q in (("single", 0.5), ("sequence", 0.65)):
                    if lesion and 10 <= f < 40 and rng.random() < q:
                        dets[name].append((cid, f, rng.uniform(0.2, 1), x + 3, 43, x + 27, 67))
                    for _ in range(rng.poisson(3)):
                        u, v = rng.uniform(0, 180, 2)
                        dets[name].append(
                            (cid, f, max(0.001, rng.beta(1, 6)), u, v, u + 20, v + 20)
                        )
    cl = pd.DataFrame(clips, columns=["clip_id", "patient_id"])
    g = pd.DataFrame(gt, columns=["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"])
    cols = ["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]
    return cl, g, {k: pd.DataFrame(v, columns=cols) for k, v in dets.items()}


def main() -> None:
    rows = []
    for n in (50, 506, 5000):
        cl, g, d = cohort(n)
        frames = dict.fromkeys(cl["clip_id"], 60)
        t = time.perf_counter()
        evaluate_models(g, d, cl, frames, EvalConfig(n_boot=2000), progress=False)
        wall = time.perf_counter() - t
        rows.append(
            [n, len(cl), sum(len(v) for v in d.values()), f"{wall:.1f}", "10" if n == 506 else "-"]
        )
        print(rows[-1], flush=True)
    record(
        "Evaluation: scan-level FROC + 2,000-replicate paired bootstrap, two models",
        ["patients", "clips", "detections (both models)", "wall time (s)", "budget (s)"],
        rows,
    )


if __name__ == "__main__":
    main()
