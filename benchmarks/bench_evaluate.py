"""Scan-level FROC + 2,000-replicate paired bootstrap at 50, 506 and 5,000 patients.

Budget (../shared/DESIGN.md section 6): 506 patients in at most 4 s. The inputs are simulated
detections (two models, 2 clips per patient, 60 frames per clip, about 3 false-positive
detections per frame down to score 0.001), so that the cost of the linker and the bootstrap
is measured at a realistic size. Every metric of results.json is computed (frame-level FROC,
AP50, JAFROC, the literature metrics and time to first detection included).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _common import record

from usbkit.evaluation.results import EvalConfig, evaluate_models


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


def monai_comparison(n: int = 506) -> list:
    """Scan-level FROC from the same lesion ratings and FP-track scores: usbkit vs MONAI.

    MONAI's ``compute_froc_curve_data`` takes the probabilities of true and false positives;
    the hit rule and the FP-track linking are usbkit's (MONAI has none for video), so the
    comparison covers the curve and its interpolated sensitivities, where the definitions
    coincide.
    """
    from usbkit.evaluation.froc import froc_curve, interpolated_sensitivity

    try:
        from monai.metrics import compute_froc_curve_data, compute_froc_score
    except ImportError:
        return ["MONAI not installed (pip install monai)"]
    rng = np.random.default_rng(1)
    n_clips, n_lesions = 2 * n, int(1.2 * n)
    ratings = np.where(rng.random(n_lesions) < 0.8, rng.beta(4, 2, n_lesions), -np.inf)
    fp = rng.beta(1, 8, 40 * n_clips)  # FP-track scores, as rate_scans returns them
    tp = ratings[np.isfinite(ratings)]
    cl = range(n_clips)
    xs = (0.1, 0.2, 0.5)
    t = time.perf_counter()
    for _ in range(20):
        curve = froc_curve(ratings, fp, len(ratings), len(cl))
        ours = [interpolated_sensitivity(curve, x) for x in xs]
    t_ours = (time.perf_counter() - t) / 20
    t = time.perf_counter()
    for _ in range(3):
        fps, sens = compute_froc_curve_data(fp, tp, len(ratings), len(cl))
        theirs = [compute_froc_score(fps, sens, (x,)) for x in xs]
    t_monai = (time.perf_counter() - t) / 3
    diff = max(abs(a - b) for a, b in zip(ours, theirs))
    return [
        n,
        len(ratings),
        len(fp),
        ", ".join(f"{v:.3f}" for v in ours),
        ", ".join(f"{v:.3f}" for v in theirs),
        f"{diff:.4f}",
        f"{1000 * t_ours:.1f}",
        f"{1000 * t_monai:.1f}",
    ]


def main() -> None:
    row = monai_comparison()
    if len(row) > 1:
        record(
            "Scan-level FROC curve from the same ratings: usbkit vs MONAI (interpolated sensitivity)",
            [
                "patients",
                "lesions",
                "FP tracks",
                "usbkit at 0.1/0.2/0.5",
                "MONAI at 0.1/0.2/0.5",
                "max abs difference",
                "usbkit (ms)",
                "MONAI (ms)",
            ],
            [row],
            note="MONAI computes the curve only: no hit rule, FP linking, operating points or bootstrap.",
        )
    rows = []
    for n in (50, 506, 5000):
        cl, g, d = cohort(n)
        frames = dict.fromkeys(cl["clip_id"], 60)
        t = time.perf_counter()
        evaluate_models(g, d, cl, frames, EvalConfig(n_boot=2000), progress=False)
        wall = time.perf_counter() - t
        rows.append(
            [n, len(cl), sum(len(v) for v in d.values()), f"{wall:.1f}", "4" if n == 506 else "-"]
        )
        print(rows[-1], flush=True)
    record(
        "Evaluation: scan-level FROC + 2,000-replicate paired bootstrap, two models",
        ["patients", "clips", "detections (both models)", "wall time (s)", "budget (s)"],
        rows,
    )


if __name__ == "__main__":
    main()
