"""The four notebooks through papermill, the report end to end from an installed wheel, and
a failing run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from conftest import run_cli

from usbkit.report.builder import NOTEBOOKS, notebooks_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory):
    """usbkit built as a wheel and installed without ``-e`` into a fresh virtual environment.

    The fresh environment sees usbkit's dependencies through a plain path entry to the test
    environment's site-packages (no .pth of that folder runs, so the editable checkout stays
    invisible): usbkit itself, its notebooks and weights come from the wheel alone. The
    dependencies' data files (nbconvert's templates) are found through ``JUPYTER_PATH``.
    """
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(dist.glob("usbkit-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "usbkit_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
         str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return venv


def test_the_wheel_holds_the_notebooks_and_the_shipped_weights(wheel_install):
    py = wheel_install / "bin" / "python"
    probe = (
        "import usbkit, usbkit.report.builder as b, usbkit.models.detect as d;"
        "print(usbkit.__file__); print(b.notebooks_dir()); print(d.pretrained_path('frame'))"
    )
    r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, cwd=wheel_install)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert all(line.startswith(str(wheel_install)) for line in lines), lines
    assert Path(lines[2]).stat().st_size > 100_000
    assert sorted(p.stem for p in Path(lines[1]).glob("*.ipynb")) == sorted(NOTEBOOKS)


def test_each_notebook_has_one_parameters_cell_and_calls_usbkit():
    for name in NOTEBOOKS:
        nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(len(c.source.splitlines()) <= 12 for c in code), (
            f"{name}: keep notebook cells thin"
        )
        assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3, (
            f"{name}: markdown that teaches"
        )


def test_report_from_an_installed_wheel_runs_the_four_notebooks_end_to_end(
    wheel_install, tiny_cohort, tmp_path
):
    out = tmp_path / "report"
    study = tiny_cohort / "study"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # the dependencies' data files (nbconvert's templates) are where they were installed
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    r = subprocess.run(
        [str(wheel_install / "bin" / "usbkit"), "--quiet", "report", "--study", str(study),
         "--out", str(out), "--figures", str(tmp_path / "figs"), "--bootstrap", "100"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    for name in NOTEBOOKS:
        nb = nbformat.read(out / "notebooks" / f"{name}.ipynb", as_version=4)
        errors = [
            o
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.output_type == "error"
        ]
        assert not errors, name
        assert (out / "html" / f"{name}.html").stat().st_size > 10_000
    res = json.loads((out / "results" / "results.json").read_text())
    arms = ["single frame", "single frame + tracking", "sequence", "sequence (no context)"]
    assert list(res["models"]) == arms and res["split"] == "test"
    pairs = {(c["a"], c["b"]) for c in res["comparisons"]}
    assert pairs == {
        ("single frame", "single frame + tracking"),
        ("single frame", "sequence"),
        ("single frame + tracking", "sequence"),
        ("sequence", "sequence (no context)"),
    }
    table = (out / "results" / "table.md").read_text()
    assert "single frame" in table and "P (single frame vs sequence), McNemar" in table
    assert "**Temporal context** adds" in table  # the ablation's sentence under the table
    index = (out / "index.html").read_text()
    assert "<table" in index and "fig1_froc.png" in index and "html/04_scrub.html" in index
    assert list((out / "scrubber").glob("*.html"))
    assert (tmp_path / "figs" / "fig2_sensitivity.png").exists()
    assert (tmp_path / "figs" / "anatomy.png").exists()  # the README's labelled synthetic frame
    run = json.loads((out / "run.json").read_text())
    assert run["results"] == "results/results.json" and set(run["detections"]) == set(res["models"])
    # the scrub notebook's widget state is kept in the executed notebook (and its HTML)
    scrub = nbformat.read(out / "notebooks" / "04_scrub.ipynb", as_version=4)
    cell = [c for c in scrub.cells if c.cell_type == "code" and "open_scrubber(" in c.source][0]
    assert "application/vnd.jupyter.widget-view+json" in json.dumps(cell.outputs)
    assert "widgets" in json.dumps(scrub.metadata)  # widget state stored for the HTML export
    assert "usbkit-viewer" in (out / "html" / "04_scrub.html").read_text()  # shown offline
    _every_page_opens_offline(out)


def _every_page_opens_offline(report: Path) -> None:
    """Every page of a finished report, opened in Chromium with the network off, asks no other
    host for anything and shows every figure and viewer."""
    from conftest import chromium_path

    from usbkit.report.lab import launch_chromium

    if chromium_path() is None:  # pragma: no cover - make install provides Chromium
        pytest.skip("no system Chromium")
    from playwright.sync_api import sync_playwright

    pages = sorted(report.rglob("*.html"))
    assert len(pages) >= 8  # index, 4 notebooks, figures, viewer pages
    with sync_playwright() as p:
        browser = launch_chromium(p)
        context = browser.new_context(offline=True)
        remote = []

        def route(r):
            if r.request.url.startswith(("file:", "data:", "blob:")):
                return r.continue_()
            remote.append(r.request.url)
            return r.abort()

        context.route("**/*", route)
        for path in pages:
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(300)
            blank = page.evaluate(
                "[...document.querySelectorAll('.plotly-graph-div')]"
                ".filter(d => !d.querySelector('svg.main-svg')).length"
                " + [...document.querySelectorAll('.usbkit-viewer')]"
                ".filter(v => v.dataset.frame === undefined).length"
                " + [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length"
            )
            assert blank == 0 and not errors, (path, blank, errors)
            page.close()
        browser.close()
    assert not remote, remote


def test_a_failing_notebook_stops_the_run_names_it_and_writes_no_half_report(tmp_path):
    out = tmp_path / "report"
    r = run_cli("report", "--study", tmp_path / "nowhere", "--out", out)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "notebook 01_explore failed" in r.stderr and "no manifest.csv" in r.stderr
    kept = tmp_path / "report.failed" / "notebooks" / "01_explore.ipynb"
    assert f"Open {kept}" in r.stderr.replace("\n", " ") and kept.exists()
    assert not out.exists()  # nothing half-built where the report goes


def test_report_refuses_a_folder_of_the_users_files(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    for extra in ([], ["--overwrite"]):
        r = run_cli("report", "--out", out, *extra)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "never overwrites files it did not write" in r.stderr
    assert [p.name for p in out.iterdir()] == ["index.html"]
    assert (out / "index.html").read_text() == "my own page"


@pytest.mark.parametrize("name", ["01_explore", "03_compare"])
def test_notebooks_run_alone_with_tiny_parameters(tiny_cohort, tmp_path, name):
    from usbkit.report.builder import run_notebook

    params = {"study": str(tiny_cohort / "study"), "out": str(tiny_cohort)}
    if name == "03_compare":
        params["bootstrap"] = 50
    dest = run_notebook(
        notebooks_dir() / f"{name}.ipynb", tmp_path / f"{name}.ipynb", params, progress=False
    )
    nb = nbformat.read(dest, as_version=4)
    assert any(
        o.get("output_type") in ("display_data", "execute_result")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def test_figures_show_only_the_bmode_image_never_the_burned_in_screen_text(tiny_cohort):
    import numpy as np

    from usbkit.report.explore import example_frames_figure
    from usbkit.report.figures import gallery_figure
    from usbkit.report.run import Run

    run = Run.open(tiny_cohort)
    study = run.load_study()
    fig = example_frames_figure(study)
    assert np.asarray(fig.data[0].z).shape == (320, 384)  # the synthetic screen is 416 x 512
    g = gallery_figure(study, run.read_detections(), run.read_results())
    shapes = {np.asarray(t.z).shape for t in g.data}
    assert shapes == {(320, 384)}


def test_shipped_notebooks_are_exactly_what_the_builder_makes():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", REPO / "notebooks" / "build.py"
    )
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, fresh in build.build().items():
        for folder in (notebooks_dir(), REPO / "notebooks"):
            shipped = nbformat.read(folder / f"{name}.ipynb", as_version=4)
            assert [(c.cell_type, c.source, c.metadata.get("tags")) for c in shipped.cells] == [
                (c.cell_type, c.source, c.metadata.get("tags")) for c in fresh.cells
            ], f"{folder / name}: run `.venv/bin/python notebooks/build.py`"


def test_parameters_cells_hold_the_typed_configs_defaults():
    from usbkit.evaluation.results import EvalConfig
    from usbkit.models.config import TrainConfig

    train = nbformat.read(notebooks_dir() / "02_train.ipynb", as_version=4)
    compare = nbformat.read(notebooks_dir() / "03_compare.ipynb", as_version=4)
    params = {
        n: next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        for n, nb in (("train", train), ("compare", compare))
    }
    assert f"epochs = {TrainConfig().epochs}" in params["train"]
    assert f"bootstrap = {EvalConfig().n_boot}" in params["compare"]
    assert f"fp_rates = {list(EvalConfig().fp_rates)}" in params["compare"]


@pytest.mark.parametrize("name", ["03_compare", "04_scrub"])
def test_a_notebook_run_before_make_report_says_what_to_run_first_without_a_traceback(
    tmp_path, name, monkeypatch
):
    """Opened from a fresh workspace's notebooks/ folder, with nothing run yet."""
    from usbkit.report.builder import run_notebook
    from usbkit.report.lab import prepare_workspace

    (tmp_path / "reports").mkdir()
    folder = prepare_workspace(tmp_path)
    monkeypatch.delenv("USBKIT_WORKSPACE", raising=False)
    with pytest.raises(Exception) as failure:
        run_notebook(folder / f"{name}.ipynb", tmp_path / "ran.ipynb", {}, progress=False,
                     cwd=folder)  # fmt: skip
    assert "there is no usbkit run here yet" in str(failure.value)
    ran = nbformat.read(tmp_path / "ran.ipynb", as_version=4)
    outputs = [o for c in ran.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]  # no traceback shown
    shown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(shown) == 1 and "Run `make report`" in shown[0]
    assert str(tmp_path / "reports" / "latest") in shown[0]  # resolved in the workspace


