"""The study's arms on cohorts the detectors were not tuned on.

For each cohort (``usbkit synth --preset quick --seed S --patients N``: seeds other than the
training cohort's 1, the validation cohort's 2 and the default run's 0), every clip is read by the single-frame
detector, the single-frame detector + tracking (``usbkit track``), the sequence detector and
the sequence detector with its temporal context cut (``usbkit detect --context none``), and
evaluated by the study's rules (``usbkit evaluate``, paired bootstrap over patients).
Sensitivities at 0.1 / 0.2 / 0.5 FP/scan and the paired-bootstrap P of sequence vs single
frame and of the temporal ablation go to benchmarks/README.md.

    python benchmarks/bench_temporal.py [--seeds 3,4,5] [--patients 60]
        [--frame pretrained:frame] [--sequence pretrained:sequence] [--no-record]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import record

from usbkit.evaluation.results import NO_CONTEXT, EvalConfig, evaluate_study
from usbkit.evaluation.tracking import TrackingConfig, track_file
from usbkit.models.detect import detect_study
from usbkit.synth import preset_config, synthesize

ARMS = ("single frame", "single frame + tracking", "sequence", "sequence" + NO_CONTEXT)


def arms_on(study: Path, work: Path, frame: str, sequence: str, tracking=None, n_boot=1000) -> dict:
    """Detections of the four arms on every clip of ``study``, evaluated together."""
    det = {
        "single frame": detect_study(study, frame, work / "frame.csv", progress=False),
        "sequence": detect_study(study, sequence, work / "seq.csv", progress=False),
        "sequence" + NO_CONTEXT: detect_study(
            study, sequence, work / "cut.csv", progress=False, context="none"
        ),
    }
    det["single frame + tracking"] = track_file(
        det["single frame"], work / "track.csv", tracking or TrackingConfig()
    )
    pairs = (
        ("single frame", "single frame + tracking"),
        ("single frame", "sequence"),
        ("single frame + tracking", "sequence"),
        ("sequence", "sequence" + NO_CONTEXT),
    )
    cfg = EvalConfig(n_boot=n_boot, pairs=pairs)
    return evaluate_study(study, {a: det[a] for a in ARMS}, work / "eval", cfg, progress=False)


def rows_of(results: dict, label: str) -> list[list]:
    """One table row per arm, then the P values of the comparisons."""
    rows = []
    for arm in ARMS:
        s = results["models"][arm]["sensitivity"]
        rows.append([label, arm, *(f"{100 * v:.1f}%" for v in s)])
    for c_a, c_b in (("sequence", "single frame"), ("sequence", "sequence" + NO_CONTEXT)):
        ps = []
        for c in results["comparisons"]:
            if {c["a"], c["b"]} == {c_a, c_b}:
                sign = 1 if c["a"] == c_a else -1
                ps.append(f"{100 * sign * c['diff'] + 0.0:+.1f} (P {c['bootstrap_p']:.3f})")
        rows.append([label, f"{c_a} - {c_b}: points (bootstrap P)", *ps])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="3,4,5")
    ap.add_argument("--patients", type=int, default=60)
    ap.add_argument("--frame", default="pretrained:frame")
    ap.add_argument("--sequence", default="pretrained:sequence")
    ap.add_argument("--keep", type=Path, default=None, help="keep cohorts and results here")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="usbkit-temporal-") as tmp:
        root = args.keep or Path(tmp)
        for seed in (int(s) for s in args.seeds.split(",")):
            study = root / f"seed{seed}" / "study"
            if not (study / "manifest.csv").exists():
                cfg = preset_config("quick", patients=args.patients, seed=seed)
                synthesize(study, config=cfg, progress=False)
            work = root / f"seed{seed}" / "arms"
            work.mkdir(parents=True, exist_ok=True)
            for f in work.glob("*.csv*"):
                f.unlink()
            res = arms_on(study, work, args.frame, args.sequence)
            label = f"seed {seed}: {res['n_patients']} patients, {res['n_lesions']} lesions"
            rows += rows_of(res, label)
            print("\n".join(" | ".join(map(str, r)) for r in rows[-6:]), flush=True)
    header = ["cohort", "arm", "0.1 FP/scan", "0.2 FP/scan", "0.5 FP/scan"]
    if args.no_record:
        print("\n".join(" | ".join(map(str, r)) for r in [header, *rows]))
        return
    record(
        "The study's arms on cohorts the detectors were not tuned on (every clip, quick preset)",
        header,
        rows,
        note=f"Detectors: {args.frame}, {args.sequence}. Rules of docs/metrics.md, 1,000 "
        "bootstrap replicates over patients. Seeds 0 (the default run), 1 (the training "
        "cohort) and 2 (the validation cohort the design was chosen on) are never among them.",
    )


if __name__ == "__main__":
    main()
