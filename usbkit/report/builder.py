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
from usbkit.safeio import (
    destination_lock,
    ensure_writable_dir,
    inside,
    output_dir,
    output_owner,
    write_text,
)

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
            kernel_manager_class=_quiet_kernel_manager(),
        )
    except pm.PapermillExecutionError as exc:
        what = _shown_error(dest) or f"{exc.ename}: {exc.evalue}"
        raise UsbkitError(
            f"notebook {src.stem} failed in cell {exc.exec_count}: {what}",
            file=dest,
            fix="Open this executed notebook to see the failing cell",
        ) from None
    return dest


def _quiet_kernel_manager():
    """The kernel manager of the report's notebooks: the kernel's own output streams (not
    the notebook's, which travel over its connection) go to a private temporary file, so a
    kernel still starting when the report is interrupted, its folder already removed, never
    prints a traceback after usbkit's one line."""
    import tempfile

    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            sink = tempfile.TemporaryFile()  # deleted when closed
            kw["stdout"], kw["stderr"] = sink, sink
            try:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                sink.close()  # the kernel holds its own copy of the descriptor

    return QuietKernelManager


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
            progress = _progress_text(state, view["model_id"])
            if progress is not None and _hidden(state, view["model_id"]):
                # a bar that hid itself when done (tqdm's leave=False): in JupyterLab it is
                # gone; its saved text is stale ('0% 0/3' under a full bar), so show nothing
                cell["outputs"][k] = {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/html": "", "text/plain": ""},
                }
                continue
            note = widget_note or (
                f"<pre style='color:#666'>{html.escape(progress)}</pre>"
                if progress is not None  # a progress bar: its last text, not a placeholder
                else "<p style='color:#666'>(An interactive control: open the notebook in "
                "JupyterLab to use it.)</p>"
            )
            html_out = "\n".join(parts) + (note if not parts else "")
            cell["outputs"][k] = {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/html": html_out, "text/plain": "(usbkit viewer)"},
            }
    nb.metadata.pop("widgets", None)


def _hidden(state: dict, model_id: str) -> bool:
    """Whether a saved widget was hidden (its layout's visibility or display)."""
    layout = str(state.get(model_id, {}).get("state", {}).get("layout", ""))
    s = state.get(layout.replace("IPY_MODEL_", ""), {}).get("state", {})
    return s.get("visibility") == "hidden" or s.get("display") == "none"


def _progress_text(state: dict, model_id: str) -> str | None:
    """The text a saved progress bar last showed (tqdm's ``description | bar | counts``:
    the text parts and the bar's share), or None when the widget is not a progress bar."""
    entry = state.get(model_id, {})
    children = [
        state.get(str(c).replace("IPY_MODEL_", ""), {})
        for c in entry.get("state", {}).get("children", []) or []
    ]
    kinds = [c.get("model_name", "") for c in children]
    if not any(k in ("FloatProgressModel", "IntProgressModel") for k in kinds):
        return None
    parts = []
    for child, kind in zip(children, kinds):
        s = child.get("state", {})
        if kind == "HTMLModel":
            text = re.sub(r"<[^>]+>", "", str(s.get("value", ""))).replace("&nbsp;", " ")
            parts.append(html.unescape(text).strip())
        elif kind in ("FloatProgressModel", "IntProgressModel") and s.get("max"):
            done = max(0.0, min(1.0, float(s.get("value", 0)) / float(s["max"])))
            parts.append("[" + "#" * round(20 * done) + "." * (20 - round(20 * done)) + "]")
    return " ".join(p for p in parts if p)


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


