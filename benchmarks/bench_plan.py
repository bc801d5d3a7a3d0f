"""`usbkit plan`: a 20-point power curve, 1,000 simulated studies per point, 506-patient pilot.

Budget (the budgets table of ../shared/DESIGN.md section 6): at most 60 s with McNemar's test.
The pilot is the ``results["units"]`` of a simulated 506-patient study shaped like Yuan & Jia's:
1-3 clips per patient, 1-2 lesions in most, lesion ratings correlated within a patient and
between the two models, 12-25 false-positive tracks per clip, sensitivities at 0.5 FP/scan
near the published 86% (single frame) and 95% (sequence). The timed part is
:func:`usbkit.evaluation.power.plan_study` (power at the pilot's size, the power curve and the
minimum detectable difference); the same pilot with a stated effect, on a wide fixed grid and
with the bootstrap test are timed too. A second table checks the simulation against the
closed form (Connor 1987) on unclustered lesions, where they must agree.
"""

from __future__ import annotations

import time

import numpy as np
from _common import record

from usbkit.evaluation.power import PlanConfig, mcnemar_sample_size, plan_study

PAIR = ("sequence", "single frame")


def study_pilot(n_patients: int = 506, seed: int = 0) -> dict:
    """results.json (models and units) of a simulated pilot like the published study."""
    rng = np.random.default_rng(seed)
    clips, clip_patient, lesion_clip, lesion_patient, difficulty = [], [], [], [], []
    for p in range(n_patients):
        patient = rng.normal(0, 0.7)  # lesions of one patient are alike
        for c in range(int(rng.integers(1, 4))):
            clips.append(f"p{p}_c{c}")
            clip_patient.append(f"p{p}")
            if p % 4 and (c == 0 or rng.random() < 0.5):  # a quarter of patients lesion-free
                for _ in range(int(rng.integers(1, 3))):
                    lesion_clip.append(clips[-1])
                    lesion_patient.append(f"p{p}")
                    difficulty.append(patient + rng.normal(0, 1))
    z = np.asarray(difficulty)
    ratings, tracks = {}, {}
    for name, shift, fp_per_clip in (("single frame", 0.8, 25), ("sequence", 1.8, 12)):
        s = 1 / (1 + np.exp(-(1.2 + shift + 1.5 * z + rng.normal(0, 0.8, len(z)))))
        ratings[name] = [None if rng.random() < 0.03 else float(v) for v in s]
        k = rng.poisson(fp_per_clip, len(clips))
        tracks[name] = {
            "clip_id": np.repeat(clips, k).tolist(),
            "score": rng.beta(1, 9, k.sum()).tolist(),
        }
    return {
        "models": {"single frame": {}, "sequence": {}},
        "units": {
            "clips": {"clip_id": clips, "patient_id": clip_patient, "n_frames": [90] * len(clips)},
            "lesions": {
                "clip_id": lesion_clip,
                "lesion_id": ["1"] * len(lesion_clip),
                "patient_id": lesion_patient,
            },
            "ratings": ratings,
            "fp_tracks": tracks,
        },
    }


def unclustered_pilot(cells: tuple[int, int, int, int]) -> dict:
    """results.json units of a pilot with one lesion per patient and no false marks."""
    n11, n10, n01, n00 = cells
    n = sum(cells)
    a = [1] * n11 + [1] * n10 + [0] * n01 + [0] * n00
    b = [1] * n11 + [0] * n10 + [1] * n01 + [0] * n00
    ids = [f"c{i}" for i in range(n)]
    pats = [f"p{i}" for i in range(n)]
    return {
        "models": {"A": {}, "B": {}},
        "units": {
            "clips": {"clip_id": ids, "patient_id": pats, "n_frames": [60] * n},
            "lesions": {"clip_id": ids, "lesion_id": ["1"] * n, "patient_id": pats},
            "ratings": {
                "A": [0.9 if v else None for v in a],
                "B": [0.9 if v else None for v in b],
            },
            "fp_tracks": {m: {"clip_id": [], "score": []} for m in ("A", "B")},
        },
    }


