"""The study's steps as single calls, for the notebooks and ``usbkit report``.

Each step reads and extends the run's manifest (:class:`usbkit.report.run.Run`,
``OUT/run.json``): :func:`start_run` records the study, :func:`train_or_load` the
checkpoints, :func:`detect_all` the detection files, :func:`evaluate_run` the results.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from IPython.display import Markdown

from usbkit.errors import UsbkitError
from usbkit.evaluation.results import EvalConfig, evaluate_study
from usbkit.models.config import TrainConfig
from usbkit.report.run import RUN_FILE, Run, resolve

MODEL_NAMES = {"frame": "single frame", "sequence": "sequence"}


def setup_notebook() -> None:
    """Set up a notebook: plotly figures that show in JupyterLab and in the report's HTML
    pages, and usbkit's errors shown as their one paragraph (what is wrong, what to do)
    instead of a traceback; the cell still stops the run. Tables show every cell's whole
    text (pandas cuts a cell at 50 characters: 'single frame 0, single frame + tracking 2,
    sam...')."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"
    pd.set_option("display.max_colwidth", None)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((UsbkitError,), _show_usbkit_error)


def _show_usbkit_error(shell, etype, value, tb, tb_offset=None):
    """Show a UsbkitError in a notebook as one paragraph, without a traceback."""
    from IPython.display import Markdown, display

    display(Markdown(f"**usbkit:** {value}"))
    return None


def start_run(
    out: str | Path,
    study: str | Path | None = None,
    preset: str = "quick",
    seed: int = 0,
    patients: int | None = None,
    progress: bool = True,
) -> Run:
    """Open (or begin) the run in ``out`` for a study.

    The study is ``study`` when given, else the synthetic cohort in ``out/study``
    (synthesized on first use). A run folder that already records the same study is
    continued; one that records another study is started afresh (its manifest only).
    """
    from usbkit.synth import synthesize

    folder = resolve(out)
    if study:
        path = resolve(study)
        if not (path / "manifest.csv").exists():
            raise UsbkitError(
                "this is not a study folder (no manifest.csv)",
                file=path,
                fix="Give the folder that holds manifest.csv and annotations.csv",
            )
    else:
        path = folder / "study"
        if not (path / "manifest.csv").exists():
            synthesize(path, preset=preset, patients=patients, seed=seed, progress=progress)
    run = Run.open(folder) if (folder / RUN_FILE).is_file() else Run(folder)
    if run.study != str(path):
        run = Run(folder, study=str(path))
        run.save()
    return run


def cohort_note(run: Run, preset: str, patients: int | None = None) -> str:
    """One sentence: which cohort this run uses and whether the notebook's ``preset`` (and
    ``patients``) made it. The synthetic cohort is made once, by the first notebook run on
    ``out``; a later notebook with another preset keeps using it, and says so."""
    import json

    study = run.path(run.study)
    config = study / "synth_config.json"
    if study.resolve() != (run.folder / "study").resolve() or not config.is_file():
        return (
            f"Cohort: your study {study} ({run.load_study().manifest['patient_id'].nunique()} "
            f"patients, given as the study parameter); the preset parameter ('{preset}') "
            "makes the built-in synthetic cohort when no study is given, and is not used."
        )
    try:
        made = json.loads(config.read_text(encoding="utf-8"))
        made_preset, made_patients = made.get("preset"), made.get("patients")
    except (OSError, ValueError):
        made_preset, made_patients = None, None
    text = (
        f"Cohort: the built-in synthetic cohort in {study} (preset '{made_preset}', "
        f"{made_patients} patients)"
    )
    asked = preset != made_preset or (patients is not None and patients != made_patients)
    if asked:
        wanted = f"preset '{preset}'" + (f", {patients} patients" if patients else "")
        return (
            f"{text}, made earlier in this run folder; the {wanted} asked for here is not "
            "used. To work on that cohort, give another `out` folder (or remove this one's "
            "study/ folder) and run the notebooks again from 1."
        )
    return f"{text}; the preset parameter is '{preset}'."


def train_or_load(
    run: Run,
    train: bool = False,
    epochs: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    on_epoch=None,
    settings: dict | None = None,
) -> dict[str, str]:
    """Checkpoint reference per model, recorded in the run: freshly trained runs in
    ``OUT/runs/<kind>`` (``epochs`` default: TrainConfig's), or the shipped checkpoints.
    As the shipped ones were made, the sequence detector is the single-frame detector just
    trained with a temporal part trained on top of it (``train_part='temporal'``).

    ``settings`` holds any other training or network settings, by field name of
    :class:`TrainConfig` or :class:`~usbkit.models.config.ModelConfig` (``{"input_size":
    [192, 224], "lr": 0.002, "augment": "ultrasound"}``); both models get the same ones (one
    recipe). The study, model kind, epochs, device and seed have parameters of their own;
    starting weights (``init``) differ per model and are given to ``usbkit train --init``.
    """
    from usbkit.models.config import ModelConfig
    from usbkit.models.train import train as run_training

    own = sorted(
        set(settings or {})
        & {"study", "kind", "model", "epochs", "device", "seed", "init", "train_part"}
    )
    if own:
        raise UsbkitError(
            f"train_settings may not set {', '.join(own)}: these have parameters of their own "
            "or differ between the two models",
            fix="Set epochs, device and seed with the notebook's parameters of those names; "
            "leave the study and model kind out (both models are trained); to fine-tune one "
            "model from a checkpoint use usbkit train --init",
        )
    refs = {}
    for kind in ("frame", "sequence"):
        if train:
            cfg = TrainConfig(study=run.study, model=ModelConfig(kind=kind), device=device)
            cfg = replace(cfg, seed=seed, epochs=cfg.epochs if epochs is None else epochs)
            cfg = cfg.with_settings(settings)
            if kind == "sequence":  # the single-frame detector just trained + a temporal part
                frame_run = run.folder / refs[MODEL_NAMES["frame"]]
                cfg = replace(cfg, init=str(frame_run), train_part="temporal")
            callback = (
                None if on_epoch is None else (lambda log, n=MODEL_NAMES[kind]: on_epoch(n, log))
            )
            folder = run.folder / "runs" / kind
            run_training(cfg, folder, progress=progress, on_epoch=callback)
            refs[MODEL_NAMES[kind]] = str(folder.relative_to(run.folder))
        else:
            refs[MODEL_NAMES[kind]] = f"pretrained:{kind}"
    run.checkpoints = refs
    run.save()
    return refs


def training_logs(run: Run) -> dict[str, pd.DataFrame]:
    """The per-epoch log of each model of the run (from its run folder or shipped checkpoint);
    each log's ``attrs["checkpoint"]`` names the checkpoint it belongs to."""
    from usbkit.models.detect import checkpoint_payload

    logs = {}
    for name, ref in run.checkpoints.items():
        log = pd.DataFrame(
            checkpoint_payload(ref if ref.startswith("pretrained:") else run.path(ref)).get("log")
            or []
        )
        log.attrs["checkpoint"] = ref
        logs[name] = log
    return logs


def loss_figure(logs: dict[str, pd.DataFrame]) -> go.Figure:
    """Per epoch of each model: the training loss, the validation JAFROC figure of merit and
    sensitivity at the validation FP rate, and the frame-level AP50 (is the detector sound
    frame by frame? by default the best epoch by it is kept)."""
    from plotly.subplots import make_subplots

    from usbkit.report.figures import style_figure
    from usbkit.style import model_colors

    colors = model_colors(list(logs))
    panels = (
        ("loss", "training loss"),
        ("val_jafroc", "validation JAFROC figure of merit"),
        ("val_sensitivity", f"validation sensitivity at {TrainConfig.val_fp_rate:g} FP/scan"),
        ("val_ap50", "validation AP50 (frame level)"),
    )
    # two by two, so that each panel's title fits above it (side by side they overlapped)
    fig = make_subplots(
        2, 2, subplot_titles=[t for _, t in panels], vertical_spacing=0.18, horizontal_spacing=0.1
    )
    cells = [(1, 1), (1, 2), (2, 1), (2, 2)]
    for name, log in logs.items():
        if log.empty:
            continue
        for k, (key, _) in enumerate(panels):
            if key not in log:
                continue
            row, col = cells[k]
            fig.add_scatter(
                x=log["epoch"],
                y=log[key],
                name=name,
                showlegend=k == 0,
                line=dict(color=colors[name], dash=None if k == 0 else "dot"),
                row=row,
                col=col,
            )
    fig.update_xaxes(title="epoch")
    for k in (1, 2, 3):
        row, col = cells[k]
        fig.update_yaxes(tickformat=".0%" if k == 2 else ".2f", row=row, col=col)
    shipped = bool(logs) and all(
        str(log.attrs.get("checkpoint", "")).startswith("pretrained:") for log in logs.values()
    )
    title = (
        "Training of the shipped checkpoints (on the synthetic training cohort, not this study)"
        if shipped
        else "Training"
    )
    fig = style_figure(fig, title)
    fig.update_layout(width=900, height=620)
    return fig


class LiveLoss:
    """A loss figure that redraws after every epoch: pass ``live.update`` as ``on_epoch``."""

    def __init__(self):
        self.widget = go.FigureWidget(loss_figure({}))
        self.logs: dict[str, pd.DataFrame] = {}

    def update(self, name: str, log: list[dict]) -> None:
        """Redraw with model ``name``'s log so far (the ``on_epoch`` callback of training)."""
        self.logs[name] = pd.DataFrame(log)
        fig = loss_figure(self.logs)
        with self.widget.batch_update():
            self.widget.data = []
            for trace in fig.data:
                self.widget.add_trace(trace)


def clips_split(study, split: str | None) -> str | None:
    """The split a run uses: ``split`` when the manifest has one, else every clip (None).

    Own clips need no split to be viewed or described; a named split that holds no clip of
    a manifest that has splits is a clear error.
    """
    manifest = study.manifest
    if split is None or "split" not in manifest.columns or manifest["split"].isna().all():
        return None
    if not (manifest["split"] == split).any():
        raise UsbkitError(
            f"no clip of this study is in the '{split}' split",
            file=study.manifest_path,
            fix=f"Choose a split that has clips ({', '.join(sorted(manifest['split'].dropna().unique()))})",
        )
    return split


#: The name of the tracking arm of a single-frame model: ``'single frame + tracking'``.
WITH_TRACKING = " + tracking"


def study_arms(run: Run) -> dict[str, dict]:
    """The rows of the study's table, in order, from the run's checkpoints: for each
    single-frame model, itself and its tracking arm (``NAME + tracking``: its detections
    rescored by :func:`usbkit.evaluation.tracking.rescore_by_tracks`); for each sequence
    model, itself and its temporal ablation (``NAME (no context)``: the same checkpoint with
    each frame read alone). Each arm says how it is made: ``{"checkpoint": ref, "context":
    "trained" | "none"}`` or ``{"tracking_of": NAME}``."""
    from usbkit.evaluation.results import NO_CONTEXT
    from usbkit.models.detect import model_config_of

    arms = {}
    for name, ref in run.checkpoints.items():
        path = ref if ref.startswith("pretrained:") else str(run.path(ref))
        arms[name] = {"checkpoint": ref, "context": "trained"}
        if model_config_of(path).kind == "frame":
            arms[name + WITH_TRACKING] = {"tracking_of": name}
        else:
            arms[name + NO_CONTEXT] = {"checkpoint": ref, "context": "none"}
    return arms


def study_pairs(arms) -> tuple[tuple[str, str], ...]:
    """The paired comparisons of the study: every pair of the arms (single frame, single
    frame + tracking, sequence), and each sequence model against its temporal ablation."""
    from usbkit.evaluation.results import NO_CONTEXT

    names = list(arms)
    main = [n for n in names if not n.endswith(NO_CONTEXT)]
    pairs = [(a, b) for i, a in enumerate(main) for b in main[i + 1 :]]
    pairs += [(n[: -len(NO_CONTEXT)], n) for n in names if n.endswith(NO_CONTEXT)]
    return tuple(pairs)


def detect_all(
    run: Run,
    split: str | None = "test",
    device: str = "auto",
    progress: bool = True,
    tracking=None,
) -> dict[str, Path]:
    """Every arm of the study over a split (every clip when the study has no splits):
    each checkpoint of the run, each single-frame model's tracking arm and each sequence
    model's temporal ablation (:func:`study_arms`); record and return each detections file.

    ``tracking``: the :class:`usbkit.evaluation.tracking.TrackingConfig` of the tracking
    arm (default: its defaults)."""
    from usbkit.evaluation.tracking import TrackingConfig, track_file
    from usbkit.models.detect import detect_study

    if not run.checkpoints:
        raise UsbkitError(
            "no models are recorded in this run",
            file=run.folder / RUN_FILE,
            fix="Run train_or_load (the train notebook) first",
        )
    split = clips_split(run.load_study(), split)
    arms = study_arms(run)
    paths = {}
    for name, arm in arms.items():
        dest = run.detections_path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if "tracking_of" in arm:
            continue  # after the model it rescores
        ref = arm["checkpoint"]
        ref = ref if ref.startswith("pretrained:") else str(run.path(ref))
        paths[name] = detect_study(
            run.study,
            ref,
            dest,
            split=split,
            device=device,
            progress=progress,
            overwrite=True,
            context=arm["context"],
        )
    for name, arm in arms.items():
        if "tracking_of" in arm:
            paths[name] = track_file(
                paths[arm["tracking_of"]],
                run.detections_path(name),
                tracking or TrackingConfig(),
                overwrite=True,
            )
    run.detections = {n: str(paths[n].relative_to(run.folder)) for n in arms}
    run.split = split
    run.save()
    return {n: paths[n] for n in arms}


def evaluate_run(
    run: Run, config: EvalConfig | None = None, figures: bool = True, progress: bool = True
) -> dict:
    """Evaluate the run's detections on its split; write the results (and the figures) to
    ``OUT/results`` and record them in the run. Clips without any annotated lesion are refused
    by :func:`usbkit.evaluation.results.evaluate_study`, which says why."""
    config = config or EvalConfig()
    config = replace(config, split=run.split, pairs=config.pairs or study_pairs(run.detections))
    dets = {name: run.path(rel) for name, rel in run.detections.items()}
    if not dets:
        raise UsbkitError(
            "no detections are recorded in this run",
            file=run.folder / RUN_FILE,
            fix="Run the train notebook (detect_all) first",
        )
    results = evaluate_study(run.study, dets, run.results_dir, config, progress=progress)
    if figures:
        from usbkit.report.figures import study_figures

        study_figures(results, run.results_dir, run.load_study(), run.read_detections())
    run.results = str((run.results_dir / "results.json").relative_to(run.folder))
    run.save()
    return results


def open_scrubber(
    out: str | Path = "reports/latest",
    study: str | Path = "",
    detections: dict | None = None,
    fp_rate: float | None = None,
    clip: str | None = None,
):
    """The scrubber of a run (``out``), or of a study and detection files given directly.

    Thresholds start at each model's operating point: from the run's evaluation when there
    is one (``fp_rate`` FP/scan, default the evaluation's own), else the operating point its
    checkpoint carries (recorded by ``usbkit detect`` beside each detections file), else 0.5.
    Each slider says which.
    """
    from usbkit.evaluation.results import load_results
    from usbkit.io.detections import load_detections
    from usbkit.io.study import load_study
    from usbkit.models.detect import detections_info, operating_point_of
    from usbkit.viewer.scrubber import Scrubber

    results, points = None, {}
    if detections:
        S = load_study(resolve(study) if study else Run.open(out).study)
        files = {name: resolve(path) for name, path in detections.items()}
        dets = {name: load_detections(f, set(S.clip_ids)) for name, f in files.items()}
        points = {n: detections_info(f).get("operating_point") for n, f in files.items()}
        split = None
    else:
        run = Run.open(out)
        S, dets = run.load_study(), run.read_detections()
        results = load_results(run.path(run.results)) if run.results else None
        if results is None:
            points = {
                n: operating_point_of(ref if ref.startswith("pretrained:") else run.path(ref))
                for n, ref in run.checkpoints.items()
            }
        split = run.split
    from usbkit.evaluation.results import NO_CONTEXT

    # the viewer shows the study's arms; the temporal ablation is a row of the table only
    dets = {n: d for n, d in dets.items() if not n.endswith(NO_CONTEXT)}
    thresholds, notes = {}, {}
    for name in dets if results is None else ():
        point = points.get(name)
        if point and point.get("threshold") is not None:
            thresholds[name] = float(point["threshold"])
            notes[name] = (
                f"its checkpoint's operating point ({point.get('fp_rate', 0.5):g} FP/scan on "
                f"the {point.get('source', 'validation split')})"
            )
        else:  # the tracking arm has no checkpoint; its operating point needs annotations
            notes[name] = (
                "no operating point known (no checkpoint of its own, and finding one needs "
                "annotated clips): starts at 0.5"
            )
    return Scrubber(
        S,
        dets,
        results,
        clip_id=clip,
        thresholds=thresholds,
        fp_rate=fp_rate,
        split=split,
        threshold_notes=notes,
    )


def write_scrubber_pages(scrubber, folder: str | Path, clips) -> list[Path]:
    """Static viewer pages of ``clips`` at the scrubber's starting thresholds and hit rule."""
    from usbkit.viewer.static_page import write_pages

    return write_pages(
        scrubber.study,
        scrubber.detections,
        scrubber.thresholds,
        resolve(folder),
        clips,
        hit=scrubber.hit,
        threshold_notes=scrubber.threshold_notes,
        annotated=scrubber.annotated,
    )


def practice_study(out: str | Path = "reports/latest", n_clips: int = 2) -> Path:
    """A study to practise annotating on: the first ``n_clips`` clips of the run's evaluated
    split, imported as ``usbkit import clips`` imports a folder of clips, so without their
    annotations (``OUT/practice``).

    It is made once: an existing practice study, and whatever was saved in it, is kept as it
    is (delete the folder to start again).
    """
    import shutil
    import tempfile

    from usbkit.io.formats.clips import import_clips

    run = Run.open(out)
    dest = run.folder / "practice"
    if (dest / "manifest.csv").exists():
        return dest
    study = run.load_study()
    rows = study.clips(clips_split(study, run.split)).head(n_clips)
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows.itertuples(index=False):
            src = study.clip_path(row.clip_id)
            to = Path(tmp) / f"{row.clip_id}{src.suffix}"
            shutil.copytree(src, to) if src.is_dir() else shutil.copyfile(src, to)
        import_clips(Path(tmp), dest)
    return dest


def practice_outcome(
    practice: str | Path, checkpoint: str = "pretrained:sequence", n_boot: int = 200
) -> Markdown:
    """Evaluate a detector against the ground truth saved in the practice study: how it was
    made (the key-frame file) and the detector's sensitivity at each FP/scan rate; or, when no
    lesion has been saved yet, what to do first."""
    import tempfile

    from usbkit.evaluation.results import table_markdown
    from usbkit.io.annotation_edit import ground_truth_line
    from usbkit.io.study import load_study
    from usbkit.models.detect import detect_study

    practice = Path(practice)
    study = load_study(practice)
    if not study.has_lesions():
        return Markdown(
            "*No lesion is saved in the practice study yet.* Draw the lesions in the viewer "
            "above (or accept the detector's drafts and correct them), press **save**, then "
            "run this cell again."
        )
    det = detect_study(
        practice,
        checkpoint,
        practice.parent / "practice-detections.csv",
        progress=False,
        overwrite=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = evaluate_study(
            practice, {"sequence": det}, Path(tmp), EvalConfig(n_boot=n_boot), progress=False
        )
    return Markdown(f"**Ground truth:** {ground_truth_line(study)}.\n\n" + table_markdown(results))
