"""``usbkit report``: the whole study, unattended, from the four notebooks.

Runs ``01_explore``, ``02_train``, ``03_compare`` and ``04_scrub`` in order with papermill
(parameters passed through, executed notebooks kept in ``OUT/notebooks``; the notebooks
hand results to each other through the run manifest ``OUT/run.json``), converts them to
HTML with their widget state, gathers the figures, and writes ``OUT/index.html`` with the
results table on top. A failing notebook stops the run; the error names the executed notebook
to open, and everything written before it stays.
"""

from __future__ import annotations

import html
import os
import shutil
import time
from dataclasses import asdict, dataclass
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
        Synthetic cohort size when no study is given (``quick`` or ``paper``).
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
    """

    study: str = ""
    out: str = "reports/latest"
    preset: str = "quick"
    patients: int | None = None
    seed: int = 0
    split: str = "test"
    train: bool = False
    epochs: int = TrainConfig.epochs
    device: str = TrainConfig.device
    bootstrap: int = EvalConfig.n_boot
    fp_rates: tuple[float, ...] = EvalConfig.fp_rates
    hit: str = EvalConfig.hit
    overwrite: bool = False

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
    """Execute one notebook with papermill; a failure becomes a clear UsbkitError."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(src),
            str(dest),
            parameters=parameters,
            progress_bar=progress,
            cwd=str(cwd) if cwd else None,
            kernel_name="python3",
        )
    except pm.PapermillExecutionError as exc:
        raise UsbkitError(
            f"notebook {src.stem} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}",
            file=dest,
            fix="Open this executed notebook to see the failing cell",
        ) from None
    return dest


def to_html(notebook: Path, dest: Path) -> Path:
    """Convert an executed notebook to a standalone HTML page (widget state included)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return write_text(dest, body)


def index_page(
    out: Path, results: dict | None, pages: list[Path], figures: list[Path], seconds: float
) -> str:
    """The report's front page: results table, figures, notebooks, scrubber pages."""
    from usbkit.evaluation.results import results_table

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>usbkit report</title>",
        "<style>body{font-family:Arial,Helvetica,sans-serif;margin:24px;max-width:1100px;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}</style></head><body>",
        "<h1>Single-frame vs sequence detection of breast masses</h1>",
    ]
    if results:
        parts.append(
            f"<p>{results['n_patients']} patients, {results['n_clips']} scans, {results['n_lesions']} "
            f"lesions (split: {html.escape(str(results.get('split')))}; hit rule: {results['hit']}; "
            f"{results.get('n_bootstrap')} bootstrap replicates).</p>"
        )
        parts.append(results_table(results).to_html(index=False, escape=True))
    parts.append("<h2>Figures</h2>")
    for f in figures:
        if f.suffix == ".png":
            rel = os.path.relpath(f, out)
            html_rel = os.path.relpath(f.with_suffix(".html"), out)
            parts.append(
                f"<p><a href='{html_rel}'>interactive</a><br><img src='{rel}' alt='{f.stem}'></p>"
            )
    parts.append("<h2>Notebooks</h2><ul>")
    for name in NOTEBOOKS:
        parts.append(
            f"<li><a href='html/{name}.html'>{name}</a> (executed: <a href='notebooks/{name}.ipynb'>ipynb</a>)</li>"
        )
    parts.append("</ul><h2>Clip scrubber pages</h2><ul>")
    for p in pages:
        parts.append(f"<li><a href='{os.path.relpath(p, out)}'>{html.escape(p.stem)}</a></li>")
    parts.append(
        f"</ul><p style='color:#777'>Generated by usbkit in {seconds:.0f} s.</p></body></html>"
    )
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
        for name in NOTEBOOKS:
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
            to_html(executed, tmp / "html" / f"{name}.html")
        run = Run.open(tmp)
        results = run.read_results() if run.results else None
        figures = sorted(run.results_dir.glob("fig*.*"))
        pages = sorted(run.scrubber_dir.glob("*.html"))
        write_text(
            tmp / "index.html", index_page(tmp, results, pages, figures, time.perf_counter() - t0)
        )
    return out / "index.html"


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
    """Copy a finished report's figures into ``dest`` (the README's ``figures/``)."""
    run = Run.open(Path(index).parent)
    dest = ensure_writable_dir(dest)
    copied = []
    for f in sorted(run.results_dir.glob("fig*.*")):
        shutil.copy2(f, dest / f.name)
        copied.append(dest / f.name)
    return copied
