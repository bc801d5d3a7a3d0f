"""The annotate mode's Python side: lesions on key frames, edits, undo, saving safely, the
detector's drafts, CVAT export and import back (no browser)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from conftest import pattern_frames, run_cli

from usbkit.errors import UsbkitError
from usbkit.io.annotation_edit import (
    BACKUP_DIR,
    KEYFRAMES_FILE,
    AnnotationEditor,
    ClipAnnotation,
    keyframes_from_boxes,
    provenance_counts,
    read_keyframes,
)
from usbkit.io.encode import write_video
from usbkit.io.study import load_study

HEADER = "clip_id,frame,lesion_id,x0,y0,x1,y1\n"


def _study(root, n=30, h=48, w=64, rows=""):
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n, h, w), root / "clips" / "A.mp4", fps=10)
    write_video(pattern_frames(n, h, w), root / "clips" / "B.mp4", fps=10)
    (root / "manifest.csv").write_text(
        "clip_id,patient_id,path\nA,P1,clips/A.mp4\nB,P2,clips/B.mp4\n"
    )
    (root / "annotations.csv").write_text(HEADER + rows)
    return root


# ---------------------------------------------------------------------- the data model
def test_key_frames_interpolate_and_a_touched_box_becomes_a_key_frame():
    c = ClipAnnotation("A", n_frames=30, width=64, height=48)
    lid = c.draw(2, [10, 10, 20, 20])
    c.draw(6, [14, 10, 24, 20], lid)
    assert c.lesions[lid].box_at(4) == ([12.0, 10.0, 22.0, 20.0], "interpolated")
    assert c.lesions[lid].first == 2 and c.lesions[lid].last == 6
    c.set_box(lid, 3, [20, 20, 30, 30])
    assert c.lesions[lid].box_frames() == [2, 3, 6]
    assert c.lesions[lid].box_at(3) == ([20.0, 20.0, 30.0, 30.0], "drawn")
    assert c.undo() and c.lesions[lid].box_frames() == [2, 6]
    assert c.redo() and c.lesions[lid].box_frames() == [2, 3, 6]
    assert c.undo() and not c.lesions[lid].keys.get(3)
    # a new lesion takes the next id; a box is kept inside the frame and ordered
    other = c.draw(10, [70, 50, 40, 30])
    assert other == "2" and c.lesions[other].keys[10].box == (40.0, 30.0, 64.0, 48.0)
    with pytest.raises(UsbkitError, match="less than one pixel"):
        c.draw(10, [70, 50, 80, 60])  # all outside the frame
    with pytest.raises(UsbkitError, match="frame 30 is not a frame of clip 'A'"):
        c.draw(30, [1, 1, 5, 5])


def test_end_confirm_delete_label_and_rows():
    c = ClipAnnotation("A", n_frames=30, width=64, height=48)
    lid = c.draw(0, [0, 0, 10, 10])
    c.draw(10, [10, 0, 20, 10], lid)
    assert c.confirm(lid, 5) and c.lesions[lid].keys[5].source == "confirmed"
    assert not c.confirm(lid, 5)  # already a key frame confirmed
    c.end(lid, 8)  # out of view from frame 8 on; frame 7 keeps the box it had
    les = c.lesions[lid]
    assert les.last == 7 and les.keys[8].box is None  # ended: a later box brings it back
    assert les.box_at(7) == ([7.0, 0.0, 17.0, 10.0], "interpolated")
    with pytest.raises(UsbkitError, match="only be ended on a later frame"):
        c.end(lid, 0)
    # it comes back on frame 12: the rows skip 8-11
    c.draw(12, [12, 0, 22, 10], lid)
    assert [r["frame"] for r in c.rows()] == [0, 1, 2, 3, 4, 5, 6, 7, 12]
    c.set_label(lid, "malignant")
    assert {r["label"] for r in c.rows()} == {"malignant"}
    c.delete_key(lid, 12)
    assert c.lesions[lid].last == 7 and c.lesions[lid].keys[8].box is None  # still ended
    c.delete_key(lid, 8)  # not ended any more: a box drawn later continues it
    c.draw(9, [9, 0, 19, 10], lid)
    assert c.lesions[lid].box_at(8)[1] == "interpolated"
    c.undo()
    c.undo()
    c.delete_lesion(lid)
    assert c.lesions == {}
    assert c.undo() and lid in c.lesions


def test_key_frames_found_in_per_frame_boxes():
    frames = list(range(10)) + [15, 16]
    boxes = [[i, 0, 10 + i, 10] for i in range(5)] + [[4, i, 14, 10 + i] for i in range(1, 6)]
    boxes += [[0, 0, 5, 5], [1, 1, 6, 6]]
    keys = keyframes_from_boxes(frames, boxes)
    assert [f for f, _ in keys] == [0, 4, 9, 10, 15, 16]
    assert keys[3][1] is None  # the stretch out of view


def test_accepting_a_draft_keeps_few_key_frames_that_reproduce_it():
    c = ClipAnnotation("A", n_frames=40, width=64, height=48)
    frames = np.array([3, 4, 5, 7, 8, 9, 10])  # the track skips frame 6
    boxes = np.array([[10 + f, 10, 20 + f, 20] for f in frames], float)
    boxes[1] += 0.5  # detector jitter under the tolerance
    lid = c.accept_draft(frames, boxes)
    les = c.lesions[lid]
    assert les.box_frames() == [3, 10] and {k.source for k in les.keys.values()} == {"accepted"}
    assert les.first == 3 and les.last == 10 and les.box_at(6)[1] == "interpolated"


# ---------------------------------------------------------------------- saving
def _draw_two(editor):
    a = editor.clip("A", n_frames=30, width=64, height=48)
    lid = a.draw(2, [10, 10, 20, 20])
    a.draw(6, [14, 10, 24, 20], lid)
    return a, lid


def test_save_writes_every_frame_and_the_key_frames_and_reopens_the_same(tmp_path):
    root = _study(tmp_path / "s", rows="B,4,7,1,1,9,9\nB,5,7,2,1,10,9\n")
    before_b = [ln for ln in (root / "annotations.csv").read_text().splitlines()[1:]]
    ed = AnnotationEditor(root)
    a, lid = _draw_two(ed)
    assert ed.changed and ed.changed_clips == ["A"]
    ed.save()
    assert not ed.changed
    study = load_study(root)
    rows = study.boxes("A")
    assert rows["frame"].tolist() == [2, 3, 4, 5, 6]
    assert rows[["x0", "x1"]].to_numpy().tolist()[2] == [12.0, 22.0]
    # the clip not edited keeps its rows as they were
    text = (root / "annotations.csv").read_text().splitlines()
    assert [ln for ln in text if ln.startswith("B,")] == before_b
    keys = read_keyframes(root / KEYFRAMES_FILE)
    assert keys.loc[keys.clip_id == "A", "frame"].tolist() == [2, 6]
    assert set(keys.loc[keys.clip_id == "A", "source"]) == {"drawn"}
    # reopening gives the same key frames and sources
    again = AnnotationEditor(root).clip("A", n_frames=30, width=64, height=48)
    assert again.state()["lesions"] == a.state()["lesions"]
    assert again.lesions[lid].keys[2].source == "drawn"
    # provenance: two key frames drawn, three interpolated; clip B's boxes imported
    counts = AnnotationEditor(root).provenance()
    assert counts["drawn"] == 2 and counts["interpolated"] == 3 and counts["unknown"] == 2
    # `usbkit check` accepts the result
    r = run_cli("check", root)
    assert r.returncode == 0, r.stderr
    assert "7 boxes" in r.stdout
    assert "2 drawn or confirmed by a person" in r.stdout and "3 interpolated" in r.stdout


def test_second_save_keeps_a_dated_backup(tmp_path):
    root = _study(tmp_path / "s")
    ed = AnnotationEditor(root)
    _draw_two(ed)
    ed.save()
    first = (root / "annotations.csv").read_bytes()
    ed.clips["A"].draw(20, [1, 1, 9, 9])
    ed.save()
    backups = sorted((root / BACKUP_DIR).glob("annotations.*.csv"))
    assert ed.last_backup in backups and ed.last_backup.read_bytes() == first
    assert any(p.name.startswith("annotation_keyframes.") for p in (root / BACKUP_DIR).iterdir())


def test_save_over_a_file_changed_on_disk_is_refused_and_the_edits_kept(tmp_path):
    root = _study(tmp_path / "s")
    ed = AnnotationEditor(root)
    _draw_two(ed)
    theirs = HEADER + "B,1,1,1,1,9,9\n"
    time.sleep(0.01)
    (root / "annotations.csv").write_text(theirs)  # another window saved meanwhile
    with pytest.raises(UsbkitError) as err:
        ed.save()
    msg = str(err.value)
    assert "annotations.csv" in msg and "changed on disk after the viewer opened it" in msg
    assert "reload" in msg and "force" in msg
    assert (root / "annotations.csv").read_text() == theirs  # left as it is
    copies = list((root / BACKUP_DIR).glob("annotations.unsaved.*.csv"))
    assert len(copies) == 1 and str(copies[0]) in msg
    assert "A,4,1,12,10,22,20" in copies[0].read_text()  # nothing of the edits is lost
    assert ed.changed  # still unsaved in the viewer
    ed.save(force=True)
    assert load_study(root).boxes("A")["frame"].tolist() == [2, 3, 4, 5, 6]
    assert any(p.read_text() == theirs for p in (root / BACKUP_DIR).glob("annotations.2*.csv"))
    ed.reload()
    assert not ed.changed


def test_interrupted_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    import usbkit.io.annotation_edit as ae

    root = _study(tmp_path / "s", rows="A,1,1,1,1,9,9\n")
    old = (root / "annotations.csv").read_bytes()
    ed = AnnotationEditor(root)
    _draw_two(ed)

    def half_then_interrupt(path, data):
        path.write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(ae, "write_annotation_bytes", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ed.save()
    assert (root / "annotations.csv").read_bytes() == old
    assert not [p for p in root.iterdir() if p.name.startswith(".annotations.csv")]
    assert ed.changed  # the edits are not lost
    # the key-frame file was written first; it no longer matches annotations.csv, so opening
    # again finds the key frames in annotations.csv (the file of record)
    again = AnnotationEditor(root)
    c = again.clip("A")
    assert list(c.lesions) == ["1"] and c.lesions["1"].keys[1].source == "imported"
    assert again.notes and "annotations.csv has no box of it" in again.notes[0]
    monkeypatch.undo()
    ed.save(force=True)
    assert load_study(root).boxes("A")["frame"].tolist() == [1, 2, 3, 4, 5, 6]


def test_key_frames_of_boxes_changed_by_hand_are_found_again(tmp_path):
    root = _study(tmp_path / "s")
    ed = AnnotationEditor(root)
    _draw_two(ed)
    ed.save()
    text = (root / "annotations.csv").read_text().replace("A,4,1,12,", "A,4,1,13,")
    (root / "annotations.csv").write_text(text)  # edited in a spreadsheet
    again = AnnotationEditor(root)
    les = again.clip("A").lesions["1"]
    assert les.box_at(4)[0][0] == 13 and {k.source for k in les.keys.values()} == {"imported"}
    assert "changed outside the viewer" in again.notes[0]


def test_saving_a_300_frame_clip_with_3_lesions_takes_under_a_second(tmp_path):
    root = _study(tmp_path / "s", n=2)
    ed = AnnotationEditor(root)
    c = ed.clip("A", n_frames=300, width=640, height=480)
    for k in range(3):
        lid = c.draw(0, [10 + k * 100, 10, 60 + k * 100, 60])
        for f in range(30, 300, 30):
            c.draw(f, [10 + k * 100 + f / 10, 10, 60 + k * 100 + f / 10, 60], lid)
    t0 = time.perf_counter()
    ed.save()
    took = time.perf_counter() - t0
    assert len(pd.read_csv(root / "annotations.csv")) == 3 * 271
    assert took < 1.0, took


def test_provenance_counts_sources():
    ann = pd.DataFrame({"clip_id": ["A"] * 4, "lesion_id": ["1", "1", "1", "2"],
                        "frame": [0, 1, 2, 0]})  # fmt: skip
    keys = pd.DataFrame({"clip_id": ["A", "A"], "lesion_id": ["1", "1"], "frame": [0, 2],
                         "outside": [0, 0], "source": ["drawn", "accepted"]})  # fmt: skip
    c = provenance_counts(ann, keys)
    assert (c["drawn"], c["accepted"], c["interpolated"], c["unknown"]) == (1, 1, 1, 1)


# ---------------------------------------------------------------------- drafts
def test_drafts_link_marks_hide_rejected_and_annotated_ones():
    from usbkit.evaluation.proposals import propose_drafts

    rows = [(f, 0.9 - 0.01 * f, 10 + f, 10, 30 + f, 30) for f in range(10)]
    rows += [(f, 0.4, 40, 5, 50, 15) for f in range(3, 8)]  # a weaker track
    rows += [(20, 0.95, 1, 1, 5, 5)]  # one frame only: not a draft
    det = pd.DataFrame(rows, columns=["frame", "score", "x0", "y0", "x1", "y1"])
    drafts = propose_drafts(det, threshold=0.5)
    assert [d.frames.tolist() for d in drafts] == [list(range(10))]
    both = propose_drafts(det, threshold=0.3)
    assert len(both) == 2
    key = drafts[0].key
    assert propose_drafts(det, threshold=0.3, rejected={key})[0].frames.tolist() == [3, 4, 5, 6, 7]
    annotated = {"1": {f: [10 + f, 10, 30 + f, 30] for f in range(10)}}
    assert len(propose_drafts(det, threshold=0.3, lesions=annotated)) == 1


# ---------------------------------------------------------------------- CVAT
def _same_boxes(a: pd.DataFrame, b: pd.DataFrame):
    cols = ["frame", "lesion_id", "x0", "y0", "x1", "y1"]
    a = a[cols].sort_values(["lesion_id", "frame"]).reset_index(drop=True)
    b = b[cols].sort_values(["lesion_id", "frame"]).reset_index(drop=True)
    assert a[["frame", "lesion_id"]].equals(b[["frame", "lesion_id"]])
    np.testing.assert_allclose(a[cols[2:]].to_numpy(float), b[cols[2:]].to_numpy(float),
                               atol=1e-3)  # fmt: skip


def test_cvat_export_then_import_gives_the_same_boxes_and_key_frames(tmp_path):
    from usbkit.io.formats import import_study
    from usbkit.io.formats.cvat import export_cvat_video

    root = _study(tmp_path / "s")
    ed = AnnotationEditor(root)
    a, lid = _draw_two(ed)
    a.end(lid, 5)
    a.draw(9, [30, 20, 40, 30], lid)  # back in view
    a.draw(12, [33, 21, 43, 31], lid)
    other = a.draw(20, [1, 1, 11, 11])
    a.set_label(other, "benign")
    ed.save()
    out = export_cvat_video(root, tmp_path / "cvat")
    xml = ET.parse(out / "A" / "annotations.xml").getroot()
    assert xml.findtext("version") == "1.1" and xml.findtext("meta/task/size") == "30"
    track = xml.find("track")
    outside = [b.get("frame") for b in track.iter("box") if b.get("outside") == "1"]
    assert outside == ["5", "13"]
    back = import_study("cvat-video", out / "A", tmp_path / "back")
    _same_boxes(load_study(root).boxes("A"), load_study(back).boxes("A"))
    keys = read_keyframes(back / KEYFRAMES_FILE)
    mine = read_keyframes(root / KEYFRAMES_FILE)
    mine = mine.loc[mine.clip_id == "A"]
    assert sorted(zip(keys.lesion_id, keys.frame, keys.outside)) == sorted(
        zip(mine.lesion_id, mine.frame, mine.outside)
    )
    labels = load_study(back).boxes("A").groupby("lesion_id")["label"].first().to_dict()
    assert labels == {"1": "lesion", "2": "benign"}
    # and the same again through the command line, for the study without a key-frame file
    (root / KEYFRAMES_FILE).unlink()
    r = run_cli("export", "cvat-video", root, tmp_path / "cvat2")
    assert r.returncode == 0, r.stderr
    back2 = import_study("cvat-video", tmp_path / "cvat2" / "A", tmp_path / "back2")
    _same_boxes(load_study(root).boxes("A"), load_study(back2).boxes("A"))


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><size>30</size><original_size><width>64</width><height>48</height></original_size>
<source>A.mp4</source></task></meta>
<track id="3" label="malignant">
 <box frame="1" keyframe="1" outside="0" occluded="0" xtl="2" ytl="2" xbr="12" ybr="12"/>
 <box frame="7" keyframe="1" outside="0" occluded="0" xtl="8.5" ytl="2" xbr="18.5" ybr="14"/>
 <box frame="10" keyframe="1" outside="1" occluded="0" xtl="8.5" ytl="2" xbr="18.5" ybr="14"/>
 <box frame="15" keyframe="1" outside="0" occluded="0" xtl="20" ytl="20" xbr="30" ybr="30"/>
 <box frame="17" keyframe="1" outside="0" occluded="0" xtl="22" ytl="20" xbr="32" ybr="30"/>
</track>
</annotations>
"""