def _small_study(root: Path, keep_clips: int | None = None, boxes: bool = True) -> Path:
    """A two-patient synthetic study with short clips; without its boxes (``boxes=False``:
    clips nobody has annotated yet) or cut to its first ``keep_clips`` clips."""
    from dataclasses import replace

    import pandas as pd

    from usbkit.synth import preset_config, synthesize

    cfg = preset_config("quick", patients=2, seed=5)
    cfg = replace(
        cfg,
        sweep=replace(cfg.sweep, frames=(14, 16)),
        lesions=replace(cfg.lesions, normal_fraction=0.0),
    )
    study = synthesize(root, config=cfg, progress=False)
    manifest = pd.read_csv(study / "manifest.csv")
    ann = pd.read_csv(study / "annotations.csv")
    if keep_clips is not None:
        manifest = manifest.iloc[:keep_clips]
        ann = ann[ann["clip_id"].isin(manifest["clip_id"])]
    if not boxes:
        ann = ann.iloc[:0]
    manifest.to_csv(study / "manifest.csv", index=False)
    ann.to_csv(study / "annotations.csv", index=False)
    return study


def _shown(notebook: Path) -> tuple[list[dict], str]:
    """The plotly figures an executed notebook shows, and all the text it shows."""
    nb = nbformat.read(notebook, as_version=4)
    figures, text = [], []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            data = o.get("data", {})
            if "application/vnd.plotly.v1+json" in data:
                figures.append(data["application/vnd.plotly.v1+json"])
            text.append(data.get("text/markdown", "") + data.get("text/plain", ""))
            text.append(o.get("text", ""))
    return figures, "\n".join(text)


