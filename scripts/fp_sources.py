"""What the false positives of each detector are, and which lesions it misses (synthetic cohorts).

On a cohort made by ``usbkit synth`` the generator's plan says what lies under every mark: the
script replays each test clip's plan (its seed is in the cohort's config) and sorts every
false-positive track that counts at 0.1 / 0.2 / 0.5 FP/scan by what its best mark sits on:

- ``mass, not boxed``: a lesion in a frame where the ground truth has no box for it (its
  section below the annotation rule's size) or just outside its box;
- ``look-alike``: a mass-like fat lobule while it looks like a mass;
- ``artifact``: a loss-of-contact shadow or a reverberation;
- ``other``: normal tissue.

and the lesions found at each rate by their largest diameter. Run from the repository root
after ``make report`` (it reads the run's study and detections):

    .venv/bin/python scripts/fp_sources.py reports/latest [--doc docs/calibration.md]

With ``--doc`` the tables go between the ``<!-- fp-sources:begin -->`` and ``<!-- fp-sources:end
-->`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("mass, not boxed", "look-alike", "artifact", "other")
SIZE_BINS = (0.0, 5.0, 7.0, 10.0, 15.0, np.inf)


def replay(study: Path, clip_ids) -> tuple[dict, object]:
    """The plan and screen offset of each clip, replayed from the cohort's config."""
    from usbkit.synth.cohort import plan_cohort
    from usbkit.synth.config import SynthConfig
    from usbkit.synth.scene import plan_sweep
    from usbkit.synth.screen import make_screen

    cfg = SynthConfig.load(study / "synth_config.json")
    specs = {s["clip_id"]: s for s in plan_cohort(cfg)}
    plans = {}
    for cid in clip_ids:
        s = specs[cid]
        rng = np.random.default_rng(s["seed"])
        plan = plan_sweep(rng, cfg, s["patient_pathology"], s["n_lesions"])
        ox, oy = make_screen(rng, cfg.imaging)[1:] if cfg.imaging.ui_border else (0, 0)
        plans[cid] = (plan, ox, oy)
    return plans, cfg


@functools.lru_cache(maxsize=8)
def _grid(width: int, height: int, pixel_mm: float, jitter_mm: float):
    """The (x, z) millimetre positions of a frame's pixel centres (one per frame shift)."""
    x = (np.arange(width) + 0.5) * pixel_mm + jitter_mm
    z = (np.arange(height) + 0.5) * pixel_mm
    return np.meshgrid(x.astype(np.float32), z.astype(np.float32))


def _on(body, t: int, plan, cfg, col: float, row: float) -> bool:
    """Whether image pixel (col, row) lies inside ``body``'s outline in frame ``t``."""
    from usbkit.synth.scene import body_mask

    im = cfg.imaging
    if not (0 <= row < im.height and 0 <= col < im.width) or body.visibility[t] <= 0:
        return False
    X, Z = _grid(im.width, im.height, im.pixel_mm, float(plan.jitter_mm[t]))
    _, hard, _ = body_mask(body, X, Z, plan.y0 + plan.speed * t)
    if hard is None or not hard.any():
        return False
    rows, cols = np.nonzero(hard)
    margin = 2  # pixels: a mark's centre on the rim of the outline
    return bool(
        cols.min() - margin <= col <= cols.max() + margin
        and rows.min() - margin <= row <= rows.max() + margin
    )


def source(plans, cfg, clip_id: str, t: int, cx: float, cy: float) -> str:
    plan, ox, oy = plans[clip_id]
    col, row = cx - ox, cy - oy
    if any(_on(b, t, plan, cfg, col, row) for b in plan.lesions):
        return SOURCES[0]
    if any(_on(b, t, plan, cfg, col, row) for b in plan.mimics):
        return SOURCES[1]
    im = cfg.imaging
    for a in plan.artifacts:
        x0, x1 = a.x0 / im.pixel_mm, a.x1 / im.pixel_mm
        if a.start <= t < a.stop and x0 <= col <= x1 and row <= a.depth / im.pixel_mm:
            return SOURCES[2]
    return SOURCES[3]


