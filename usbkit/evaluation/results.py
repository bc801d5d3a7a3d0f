"""The study's evaluation: table, curves and paired statistics -> ``results.json``.

``evaluate_study`` reads a study and detection files, computes every quantity of
docs/metrics.md for each model on the same clips, and writes ``results.json``, ``table.csv``
and ``table.md``. The results also carry what later layers show, so that they never compute
a metric themselves: each model's frame-level FROC and bootstrap bands for the scan-level
curve, and the evaluated units (clips, lesions with each model's rating, FP tracks). The
functions at the end of this module read those back (operating thresholds, per-lesion and
per-clip outcomes) for the gallery and the scrubber.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.config import setting_problem
from usbkit.errors import UsbkitError
from usbkit.evaluation.froc import (
    ScanRatings,
    frame_froc,
    interpolated_sensitivity,
    jafroc_fom,
    operating_point,
    rate_scans,
    scan_froc,
)
from usbkit.evaluation.literature import CONVENTIONS, literature_metrics
from usbkit.evaluation.matching import parse_hit
from usbkit.evaluation.stats import (
    bootstrap_p,
    mcnemar_exact,
    paired_bootstrap,
    paired_table,
    percentile_ci,
)
from usbkit.evaluation.ttfd import paired_difference, summarize, time_to_first_detection
from usbkit.io.decode import DEFAULT_FPS
from usbkit.io.detections import load_detections
from usbkit.io.study import Study, load_study, spreadsheet_row
from usbkit.safeio import ensure_writable_dir, write_text

#: The published values of Yuan & Jia (2022), drawn beside our results for reference.
PUBLISHED = {
    "fp_rates": [0.1, 0.2, 0.5],
    "single frame": [0.766, 0.842, 0.860],
    "sequence": [0.773, 0.918, 0.953],
}


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (docs/metrics.md); the CLI, notebooks and report read these defaults.

    Attributes
    ----------
    hit : str
        Hit rule: ``center`` or ``iou:T``.
    fp_rates : tuple of float
        FP/scan rates at which sensitivity is reported (the study's 0.1, 0.2, 0.5).
    n_boot : int
        Paired patient-bootstrap replicates.
    seed : int
        Bootstrap seed.
    split : str, optional
        Evaluate only the clips of this split (None: every clip of the manifest).
    band_points : int
        FP/scan grid points of the bootstrap band drawn around each FROC curve.
    view_fp_rate : float
        The FP/scan rate whose operating thresholds the gallery and the scrubber show.
    pairs : tuple of (str, str)
        The pairs of models given paired tests; empty: every pair, in the models' order. A
        pair naming a model that is not evaluated is left out.
    published_conventions : tuple of str
        Published readings of the literature metrics computed beside usbkit's own
        (``literature``) and stored per model under ``literature_published``: ``ultradet``,
        the reading of UltraDet's evaluation code
        (docs/metrics.md#the-published-convention-ultradet); empty: none.
    """

    hit: str = "center"
    fp_rates: tuple[float, ...] = (0.1, 0.2, 0.5)
    n_boot: int = 2000
    seed: int = 0
    split: str | None = None
    band_points: int = 41
    view_fp_rate: float = 0.5
    pairs: tuple[tuple[str, str], ...] = ()
    published_conventions: tuple[str, ...] = ("ultradet",)

    def __post_init__(self) -> None:
        for c in self.published_conventions:
            setting_problem(
                c in CONVENTIONS and c != "usbkit",
                f"published convention '{c}' is not one of "
                + ", ".join(x for x in CONVENTIONS if x != "usbkit"),
            )