def test_explore_notebook_on_unannotated_clips_shows_no_blank_plot_and_says_what_to_do(tmp_path):
    """Run All on clips nobody has boxed yet: the three lesion figures become sentences saying
    what is missing and how to add it; the example frames do not promise boxes."""
    from usbkit.report.builder import run_notebook

    study = _small_study(tmp_path / "study", boxes=False)
    dest = run_notebook(
        notebooks_dir() / "01_explore.ipynb",
        tmp_path / "explore.ipynb",
        {"study": str(study), "out": str(tmp_path / "run")},
        progress=False,
    )
    figures, text = _shown(dest)
    for fig in figures:
        assert fig["data"], f"blank figure: {fig['layout'].get('title')}"
    titles = [fig["layout"]["title"]["text"] for fig in figures]
    assert not any("Lesions of the cohort" in t or "visibility" in t for t in titles)
    assert not any("a lesion enters and leaves" in t for t in titles)
    assert any("no lesion boxes: the study is not annotated" in t for t in titles)
    for missing in ("No lesion size to show", "No lesion visibility to show",
                    "No intensity comparison to show"):  # fmt: skip
        assert missing in text
    assert "the clips are not annotated yet" in text and "annotations.csv" in text
    assert "usbkit import cvat-video" in text  # what the user can do


