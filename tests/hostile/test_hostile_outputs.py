"""Hostile suite (issue 27): nothing the command did not create is changed or removed, under
reruns over its own input, destinations that appear or change during a run, concurrent runs
and runs killed midway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import run_cli, tree_hash
from test_faults import one_clip_study

from usbkit.errors import UsbkitError, UsbkitWarning
from usbkit.safeio import atomic_path, destination_lock, output_dir, write_text

DET = "clip_id,frame,score,x0,y0,x1,y1\na,1,0.9,12,12,28,28\na,2,0.3,40,30,60,46\n"


def _evaluate(root, det, out, *more):
    return run_cli("evaluate", root, "--detections", f"m={det}", "--out", out, "--bootstrap", "20",
                   *more)  # fmt: skip


def test_a_rerun_over_its_own_input_inside_the_output_keeps_the_input(tmp_path):
    """`evaluate E/study --detections m=E/det.csv --out E --overwrite`: the swap keeps both
    inputs (copied into the new output) instead of deleting them with the earlier output."""
    out = tmp_path / "E"
    root = one_clip_study(tmp_path / "s", "a,1,1,10,10,30,30\n")
    det = tmp_path / "det.csv"
    det.write_text(DET)
    assert _evaluate(root, det, out).returncode == 0
    os.replace(root, out / "study")  # the user keeps the study and detections in E
    os.replace(det, out / "det.csv")
    (out / "study" / "notes.txt").write_text("my notes")
    r = _evaluate(out / "study", out / "det.csv", out, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (out / "study" / "notes.txt").read_text() == "my notes"
    assert (out / "det.csv").read_text() == DET
    assert (out / "results.json").exists()


def test_an_input_that_is_the_output_folder_itself_is_refused(tmp_path):
    out = tmp_path / "E"
    with output_dir(out, "evaluate") as tmp:
        (tmp / "x").write_text("1")
    before = tree_hash(out)
    with pytest.raises(UsbkitError, match="is the output folder itself"):
        with output_dir(out, "evaluate", overwrite=True, inputs=[out]):
            pass
    assert tree_hash(out) == before


def test_report_study_inside_its_output_is_copied_into_the_new_report(tmp_path, monkeypatch):
    """The report's own rerun (`report --study R/study --out R --overwrite`) keeps R/study:
    the notebooks run on the copy in the new report, and run.json points at it."""
    from usbkit.report import builder

    out = tmp_path / "R"
    with output_dir(out, "report") as tmp:
        one_clip_study(tmp / "study")
    (out / "study" / "mine.txt").write_text("annotated by me")
    seen = {}

    def fake_notebook(src, dest, parameters, progress=True, cwd=None):
        seen.setdefault("study", parameters.get("study"))
        raise UsbkitError("stop here")

    monkeypatch.setattr(builder, "run_notebook", fake_notebook)
    monkeypatch.setattr(builder, "_failed_notebook", lambda exc, tmp, out, name: exc)
    with pytest.raises(UsbkitError, match="stop here"):
        builder.run_report(
            builder.ReportConfig(study=str(out / "study"), out=str(out), overwrite=True),
            progress=False,
        )
    study = Path(seen["study"])
    assert study.name == "study" and study.parent != out.resolve()  # the copy in the new one
    assert (out / "study" / "mine.txt").read_text() == "annotated by me"


def test_report_figures_never_overwrite_the_users_files(tmp_path):
    """`report --figures DIR` with the user's own fig1_froc.png there: refused before any work,
    with or without --overwrite, and the file is untouched."""
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "fig1_froc.png").write_bytes(b"my own picture")
    for extra in ([], ["--overwrite"]):
        r = run_cli("report", "--out", tmp_path / "R", "--figures", figs, *extra)
        assert r.returncode == 1
        assert "usbkit never overwrites files it did not write" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert (figs / "fig1_froc.png").read_bytes() == b"my own picture"
    assert not (tmp_path / "R").exists()


def test_report_figures_replace_only_files_an_earlier_figures_run_wrote(tmp_path, monkeypatch):
    from usbkit.report import builder

    def draw(index, dest):
        (dest / "fig1_froc.png").write_bytes(b"new")
        return ["fig1_froc.png"]

    monkeypatch.setattr(builder, "_draw_figures", draw)
    figs = tmp_path / "figs"
    builder.copy_figures(tmp_path / "index.html", figs)
    (figs / "scrubber.png").write_bytes(b"mine")
    with pytest.raises(UsbkitError, match="Add --overwrite"):
        builder.copy_figures(tmp_path / "index.html", figs)
    (figs / "fig1_froc.png").write_bytes(b"old")
    builder.copy_figures(tmp_path / "index.html", figs, overwrite=True)
    assert (figs / "fig1_froc.png").read_bytes() == b"new"
    assert (figs / "scrubber.png").read_bytes() == b"mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".figs.")]


def test_a_folder_that_appears_at_the_destination_during_the_run_is_never_replaced(tmp_path):
    out = tmp_path / "E"
    with pytest.raises(UsbkitError, match="changed while usbkit was running"):
        with output_dir(out, "evaluate") as tmp:
            (tmp / "results.json").write_text("{}")
            out.mkdir()  # the user starts a thesis draft there meanwhile
            (out / "thesis.tex").write_text("chapter 1")
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "chapter 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["E"]  # no leftovers, no lock


def test_an_earlier_output_changed_during_the_run_is_never_replaced(tmp_path):
    out = tmp_path / "E"
    with output_dir(out, "evaluate") as tmp:
        (tmp / "results.json").write_text("{}")
    with pytest.raises(UsbkitError, match="changed while usbkit was running"):
        with output_dir(out, "evaluate", overwrite=True) as tmp:
            (out / "draft.txt").write_text("added by the user meanwhile")
    assert (out / "draft.txt").exists() and (out / "results.json").exists()


def test_a_file_that_appears_at_the_destination_during_the_run_is_never_replaced(tmp_path):
    dest = tmp_path / "det.csv"
    with pytest.raises(UsbkitError, match="changed while usbkit was running"):
        with atomic_path(dest) as tmp:
            tmp.write_text("new")
            dest.write_text("the user's")
    assert dest.read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.csv"]


def test_a_second_run_on_a_locked_destination_is_refused_naming_the_first(tmp_path):
    root = one_clip_study(tmp_path / "s", "a,1,1,10,10,30,30\n")
    det = tmp_path / "det.csv"
    det.write_text(DET)
    out = tmp_path / "E"
    with destination_lock(out, "report"):
        r = _evaluate(root, det, out)
    assert r.returncode == 1
    assert f"process {os.getpid()}" in r.stderr and "usbkit report" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_two_runs_started_together_one_is_refused(tmp_path):
    """Two real processes on one output: exactly one succeeds, the other is refused (the
    lock is taken from the check to the swap, not only at the start)."""
    code = (
        "import sys, time\n"
        "from usbkit.safeio import output_dir\n"
        "from usbkit.errors import UsbkitError\n"
        "try:\n"
        "    with output_dir(sys.argv[1], 'report') as tmp:\n"
        "        (tmp / 'x').write_text(sys.argv[2]); time.sleep(1.5)\n"
        "except UsbkitError as e:\n"
        "    print(e); sys.exit(1)\n"
    )
    out = tmp_path / "R"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(out), str(k)], stdout=subprocess.PIPE,
                         text=True)
        for k in range(2)
    ]  # fmt: skip
    results = [(p.wait(), p.stdout.read()) for p in procs]
    assert sorted(c for c, _ in results) == [0, 1], results
    refused = [t for c, t in results if c == 1][0]
    assert "another run" in refused and "process" in refused


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run_and_said(tmp_path):
    """A run killed with SIGKILL leaves its hidden `.det.csv.PID@HOST.*.tmp`; the next run
    on that destination removes it (its process is gone) and says so in one line; a
    look-alike of a live process is left alone."""
    code = (
        "import sys, os, signal\n"
        "from usbkit.safeio import atomic_path, atomic_dir\n"
        "with atomic_dir(sys.argv[1] + '_dir'):\n"
        "    with atomic_path(sys.argv[1]) as tmp:\n"
        "        tmp.write_text('half')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    dest = tmp_path / "det.csv"
    p = subprocess.run([sys.executable, "-c", code, str(dest)])
    assert p.returncode == -9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith(".det.csv.") and n.endswith(".tmp") for n in left), left
    live = tmp_path / f".det.csv.{os.getpid()}@{'x'}.abcdefgh.tmp"
    live.write_text("someone else's")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_text(dest, "new")
        (tmp_path / "det.csv_dir").mkdir()
        with output_dir(tmp_path / "det.csv_dir", "x"):
            pass
    said = [str(w.message) for w in caught if issubclass(w.category, UsbkitWarning)]
    assert len(said) == 2 and all("removed 1 half-built leftover" in s for s in said), said
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["det.csv", "det.csv_dir", live.name]
    )
    assert json.loads("{}") == {}


def test_an_import_whose_source_lies_inside_the_output_it_replaces_is_refused(tmp_path):
    from test_faults_io import _coco

    from usbkit.io.formats import import_study

    src = _coco(tmp_path)
    out = tmp_path / "S"
    import_study("coco-vid", src, out)
    os.replace(src.parent, out / "coco")
    before = tree_hash(out)
    with pytest.raises(UsbkitError, match="lies inside this output folder"):
        import_study("coco-vid", out / "coco" / "ann.json", out, overwrite=True)
    assert tree_hash(out) == before


def test_an_export_keeps_its_study_lying_inside_the_earlier_export(tmp_path):
    from usbkit.io.formats.coco_vid import export_coco_vid

    out = tmp_path / "X"
    root = one_clip_study(tmp_path / "s", "a,1,1,10,10,30,30\n")
    export_coco_vid(root, out)
    os.replace(root, out / "my study")
    export_coco_vid(out / "my study", out, overwrite=True)
    assert (out / "my study" / "manifest.csv").exists()
    assert (out / "annotations.json").exists()