def main() -> None:
    results = study_pilot(506)
    rows = []
    wide = tuple(int(v) for v in np.geomspace(50, 5000, 20))
    runs = [
        ("McNemar exact, pilot's effect", PlanConfig(models=PAIR), "60"),
        (
            "McNemar exact, stated effect 95% vs 86%",
            PlanConfig(models=PAIR, effect=(0.95, 0.86)),
            "60",
        ),
        ("McNemar exact, fixed grid 50-5,000 patients", PlanConfig(models=PAIR, grid=wide), "60"),
        ("paired bootstrap, 100 inner replicates", PlanConfig(models=PAIR, test="bootstrap"), "-"),
    ]
    for label, cfg, budget in runs:
        t = time.perf_counter()
        plan = plan_study(results, cfg)
        wall = time.perf_counter() - t
        rows.append(
            [
                label,
                len(plan.n_patients),
                cfg.n_sim,
                f"{plan.effect['sensitivity'][0]:.3f} / {plan.effect['sensitivity'][1]:.3f}",
                f"{plan.effect['discordance']:.3f}",
                f"{plan.power_at_pilot:.2f}",
                plan.n_required if plan.n_required is not None else "not reached",
                "-" if plan.mdd is None else f"{plan.mdd:.3f}",
                f"{wall:.1f}",
                budget,
            ]
        )
        print(rows[-1], flush=True)
    record(
        "`usbkit plan`: 20-point power curve, 1,000 studies per point, 506-patient pilot, 0.5 FP/scan",
        [
            "test and effect",
            "grid points",
            "studies per point",
            "sensitivity sequence / single frame",
            "discordance",
            "power at 506",
            "patients for power 0.8",
            "min. detectable difference at 506",
            "wall time (s)",
            "budget (s)",
        ],
        rows,
        note="Power at each size is the share of simulated studies that reject at alpha 0.05; "
        "the minimum detectable difference holds the weaker model at its sensitivity and the "
        "pilot's discordance.",
    )
    # simulation against the closed form, unclustered lesions
    checks = []
    for cells in ((600, 200, 100, 100), (700, 120, 60, 120), (500, 300, 150, 50)):
        n = sum(cells)
        psi, diff = (cells[1] + cells[2]) / n, (cells[1] - cells[2]) / n
        n_cf = mcnemar_sample_size(psi, diff)
        size = int(np.ceil(n_cf))
        cfg = PlanConfig(grid=(size,), n_sim=4000, exact=False, seed=1)
        sim = plan_study(unclustered_pilot(cells), cfg)
        exact = plan_study(unclustered_pilot(cells), PlanConfig(grid=(size,), n_sim=4000, seed=1))
        se = np.sqrt(0.8 * 0.2 / cfg.n_sim)
        checks.append(
            [
                f"{psi:.2f}",
                f"{diff:.2f}",
                f"{n_cf:.1f}",
                size,
                f"{sim.power[0]:.3f} ({sim.power_ci95[0][0]:.3f}-{sim.power_ci95[0][1]:.3f})",
                f"{(sim.power[0] - 0.8) / se:+.1f}",
                f"{exact.power[0]:.3f}",
            ]
        )
        print(checks[-1], flush=True)
    record(
        "`usbkit plan` against the closed form (Connor 1987), unclustered lesions, 4,000 studies",
        [
            "discordance",
            "difference",
            "closed-form lesions",
            "simulated size",
            "simulated power, chi-square McNemar (95% MC interval)",
            "(simulated - 0.8) / MC s.e.",
            "simulated power, exact McNemar",
        ],
        checks,
        note="At the closed form's size the simulated power of the test it assumes (uncorrected "
        "chi-square) should be 0.8 within Monte-Carlo error; the exact test the evaluation "
        "reports is conservative, so its power there is lower.",
    )


if __name__ == "__main__":
    main()
