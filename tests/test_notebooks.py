"""The four notebooks through papermill, the report end to end, and a failing run."""

from __future__ import annotations

import json

import nbformat
import pytest
from conftest import run_cli

from usbkit.report.builder import NOTEBOOKS, notebooks_dir


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


def test_report_runs_the_four_notebooks_end_to_end(tiny_cohort, tmp_path):
    out = tmp_path / "report"
    study = tiny_cohort / "study"
    r = run_cli(
        "report",
        "--study",
        study,
        "--out",
        out,
        "--figures",
        tmp_path / "figs",
        "--bootstrap",
        "100",
    )
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
    assert set(res["models"]) == {"single frame", "sequence"} and res["split"] == "test"
    table = (out / "results" / "table.md").read_text()
    assert "single frame" in table and "P (single frame vs sequence), McNemar" in table
    index = (out / "index.html").read_text()
    assert "<table" in index and "fig1_froc.png" in index and "html/03_scrub.html" in index
    assert list((out / "scrubber").glob("*.html"))
    assert (tmp_path / "figs" / "fig2_sensitivity.html").exists()
    # the scrub notebook's widget state is kept in the executed notebook (and its HTML)
    scrub = nbformat.read(out / "notebooks" / "03_scrub.ipynb", as_version=4)
    cell = [c for c in scrub.cells if c.cell_type == "code" and "Scrubber(" in c.source][0]
    assert "application/vnd.jupyter.widget-view+json" in json.dumps(cell.outputs)
    assert "widgets" in json.dumps(scrub.metadata)  # widget state stored for the HTML export


def test_a_failing_notebook_stops_the_run_names_it_and_keeps_earlier_outputs(tiny_cohort, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("earlier result")
    r = run_cli("report", "--study", tiny_cohort / "nowhere", "--out", out)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "01_explore" in r.stderr and "Open this executed notebook" in r.stderr
    assert (out / "keep.txt").read_text() == "earlier result"
    assert (out / "notebooks" / "01_explore.ipynb").exists()


@pytest.mark.parametrize("name", ["01_explore", "04_compare"])
def test_notebooks_run_alone_with_tiny_parameters(tiny_cohort, tmp_path, name):
    from usbkit.report.builder import run_notebook

    params = {"study": str(tiny_cohort / "study"), "out": str(tiny_cohort)}
    if name == "04_compare":
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
    import pandas as pd

    from usbkit.io.study import load_study
    from usbkit.report.explore import example_frames_figure
    from usbkit.report.figures import gallery_figure

    study = load_study(tiny_cohort / "study")
    fig = example_frames_figure(study)
    assert np.asarray(fig.data[0].z).shape == (160, 192)  # the synthetic screen is 208 x 256
    dets = {
        n: pd.read_csv(tiny_cohort / f"detections_{n.replace(' ', '_')}.csv")
        for n in ("single frame", "sequence")
    }
    results = {
        "fp_rates": [0.5],
        "split": "test",
        "models": {n: {"threshold": [0.05]} for n in dets},
    }
    g = gallery_figure(study, dets, results)
    shapes = {np.asarray(t.z).shape for t in g.data}
    assert shapes == {(160, 192)}