def _clean(v):
    """JSON-ready: numpy scalars to Python, non-finite floats to None (recursively)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if v and type(v[0]) is float:
            a = np.asarray(v)
            if a.dtype == np.float64 and a.ndim == 1:  # a list of plain numbers
                finite = np.isfinite(a)
                if finite.all():
                    return list(v)
                out = a.astype(object)
                out[~finite] = None
                return out.tolist()
        if all(type(x) in _PLAIN for x in v):
            return list(v)
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


_PLAIN = frozenset({str, int, bool, type(None)})


def clip_frame_counts(study: Study, clip_ids, progress: bool = True) -> dict[str, int]:
    """Number of frames of each clip (from the reader's cache; decoded once if needed)."""
    return clip_media_info(study, clip_ids, progress)[0]


def clip_media_info(
    study: Study, clip_ids, progress: bool = True
) -> tuple[dict[str, int], dict[str, float]]:
    """Number of frames and frame rate of each clip (the manifest's ``fps`` when given, else
    the file's, else the reader's default), from the reader's cache."""
    from tqdm.auto import tqdm

    from usbkit.io.clip import ReaderSettings, open_clip

    frames, rates = {}, {}
    for cid in tqdm(
        list(clip_ids), desc="counting frames", unit="clip", leave=False, disable=not progress
    ):
        clip = open_clip(study.clip_path(cid), ReaderSettings(crop=False), fps=study.clip_fps(cid))
        frames[cid], rates[cid] = int(clip.meta["n_frames"]), float(clip.fps)
    return frames, rates


def evaluate_models(
    gt: pd.DataFrame,
    detections: dict[str, pd.DataFrame],
    clips: pd.DataFrame,
    frames_per_clip: dict[str, int],
    config: EvalConfig = EvalConfig(),
    progress: bool = True,
    fps_per_clip: dict[str, float] | None = None,
) -> dict:
    """Compute every quantity of docs/metrics.md for models read on the same clips.

    Parameters
    ----------
    gt : DataFrame
        Annotations (any clips; only those in ``clips`` are used).
    detections : dict of str to DataFrame
        Each model's detections (any clips; only those in ``clips`` are used).
    clips : DataFrame
        ``clip_id, patient_id`` of the evaluated clips.
    frames_per_clip : dict
        Frame count of each evaluated clip.
    config : EvalConfig
        Hit rule, FP rates, bootstrap size and seed.
    progress : bool
        Show a progress bar for the bootstrap.
    fps_per_clip : dict, optional
        Frame rate of each evaluated clip, for time to first detection in seconds and false
        positives per minute (default: 30 frames per second for every clip).

    Returns
    -------
    dict
        The ``results.json`` content (docs/metrics.md#resultsjson), JSON-ready.

    Examples
    --------
    One clip, one lesion seen on frames 0 and 1; the model hits it on frame 1 and makes one
    false mark on frame 0:

    >>> gt = pd.DataFrame({"clip_id": ["A", "A"], "frame": [0, 1], "lesion_id": ["1", "1"],
    ...                    "x0": [10.0, 10.0], "y0": [10.0, 10.0], "x1": [30.0, 30.0],
    ...                    "y1": [30.0, 30.0]})
    >>> det = pd.DataFrame({"clip_id": ["A", "A"], "frame": [1, 0], "score": [0.8, 0.6],
    ...                     "x0": [12.0, 50.0], "y0": [12.0, 50.0], "x1": [28.0, 60.0],
    ...                     "y1": [28.0, 60.0]})
    >>> clips = pd.DataFrame({"clip_id": ["A"], "patient_id": ["P1"]})
    >>> r = evaluate_models(gt, {"m": det}, clips, {"A": 2},
    ...                     EvalConfig(fp_rates=(0.5, 1.0), n_boot=10), progress=False)
    >>> r["models"]["m"]["sensitivity"], r["models"]["m"]["threshold"]
    ([1.0, 1.0], [0.8, 0.6])

    At 0.5 FP/scan the false mark (one per scan) is not allowed, so the threshold stays at
    the lesion's rating; at 1 FP/scan it is, and the threshold is the lowest qualifying one.
    """
    parse_hit(config.hit)
    ids = set(clips["clip_id"])
    gt = gt.loc[gt["clip_id"].isin(ids)]
    frames_per_clip = {c: int(frames_per_clip[c]) for c in clips["clip_id"]}
    fps_per_clip = {c: float((fps_per_clip or {}).get(c, DEFAULT_FPS)) for c in clips["clip_id"]}
    n_frames = int(sum(frames_per_clip.values()))
    detections = {name: det.loc[det["clip_id"].isin(ids)] for name, det in detections.items()}
    ratings: dict[str, ScanRatings] = {
        name: rate_scans(gt, det, clips, n_frames, config.hit) for name, det in detections.items()
    }
    xs = list(config.fp_rates)
    curves = {n: scan_froc(r) for n, r in ratings.items()}
    grid = np.linspace(0, max([1.0, *xs]), config.band_points)
    boot = paired_bootstrap(ratings, xs, config.n_boot, config.seed, grid=grid, progress=progress)
    models = {}
    detected = {}
    ttfd = {}
    for name, r in ratings.items():
        c = curves[name]
        ops = [operating_point(c, x) for x in xs]
        fc = frame_froc(r)
        detected[name] = [lesions_found(r.lesions["rating"], op[1]) for op in ops]
        band = [percentile_ci(boot["grid"][name][:, k]) for k in range(len(grid))]
        lesion_fps = r.lesions["clip_id"].map(fps_per_clip).to_numpy(float)
        ttfd[name] = time_to_first_detection(r, [op[1] for op in ops], lesion_fps)
        literature = literature_metrics(gt, detections[name], frames_per_clip, fps_per_clip)
        models[name] = {
            "sensitivity": [o[0] for o in ops],
            "sensitivity_interp": [interpolated_sensitivity(c, x) for x in xs],
            "threshold": [o[1] for o in ops],
            "fp_per_scan_at_threshold": [o[2] for o in ops],
            "ci95": [percentile_ci(boot["sens"][name][:, k]) for k in range(len(xs))],
            "jafroc_fom": jafroc_fom(r),
            "frame_sensitivity": [operating_point(fc, x)[0] for x in xs],
            "ap50": literature["ap50"],
            "froc": c.to_dict(),
            "froc_band": {
                "fp_per_scan": grid.tolist(),
                "lo": [b[0] for b in band],
                "hi": [b[1] for b in band],
            },
            "frame_froc": fc.corners().to_dict("fp_per_frame"),
            "literature": literature,
            "literature_published": {
                c: literature_metrics(gt, detections[name], frames_per_clip, fps_per_clip, c)
                for c in config.published_conventions
            },
            "ttfd": [_ttfd_summary(x, *(v[k] for v in ttfd[name])) for k, x in enumerate(xs)],
        }
    pairs = compared_pairs(list(ratings), config.pairs)
    comparisons, fom_comparisons = [], []
    for a, b in pairs:
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
    ttfd_comparisons = [
        {
            "a": a,
            "b": b,
            "fp_rate": x,
            **paired_difference(ttfd[a][1][k], ttfd[b][1][k], ttfd[a][0][k], ttfd[b][0][k]),
        }
        for a, b in pairs
        for k, x in enumerate(xs)
    ]
    any_r = next(iter(ratings.values()))
    results = {
        "level": "scan",
        "hit": str(parse_hit(config.hit)),
        "fp_rates": xs,
        "n_clips": int(len(clips)),
        "n_patients": int(clips["patient_id"].nunique()),
        "n_lesions": int(len(any_r.lesions)),
        "models": models,
        "comparisons": comparisons,
        "fom_comparisons": fom_comparisons,
        "ttfd_comparisons": ttfd_comparisons,
        "n_bootstrap": config.n_boot,
        "seed": config.seed,
        "split": config.split,
        "view_fp_rate": config.view_fp_rate if config.view_fp_rate in xs else max(xs),
        "units": _units(gt, clips, frames_per_clip, fps_per_clip, ratings, ttfd),
    }
    return _clean(results)


def compared_pairs(names: list[str], pairs=()) -> list[tuple[str, str]]:
    """The pairs of models given paired tests: ``pairs`` among ``names`` (every pair of
    ``names`` in order when ``pairs`` is empty).

    Examples
    --------
    >>> compared_pairs(["a", "b", "c"])
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    >>> compared_pairs(["a", "b"], [("a", "b"), ("a", "z")])
    [('a', 'b')]
    """
    if not pairs:
        return list(itertools.combinations(names, 2))
    return [(a, b) for a, b in pairs if a in names and b in names and a != b]


#: The name of a sequence model's temporal ablation: ``'sequence'`` -> ``'sequence (no context)'``.
NO_CONTEXT = " (no context)"


def temporal_ablation(results: dict) -> list[dict]:
    """What temporal context adds, for every evaluated model whose ablation (the same
    checkpoint with its context cut, named ``NAME + NO_CONTEXT``) is evaluated beside it and
    compared with it: per FP rate, the difference of sensitivity (model minus ablation) with
    its paired 95% interval and P values (docs/metrics.md#temporal-ablation)."""
    out = []
    for name in results["models"]:
        cut = name + NO_CONTEXT
        if cut not in results["models"]:
            continue
        rows = []
        for c in results["comparisons"]:
            if {c["a"], c["b"]} != {name, cut}:
                continue
            sign = 1 if c["a"] == name else -1
            lo, hi = c["diff_ci95"]
            ci = [None, None] if lo is None else sorted([sign * lo, sign * hi])
            rows.append(
                {
                    "fp_rate": c["fp_rate"],
                    "diff": sign * c["diff"],
                    "diff_ci95": ci,
                    "bootstrap_p": c["bootstrap_p"],
                    "mcnemar_p": c["mcnemar_p"],
                }
            )
        if rows:
            out.append({"model": name, "ablation": cut, "rates": rows})
    return out


def ablation_sentences(results: dict) -> list[str]:
    """The temporal ablation in words, one sentence per sequence model (none when the
    results hold no ablation)."""
    lines = []
    for a in temporal_ablation(results):
        parts = [
            f"{100 * r['diff'] + 0.0:+.1f} points at {r['fp_rate']:g} FP/scan "
            f"(95% interval {_pct_signed(r['diff_ci95'][0])} to {_pct_signed(r['diff_ci95'][1])}, "
            f"P = {format_p(r['bootstrap_p'])})"
            for r in a["rates"]
        ]
        verdict = (
            "it reads time"
            if any(r["diff"] > 0 and (r["bootstrap_p"] or 1) < 0.05 for r in a["rates"])
            else "no significant gain from reading time"
        )
        lines.append(
            f"Temporal context adds {', '.join(parts)} to the {a['model']} detector: the "
            f"same checkpoint with each frame read as if it had no neighbours "
            f"('{a['ablation']}') is the ablation ({verdict})."
        )
    return lines


def ablation_markdown(results: dict) -> str:
    """:func:`ablation_sentences` as Markdown paragraphs, the subject in bold (empty when the
    results hold no ablation)."""
    return "\n\n".join(
        "**Temporal context**" + line[len("Temporal context") :]
        for line in ablation_sentences(results)
    )


def _pct_signed(v) -> str:
    return "n/a" if v is None else f"{100 * v + 0.0:+.1f}"


def _ttfd_summary(x: float, frames: np.ndarray, seconds: np.ndarray) -> dict:
    f, s = summarize(frames), summarize(seconds)
    return {
        "fp_rate": x,
        "n_found": f["n_found"],
        "n_not_found": f["n_not_found"],
        "median_frames": f["median"],
        "iqr_frames": f["iqr"],
        "median_seconds": s["median"],
        "iqr_seconds": s["iqr"],
    }


def _units(
    gt: pd.DataFrame, clips: pd.DataFrame, frames: dict, fps: dict, ratings: dict, ttfd: dict
) -> dict:
    """The evaluated clips, lesions (with each model's rating and time to first detection)
    and FP tracks, column-wise."""
    any_r = next(iter(ratings.values()))
    lesions = any_r.lesions[["clip_id", "lesion_id", "patient_id"]]
    span = gt.groupby(["clip_id", "lesion_id"])["frame"].agg(["min", "size"])
    key = pd.MultiIndex.from_frame(lesions[["clip_id", "lesion_id"]])
    return {
        "clips": {
            "clip_id": clips["clip_id"].tolist(),
            "patient_id": clips["patient_id"].tolist(),
            "n_frames": [int(frames[c]) for c in clips["clip_id"]],
            "fps": [float(fps[c]) for c in clips["clip_id"]],
        },
        "lesions": {
            "clip_id": lesions["clip_id"].tolist(),
            "lesion_id": lesions["lesion_id"].tolist(),
            "patient_id": lesions["patient_id"].tolist(),
            "first_frame": span["min"].reindex(key).astype(int).tolist(),
            "frames_in_view": span["size"].reindex(key).astype(int).tolist(),
        },
        "ratings": {n: r.lesions["rating"].astype(float).tolist() for n, r in ratings.items()},
        "fp_tracks": {
            n: {"clip_id": r.tracks["clip_id"].tolist(), "score": r.tracks["score"].tolist()}
            for n, r in ratings.items()
        },
        "ttfd": {
            n: {"frames": frames_.tolist(), "seconds": seconds.tolist()}
            for n, (frames_, seconds) in ttfd.items()
        },
    }


def lesions_found(ratings, threshold: float | None) -> np.ndarray:
    """Which lesions a model detects at a score threshold: rating >= threshold.

    The one rule behind McNemar's table, the clip picker and the gallery; a threshold of
    ``None`` or infinity (no mark qualifies at that FP rate) finds nothing.
    """
    r = np.asarray([-np.inf if v is None else v for v in ratings], dtype=float)
    t = np.inf if threshold is None else float(threshold)
    return r >= t if np.isfinite(t) else np.zeros(len(r), dtype=bool)


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
    ap = [
        f"{name} {m['ap50']:.3f}"
        for name, m in results["models"].items()
        if m.get("ap50") is not None
    ]
    if ap:
        note += f" Frame-level AP50 (every annotated frame, IoU 0.5): {', '.join(ap)}."
    ablation = ablation_markdown(results)
    if ablation:
        note += "\n\n" + ablation
    return "\n".join([head, sep, *body]) + note + "\n"


def evaluate_study(
    study_root: str | Path,
    detections: dict[str, str | Path],
    out: str | Path,
    config: EvalConfig = EvalConfig(),
    progress: bool = True,
) -> dict:
    """Evaluate detection files against a study; write results.json, table.csv, table.md.

    Nothing is written until every number is computed; each file is replaced atomically.

    Parameters
    ----------
    study_root : str or Path
        The study folder.
    detections : dict of str to path
        Each model's detections file (docs/study-format.md#detections).
    out : str or Path
        Output folder.
    config : EvalConfig
        Hit rule, FP rates, bootstrap size, seed and split.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The results (also written to ``out/results.json``).
    """
    study = load_study(study_root)
    known = set(study.manifest["clip_id"])
    dets = {name: load_detections(path, known) for name, path in detections.items()}
    clips = study.clips(config.split)[["clip_id", "patient_id"]]
    if clips.empty:
        raise UsbkitError(f"no clips in split '{config.split}'", file=study.manifest_path)
    if not study.has_lesions(config.split):
        raise UsbkitError(
            "no lesion is annotated in the clips evaluated, so no sensitivity, FP/scan or P "
            "value can be computed (it would print a meaningless 0.0%)",
            file=study.annotations_path,
            fix="Annotate the lesions in annotations.csv, or choose a split that has them; "
            "the viewer shows marks without annotations",
        )
    frames, rates = clip_media_info(study, clips["clip_id"], progress)
    for name, det in dets.items():
        past = det["clip_id"].map(frames).fillna(np.inf).to_numpy() <= det["frame"].to_numpy()
        if past.any():
            i = int(np.flatnonzero(past)[0])
            raise UsbkitError(
                f"detection on frame {det['frame'].iloc[i]} of clip '{det['clip_id'].iloc[i]}', "
                f"which has only {frames[det['clip_id'].iloc[i]]} frames",
                file=detections[name],
                row=spreadsheet_row(i),
            )
    results = evaluate_models(study.annotations, dets, clips, frames, config, progress, rates)
    out = ensure_writable_dir(out)
    write_text(out / "results.json", json.dumps(results, indent=1))
    write_text(out / "table.csv", results_table(results).to_csv(index=False))
    write_text(out / "table.md", table_markdown(results))
    return results


def load_results(path: str | Path) -> dict:
    """Read a ``results.json`` written by :func:`evaluate_study`."""
    path = Path(path)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsbkitError(
            "the results file is missing",
            file=path,
            fix="Run `usbkit evaluate` (or the compare notebook) first",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsbkitError(f"this results file cannot be read ({exc})", file=path) from None
    problem = results_problem(results)
    if problem:
        raise UsbkitError(
            f"this is not a results.json of usbkit evaluate ({problem})",
            file=path,
            fix="Give the results.json that `usbkit evaluate` (or the compare notebook) wrote; "
            "results of an older usbkit: evaluate again",
        )
    return results


def results_problem(results) -> str | None:
    """What keeps ``results`` from being usbkit's results, or None when its shape is right."""
    if not isinstance(results, dict):
        return f"it holds a {type(results).__name__}, not an object"
    missing = [k for k in ("fp_rates", "models", "comparisons", "hit", "units") if k not in results]
    if missing:
        return f"it has no {', '.join(repr(k) for k in missing)}"
    if not isinstance(results["models"], dict) or not results["models"]:
        return "its 'models' is not a table of models"
    if not isinstance(results["fp_rates"], list) or not results["fp_rates"]:
        return "its 'fp_rates' is not a list of rates"
    for name, m in results["models"].items():
        if not isinstance(m, dict) or len(m.get("threshold") or []) != len(results["fp_rates"]):
            return f"model '{name}' has no threshold per FP rate"
    units = results["units"]
    if not isinstance(units, dict) or not {"clips", "lesions", "ratings", "fp_tracks"} <= set(
        units
    ):
        return "its 'units' lack clips, lesions, ratings or fp_tracks"
    return None


# ------------------------------------------------------------ reading results back
def _rate_index(results: dict, fp_rate: float | None) -> int:
    x = results.get("view_fp_rate", max(results["fp_rates"])) if fp_rate is None else fp_rate
    for k, v in enumerate(results["fp_rates"]):
        if abs(v - x) < 1e-12:
            return k
    raise UsbkitError(
        f"the results hold no operating point at {x:g} FP/scan (they have "
        f"{', '.join(f'{v:g}' for v in results['fp_rates'])})",
        fix="Choose one of those rates, or evaluate again with it in --fp-rates",
    )


def operating_thresholds(results: dict, fp_rate: float | None = None) -> dict[str, float]:
    """Each model's score threshold at its operating point for ``fp_rate`` FP/scan.

    ``fp_rate`` defaults to the results' ``view_fp_rate``; a model with no qualifying mark
    gets ``inf`` (nothing shown).
    """
    k = _rate_index(results, fp_rate)
    return {
        name: (math.inf if m["threshold"][k] is None else float(m["threshold"][k]))
        for name, m in results["models"].items()
    }


def lesion_outcomes(results: dict, fp_rate: float | None = None) -> pd.DataFrame:
    """One row per evaluated lesion: ids, first frame, and ``found`` by each model at its
    operating threshold for ``fp_rate`` (column ``NAME: found``)."""
    units = results["units"]
    out = pd.DataFrame(units["lesions"])
    for name, thr in operating_thresholds(results, fp_rate).items():
        out[f"{name}: found"] = lesions_found(units["ratings"][name], thr)
    return out


def clip_outcomes(results: dict, fp_rate: float | None = None) -> pd.DataFrame:
    """Per evaluated clip: lesions found and missed by each model, its FP marks (FP tracks at
    or above its threshold), and for each pair of models the lesions only one of them found
    (``B found, A missed``), at the operating point for ``fp_rate``."""
    names = list(results["models"])
    clips = pd.DataFrame(results["units"]["clips"])[["clip_id", "patient_id"]]
    les = lesion_outcomes(results, fp_rate)
    out = clips.set_index("clip_id")
    thresholds = operating_thresholds(results, fp_rate)
    for name in names:
        found = les.groupby("clip_id")[f"{name}: found"]
        out[f"{name}: found"] = found.sum()
        out[f"{name}: missed"] = found.size() - found.sum()
        tracks = pd.DataFrame(results["units"]["fp_tracks"][name])
        marks = tracks.loc[tracks["score"].astype(float) >= thresholds[name], "clip_id"]
        out[f"{name}: FP marks"] = marks.value_counts()
    for a, b in itertools.permutations(names, 2):
        only = les[f"{b}: found"] & ~les[f"{a}: found"]
        out[f"{b} found, {a} missed"] = only.groupby(les["clip_id"]).sum()
    cols = [c for c in out.columns if c != "patient_id"]
    out[cols] = out[cols].fillna(0).astype(int)
    return out.reset_index()


def ratings_from_units(results: dict) -> dict[str, ScanRatings]:
    """Each model's lesion ratings and FP tracks, rebuilt from ``results["units"]``.

    What the paired bootstrap and the power simulation need (lesions with their patient and
    rating, FP tracks with their clip, patient and score, every evaluated clip); the
    frame-level fields are left empty, and the tracks carry no frame or box (the results do
    not keep them).
    """
    units = results["units"]
    clips = pd.DataFrame(units["clips"])[["clip_id", "patient_id"]]
    lesions = pd.DataFrame(units["lesions"])[["clip_id", "lesion_id", "patient_id"]]
    pid = clips.set_index("clip_id")["patient_id"]
    out = {}
    for name in results["models"]:
        rating = [-math.inf if v is None else float(v) for v in units["ratings"][name]]
        tracks = pd.DataFrame(
            {
                "clip_id": pd.Series(units["fp_tracks"][name]["clip_id"], dtype=object),
                "score": pd.Series(units["fp_tracks"][name]["score"], dtype=float),
            }
        )
        tracks["patient_id"] = tracks["clip_id"].map(pid).to_numpy()
        tracks["track"] = tracks.groupby("clip_id").cumcount()
        out[name] = ScanRatings(
            lesions=lesions.assign(rating=np.asarray(rating, float)),
            tracks=tracks[["clip_id", "patient_id", "track", "score"]],
            clips=clips,
            frame_boxes=pd.DataFrame(columns=["clip_id", "frame", "lesion_id", "rating"]),
            frame_fp_scores=np.zeros(0),
            n_frames=int(sum(units["clips"]["n_frames"])),
        )
    return out
