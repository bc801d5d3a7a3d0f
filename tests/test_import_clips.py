"""``usbkit import clips`` and ``usbkit check`` on what scanners and annotators hand over:
the same file name in every patient folder, an annotations.csv with several mistakes, and
lesions boxed on key frames only."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import pattern_frames, run_cli, write_study

from usbkit.io.encode import write_gif

N_FRAMES, H, W = 6, 48, 64


@pytest.fixture
def scanner_export(tmp_path):
    """Two patient folders that each hold ``cine1`` (as scanners name them) and ``cine2``,
    and one clip at the top level."""
    src = tmp_path / "export"
    for patient in ("P01", "P02"):
        (src / patient).mkdir(parents=True)
        for k, name in enumerate(("cine1", "cine2") if patient == "P01" else ("cine1",)):
            write_gif(pattern_frames(N_FRAMES, H, W) + k, src / patient / f"{name}.gif")
    write_gif(pattern_frames(N_FRAMES, H, W), src / "scan3.gif")
    return src


def test_same_file_name_in_two_patient_folders_becomes_patient_folder_then_name(
    scanner_export, tmp_path
):
    from usbkit.io.study import load_study

    r = run_cli("import", "clips", scanner_export, tmp_path / "study")
    assert r.returncode == 0, r.stderr
    m = load_study(tmp_path / "study").manifest.set_index("clip_id")
    assert sorted(m.index) == ["P01_cine1", "P02_cine1", "cine2", "scan3"]
    assert m.loc["P01_cine1", "patient_id"] == "P01" and m.loc["P02_cine1", "patient_id"] == "P02"
    said = [line for line in r.stdout.splitlines() if "patient folder" in line]
    assert len(said) == 1  # said in one line
    assert "P01/cine1.gif -> P01_cine1" in said[0] and "P02/cine1.gif -> P02_cine1" in said[0]


def test_bad_annotations_csv_lists_every_problem_in_one_run_each_with_its_row(
    scanner_export, tmp_path
):
    """Table mistakes and mistakes that need the media (a frame past the end, a box outside
    the frame) all come in the first run, each with its spreadsheet row."""
    (scanner_export / "annotations.csv").write_text(
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n"
        "scan3,0,1,10,10,20,20\n"  # row 2: fine
        "scan3,1,1,20,10,10,20\n"  # row 3: swapped box
        "scan3,9,1,10,10,20,20\n"  # row 4: frame past the end (6 frames)
        "cine2,0,1,10,10,200,20\n"  # row 5: outside the 64 x 48 frame
        "nosuch,0,1,10,10,20,20\n"  # row 6: no such clip
        "scan3,2,1,10,ten,20,20\n"  # row 7: not a number
    )
    r = run_cli("import", "clips", scanner_export, tmp_path / "study")
    assert r.returncode == 1
    assert "6 problem" not in r.stderr and "5 problem(s)" in r.stderr, r.stderr
    for row, what in (
        (3, "empty or swapped"),
        (4, "past the end of clip 'scan3'"),
        (5, "reaches outside clip 'cine2'"),
        (6, "'nosuch', which is not one of the clips in this folder"),
        (7, "non-numeric"),
    ):
        lines = [line for line in r.stderr.splitlines() if line.strip().startswith(f"- row {row}:")]
        assert len(lines) == 1 and what in lines[0], (row, r.stderr)
    assert "row 2:" not in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "study").exists()


def test_annotations_naming_a_clip_by_its_shared_file_name_say_which_ids_to_write(
    scanner_export, tmp_path
):
    """A clinician boxes 'cine1' as the file is called; with the patient folder in front of
    that id, the error says in one line which rows, and which ids to write instead."""
    rows = "".join(f"cine1,{f},1,10,10,20,20\n" for f in range(5))
    (scanner_export / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n" + rows)
    r = run_cli("import", "clips", scanner_export, tmp_path / "study")
    assert r.returncode == 1
    listed = [line for line in r.stderr.splitlines() if line.strip().startswith("- ")]
    assert listed == ["  - rows 2-6: annotation for clip 'cine1', which is not one of the clips "
                      "in this folder"], r.stderr  # fmt: skip
    assert "their ids are P01_cine1, P02_cine1: write those" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "study").exists()


KEY_FRAMES = "clip_id,frame,lesion_id,x0,y0,x1,y1\nscan3,0,1,10,10,20,20\nscan3,4,1,18,14,28,24\n"


def test_check_warns_when_a_lesions_boxes_skip_frames_naming_clip_lesion_and_gaps(tmp_path):
    src = tmp_path / "clips"
    src.mkdir()
    write_gif(pattern_frames(N_FRAMES, H, W), src / "c1.gif")
    study = write_study(
        tmp_path / "study",
        "clip_id,patient_id,path\nc1,p1,clips/c1.gif\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n"
        "c1,0,A,10,10,20,20\nc1,3,A,10,10,20,20\nc1,5,A,10,10,20,20\n"
        "c1,1,B,5,5,9,9\nc1,2,B,5,5,9,9\n",  # lesion B: every frame boxed
    )
    (study / "clips").mkdir()
    (study / "clips" / "c1.gif").write_bytes((src / "c1.gif").read_bytes())
    r = run_cli("check", study)
    assert r.returncode == 0, r.stderr  # a warning, not a problem
    warning = [line for line in r.stderr.splitlines() if "usbkit check: warning:" in line]
    assert len(warning) == 1
    assert "clip 'c1', lesion 'A': frames 1-2, 4 have no box" in warning[0]
    assert "lesion 'B'" not in warning[0] and "--interpolate" in warning[0]


def test_import_clips_interpolate_fills_key_frames_linearly(scanner_export, tmp_path):
    from usbkit.io.study import load_study

    (scanner_export / "annotations.csv").write_text(KEY_FRAMES)
    plain = run_cli("import", "clips", scanner_export, tmp_path / "plain")
    assert plain.returncode == 0 and "frames 1-3 have no box" in plain.stderr
    assert len(load_study(tmp_path / "plain").annotations) == 2  # kept as given

    r = run_cli("import", "clips", scanner_export, tmp_path / "filled", "--interpolate")
    assert r.returncode == 0, r.stderr
    assert "3 boxes filled in by interpolation" in r.stdout and "have no box" not in r.stderr
    ann = load_study(tmp_path / "filled").annotations.set_index("frame")
    assert list(ann.index) == [0, 1, 2, 3, 4]
    assert ann.loc[2, ["x0", "y0", "x1", "y1"]].tolist() == [14, 12, 24, 22]  # half way
    assert run_cli("check", tmp_path / "filled").stderr.count("warning") == 0


def test_interpolate_is_refused_for_formats_that_do_not_take_it(tmp_path):
    r = run_cli("import", "busi", tmp_path, tmp_path / "out", "--interpolate")
    assert r.returncode == 1 and "--interpolate is an option of the clips import" in r.stderr


def test_key_frame_filling_is_the_one_cvat_uses():
    """One interpolation: the clips import and the CVAT importer fill the same boxes."""
    import inspect

    from usbkit.io.formats import cvat
    from usbkit.io.keyframes import fill_key_frames, interpolate_between

    assert "interpolate_between" in inspect.getsource(cvat.parse_cvat_tracks)
    keys = pd.DataFrame(
        {"clip_id": "c", "frame": [2, 5], "lesion_id": "1", "x0": [0.0, 3.0], "y0": 0.0,
         "x1": [10.0, 13.0], "y1": 10.0, "label": ["benign", "malignant"]}
    )  # fmt: skip
    filled, added = fill_key_frames(keys)
    assert added == 2 and filled["frame"].tolist() == [2, 3, 4, 5]
    assert filled["x0"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert filled["label"].tolist() == ["benign", "benign", "benign", "malignant"]
    assert interpolate_between(2, [0, 0, 10, 10], 5, [3, 0, 13, 10])[0] == (3, [1, 0, 11, 10])
