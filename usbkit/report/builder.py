"""``usbkit report``: the whole study, unattended, from the four notebooks.

Runs ``01_explore``, ``02_train``, ``03_compare`` and ``04_scrub`` in order with papermill
(parameters passed through, executed notebooks kept in ``OUT/notebooks``; the notebooks
hand results to each other through the run manifest ``OUT/run.json``), converts them to
HTML with their widget state, gathers the figures, and writes ``OUT/index.html`` with the
results table on top. A failing notebook stops the run; the error names the executed notebook
to open (kept in ``OUT.failed/notebooks``), and ``OUT`` is left as it was (the report is
built aside).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.evaluation.results import EvalConfig
from usbkit.models.config import TrainConfig
from usbkit.report.run import Run
from usbkit.safeio import ensure_writable_dir, output_dir, write_text

NOTEBOOKS = ("01_explore", "02_train", "03_compare", "04_scrub")


@dataclass(frozen=True)
class ReportConfig:
    """Everything ``usbkit report`` and the notebooks' parameters cells take.

    Defaults of training and evaluation are those of :class:`TrainConfig` and
    :class:`EvalConfig`, so each number is set in one place.

    Attributes
    ----------
    study : str
        A study folder; empty: the built-in synthetic cohort in ``OUT/study``.
    out : str
        The run folder everything is written to.
    preset : str
        Synthetic cohort when no study is given: ``study`` (the default comparison, a test
        split of about 175 lesions), ``quick`` (teaching, about two minutes) or ``paper``
        (506 patients).
    patients : int, optional
        Fewer (or more) synthetic patients than the preset's.
    seed : int
        Seed of the cohort, training and bootstrap.
    split : str
        The clips the models are run on and evaluated.
    train : bool
        Train both models (otherwise the shipped checkpoints are used).
    epochs : int
        Training epochs.
    train_settings : dict
        Any other training or network settings for both models, by field name of
        TrainConfig or ModelConfig (``{"input_size": [192, 224], "augment": "ultrasound"}``).
    device : str
        ``auto`` picks a GPU when there is one.
    bootstrap : int
        Paired bootstrap replicates.
    fp_rates : tuple of float
        FP/scan rates of the study's table.
    hit : str
        Hit rule.
    overwrite : bool
        Replace an earlier report in ``out`` (it stays untouched until the new one is done).
    pages : str
        Static viewer pages: ``auto`` (every clip of the split until the pages take
        :data:`usbkit.report.pages.DEFAULT_BUDGET_MB` MB), ``all``, or a number of pages.
    """

    study: str = ""
    out: str = "reports/latest"
    preset: str = "study"
    patients: int | None = None
    seed: int = 0
    split: str = "test"
    train: bool = False
    epochs: int = TrainConfig.epochs
    train_settings: dict = field(default_factory=dict)
    device: str = TrainConfig.device
    bootstrap: int = EvalConfig.n_boot
    fp_rates: tuple[float, ...] = EvalConfig.fp_rates
    hit: str = EvalConfig.hit
    overwrite: bool = False
    pages: str = "auto"

    def notebook_parameters(self) -> dict:
        """The papermill parameters of every notebook (JSON types)."""
        p = asdict(self)
        p["fp_rates"] = list(self.fp_rates)
        return p


def notebooks_dir() -> Path:
    """Where the notebooks live: inside the installed package (``usbkit/report/notebooks``)."""
    path = Path(str(resources.files("usbkit.report") / "notebooks"))
    if not (path / f"{NOTEBOOKS[0]}.ipynb").exists():
        raise UsbkitError(
            "the usbkit notebooks are missing from this installation",
            file=path,
            fix="Reinstall usbkit (pip install usbkit, or make install from a checkout)",
        )
    return path


def declared_parameters(notebook: Path, values: dict) -> dict:
    """The entries of ``values`` that the notebook's parameters cell declares."""
    import papermill as pm

    return {k: v for k, v in values.items() if k in pm.inspect_notebook(str(notebook))}


