"""``usbkit evaluate``: the study's table, curves and paired statistics -> ``results.json``."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import UsbkitError
from usbkit.evaluation.froc import (
    ScanRatings,
    average_precision,
    frame_froc,
    interpolated_sensitivity,
    jafroc_fom,
    operating_point,
    parse_hit,
    rate_scans,
    scan_froc,
)
from usbkit.evaluation.stats import (
    bootstrap_p,
    mcnemar_exact,
    paired_bootstrap,
    paired_table,
    percentile_ci,
)
from usbkit.io.detections import load_detections
from usbkit.io.study import Study, load_study
from usbkit.safeio import ensure_writable_dir, write_text

#: The published values of Yuan & Jia (2022), drawn beside our results for reference.
PUBLISHED = {
    "fp_rates": [0.1, 0.2, 0.5],
    "single frame": [0.766, 0.842, 0.860],
    "sequence": [0.773, 0.918, 0.953],
}


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (DESIGN.md section 4)."""

    hit: str = "center"
    fp_rates: tuple[float, ...] = (0.1, 0.2, 0.5)
    n_boot: int = 2000
    seed: int = 0
    split: str | None = None
    band_points: int = 41


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if all(type(x) is float for x in v):
            return [x if math.isfinite(x) else None for x in v]
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


def clip_frame_counts(study: Study, clip_ids, progress: bool = True) -> dict[str, int]:
    """Number of frames of each clip (from the reader's cache; decoded once if needed)."""
    from tqdm.auto import tqdm

    from usbkit.io.clip import ReaderSettings, open_clip

    out = {}
    for cid in tqdm(
        list(clip_ids), desc="counting frames", unit="clip", leave=False, disable=not progress
    ):
        out[cid] = open_clip(study.clip_path(cid), ReaderSettings(crop=False)).meta["n_frames"]
    return out


def evaluate_models(
    gt: pd.DataFrame,
    detections: dict[str, pd.DataFrame],
    clips: pd.DataFrame,
    frames_per_clip: dict[str, int],
    config: EvalConfig = EvalConfig(),
    progress: bool = True,
) -> tuple[dict, dict]:
    """Compute every quantity of DESIGN.md section 4 for models on the same clips.

    Parameters
    ----------
    gt : DataFrame
        Annotations (any clips; only those in ``clips`` are used).
    detections : dict of str to DataFrame
        Each model's detections.
    clips : DataFrame
        ``clip_id, patient_id`` of the evaluated clips.
    frames_per_clip : dict
        Frame count of each evaluated clip.
    config : EvalConfig
        Hit rule, FP rates, bootstrap size and seed.

    Returns
    -------
    results : dict
        The ``results.json`` content.
    extras : dict
        Ratings and bootstrap samples for figures (``ratings``, ``boot``, ``grid``).
    """
    parse_hit(config.hit)
    ids = set(clips["clip_id"])
    gt = gt.loc[gt["clip_id"].isin(ids)]
    n_frames = int(sum(frames_per_clip[c] for c in ids))
    detections = {name: det.loc[det["clip_id"].isin(ids)] for name, det in detections.items()}
    ratings: dict[str, ScanRatings] = {
        name: rate_scans(gt, det, clips, n_frames, config.hit) for name, det in detections.items()
    }
    xs = list(config.fp_rates)
    curves = {n: scan_froc(r) for n, r in ratings.items()}
    max_fp = max([1.0, *xs])
    grid = np.linspace(0, max_fp, config.band_points)
    boot = paired_bootstrap(ratings, xs, config.n_boot, config.seed, grid=grid, progress=progress)
    models = {}
    detected = {}
    for name, r in ratings.items():
        c = curves[name]
        ops = [operating_point(c, x) for x in xs]
        fc = frame_froc(r)
        rating = r.lesions["rating"].to_numpy(float)
        detected[name] = [rating >= op[1] for op in ops]
        models[name] = {
            "sensitivity": [o[0] for o in ops],
            "sensitivity_interp": [interpolated_sensitivity(c, x) for x in xs],
            "threshold": [o[1] for o in ops],
            "fp_per_scan_at_threshold": [o[2] for o in ops],
            "ci95": [percentile_ci(boot["sens"][name][:, k]) for k in range(len(xs))],
            "jafroc_fom": jafroc_fom(r),
            "frame_sensitivity": [operating_point(fc, x)[0] for x in xs],
            "ap50": average_precision(gt, detections[name]),
            "froc": c.to_dict(),
        }
    comparisons, fom_comparisons = [], []
    for a, b in itertools.combinations(list(ratings), 2):
        for k, x in enumerate(xs):
            table = paired_table(detected[a][k], detected[b][k])
            d = boot["sens"][a][:, k] - boot["sens"][b][:, k]
            comparisons.append(
                {
                    "a": a,
                    "b": b,
                    "fp_rate": x,
                    "table": table,
                    "mcnemar_p": mcnemar_exact(np.array(table)),
                    "diff": models[a]["sensitivity"][k] - models[b]["sensitivity"][k],
                    "diff_ci95": percentile_ci(d),
                    "bootstrap_p": bootstrap_p(d),
                }
            )
        d = boot["fom"][a] - boot["fom"][b]
        fom_comparisons.append(
            {
                "a": a,
                "b": b,
                "diff": models[a]["jafroc_fom"] - models[b]["jafroc_fom"],
                "diff_ci95": percentile_ci(d),
                "bootstrap_p": bootstrap_p(d),
            }
        )
    any_r = next(iter(ratings.values()))
    results = {
        "level": "scan",
        "hit": config.hit,
        "fp_rates": xs,
        "n_clips": int(len(clips)),
        "n_patients": int(clips["patient_id"].nunique()),
        "n_lesions": int(len(any_r.lesions)),
        "models": models,
        "comparisons": comparisons,
        "fom_comparisons": fom_comparisons,
        "n_bootstrap": config.n_boot,
        "seed": config.seed,
        "split": config.split,
    }
    extras = {"ratings": ratings, "boot": boot, "grid": grid}
    return _clean(results), extras