def test_cvat_import_export_import_is_lossless(tmp_path):
    from usbkit.io.formats import import_study
    from usbkit.io.formats.cvat import export_cvat_video

    src = tmp_path / "cvat"
    src.mkdir()
    write_video(pattern_frames(30, 48, 64), src / "A.mp4", fps=10)
    (src / "annotations.xml").write_text(CVAT_XML)
    first = import_study("cvat-video", src, tmp_path / "one")
    ann = load_study(first).boxes("A")
    assert ann["frame"].tolist() == list(range(1, 10)) + [15, 16, 17]  # held to the outside
    exported = export_cvat_video(first, tmp_path / "exp")
    second = import_study("cvat-video", exported / "A", tmp_path / "two")
    _same_boxes(ann, load_study(second).boxes("A"))
    k1, k2 = read_keyframes(first / KEYFRAMES_FILE), read_keyframes(second / KEYFRAMES_FILE)
    assert k1.drop(columns="clip_id").equals(k2.drop(columns="clip_id"))
    # the editor resumes on the imported key frames
    c = AnnotationEditor(second).clip("A")
    assert c.lesions["3"].box_frames() == [1, 7, 15, 17] and c.lesions["3"].keys[10].box is None


def test_practice_path_of_the_scrub_notebook(tiny_cohort, tmp_path):
    """import clips -> propose -> correct -> save -> evaluate, as the scrub notebook shows it."""
    import shutil

    from usbkit.report.steps import practice_outcome, practice_study
    from usbkit.viewer.annotate import AnnotateSession
    from usbkit.viewer.clipview import ClipView

    run = tmp_path / "run"
    shutil.copytree(tiny_cohort, run)
    practice = practice_study(run)
    study = load_study(practice)
    assert len(study.manifest) == 2 and not study.has_lesions()
    assert "No lesion is saved" in practice_outcome(practice).data
    session = AnnotateSession(practice, propose="pretrained:sequence", threshold=0.3)
    for cid in study.clip_ids:
        p = session.open(ClipView(study, cid, {}))
        p = session.handle({"op": "propose", "threshold": 0.3})
        for d in p["drafts"][:1]:
            p = session.handle({"op": "accept", "key": d["key"]})
        lid = p["lesions"][0]["id"] if p["lesions"] else None
        if lid is not None:  # corrected: one box moved by a person
            k = p["lesions"][0]["keys"][0]
            session.handle({"op": "set", "lesion": lid, "frame": k[0],
                            "box": [k[1] + 1, k[2], k[3] + 1, k[4]]})  # fmt: skip
    assert session.handle({"op": "save"})["message"].startswith("saved")
    assert practice_study(run) == practice  # kept, with the work saved in it
    text = practice_outcome(practice, n_boot=20).data
    assert "Ground truth:" in text and "drawn or confirmed by a person" in text