def test_example_frames_fill_their_canvas_with_no_blank_band(tmp_path):
    """figures/synth_frames.png was a strip of frames in a larger white canvas. The canvas is
    now as high as the frames need: each frame's panel, at the frame's aspect ratio, spans
    the plot area's whole height, and no axis lines or ticks are drawn around it."""
    import numpy as np

    from usbkit.io.study import load_study
    from usbkit.report.explore import example_frames_figure

    fig = example_frames_figure(load_study(_small_study(tmp_path / "study")))
    rows, cols = np.asarray(fig.data[0].z).shape
    lay = fig.layout
    plot_w = lay.width - lay.margin.l - lay.margin.r
    plot_h = lay.height - lay.margin.t - lay.margin.b
    for k in range(1, len(fig.data) + 1):
        x = lay[f"xaxis{k if k > 1 else ''}"]
        y = lay[f"yaxis{k if k > 1 else ''}"]
        panel_w = (x.domain[1] - x.domain[0]) * plot_w
        assert panel_w * rows / cols == pytest.approx(plot_h, abs=1.0)
        assert x.visible is False and y.visible is False
    assert lay.margin.b <= 10 and lay.margin.l <= 10 and lay.margin.r <= 10


def test_explore_notes_name_a_single_clip_and_a_study_of_normal_scans(tmp_path):
    import pandas as pd

    from usbkit.io.study import load_study
    from usbkit.report.explore import Note, lesion_figure, study_notes

    one = load_study(_small_study(tmp_path / "one", keep_clips=1))
    assert "single clip" in study_notes(one).text
    assert not isinstance(lesion_figure(one), Note)  # its lesion is still drawn

    normal = _small_study(tmp_path / "normal", boxes=False)
    manifest = pd.read_csv(normal / "manifest.csv").assign(pathology="normal")
    manifest.to_csv(normal / "manifest.csv", index=False)
    note = lesion_figure(load_study(normal))
    assert isinstance(note, Note) and "every clip is a normal (lesion-free) scan" in note.text


def test_cohort_table_rows_are_named_by_split_not_numbered(tiny_cohort):
    from usbkit.report.explore import cohort_summary
    from usbkit.report.run import Run

    table = cohort_summary(Run.open(tiny_cohort).load_study())
    assert table.index.name == "split" and "total" in table.index
    assert "lesion-free clips" in table.columns


def test_cohort_table_of_unannotated_clips_does_not_call_them_lesion_free(tmp_path):
    """Clips without any box are not annotated, not known to be free of lesions: the table
    says 0 lesions and 0 boxes, and no 'lesion-free clips' count."""
    from usbkit.io.study import load_study
    from usbkit.report.explore import cohort_summary

    table = cohort_summary(load_study(_small_study(tmp_path / "s", boxes=False)))
    assert "lesion-free clips" not in table.columns
    assert table.loc["total", "lesions"] == 0 and table.loc["total", "lesion boxes"] == 0


def test_visibility_is_in_square_millimetres_when_the_pixel_size_is_known(tiny_cohort):
    from usbkit.report.explore import visibility_figure
    from usbkit.report.run import Run

    fig = visibility_figure(Run.open(tiny_cohort).load_study())
    assert fig.layout.yaxis.title.text == "box area (mm²)"


def test_boxes_in_figures_are_outlines_with_no_fill(tiny_cohort):
    """plotly's simple_white template fills shapes with black at 30% opacity: a mass under
    its box turned into a dark rectangle. Every box is an outline only."""
    from usbkit.report.explore import example_frames_figure
    from usbkit.report.figures import gallery_figure
    from usbkit.report.run import Run

    run = Run.open(tiny_cohort)
    study = run.load_study()
    for fig in (
        example_frames_figure(study),
        gallery_figure(study, run.read_detections(), run.read_results()),
    ):
        assert fig.layout.shapes
        defaults = fig.layout.template.layout.shapedefaults
        assert defaults.fillcolor == "rgba(0,0,0,0)" and defaults.opacity == 1
        for shape in fig.layout.shapes:
            assert shape.fillcolor == "rgba(0,0,0,0)" and shape.opacity == 1
            assert shape.line.width == 2


