"""The study format and `usbkit check`: every problem listed with file and row."""

from __future__ import annotations

import numpy as np
from conftest import pattern_frames, run_cli, tree_hash, write_study

from usbkit.io.check import check_study
from usbkit.io.encode import write_gif, write_video
from usbkit.io.study import load_study


def _good(root):
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n=5), root / "clips/a.mp4", fps=20)
    write_gif(pattern_frames(n=3), root / "clips/b.gif")
    return write_study(
        root,
        "clip_id,patient_id,path,pathology,split\n"
        "a,p1,clips/a.mp4,benign,train\n"
        "b,p2,clips/b.gif,normal,test\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\na,0,1,10,10,20,20\na,4,1,10.5,10,20,30.25\n",
    )


def test_a_good_study_loads_and_checks_clean(tmp_path):
    root = _good(tmp_path / "s")
    assert check_study(root, progress=False) == []
    study = load_study(root)
    assert study.clip_ids == ["a", "b"]
    assert study.annotations["frame"].tolist() == [0, 4]
    assert study.annotations["x0"].tolist() == [10.0, 10.5]
    r = run_cli("check", root)
    assert r.returncode == 0 and "2 clips, 2 patients, 1 lesions" in r.stdout


def test_check_lists_every_problem_with_file_and_row(tmp_path):
    root = tmp_path / "s"
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n=5), root / "clips/a.mp4", fps=20)
    (root / "clips/broken.mp4").write_bytes(b"not a video at all")
    write_study(
        root,
        "clip_id,patient_id,path,split\n"
        "a,p1,clips/a.mp4,train\n"  # row 2
        "a,p9,clips/a.mp4,train\n"  # row 3: duplicate clip id
        "m,p2,clips/missing.mp4,train\n"  # row 4: missing file
        "c,p2,clips/broken.mp4,test\n",  # row 5: unreadable; p2 in two splits
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n"
        "a,0,1,10,10,20,20\n"  # row 2 fine
        "a,1,1,30,10,20,20\n"  # row 3 swapped x
        "a,9,1,10,10,20,20\n"  # row 4 past the end (5 frames)
        "a,2,1,10,10,90,20\n"  # row 5 outside (width 64)
        "zzz,0,1,1,1,2,2\n"  # row 6 unknown clip
        "a,3,1,nan,1,2,2\n"  # row 7 NaN
        "a,0,1,10,10,20,20\n"  # row 8 duplicate row
        "a,3,2,-4,1,2,2\n",  # row 9 negative
    )
    before = tree_hash(root)
    problems = [str(p) for p in check_study(root, progress=False)]
    text = "\n".join(problems)
    expected = [
        ("manifest.csv, row 3", "used twice"),
        ("manifest.csv, row 4", "does not exist"),
        ("manifest.csv, row 5", "cannot be read"),
        ("manifest.csv, row 4", "more than one split"),
        ("annotations.csv, row 3", "x0 < x1"),
        ("annotations.csv, row 4", "past the end"),
        ("annotations.csv, row 5", "outside"),
        ("annotations.csv, row 6", "not in manifest"),
        ("annotations.csv, row 7", "missing or non-numeric"),
        ("annotations.csv, row 8", "second box"),
        ("annotations.csv, row 9", "negative"),
    ]
    for where, what in expected:
        assert any(where in p and what in p for p in problems), (where, what, text)
    r = run_cli("check", root)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "annotations.csv, row 5" in r.stderr
    assert tree_hash(root) == before


def test_missing_and_unknown_columns_and_missing_tables(tmp_path):
    root = write_study(tmp_path / "s", "clip_id,path,colour\na,x.mp4,red\n", "clip_id\n")
    problems = " ".join(str(p) for p in check_study(root, progress=False))
    assert "patient_id" in problems and "missing" in problems and "colour" in problems
    r = run_cli("check", tmp_path / "nowhere")
    assert r.returncode == 1 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    (root / "annotations.csv").unlink()
    (root / "manifest.csv").write_text("clip_id,patient_id,path\na,p,x.mp4\n")
    r = run_cli("check", root)
    assert r.returncode == 1 and "annotations.csv" in r.stderr


def test_split_is_by_patient_stratified_and_reproducible(tmp_path):
    import pandas as pd

    from usbkit.io.split import split_patients

    rng = np.random.default_rng(1)
    rows = []
    for p in range(60):
        path = ["normal", "benign", "malignant"][p % 3]
        for c in range(rng.integers(1, 4)):
            rows.append(
                {"clip_id": f"{p}_{c}", "patient_id": f"p{p}", "path": "x", "pathology": path}
            )
    m = pd.DataFrame(rows)
    a = split_patients(m, (0.6, 0.2, 0.2), seed=3)
    b = split_patients(m.sample(frac=1, random_state=0), (0.6, 0.2, 0.2), seed=3)
    assert (a.groupby("patient_id")["split"].nunique() == 1).all()
    assert a.set_index("clip_id")["split"].to_dict() == b.set_index("clip_id")["split"].to_dict()
    per = a.drop_duplicates("patient_id").groupby(["pathology", "split"]).size().unstack()
    assert (per["train"] == 12).all() and (per["val"] == 4).all() and (per["test"] == 4).all()
    c = split_patients(m, (0.6, 0.2, 0.2), seed=4)
    assert not a["split"].equals(c["split"])


def test_split_command_writes_the_manifest_and_refuses_to_resplit(tmp_path):
    root = _good(tmp_path / "s")
    r = run_cli("split", root)
    assert r.returncode == 1 and "already has a split" in r.stderr
    r = run_cli("split", root, "--force", "--fractions", "0.5,0,0.5")
    assert r.returncode == 0, r.stderr
    assert set(load_study(root).manifest["split"]) <= {"train", "test"}
