"""The ``usbkit`` command line (docs/command-line.md).

The outermost layer: it turns arguments into the typed configs of the layers and calls
them; no library module parses arguments. Defaults are read from those configs, never
repeated here. Every user mistake ends in one paragraph naming the file, row or frame and
what to fix, exit code 1 and no traceback (``--debug`` shows one).
"""

from __future__ import annotations

import argparse
import math
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
    if n_les == 0:
        print(
            "No lesion is annotated, so the report can show the detectors' marks but no "
            "sensitivity. If these clips show masses, draw them in the viewer's annotate "
            "mode (docs/annotate.md) or import them from another tool (docs/importers.md)."
        )
    from usbkit.io.annotation_edit import KEYFRAMES_FILE, ground_truth_line

    if (study.root / KEYFRAMES_FILE).exists():
        print(f"ground truth ({KEYFRAMES_FILE}): {ground_truth_line(study)}")
    return 0


def _cmd_import(args) -> int:
    from usbkit.io.formats import import_study

    kwargs = {}
    if args.media:
        kwargs["media"] = args.media
    if args.images:
        kwargs["images_root"] = args.images
    if args.format != "coco-vid" and (args.split_file or args.exclude_video):
        raise UsbkitError(
            "--split-file and --exclude-video are options of the coco-vid import only",
            fix="Leave them out for this format",
        )
    if args.split_file:
        pairs = []
        for spec in args.split_file:
            split, _, file = spec.partition("=")
            if not split.strip() or not file.strip():
                raise UsbkitError(
                    f"--split-file '{spec}' is not SPLIT=FILE", fix="For example train=train.json"
                )
            pairs.append((split.strip(), Path(file.strip())))
        kwargs["split_files"] = pairs
    if args.exclude_video:
        kwargs["exclude_videos"] = list(args.exclude_video)
    if args.interpolate:
        if args.format != "clips":
            raise UsbkitError(
                "--interpolate is an option of the clips import (cvat-video always fills the "
                "frames between key frames)",
                fix="Leave it out for this format",
            )
        kwargs["interpolate"] = True
    out = import_study(args.format, args.src, args.out, overwrite=args.overwrite, **kwargs)
    print(f"imported {args.format} from {args.src} into the study {out}")
    return 0


