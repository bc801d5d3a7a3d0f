"""The ``usbkit`` command line (DESIGN.md section 5).

Every user mistake ends in one paragraph naming the file, row or frame and what to fix,
exit code 1 and no traceback (``--debug`` shows one).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from usbkit.errors import UsbkitError


def _cmd_check(args) -> int:
    from usbkit.io.check import check_study
    from usbkit.io.clip import ReaderSettings

    problems = check_study(args.study, ReaderSettings(crop=False), progress=not args.quiet)
    if problems:
        print(f"{args.study}: {len(problems)} problem(s) found:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print("Fix these rows or files and run `usbkit check` again.", file=sys.stderr)
        return 1
    from usbkit.io.study import load_study

    study = load_study(args.study)
    n_les = study.annotations.groupby(["clip_id", "lesion_id"]).ngroups
    print(
        f"{args.study}: OK - {len(study.manifest)} clips, "
        f"{study.manifest['patient_id'].nunique()} patients, {n_les} lesions, "
        f"{len(study.annotations)} boxes"
    )
    return 0


def _cmd_import(args) -> int:
    from usbkit.io.formats import import_study

    kwargs = {}
    if args.media:
        kwargs["media"] = args.media
    if args.images:
        kwargs["images_root"] = args.images
    out = import_study(args.format, args.src, args.out, **kwargs)
    print(f"imported {args.format} from {args.src} into the study {out}")
    return 0


def _cmd_export(args) -> int:
    from usbkit.io.formats.coco_vid import export_coco_vid

    path = export_coco_vid(args.study, args.out)
    print(f"wrote {path}")
    return 0


def _cmd_split(args) -> int:
    from usbkit.io.split import split_patients
    from usbkit.io.study import load_study
    from usbkit.safeio import write_csv

    study = load_study(args.study)
    fractions = tuple(float(v) for v in args.fractions.split(","))
    if (
        "split" in study.manifest.columns
        and study.manifest["split"].notna().any()
        and not args.force
    ):
        raise UsbkitError(
            "the manifest already has a split; re-splitting would change which patients are "
            "test patients",
            file=study.manifest_path,
            fix="Add --force if you really want a new split",
        )
    out = split_patients(study.manifest, fractions, seed=args.seed)
    cols = [
        c
        for c in ["clip_id", "patient_id", "path", "pathology", "split", "fps"]
        if c in out.columns
    ]
    write_csv(study.manifest_path, out[cols])
    counts = out.groupby("split")["patient_id"].nunique().to_dict()
    print("patients per split: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _cmd_synth(args) -> int:
    from usbkit.synth import synthesize

    out = synthesize(
        args.out,
        preset=args.preset,
        patients=args.patients,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(f"wrote the synthetic study {out}")
    return 0


def _lazy(module: str, func: str):
    def run(args) -> int:
        import importlib

        return importlib.import_module(module).__getattribute__(func)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="usbkit",
        description="Mass detection in dynamic breast ultrasound: data, detectors, FROC study.",
    )
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="write the built-in synthetic cine cohort")
    s.add_argument("out", type=Path)
    s.add_argument("--patients", type=int, default=None)
    s.add_argument("--preset", choices=["quick", "paper"], default="quick")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("check", help="validate a study and list every problem")
    s.add_argument("study", type=Path)
    s.set_defaults(func=_cmd_check)

    s = sub.add_parser("import", help="import coco-vid | cvat-video | busi | frames")
    s.add_argument("format", choices=["coco-vid", "cvat-video", "busi", "frames"])
    s.add_argument("src", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--media", type=Path, help="cvat-video: the video or frame folder")
    s.add_argument("--images", type=Path, help="coco-vid: folder the file_names are relative to")
    s.set_defaults(func=_cmd_import)

    s = sub.add_parser("export", help="export a study (coco-vid)")
    s.add_argument("format", choices=["coco-vid"])
    s.add_argument("study", type=Path)
    s.add_argument("out", type=Path)
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("split", help="patient-level train/val/test split into the manifest")
    s.add_argument("study", type=Path)
    s.add_argument("--fractions", default="0.6,0.2,0.2")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--force", action="store_true")
    s.set_defaults(func=_cmd_split)

    s = sub.add_parser(
        "train", help="train a frame or sequence detector (resumes an interrupted run)"
    )
    s.add_argument("study", type=Path)
    s.add_argument("--model", choices=["frame", "sequence"], required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--epochs", type=int, default=None)
    s.add_argument("--device", default="auto")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_lazy("usbkit.models.train", "cli_train"))

    s = sub.add_parser("detect", help="run a trained detector over the clips of a study")
    s.add_argument("study", type=Path)
    s.add_argument(
        "--checkpoint",
        required=True,
        help="run folder, .pt file, or pretrained:frame / pretrained:sequence",
    )
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", default=None)
    s.add_argument("--device", default="auto")
    s.add_argument("--overwrite", action="store_true", help="replace an existing detections file")
    s.set_defaults(func=_lazy("usbkit.models.detect", "cli_detect"))

    s = sub.add_parser("evaluate", help="FROC, sensitivities at FP/scan rates and paired tests")
    s.add_argument("study", type=Path)
    s.add_argument("--detections", action="append", required=True, metavar="NAME=CSV")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", default=None)
    s.add_argument("--hit", default="center")
    s.add_argument("--fp-rates", default="0.1,0.2,0.5")
    s.add_argument("--bootstrap", type=int, default=2000)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--figures", action="store_true", help="also draw the figures into OUT")
    s.set_defaults(func=_lazy("usbkit.evaluation.results", "cli_evaluate"))

    s = sub.add_parser(
        "report", help="run the whole study from the notebooks (papermill) into an HTML report"
    )
    s.add_argument("--study", type=Path, default=None, help="default: the synthetic quick cohort")
    s.add_argument("--out", type=Path, default=Path("reports/latest"))
    s.add_argument(
        "--figures", type=Path, default=None, help="also copy the figures into this folder"
    )
    s.add_argument(
        "--train", action="store_true", help="train both models (default: shipped checkpoints)"
    )
    s.add_argument("--epochs", type=int, default=15)
    s.add_argument("--preset", choices=["quick", "paper"], default="quick")
    s.add_argument("--patients", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--bootstrap", type=int, default=2000)
    s.set_defaults(func=_lazy("usbkit.report.builder", "cli_report"))
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``usbkit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsbkitError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"usbkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"usbkit {args.command}: interrupted; outputs already written are kept.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