#: The report's front page (Jinja2, every value escaped unless it is marked safe).
INDEX_TEMPLATE = """<!doctype html><html lang='en'><head><meta charset='utf-8'><title>usbkit report</title>
<style>body{font-family:Arial,Helvetica,sans-serif;margin:24px;max-width:1100px;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th:first-child,td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}</style></head><body>
<h1>Single-frame vs sequence detection of breast masses</h1>
{%- if results %}
<p>Scan-level sensitivity with 95% intervals ({{ results.get('n_bootstrap') }} paired \
bootstrap replicates over patients) and P values.</p>
{{ table }}
<ul>{% for line in findings %}<li>{{ line }}</li>{% endfor %}</ul>
{%- endif %}
{%- for reason in reasons %}
<p style='background:#fff4e0;padding:8px'>{{ reason }}</p>
{%- endfor %}
{{ '<h2>Figures</h2>'|safe if figures else '' }}
{%- for f in figures %}
<p><a href='{{ f.html|urlpath }}'>interactive</a><br><img src='{{ f.png|urlpath }}' alt='{{ f.stem }}'></p>
{%- endfor %}
<h2>Notebooks</h2><ul>
{%- for name in notebooks %}
{%- if name in skipped %}
<li>{{ name }}: not run (see above)</li>
{%- else %}
<li><a href='{{ ('html/' ~ name ~ '.html')|urlpath }}'>{{ name }}</a> (the executed notebook, \
to open in JupyterLab: <a href='{{ ('notebooks/' ~ name ~ '.ipynb')|urlpath }}' download>download \
{{ name }}.ipynb</a>{{ sizes[name] }})</li>
{%- endif %}
{%- endfor %}
</ul><h2>Clip viewer pages</h2>{{ pages_html }}
<p style='color:#777'>Generated by usbkit in {{ '%.0f'|format(seconds) }} s.</p></body></html>"""


def _size(path: Path) -> str:
    """', 20 MB' (the size of a download), or '' when the file is not there."""
    try:
        n = path.stat().st_size
    except OSError:
        return ""
    return f", {n / 1e6:.1f} MB" if n >= 1e5 else f", {max(1, round(n / 1e3))} kB"


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
    the comparison had), figures, notebooks, viewer pages.

    Built with a Jinja2 template that escapes every value (ids, model names, file and folder
    names can hold any character a study allows; none of them can add markup or script), and
    links as URL-quoted relative paths."""
    from markupsafe import Markup

    from usbkit.evaluation.results import results_table
    from usbkit.report.findings import findings
    from usbkit.report.pages import pages_section
    from usbkit.style import html_template

    skipped = skipped or {}
    pngs = [f for f in figures if f.suffix == ".png"]
    return html_template(INDEX_TEMPLATE).render(
        results=results,
        # pandas escapes every cell and header of the table (escape=True)
        table=Markup(results_table(results).to_html(index=False, escape=True)) if results else "",
        findings=findings(results, plan) if results else [],
        reasons=list(dict.fromkeys(skipped.values())),
        figures=[
            {
                "png": os.path.relpath(f, out),
                "html": os.path.relpath(f.with_suffix(".html"), out),
                "stem": f.stem,
            }
            for f in pngs
        ],
        notebooks=NOTEBOOKS,
        sizes={name: _size(out / "notebooks" / f"{name}.ipynb") for name in NOTEBOOKS},
        skipped=skipped,
        pages_html=Markup(pages_section(out, pages)),
        seconds=seconds,
    )


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
    study = Path(config.study).resolve() if config.study else None
    inputs = [study] if study else []
    with output_dir(out, "report", overwrite=config.overwrite, inputs=inputs) as tmp:
        params = config.notebook_parameters()
        # a study inside an earlier report (its OUT/study) was copied into the new one
        kept = inside(study, out) if study else None
        params["study"] = str(tmp / kept if kept else study) if study else ""
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
            _name_the_final_folder(executed, tmp, out)
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


def _name_the_final_folder(notebook: Path, tmp: Path, out: Path) -> None:
    """The report is built in a temporary folder and moved to ``out`` when complete: an
    executed notebook names ``out`` (its parameters cell, printed paths), never the
    temporary folder that no longer exists once the report is there."""
    import json

    text = notebook.read_text(encoding="utf-8")
    new = text
    for old, final in (
        (str(tmp), str(out)),
        (json.dumps(str(tmp))[1:-1], json.dumps(str(out))[1:-1]),
    ):
        new = new.replace(old, final)
    if new != text:
        write_text(notebook, new)


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


#: The marker ``OUTPUT_MARKER`` of a --figures folder names this command.
FIGURES_COMMAND = "report --figures"


def check_figures_dir(dest: str | Path, overwrite: bool = False) -> Path:
    """The output rule for ``usbkit report --figures DIR``, applied before any work: a
    missing or empty folder is fine; a folder of figures an earlier ``--figures`` put there
    (its marker says so) is updated only with ``overwrite``; any other folder is refused."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise UsbkitError(
            "--figures needs a folder, and this is a file",
            file=dest,
            fix="Give a new folder name for the figures",
        )
    if not dest.exists() or not any(dest.iterdir()):
        return dest
    if output_owner(dest) != FIGURES_COMMAND:
        raise UsbkitError(
            "this --figures folder already holds files that `usbkit report --figures` did not "
            "put there, and usbkit never overwrites files it did not write",
            file=dest,
            fix="Choose a new or empty folder for --figures",
        )
    if not overwrite:
        raise UsbkitError(
            "this --figures folder already holds the figures of an earlier report",
            file=dest,
            fix="Add --overwrite to replace them, or choose a new folder for --figures",
        )
    return dest