def _cmd_export(args) -> int:
    if args.format == "cvat-video":
        from usbkit.io.formats.cvat import export_cvat_video

        path = export_cvat_video(args.study, args.out, overwrite=args.overwrite)
        print(
            f"wrote {path}: one folder per clip (annotations.xml and the video), for CVAT "
            "('CVAT for video 1.1') or `usbkit import cvat-video FOLDER`"
        )
        return 0
    from usbkit.io.formats.coco_vid import export_coco_vid

    path = export_coco_vid(args.study, args.out, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def _cmd_split(args) -> int:
    from usbkit.io.split import split_patients
    from usbkit.io.study import MANIFEST_OPTIONAL, MANIFEST_REQUIRED, load_study
    from usbkit.safeio import write_csv

    study = load_study(args.study)
    fractions = _parse_numbers(
        args.fractions, "--fractions", "three fractions such as 0.6,0.2,0.2", count=3, minimum=0
    )
    if sum(fractions) <= 0:
        raise UsbkitError(
            f"--fractions '{args.fractions}' sum to zero", fix="Give fractions such as 0.6,0.2,0.2"
        )
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
    cols = [c for c in MANIFEST_REQUIRED + MANIFEST_OPTIONAL if c in out.columns]
    write_csv(study.manifest_path, out[cols])
    counts = out.groupby("split")["patient_id"].nunique().to_dict()
    print("patients per split: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _cmd_synth(args) -> int:
    from usbkit.synth import synthesize

    _at_least(args.patients, "--patients", 1)
    _at_least(args.seed, "--seed", 0)
    out = synthesize(
        args.out,
        preset=args.preset,
        patients=args.patients,
        seed=args.seed,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    print(f"wrote the synthetic study {out}")
    return 0


def _ints(text: str) -> tuple[int, ...]:
    """``'1,2,2'`` -> ``(1, 2, 2)``."""
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a list of whole numbers such as 1,2,2"
        ) from None


def _size(text: str) -> tuple[int, int]:
    """``'256x320'`` -> ``(256, 320)`` (height x width)."""
    try:
        h, w = (int(v) for v in str(text).lower().replace("*", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a size HEIGHTxWIDTH such as 256x320"
        ) from None
    return h, w


def _yes_no(text: str) -> bool:
    """``'yes'``, ``'true'``, ``'on'``, ``'1'`` -> True; ``'no'``, ``'false'``, ``'off'``,
    ``'0'`` -> False."""
    value = str(text).strip().lower()
    if value in ("yes", "true", "on", "1"):
        return True
    if value in ("no", "false", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"'{text}' is not yes or no")


def _add_config_options(parser, cls, group: str, skip: tuple[str, ...]) -> None:
    """One option per field of config ``cls`` (``--batch``, ``--input-size HxW``, ...), its
    help taken from the config's own docstring; unset options keep the config's value."""
    import dataclasses
    import types
    import typing

    from usbkit.config import attribute_docs

    docs, defaults = attribute_docs(cls), cls()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or dataclasses.is_dataclass(hints[f.name]):
            continue
        default = getattr(defaults, f.name)
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None: X
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        kind = typing.get_origin(hint) or hint
        if kind is tuple and f.name.endswith("size"):
            convert, shown = _size, "x".join(str(v) for v in default)
        elif kind is tuple:
            convert, shown = _ints, ",".join(str(v) for v in default)
        elif kind is bool:
            convert, shown = _yes_no, "yes" if default else "no"
        elif kind in (int, float):
            convert, shown = kind, default
        else:
            convert, shown = str, default
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=convert,
            default=None,
            dest=f"{group}__{f.name}",
            metavar=("HxW" if f.name.endswith("size") else "A,B,C")
            if kind is tuple
            else ("yes|no" if kind is bool else f.name.upper()),
            help=f"{docs.get(f.name, '')} (default: {shown})".strip(),
        )


def _config_overrides(args, group: str) -> dict:
    prefix = f"{group}__"
    return {
        k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix) and v is not None
    }


def _nested(name: str, settings: dict) -> dict:
    return {name: settings} if settings else {}


def _cmd_train(args) -> int:
    from dataclasses import replace

    from usbkit.config import load_config
    from usbkit.models.config import TrainConfig
    from usbkit.models.train import train

    _at_least(args.train__epochs, "--epochs", 1)
    _at_least(args.train__seed, "--seed", 0)
    base = (
        load_config(
            TrainConfig,
            args.config,
            _config_overrides(args, "train") | _nested("model", _config_overrides(args, "model")),
        )
        if args.config
        else TrainConfig()
    )
    base = replace(base, **_config_overrides(args, "train"))
    if base.init and not (Path(args.out) / "last.pt").exists():
        # fine-tuning keeps the starting checkpoint's network; model settings the config file
        # sets (away from their defaults) or the options give are checked against it
        from usbkit.models.config import ModelConfig, setting_differences
        from usbkit.models.detect import model_config_of

        chosen = {name: v for name, v, _ in setting_differences(base.model, ModelConfig())}
        base = replace(base, model=replace(model_config_of(base.init), **chosen))
    model = replace(base.model, kind=args.model, **_config_overrides(args, "model"))
    cfg = replace(base, study=str(args.study), model=model)
    out = train(cfg, args.out, progress=not args.quiet)
    print(f"training run in {out} (best checkpoint: {out / 'best.pt'})")
    return 0


def _cmd_detect(args) -> int:
    from usbkit.models.detect import detect_study

    out = detect_study(
        args.study,
        args.checkpoint,
        args.out,
        args.split,
        args.device,
        progress=not args.quiet,
        overwrite=args.overwrite,
        context=args.context,
    )
    print(f"wrote {out}")
    return 0


def _parse_detections(specs: list[str]) -> dict[str, Path]:
    dets = {}
    for spec in specs:
        if "=" not in spec:
            raise UsbkitError(f"--detections '{spec}' must be NAME=CSV, e.g. sequence=det_seq.csv")
        name, path = spec.split("=", 1)
        _check_model_name(name, spec)
        if name in dets:
            raise UsbkitError(f"the model name '{name}' is given twice in --detections")
        dets[name] = Path(path)
    return dets


def _check_model_name(name: str, spec: str) -> None:
    """A model name of --detections must be shown in the table, the figures and the P value
    ("P (a vs b)"): not empty, no invisible control characters."""
    from usbkit.io.ids import unsafe_text_reason

    if not name.strip():
        raise UsbkitError(
            f"--detections '{spec}' has no model name before '='",
            fix="Name the model, e.g. --detections sequence=det_seq.csv",
        )
    why = unsafe_text_reason(name)
    if why:
        shown = name.encode("unicode_escape").decode("ascii")
        raise UsbkitError(
            f"the model name '{shown}' in --detections cannot be used: {why}",
            fix="Name the model with visible characters, e.g. --detections sequence=det_seq.csv",
        )


def _parse_numbers(
    text: str,
    option: str,
    example: str,
    *,
    count: int | None = None,
    minimum: float | None = None,
    positive: bool = False,
) -> tuple[float, ...]:
    """Comma-separated finite numbers of a command-line option, checked before any use."""
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise UsbkitError(f"{option} '{text}' must be {example}") from None
    if not all(math.isfinite(v) for v in values):
        raise UsbkitError(f"{option} '{text}' must be finite numbers ({example})")
    if count is not None and len(values) != count:
        raise UsbkitError(f"{option} '{text}' must be {example}")
    if positive and any(v <= 0 for v in values):
        raise UsbkitError(f"{option} '{text}' must be numbers above 0 ({example})")
    if minimum is not None and any(v < minimum for v in values):
        raise UsbkitError(f"{option} '{text}' must not be below {minimum:g} ({example})")
    return values


def _at_least(value: int | None, option: str, low: int) -> None:
    if value is not None and value < low:
        raise UsbkitError(f"{option} {value} must be at least {low}")


def _cmd_evaluate(args) -> int:
    from usbkit.evaluation.matching import parse_hit
    from usbkit.evaluation.results import EvalConfig, evaluate_study, table_markdown
    from usbkit.safeio import output_dir

    dets = _parse_detections(args.detections)
    _at_least(args.bootstrap, "--bootstrap", 1)
    _at_least(args.seed, "--seed", 0)
    cfg = EvalConfig(
        hit=str(parse_hit(args.hit)),
        fp_rates=_parse_numbers(
            args.fp_rates, "--fp-rates", "FP/scan rates such as 0.1,0.2,0.5", positive=True
        ),
        n_boot=args.bootstrap,
        seed=args.seed,
        split=args.split,
    )
    inputs = [args.study, *dets.values()]
    with output_dir(args.out, "evaluate", overwrite=args.overwrite, inputs=inputs) as tmp:
        results = evaluate_study(args.study, dets, tmp, cfg, progress=not args.quiet)
        if args.figures:
            from usbkit.io.detections import load_detections
            from usbkit.io.study import load_study
            from usbkit.report.figures import study_figures

            study = load_study(args.study)
            known = set(study.manifest["clip_id"])
            study_figures(
                results, tmp, study, {n: load_detections(p, known) for n, p in dets.items()}
            )
    print(table_markdown(results))
    print(f"wrote {Path(args.out) / 'results.json'}")
    return 0


def _cmd_track(args) -> int:
    from usbkit.evaluation.tracking import TrackingConfig, track_file

    cfg = TrackingConfig(**_config_overrides(args, "track"))
    out = track_file(args.detections, args.out, cfg, overwrite=args.overwrite)
    print(f"wrote {out} (each mark's score times min(1, track length / {cfg.full_length}))")
    return 0


def _cmd_report(args) -> int:
    from usbkit.report.builder import ReportConfig, check_figures_dir, copy_figures, run_report

    _at_least(args.epochs, "--epochs", 1)
    _at_least(args.bootstrap, "--bootstrap", 1)
    _at_least(args.patients, "--patients", 1)
    _at_least(args.seed, "--seed", 0)
    cfg = ReportConfig(
        study=str(args.study) if args.study else "",
        out=str(args.out),
        preset=args.preset,
        patients=args.patients,
        seed=args.seed,
        split=args.split,
        train=args.train,
        epochs=args.epochs,
        bootstrap=args.bootstrap,
        overwrite=args.overwrite,
        pages=_pages_option(args.pages),
    )
    if args.figures:
        check_figures_dir(args.figures, args.overwrite)  # refused before any work
    index = run_report(cfg, progress=not args.quiet)
    if args.figures:
        copy_figures(index, args.figures, overwrite=args.overwrite)
    print(f"report written: {index}")
    return 0


def _pages_option(value: str) -> str:
    """``--pages N|all`` checked before anything runs (a typo fails at once)."""
    from usbkit.report.pages import parse_pages

    parse_pages(value)
    return str(value)


def _cmd_plan(args) -> int:
    import json
    from dataclasses import replace

    from usbkit.evaluation.power import PlanConfig, parse_effect, plan_study
    from usbkit.evaluation.results import load_results

    results = load_results(args.results)
    cfg = replace(PlanConfig(), **_config_overrides(args, "plan"))
    if args.grid:
        counts = _parse_numbers(
            args.grid, "--grid", "patient counts such as 50,100,200", positive=True
        )
        cfg = replace(cfg, grid=tuple(int(v) for v in counts))
    if args.models:
        cfg = replace(cfg, models=tuple(m.strip() for m in args.models.split(",")))
    if args.effect:
        effect = parse_effect(args.effect)
        cfg = replace(cfg, models=tuple(effect), effect=tuple(effect.values()))
    if args.chi_square:
        cfg = replace(cfg, exact=False)
    plan = plan_study(results, cfg, progress=not args.quiet)
    print(plan.summary())
    if args.out:
        from usbkit.report.figures import power_figure, save_figure
        from usbkit.safeio import output_dir, write_text

        with output_dir(args.out, "plan", overwrite=args.overwrite) as tmp:
            write_text(tmp / "plan.json", json.dumps(plan.to_dict(), indent=1))
            save_figure(power_figure(plan), tmp / "power")
        print(f"wrote {Path(args.out) / 'plan.json'}")
    return 0


def _cmd_lab(args) -> int:
    from usbkit.report.lab import start_lab

    extra = list(getattr(args, "jupyter_args", []))
    if "--" in extra:
        extra.remove("--")
    return start_lab(
        args.folder, args.notebook, args.port, open_browser=not args.no_browser, extra=extra
    )


def _overwrite_option(parser) -> None:
    """The ``--overwrite`` of every command that writes a folder (the output rule)."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier output of this same command (kept until the new one is complete)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``usbkit`` argument parser; every default is read from the layers' typed configs."""
    from usbkit.evaluation.power import PlanConfig
    from usbkit.evaluation.results import EvalConfig
    from usbkit.io.formats import FORMATS
    from usbkit.models.config import ModelConfig, TrainConfig
    from usbkit.report.builder import ReportConfig
    from usbkit.report.pages import DEFAULT_BUDGET_MB
    from usbkit.synth.config import PRESETS, SynthConfig

    train_defaults, eval_defaults, report_defaults = TrainConfig(), EvalConfig(), ReportConfig()
    p = argparse.ArgumentParser(
        prog="usbkit",
        description="Mass detection in dynamic breast ultrasound: data, detectors, FROC study.",
    )
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="write the built-in synthetic cine cohort")
    s.add_argument("out", type=Path)
    s.add_argument("--patients", type=int, default=None, help="default: the preset's")
    s.add_argument("--preset", choices=PRESETS, default=SynthConfig.preset)
    s.add_argument("--seed", type=int, default=SynthConfig.seed)
    _overwrite_option(s)
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("check", help="validate a study and list every problem")
    s.add_argument("study", type=Path)
    s.set_defaults(func=_cmd_check)

    s = sub.add_parser("import", help="import " + " | ".join(FORMATS))
    s.add_argument("format", choices=FORMATS)
    s.add_argument("src", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--media", type=Path, help="cvat-video: the video or frame folder")
    s.add_argument("--images", type=Path, help="coco-vid: folder the file_names are relative to")
    s.add_argument(
        "--split-file",
        action="append",
        metavar="SPLIT=FILE",
        help="coco-vid: one annotation file per split (train, val or test), repeatable; SRC is "
        "then the dataset folder",
    )
    s.add_argument(
        "--exclude-video",
        action="append",
        metavar="NAME",
        help="coco-vid: leave this video out (its name or frame folder, e.g. benign/VIDEO), "
        "repeatable",
    )
    s.add_argument(
        "--interpolate",
        action="store_true",
        help="clips: annotations.csv boxes lesions on key frames only; fill the frames between "
        "two boxes of a lesion by linear interpolation (as CVAT does)",
    )
    _overwrite_option(s)
    s.set_defaults(func=_cmd_import)

    s = sub.add_parser(
        "export",
        help="export a study (coco-vid | cvat-video)",
        description="Export a study. coco-vid: annotations.json and PNG frames. cvat-video: "
        "one folder per clip with CVAT for video 1.1 XML (tracks, key frames from the "
        "viewer's annotation_keyframes.csv, outside) and the video, which CVAT and "
        "`usbkit import cvat-video` read back with the same boxes.",
    )
    s.add_argument("format", choices=["coco-vid", "cvat-video"])
    s.add_argument("study", type=Path)
    s.add_argument("out", type=Path)
    _overwrite_option(s)
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
    s.add_argument("--out", type=Path, required=True, help="the run folder")
    s.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a JSON file of TrainConfig settings (as RUN/config.json); options below override it",
    )
    _add_config_options(s, TrainConfig, "train", skip=("study",))
    _add_config_options(s, ModelConfig, "model", skip=("kind",))
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("detect", help="run a trained detector over the clips of a study")
    s.add_argument("study", type=Path)
    s.add_argument(
        "--checkpoint",
        required=True,
        help="run folder, .pt file, or pretrained:frame / pretrained:sequence",
    )
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", default=None)
    s.add_argument("--device", default=train_defaults.device)
    s.add_argument(
        "--overwrite", action="store_true", help="replace an earlier detections file of usbkit"
    )
    s.add_argument(
        "--context",
        choices=("trained", "none"),
        default="trained",
        help="a sequence checkpoint's temporal context: as it was trained (causal or both "
        "sides, the checkpoint says which), or none: each frame read as if it had no "
        "neighbours, the temporal ablation that shows what time adds (default: trained)",
    )
    s.set_defaults(func=_cmd_detect)

    s = sub.add_parser(
        "track",
        help="the tracking arm: rescore a detections file by how long each mark persists",
        description="Link the marks of a detections file over frames (the evaluation's own "
        "linker) and multiply each mark's score by min(1, L / full_length), L the number of "
        "marks in its track: the study's 'single frame + tracking' arm, training-free "
        "(docs/metrics.md#three-arms).",
    )
    s.add_argument("detections", type=Path, help="a detections file, e.g. of usbkit detect")
    s.add_argument("--out", type=Path, required=True, help="the rescored detections file")
    s.add_argument(
        "--overwrite", action="store_true", help="replace an earlier detections file of usbkit"
    )
    from usbkit.evaluation.tracking import TrackingConfig

    _add_config_options(s, TrackingConfig, "track", skip=())
    s.set_defaults(func=_cmd_track)

    s = sub.add_parser("evaluate", help="FROC, sensitivities at FP/scan rates and paired tests")
    s.add_argument("study", type=Path)
    s.add_argument("--detections", action="append", required=True, metavar="NAME=CSV")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", default=eval_defaults.split)
    s.add_argument("--hit", default=eval_defaults.hit)
    s.add_argument("--fp-rates", default=",".join(f"{x:g}" for x in eval_defaults.fp_rates))
    s.add_argument("--bootstrap", type=int, default=eval_defaults.n_boot)
    s.add_argument("--seed", type=int, default=eval_defaults.seed)
    s.add_argument("--figures", action="store_true", help="also draw the figures into OUT")
    _overwrite_option(s)
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser(
        "report",
        help="run the whole study from the notebooks (papermill) into an HTML report",
        description="Run the whole study (the four notebooks, through papermill) and write an "
        "HTML report: OUT/index.html with the study's table, figures and the executed "
        "notebooks. Without --study it uses the built-in synthetic cohort (made in OUT/study).",
    )
    s.add_argument(
        "--study",
        type=Path,
        default=None,
        help="a study folder (manifest.csv, annotations.csv, clips/); default: the built-in "
        "synthetic cohort, made in OUT/study",
    )
    s.add_argument(
        "--out",
        type=Path,
        default=Path(report_defaults.out),
        help="the run folder: everything is written here, open OUT/index.html "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--figures",
        type=Path,
        default=None,
        help="also copy the figures (PNG, SVG) into this folder",
    )
    s.add_argument(
        "--train", action="store_true", help="train both models (default: shipped checkpoints)"
    )
    s.add_argument(
        "--epochs",
        type=int,
        default=report_defaults.epochs,
        help="training epochs, with --train (default: %(default)s)",
    )
    s.add_argument(
        "--preset",
        choices=PRESETS,
        default=report_defaults.preset,
        help="size of the synthetic cohort when no --study is given: quick (teaching, a few "
        "minutes), study (the default comparison), paper (506 patients) (default: %(default)s)",
    )
    s.add_argument(
        "--patients",
        type=int,
        default=report_defaults.patients,
        help="another number of synthetic patients than the preset's",
    )
    s.add_argument(
        "--seed",
        type=int,
        default=report_defaults.seed,
        help="one seed for the cohort, training and bootstrap (default: %(default)s)",
    )
    s.add_argument(
        "--split",
        default=report_defaults.split,
        help="the clips the models are run on and evaluated (default: %(default)s)",
    )
    s.add_argument(
        "--bootstrap",
        type=int,
        default=report_defaults.bootstrap,
        help="paired patient-bootstrap replicates (default: %(default)s)",
    )
    s.add_argument(
        "--pages",
        default=report_defaults.pages,
        metavar="N|all",
        help="static viewer pages to write, one per clip of the split: N pages, or all; "
        f"default: pages until they take {DEFAULT_BUDGET_MB} MB (clips where the models "
        "disagree on a lesion first); an index lists every clip with its outcome",
    )
    _overwrite_option(s)
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser(
        "plan",
        help="how many patients a study needs: power of the paired comparison against N",
    )
    s.add_argument("--results", type=Path, required=True, help="a pilot run's results.json")
    _add_config_options(s, PlanConfig, "plan", skip=("grid", "models", "effect", "exact"))
    s.add_argument("--grid", default=None, help="patient counts to simulate, e.g. 50,100,200")
    s.add_argument(
        "--models", default=None, help="the two models compared, e.g. 'single frame,sequence'"
    )
    s.add_argument(
        "--effect",
        default=None,
        help="plan for a stated effect instead of the pilot's, e.g. "
        "'sequence=0.95,single frame=0.86'",
    )
    s.add_argument(
        "--chi-square",
        action="store_true",
        help="McNemar's chi-square test instead of the exact one",
    )
    s.add_argument(
        "--out", type=Path, default=None, help="also write plan.json and the power figure"
    )
    _overwrite_option(s)
    s.set_defaults(func=_cmd_plan)

    s = sub.add_parser(
        "lab",
        help="start JupyterLab with usbkit on the study notebooks (the scrubber first)",
        description="Start JupyterLab with usbkit on the study notebooks. Options usbkit does "
        "not know are JupyterLab's own and are passed on to it, e.g. `usbkit lab --ip 0.0.0.0` "
        "or `usbkit lab -- --ServerApp.token=secret`. Run as root (containers, cloud "
        "machines, WSL), --allow-root is added for you. Jupyter's news pop-up is off.",
    )
    s.add_argument(
        "--folder",
        type=Path,
        default=Path("."),
        help="workspace: notebooks/ and reports/ live here (default: this folder)",
    )
    s.add_argument("--notebook", default="04_scrub", help="notebook to open first")
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--no-browser", action="store_true", help="only print the address")
    s.set_defaults(func=_cmd_lab)
    return p


