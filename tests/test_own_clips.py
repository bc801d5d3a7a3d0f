"""Own clips, start to finish: a folder of unannotated clips (MP4 and DICOM) becomes a study,
the shipped detectors mark it, the viewer shows the marks at each model's shipped operating
threshold, and the report claims no sensitivity."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from conftest import run_cli


@pytest.fixture(scope="module")
def own_clips(tmp_path_factory):
    """A clinician's folder: two scans of one patient as MP4 and DICOM cine, one of another
    patient at the top level, and a note that is not a clip."""
    from usbkit.io.clip import ReaderSettings, open_clip
    from usbkit.io.encode import write_dicom_cine
    from usbkit.synth import preset_config, synthesize

    root = tmp_path_factory.mktemp("own")
    cfg = preset_config("quick", patients=2, seed=5)
    cfg = replace(
        cfg,
        sweep=replace(cfg.sweep, frames=(14, 16)),
        lesions=replace(cfg.lesions, normal_fraction=0.0),
    )
    synth = synthesize(root / "synth", config=cfg, progress=False)
    mp4s = sorted((synth / "clips").rglob("*.mp4"))
    src = root / "my clips"
    (src / "Mrs A").mkdir(parents=True)
    (src / "Mrs A" / "left breast.mp4").write_bytes(mp4s[0].read_bytes())
    frames = np.asarray(open_clip(mp4s[-1], ReaderSettings(crop=False, cache=False)).frames)
    write_dicom_cine(frames, src / "Mrs A" / "right breast.dcm", fps=20, patient_name="DOE^JANE")
    (src / "scan 3.mp4").write_bytes(mp4s[-1].read_bytes())
    (src / "notes.txt").write_text("patient notes")
    return root, src


def test_a_folder_of_clips_becomes_a_study_without_split_or_annotations(own_clips, tmp_path):
    from usbkit.io.study import load_study

    _, src = own_clips
    r = run_cli("import", "clips", src, tmp_path / "study")
    assert r.returncode == 0, r.stderr
    assert "usbkit import: warning: " in r.stderr and "notes.txt" in r.stderr
    study = load_study(tmp_path / "study")
    m = study.manifest.set_index("clip_id")
    assert sorted(m.index) == ["left_breast", "right_breast", "scan_3"]
    assert m.loc["left_breast", "patient_id"] == m.loc["right_breast", "patient_id"] == "Mrs_A"
    assert "split" not in study.manifest.columns and study.annotations.empty
    r = run_cli("check", tmp_path / "study")
    assert r.returncode == 0  # no annotations is no problem, and check says what it means
    assert "No lesion is annotated" in r.stdout and "docs/annotate.md" in r.stdout


def test_own_clips_detect_view_and_report_without_claiming_sensitivity(own_clips, tmp_path):
    from usbkit.report.steps import open_scrubber

    _, src = own_clips
    study = tmp_path / "study"
    assert run_cli("import", "clips", src, study).returncode == 0
    dets = {}
    for kind, name in (("frame", "single frame"), ("sequence", "sequence")):
        dets[name] = tmp_path / f"{kind}.csv"
        r = run_cli("detect", study, "--checkpoint", f"pretrained:{kind}", "--out", dets[name])
        assert r.returncode == 0, r.stderr
        info = json.loads((tmp_path / f"{kind}.csv.json").read_text())
        assert info["operating_point"]["fp_rate"] == 0.5 and info["operating_point"]["threshold"]

    scrubber = open_scrubber(study=study, detections=dets)
    assert sorted(scrubber.outcomes["clip_id"]) == ["left_breast", "right_breast", "scan_3"]
    shown = 0
    for cid in scrubber.outcomes["clip_id"]:
        scrubber.load(cid)
        for m in scrubber.viewer.clip["models"]:
            assert "operating point" in m["threshold_note"]
            shown += sum(s >= m["threshold"] for s in m["marks"]["score"])
    assert shown > 0  # marks are shown at the shipped thresholds, not hidden by a 1.0

    out = tmp_path / "report"
    r = run_cli("report", "--study", study, "--out", out, "--bootstrap", "20")
    assert r.returncode == 0, r.stderr[-3000:]
    index = (out / "index.html").read_text()
    assert "No lesion is annotated" in index and "<table" not in index
    assert "sensitivity at FP/scan" not in index and "McNemar" not in index
    assert not (out / "results" / "results.json").exists()
    assert "03_compare: not run" in index
    # a viewer page for every clip (they are the report here), listed with "not annotated"
    pages = sorted(p for p in (out / "scrubber").glob("*.html") if p.name != "index.html")
    assert [p.stem for p in pages] == ["left_breast", "right_breast", "scan_3"]
    listing = (out / "scrubber" / "index.html").read_text()
    assert listing.count("not annotated") == 3 and "scrubber/index.html" in index
    data = json.loads(re.search(r"const data = (\{.*?\});\n", pages[0].read_text(), re.S).group(1))
    models = data["clip"]["models"]
    # the detectors' marks at their checkpoints' operating points; the tracking arm has no
    # checkpoint, and its slider says so
    assert [m["name"] for m in models] == ["single frame", "single frame + tracking", "sequence"]
    assert all(
        "operating point" in m["threshold_note"] for m in models if "tracking" not in m["name"]
    )
    (tracking,) = [m for m in models if "tracking" in m["name"]]
    assert "no operating point known" in tracking["threshold_note"]  # not a silent 0.5
    # the listing gives each model's threshold with where it comes from, not the first's only
    assert "single frame + tracking ≥ 0.50: no operating point known" in listing
    assert listing.count("operating point (0.5 FP/scan") == 2
    assert data["clip"]["annotated"] is False  # marks shown, not called false positives
    # no DICOM patient name anywhere in what was written
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".html", ".json", ".csv", ".ipynb"):
            assert "DOE^JANE" not in f.read_text(errors="ignore"), f