def _figures_written(dest: Path) -> set[str]:
    import json

    from usbkit.safeio import OUTPUT_MARKER

    try:
        data = json.loads((dest / OUTPUT_MARKER).read_text(encoding="utf-8"))
        return {str(name) for name in data.get("files", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        return set()


def copy_figures(index: Path, dest: str | Path, overwrite: bool = False) -> list[Path]:
    """Copy a finished report's figures into ``dest`` (the README's ``figures/``) as PNG and
    SVG: pictures that need no script (the interactive HTML stays in the report); add the
    labelled anatomy of a synthetic frame (``anatomy.png``) and, for a synthetic cohort, frames
    of one of its sweeps (``synth_frames.png``).

    The figures are drawn aside and moved in only when all are done; the folder follows the
    output rule (:func:`check_figures_dir`): only files an earlier ``--figures`` wrote (the
    folder's marker lists them) are replaced, and only with ``overwrite``."""
    import json
    import tempfile

    from usbkit.safeio import OUTPUT_MARKER, temporary_prefix
    from usbkit.version import __version__

    dest = Path(dest)
    check_figures_dir(dest, overwrite)
    ensure_writable_dir(dest.parent if str(dest.parent) else Path("."))
    with destination_lock(dest, FIGURES_COMMAND):
        check_figures_dir(dest, overwrite)
        aside = Path(
            tempfile.mkdtemp(prefix=temporary_prefix(dest), suffix=".tmp", dir=dest.parent)
        )
        try:
            names = _draw_figures(index, aside)
            ensure_writable_dir(dest)
            ours = _figures_written(dest)
            theirs = [n for n in names if (dest / n).exists() and n not in ours]
            if theirs:
                raise UsbkitError(
                    f"this --figures folder holds {', '.join(theirs)}, which usbkit did not "
                    "write, and usbkit never overwrites files it did not write",
                    file=dest,
                    fix="Move those files away, or choose a new folder for --figures",
                )
            copied = []
            for name in names:
                os.replace(aside / name, dest / name)
                copied.append(dest / name)
            write_text(
                dest / OUTPUT_MARKER,
                json.dumps(
                    {
                        "command": FIGURES_COMMAND,
                        "usbkit_version": __version__,
                        "files": sorted(ours | set(names)),
                    }
                ),
            )
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    return copied


def _draw_figures(index: Path, dest: Path) -> list[str]:
    """The figures of :func:`copy_figures`, written into the folder ``dest``; their names."""
    run = Run.open(Path(index).parent)
    copied = []
    for f in sorted([*run.results_dir.glob("fig*.png"), *run.results_dir.glob("fig*.svg")]):
        shutil.copy2(f, dest / f.name)
        copied.append(f.name)
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
                copied.append(write_static(fig, dest / f"{stem}.png", "png", scale=2).name)
    return copied