ISSUES_URL = "https://github.com/usbkit/usbkit/issues"


def _plain_error(exc: BaseException) -> str | None:
    """A one-paragraph message for an expected failure that is not a UsbkitError."""
    import json
    import xml.etree.ElementTree as ET

    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: this file or folder does not exist. Check the path"
    if isinstance(exc, PermissionError):
        return (
            f"{exc.filename}: usbkit is not allowed to read or write here. Choose another "
            "folder or change its permissions"
        )
    if isinstance(exc, IsADirectoryError | NotADirectoryError):
        return f"{exc.filename}: a folder was found where a file was expected (or the reverse)"
    if isinstance(exc, OSError) and exc.errno is not None:
        import errno

        if exc.errno == errno.ENOSPC:
            return (
                f"{exc.filename or 'the output'}: the disk is full. Free some space or write "
                "the output to another disk; nothing already there was changed"
            )
        return f"{exc.filename or 'a file'}: {exc.strerror}. Check the path and the disk"
    if isinstance(exc, json.JSONDecodeError):
        return f"a JSON file is not valid JSON ({exc.msg}, line {exc.lineno}). Fix or replace it"
    if isinstance(exc, UnicodeDecodeError):
        return "a text file is not in UTF-8 (or is not a text file). Save it as UTF-8 text"
    if isinstance(exc, ET.ParseError):
        return f"an XML file cannot be read ({exc}). Export it again"
    if isinstance(exc, MemoryError):
        return "the computer ran out of memory. Close other programs or use a smaller study"
    return None