def run_notebook(
    src: Path, dest: Path, parameters: dict, progress: bool = True, cwd: Path | None = None
) -> Path:
    """Execute one notebook with papermill; a failure becomes a clear UsbkitError carrying
    the notebook's own one-paragraph message."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(src),
            str(dest),
            parameters=parameters,
            progress_bar=progress,
            cwd=str(cwd) if cwd else None,
            kernel_name="python3",
            # the kernel's start-up notices are not for the user
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except pm.PapermillExecutionError as exc:
        what = _shown_error(dest) or f"{exc.ename}: {exc.evalue}"
        raise UsbkitError(
            f"notebook {src.stem} failed in cell {exc.exec_count}: {what}",
            file=dest,
            fix="Open this executed notebook to see the failing cell",
        ) from None
    return dest


def _shown_error(notebook: Path) -> str | None:
    """The usbkit message a notebook showed instead of a traceback (see setup_notebook)."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:  # noqa: BLE001 - no notebook to read: no message
        return None
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            if text.startswith("**usbkit:** "):
                return text[len("**usbkit:** ") :].strip().rstrip(".")
    return None


#: Scripts the exported notebook pages would fetch from the internet; usbkit's pages need
#: none of them (no LaTeX in the notebooks, plotly.js is shipped in the report folder).
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.I)
_PLOTLY_BUNDLE = re.compile(r"<script[^>]*>\s*/\*\*\s*\* plotly\.js v[\s\S]*?</script>")


def offline_notebook(nb, widget_note: str = "") -> None:
    """Make an executed notebook's outputs work in a page with no network and no kernel.

    Widget outputs are replaced by what they show: the usbkit viewer becomes the same viewer
    as a self-contained fragment (frames and marks from the saved widget state); any other
    control becomes a one-line note. The saved widget state is then dropped, so the page does
    not load the widget manager from the internet.
    """
    import base64

    from usbkit.viewer.static_page import static_viewer_html

    key = "application/vnd.jupyter.widget-state+json"
    state = nb.metadata.get("widgets", {}).get(key, {}).get("state", {})

    def viewers(model_id: str, seen: set) -> list[str]:
        if model_id in seen or model_id not in state:
            return []
        seen.add(model_id)
        entry = state[model_id]
        if "usbkit clip viewer" in str(entry["state"].get("_esm", "")):
            return [model_id]
        found = []
        for child in entry["state"].get("children", []) or []:
            found += viewers(str(child).replace("IPY_MODEL_", ""), seen)
        return found

    for cell in nb.cells:
        for k, out in enumerate(cell.get("outputs", [])):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if not view:
                continue
            parts = []
            for i, mid in enumerate(viewers(view["model_id"], set())):
                entry = state[mid]
                buffers = {
                    tuple(b["path"]): base64.b64decode(b["data"]) for b in entry.get("buffers", [])
                }
                frames = buffers.get(("frames",), b"")
                parts.append(
                    static_viewer_html(
                        entry["state"]["clip"],
                        frames,
                        entry["state"]["offsets"],
                        f"usbkit-viewer-{mid[:8]}-{i}",
                    )
                )
            note = widget_note or (
                "<p style='color:#666'>(An interactive control: open the notebook in JupyterLab "
                "to use it.)</p>"
            )
            html_out = "\n".join(parts) + (note if not parts else "")
            cell["outputs"][k] = {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/html": html_out, "text/plain": "(usbkit viewer)"},
            }
    nb.metadata.pop("widgets", None)


def offline_page(body: str, plotly_src: str) -> str:
    """Drop every script an exported page would fetch from the internet and load plotly.js
    once, from the report folder, instead of an inline copy per notebook."""
    body = _REMOTE_SCRIPT.sub("", body)
    if _PLOTLY_BUNDLE.search(body):
        body = _PLOTLY_BUNDLE.sub(lambda m: f'<script src="{plotly_src}"></script>', body, count=1)
        body = _PLOTLY_BUNDLE.sub("", body)
    return body


def write_plotly_js(folder: Path) -> Path:
    """``plotly.min.js`` once in ``folder`` (the plotly.js of the installed plotly package)."""
    from plotly.offline import get_plotlyjs

    return write_text(folder / "plotly.min.js", get_plotlyjs())