def analyse(report: Path, fp_rates=(0.1, 0.2, 0.5)) -> str:
    from usbkit.evaluation.froc import operating_point, rate_scans, scan_froc
    from usbkit.io.study import load_study

    run = json.loads((report / "run.json").read_text())
    study_dir = report / "study" if (report / "study").is_dir() else Path(run["study"])
    st = load_study(study_dir)
    split = run.get("split", "test")
    clips = st.manifest[st.manifest["split"] == split] if split else st.manifest
    ids = set(clips["clip_id"])
    gt = st.annotations[st.annotations["clip_id"].isin(ids)].reset_index(drop=True)
    plans, cfg = replay(study_dir, sorted(ids))
    size = {
        (cid, str(b.lesion_id)): 2 * max(b.a, b.b)
        for cid, (plan, _, _) in plans.items()
        for b in plan.lesions
    }
    head = "| model | at FP/scan | threshold | FP tracks | " + " | ".join(SOURCES) + " |"
    lines = [head, "|" + "---|" * (4 + len(SOURCES))]
    bins = [
        f"{lo:g}-{hi:g} mm" if np.isfinite(hi) else f">= {lo:g} mm"
        for lo, hi in zip(SIZE_BINS[:-1], SIZE_BINS[1:])
    ]
    size_lines = [
        "| model | at FP/scan | " + " | ".join(bins) + " |",
        "|" + "---|" * (2 + len(bins)),
    ]
    for name, rel in run["detections"].items():
        det = pd.read_csv(report / rel, dtype={"clip_id": str})
        det = det[det["clip_id"].isin(ids)].reset_index(drop=True)
        r = rate_scans(gt, det, clips[["clip_id", "patient_id"]], 1)
        curve = scan_froc(r)
        best = r.tracks  # each FP track with the frame and box of its best mark
        ratings = r.lesions.assign(
            size=[size[(c, str(lid))] for c, lid in zip(r.lesions.clip_id, r.lesions.lesion_id)]
        )
        cut = pd.cut(ratings["size"], SIZE_BINS, right=False)
        for x in fp_rates:
            _, thr, _ = operating_point(curve, x)
            top = best[best["score"] >= thr]
            kinds = [
                source(
                    plans,
                    cfg,
                    row.clip_id,
                    int(row.frame),
                    (row.x0 + row.x1) / 2,
                    (row.y0 + row.y1) / 2,
                )
                for row in top.itertuples()
            ]
            counts = pd.Series(kinds, dtype=object).value_counts()
            lines.append(
                f"| {name} | {x:g} | {thr:.3f} | {len(top)} | "
                + " | ".join(str(int(counts.get(s, 0))) for s in SOURCES)
                + " |"
            )
            found = (ratings["rating"] >= thr).groupby(cut, observed=False).agg(["sum", "size"])
            size_lines.append(
                f"| {name} | {x:g} | "
                + " | ".join(f"{int(a)}/{int(b)}" for a, b in zip(found["sum"], found["size"]))
                + " |"
            )
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return (
        f"Run {_dt.datetime.now():%Y-%m-%d %H:%M}, commit {rev or '?'}: "
        f"`python scripts/fp_sources.py {report}` ({len(ids)} {split or 'all'} clips, "
        f"{len(r.lesions)} lesions).\n\n"
        "False-positive tracks at each operating point, by what their best mark lies on:\n\n"
        + "\n".join(lines)
        + "\n\nLesions found at each operating point, by largest diameter (found / all):\n\n"
        + "\n".join(size_lines)
        + "\n"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", help="a report folder (reports/latest) of a synthetic cohort")
    p.add_argument("--doc", help="a Markdown file with the fp-sources markers to write into")
    args = p.parse_args(argv)
    text = analyse(Path(args.report))
    print(text)
    if args.doc:
        from usbkit.safeio import write_between_markers

        write_between_markers(args.doc, "fp-sources", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