def _report_bug(command: str, exc: BaseException) -> str:
    """Write the traceback to a log file; return the user's one-paragraph bug message."""
    import tempfile
    import time

    text = "".join(traceback.format_exception(exc))
    log = None
    for folder in (Path.home() / ".cache" / "usbkit" / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log = folder / f"usbkit-{command}-{time.strftime('%Y%m%d-%H%M%S')}.log"
            log.write_text(text, encoding="utf-8")
            break
        except OSError:
            log = None
    where = f"The details are in {log}" if log else "The details could not be saved"
    return (
        f"an unexpected problem stopped usbkit ({exc.__class__.__name__}: {exc}). This is a "
        f"bug in usbkit, not something you did wrong. {where}; please report it at "
        f"{ISSUES_URL} with that file attached. Run the command again with --debug to see the "
        "details here"
    )


def _show_warnings_plainly(command: str) -> None:
    """usbkit's own warnings as one line on the error stream, like its errors (no source
    line of usbkit's code); other libraries' warnings are left to Python."""
    import warnings

    from usbkit.errors import UsbkitWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UsbkitWarning):
            print(f"usbkit {command}: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``usbkit`` console script: the one error boundary of every command.

    A user's mistake (``UsbkitError``) and expected failures (missing files, permissions, a
    full disk, unreadable JSON or XML) end in one paragraph and exit code 1; anything
    unexpected ends in a short message that says it is a bug and where its log is; the
    traceback shows only with ``--debug``.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra  # `usbkit lab` passes JupyterLab's own options on
    _show_warnings_plainly(args.command)
    try:
        return int(args.func(args) or 0)
    except UsbkitError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"usbkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"usbkit {args.command}: interrupted; earlier outputs are unchanged.",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure is put in words
        if args.debug:
            traceback.print_exc()
        plain = _plain_error(exc)
        message = plain if plain is not None else _report_bug(args.command, exc)
        print(f"usbkit {args.command}: error: {message}.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