def results_table(results: dict) -> pd.DataFrame:
    """The study's table: sensitivity (95% CI) per model at each FP rate, then P values."""
    xs = results["fp_rates"]
    rows = []
    for name, m in results["models"].items():
        row = {"": name}
        for k, x in enumerate(xs):
            s, (lo, hi) = m["sensitivity"][k], m["ci95"][k]
            row[f"{x:g}"] = f"{100 * s:.1f}% ({_pct(lo)}-{_pct(hi)})"
        rows.append(row)
    for kind, label in (("mcnemar_p", "McNemar"), ("bootstrap_p", "paired bootstrap")):
        for a, b in dict.fromkeys((c["a"], c["b"]) for c in results["comparisons"]):
            row = {"": f"P ({a} vs {b}), {label}"}
            for c in results["comparisons"]:
                if (c["a"], c["b"]) == (a, b):
                    row[f"{c['fp_rate']:g}"] = format_p(c[kind])
            rows.append(row)
    return pd.DataFrame(rows).rename(columns={"": "sensitivity at FP/scan"})


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def format_p(p) -> str:
    """P values as a paper prints them: '< 0.001', '0.012', '0.32'."""
    if p is None:
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def table_markdown(results: dict) -> str:
    """The results table as GitHub-flavoured markdown."""
    df = results_table(results)
    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join(["---"] * len(df.columns)) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    note = (
        f"\n\nScan-level sensitivity (95% bootstrap interval over {results['n_patients']} "
        f"patients, {results['n_clips']} scans, {results['n_lesions']} lesions; "
        f"hit rule: {results['hit']})."
    )
    return "\n".join([head, sep, *body]) + note + "\n"


def evaluate_study(
    study_root: str | Path,
    detections: dict[str, str | Path],
    out: str | Path,
    config: EvalConfig = EvalConfig(),
    progress: bool = True,
    figures: bool = False,
    return_extras: bool = False,
):
    """Evaluate detection files against a study and write results.json, table.csv, table.md.

    Nothing is written until every number is computed; each file is replaced atomically.
    With ``return_extras`` the ratings and bootstrap samples (for curve bands) are returned
    too, as ``(results, extras)``.
    """
    study = load_study(study_root)
    known = set(study.manifest["clip_id"])
    dets = {name: load_detections(path, known) for name, path in detections.items()}
    clips = study.clips(config.split)[["clip_id", "patient_id"]]
    if clips.empty:
        raise UsbkitError(f"no clips in split '{config.split}'", file=study.manifest_path)
    frames = clip_frame_counts(study, clips["clip_id"], progress)
    for name, det in dets.items():
        past = det["clip_id"].map(frames).fillna(np.inf).to_numpy() <= det["frame"].to_numpy()
        if past.any():
            i = int(np.flatnonzero(past)[0])
            raise UsbkitError(
                f"detection on frame {det['frame'].iloc[i]} of clip '{det['clip_id'].iloc[i]}', "
                f"which has only {frames[det['clip_id'].iloc[i]]} frames",
                file=detections[name],
                row=i + 2,
            )
    results, extras = evaluate_models(study.annotations, dets, clips, frames, config, progress)
    out = ensure_writable_dir(out)
    write_text(out / "results.json", json.dumps(results, indent=1))
    write_text(out / "table.csv", results_table(results).to_csv(index=False))
    write_text(out / "table.md", table_markdown(results))
    if figures:
        from usbkit.report.figures import study_figures

        study_figures(results, extras, out, study=study, detections=dets)
    return (results, extras) if return_extras else results


def cli_evaluate(args) -> int:
    dets = {}
    for spec in args.detections:
        if "=" not in spec:
            raise UsbkitError(f"--detections '{spec}' must be NAME=CSV, e.g. sequence=det_seq.csv")
        name, path = spec.split("=", 1)
        if name in dets:
            raise UsbkitError(f"the model name '{name}' is given twice in --detections")
        dets[name] = Path(path)
    try:
        rates = tuple(float(v) for v in args.fp_rates.split(","))
    except ValueError:
        raise UsbkitError(
            f"--fp-rates '{args.fp_rates}' must be numbers such as 0.1,0.2,0.5"
        ) from None
    if args.bootstrap < 1:
        raise UsbkitError("--bootstrap must be at least 1")
    cfg = EvalConfig(
        hit=args.hit, fp_rates=rates, n_boot=args.bootstrap, seed=args.seed, split=args.split
    )
    results = evaluate_study(
        args.study, dets, args.out, cfg, progress=not args.quiet, figures=args.figures
    )
    print(table_markdown(results))
    print(f"wrote {Path(args.out) / 'results.json'}")
    return 0