def test_train_notebook_says_which_cohort_and_preset_it_used(tiny_cohort, tmp_path):
    """The cohort comes from the first notebook run on ``out``: a later preset is not used,
    and the train notebook says so instead of ignoring it silently."""
    from usbkit.report.run import Run
    from usbkit.report.steps import cohort_note, start_run

    run = Run.open(tiny_cohort)
    same = cohort_note(run, "quick", 6)
    assert "synthetic cohort" in same and "preset 'quick', 6 patients" in same
    assert "not used" not in same
    other = cohort_note(run, "study")
    assert "preset 'study' asked for here is not used" in other and "another `out`" in other
    own = start_run(tmp_path / "run", _small_study(tmp_path / "mine"), progress=False)
    assert "your study" in cohort_note(own, "quick") and "is not used" in cohort_note(own, "quick")
    train = nbformat.read(notebooks_dir() / "02_train.ipynb", as_version=4)
    assert any("print(cohort_note(run, preset, patients))" in c.source for c in train.cells)


def _progress_bar_notebook(state: dict):
    """A notebook of one cell whose output is the widget 'h' of the saved widget state."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    cell = nbformat.v4.new_code_cell("bar")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", {"application/vnd.jupyter.widget-view+json": {"model_id": "h"}})]  # fmt: skip
    nb.cells = [cell]
    return nb


def test_report_pages_show_a_progress_bar_as_its_text_not_a_placeholder():
    from usbkit.report.builder import offline_notebook

    state = {
        "h": {"model_name": "HBoxModel",
              "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
        "a": {"model_name": "HTMLModel", "state": {"value": "bootstrap: 100%"}},
        "b": {"model_name": "FloatProgressModel", "state": {"value": 2000, "max": 2000}},
        "c": {"model_name": "HTMLModel", "state": {"value": " 2000/2000 [00:03&lt;00:00]"}},
    }  # fmt: skip
    nb = _progress_bar_notebook(state)
    offline_notebook(nb)
    shown = nb.cells[0].outputs[0]["data"]["text/html"]
    assert "bootstrap: 100%" in shown and "2000/2000 [00:03&lt;00:00]" in shown
    assert "#" * 20 in shown and "An interactive control" not in shown


def test_report_pages_leave_out_a_progress_bar_that_hid_itself_when_done():
    """tqdm's leave=False hides the bar at the end, with its text never updated: the page
    showed 'counting frames: 0% [####################] 0/3' under a finished run."""
    from usbkit.report.builder import offline_notebook

    state = {
        "h": {"model_name": "HBoxModel", "state": {
            "children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"], "layout": "IPY_MODEL_l"}},
        "l": {"model_name": "LayoutModel", "state": {"visibility": "hidden"}},
        "a": {"model_name": "HTMLModel", "state": {"value": "counting frames: 0%"}},
        "b": {"model_name": "FloatProgressModel", "state": {"value": 3, "max": 3}},
        "c": {"model_name": "HTMLModel", "state": {"value": " 0/3 [00:00&lt;?]"}},
    }  # fmt: skip
    nb = _progress_bar_notebook(state)
    offline_notebook(nb)
    shown = nb.cells[0].outputs[0]["data"]["text/html"]
    assert shown == "" and "widgets" not in nb.metadata


def test_executed_notebooks_name_the_report_folder_not_the_temporary_one(tmp_path):
    from usbkit.report.builder import _name_the_final_folder, index_page

    tmp, out = tmp_path / "report.tmp-1234", tmp_path / "report"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f'out = "{tmp}"')]
    path = tmp_path / "01_explore.ipynb"
    nbformat.write(nb, path)
    _name_the_final_folder(path, tmp, out)
    assert str(tmp) not in path.read_text() and f'out = \\"{out}\\"' in path.read_text()
    page = index_page(tmp_path, None, [], [], 1.0)
    assert "notebooks/01_explore.ipynb' download>download 01_explore.ipynb</a>" in page