def to_html(notebook: Path, dest: Path, plotly_src: str = "../plotly.min.js") -> Path:
    """Convert an executed notebook to an HTML page that opens offline: widget outputs shown
    as what they display, no script fetched from the internet, plotly.js from ``plotly_src``."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    offline_notebook(nb)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return write_text(dest, offline_page(body, plotly_src))


def index_page(
    out: Path,
    results: dict | None,
    pages: list[Path],
    figures: list[Path],
    seconds: float,
    skipped: dict[str, str] | None = None,
    plan=None,
) -> str:
    """The report's front page: results table and what it found in words (with the power
    the comparison had), figures, notebooks, viewer pages."""
    from usbkit.evaluation.results import results_table
    from usbkit.report.findings import findings

    skipped = skipped or {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>usbkit report</title>",
        "<style>body{font-family:Arial,Helvetica,sans-serif;margin:24px;max-width:1100px;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}</style></head><body>",
        "<h1>Single-frame vs sequence detection of breast masses</h1>",
    ]
    if results:
        parts.append(
            f"<p>Scan-level sensitivity with 95% intervals ({results.get('n_bootstrap')} paired "
            "bootstrap replicates over patients) and P values.</p>"
        )
        parts.append(results_table(results).to_html(index=False, escape=True))
        parts.append(
            "<ul>"
            + "".join(f"<li>{html.escape(line)}</li>" for line in findings(results, plan))
            + "</ul>"
        )
    for reason in dict.fromkeys(skipped.values()):
        parts.append(f"<p style='background:#fff4e0;padding:8px'>{html.escape(reason)}</p>")
    parts.append("<h2>Figures</h2>" if figures else "")
    for f in figures:
        if f.suffix == ".png":
            rel = os.path.relpath(f, out)
            html_rel = os.path.relpath(f.with_suffix(".html"), out)
            parts.append(
                f"<p><a href='{html_rel}'>interactive</a><br><img src='{rel}' alt='{f.stem}'></p>"
            )
    parts.append("<h2>Notebooks</h2><ul>")
    for name in NOTEBOOKS:
        if name in skipped:
            parts.append(f"<li>{name}: not run (see above)</li>")
            continue
        parts.append(
            f"<li><a href='html/{name}.html'>{name}</a> (executed: <a href='notebooks/{name}.ipynb'>ipynb</a>)</li>"
        )
    from usbkit.report.pages import pages_section

    parts.append("</ul><h2>Clip viewer pages</h2>" + pages_section(out, pages))
    parts.append(f"<p style='color:#777'>Generated by usbkit in {seconds:.0f} s.</p></body></html>")
    return "\n".join(parts)


def run_report(config: ReportConfig = ReportConfig(), progress: bool = True) -> Path:
    """Run the whole study from the notebooks and write ``OUT/index.html``.

    The report is built in a temporary folder beside ``OUT`` and swapped in whole when
    complete (docs/command-line.md#rules-every-command-follows): an earlier report stays
    byte-identical until then, and a failed or interrupted run leaves it untouched. When a
    notebook fails, the executed notebooks so far are kept in ``OUT.failed/notebooks`` and
    the error names the one to open.

    Parameters
    ----------
    config : ReportConfig
        Study, run folder and every setting of the notebooks.
    progress : bool
        Show progress.

    Returns
    -------
    Path
        ``OUT/index.html``.
    """
    t0 = time.perf_counter()
    out = Path(config.out).resolve()
    src = notebooks_dir()
    with output_dir(out, "report", overwrite=config.overwrite) as tmp:
        params = config.notebook_parameters()
        params["study"] = str(Path(config.study).resolve()) if config.study else ""
        params["out"] = str(tmp)
        (tmp / "notebooks").mkdir()
        skipped: dict[str, str] = {}
        for name in NOTEBOOKS:
            if name == "03_compare" and not _has_annotated_lesions(tmp):
                skipped[name] = NO_LESIONS
                continue
            if progress:
                print(f"running {name} ...", flush=True)
            executed = tmp / "notebooks" / f"{name}.ipynb"
            try:
                run_notebook(
                    src / f"{name}.ipynb",
                    executed,
                    declared_parameters(src / f"{name}.ipynb", params),
                    progress=progress,
                    cwd=tmp,
                )
            except UsbkitError as exc:
                raise _failed_notebook(exc, tmp, out, name) from None
        write_clip_pages(tmp, config.pages, progress)
        run = Run.open(tmp)
        # plotly.js once per report: the figures' copy in results/, else one at the top
        shared = run.results_dir / "plotly.min.js"
        if not shared.exists():
            shared = write_plotly_js(tmp)
        for name in NOTEBOOKS:
            if name not in skipped:
                to_html(
                    tmp / "notebooks" / f"{name}.ipynb",
                    tmp / "html" / f"{name}.html",
                    plotly_src=os.path.relpath(shared, tmp / "html"),
                )
        results = run.read_results() if run.results else None
        figures = sorted(run.results_dir.glob("fig*.*"))
        pages = sorted(run.scrubber_dir.glob("*.html"))
        plan = None
        if results and len(results["models"]) >= 2:
            from usbkit.evaluation.power import PlanConfig, plan_study

            plan = plan_study(
                results, PlanConfig(fp_rate=results["view_fp_rate"], seed=config.seed)
            )
        write_text(
            tmp / "index.html",
            index_page(tmp, results, pages, figures, time.perf_counter() - t0, skipped, plan),
        )
    return out / "index.html"


NO_LESIONS = (
    "No lesion is annotated in the clips of this run, so the report gives no sensitivity, "
    "FP/scan or P value (each needs to know where the lesions are). The detections and the "
    "clip viewers below show each model's marks at the operating threshold its checkpoint "
    "carries. Annotate the lesions (annotations.csv) to compare the models."
)


def write_clip_pages(folder: Path, pages: str, progress: bool = True) -> None:
    """The static viewer pages of every clip of the run, up to the cap ``pages``, and their
    index (:func:`usbkit.report.pages.write_report_pages`)."""
    from usbkit.report.pages import write_report_pages

    if progress:
        print("writing the clip viewer pages ...", flush=True)
    write_report_pages(folder, pages, progress)


def _has_annotated_lesions(folder: Path) -> bool:
    run = Run.open(folder)
    return run.load_study().has_lesions(run.split)


def _failed_notebook(exc: UsbkitError, tmp: Path, out: Path, name: str) -> UsbkitError:
    """Keep the executed notebooks of a failed report beside ``out``; the error to raise."""
    failed = out.with_name(out.name + ".failed")
    kept = None
    try:
        with output_dir(failed, "report-failed", overwrite=True) as dest:
            shutil.copytree(tmp / "notebooks", dest / "notebooks")
        kept = failed / "notebooks" / f"{name}.ipynb"
    except (UsbkitError, OSError):
        pass
    where = (
        f"Open {kept} to see the failing cell"
        if kept
        else "The executed notebooks could not be kept"
    )
    earlier = "the earlier report is unchanged" if any(out.glob("*")) else "no report was written"
    return UsbkitError(exc.message, file=None, fix=f"{where}; {earlier}")


def copy_figures(index: Path, dest: str | Path) -> list[Path]:
    """Copy a finished report's figures into ``dest`` (the README's ``figures/``) as PNG and
    SVG: pictures that need no script (the interactive HTML stays in the report); add the
    labelled anatomy of a synthetic frame (``anatomy.png``) and, for a synthetic cohort, frames
    of one of its sweeps (``synth_frames.png``)."""
    run = Run.open(Path(index).parent)
    dest = ensure_writable_dir(dest)
    copied = []
    for f in sorted([*run.results_dir.glob("fig*.png"), *run.results_dir.glob("fig*.svg")]):
        shutil.copy2(f, dest / f.name)
        copied.append(dest / f.name)
    # the labelled anatomy of a synthetic frame (the README's picture of the cohort), drawn
    # with the synthetic study's own settings when the run has one
    from usbkit.report.explore import anatomy_figure
    from usbkit.report.figures import browser_path, static_export, write_static
    from usbkit.synth.config import SynthConfig

    if browser_path():
        from usbkit.report.explore import example_frames_figure

        config = run.path(run.study) / "synth_config.json"
        pictures = {
            "anatomy": anatomy_figure(SynthConfig.load(config) if config.exists() else None)
        }
        if config.exists():  # frames of a synthetic sweep (the README's picture of a clip)
            pictures["synth_frames"] = example_frames_figure(run.load_study())
        with static_export():
            for stem, fig in pictures.items():
                copied.append(write_static(fig, dest / f"{stem}.png", "png", scale=2))
    return copied
