"""Importers (COCO-VID, CVAT video, BUSI, frame folders) and the COCO-VID exporter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import pattern_frames, run_cli, tree_hash
from PIL import Image

from usbkit.errors import UsbkitError
from usbkit.io.check import check_study
from usbkit.io.encode import write_video
from usbkit.io.formats import import_study
from usbkit.io.formats.busi import mask_boxes
from usbkit.io.formats.coco_vid import export_coco_vid
from usbkit.io.study import load_study


def _coco(tmp_path):
    src = tmp_path / "coco"
    frames = pattern_frames(n=3)
    images, anns = [], []
    for v, name in [(1, "vid_a"), (2, "vid_b")]:
        (src / name).mkdir(parents=True)
        for i in range(3):
            # frame_id order differs from file name order on purpose
            fid = [2, 0, 1][i]
            fname = f"{name}/img_{i}.png"
            Image.fromarray(frames[fid]).save(src / fname)
            images.append(
                {"id": len(images) + 1, "video_id": v, "frame_id": fid, "file_name": fname}
            )
    anns.append({"id": 1, "image_id": 2, "bbox": [5, 6, 10, 8], "instance_id": 7, "category_id": 1})
    anns.append({"id": 2, "image_id": 1, "bbox": [1, 2, 3, 4], "instance_id": 7, "category_id": 1})
    data = {
        "videos": [{"id": 1, "name": "vid_a"}, {"id": 2, "name": "vid_b"}],
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "malignant"}],
    }
    (src / "ann.json").write_text(json.dumps(data))
    return src / "ann.json", frames


def test_coco_vid_import_orders_frames_keeps_negatives_and_round_trips(tmp_path):
    from usbkit.io.clip import ReaderSettings, open_clip

    src, frames = _coco(tmp_path)
    out = import_study("coco-vid", src, tmp_path / "study")
    assert check_study(out, progress=False) == []
    study = load_study(out)
    assert study.clip_ids == ["vid_a", "vid_b"]
    ann = study.annotations
    assert ann[["frame", "lesion_id", "x0", "y0", "x1", "y1"]].values.tolist() == [
        [0, "7", 5.0, 6.0, 15.0, 14.0],
        [2, "7", 1.0, 2.0, 4.0, 6.0],
    ]
    assert study.manifest.set_index("clip_id").loc["vid_a", "pathology"] == "malignant"
    clip = open_clip(study.clip_path("vid_b"), ReaderSettings(crop=False))
    assert len(clip) == 3 and np.array_equal(np.asarray(clip.frames), frames)  # negatives kept

    js = export_coco_vid(out, tmp_path / "export")
    back = import_study("coco-vid", js, tmp_path / "again")
    a2 = load_study(back).annotations
    assert (
        a2[["clip_id", "frame", "x0", "y0", "x1", "y1"]].values.tolist()
        == ann[["clip_id", "frame", "x0", "y0", "x1", "y1"]].values.tolist()
    )


def test_coco_vid_errors_name_the_annotation(tmp_path):
    src, _ = _coco(tmp_path)
    data = json.loads(src.read_text())
    data["annotations"][1]["image_id"] = 999
    src.write_text(json.dumps(data))
    with pytest.raises(UsbkitError, match=r"annotations\[1\].*999"):
        import_study("coco-vid", src, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_cvat_video_interpolates_keyframes_and_honours_outside(tmp_path):
    src = tmp_path / "cvat"
    src.mkdir()
    write_video(pattern_frames(n=8), src / "scan.mp4", fps=10)
    (src / "annotations.xml").write_text("""<?xml version="1.0"?>
<annotations><version>1.1</version>
<meta><task><name>t</name><source>scan.mp4</source></task></meta>
<track id="0" label="mass">
  <box frame="1" outside="0" occluded="0" keyframe="1" xtl="10" ytl="10" xbr="20" ybr="20"/>
  <box frame="3" outside="0" occluded="1" keyframe="1" xtl="14" ytl="10" xbr="24" ybr="20"/>
  <box frame="4" outside="1" occluded="0" keyframe="1" xtl="14" ytl="10" xbr="24" ybr="20"/>
</track>
<track id="1" label="mass">
  <box frame="6" outside="0" occluded="0" keyframe="1" xtl="1" ytl="1" xbr="5" ybr="5"/>
</track>
</annotations>""")
    out = import_study("cvat-video", src, tmp_path / "s")
    assert check_study(out, progress=False) == []
    ann = load_study(out).annotations
    t0 = ann[ann.lesion_id == "0"]
    assert t0["frame"].tolist() == [1, 2, 3]  # 2 interpolated, 4 outside
    assert t0["x0"].tolist() == [10.0, 12.0, 14.0]
    assert ann[ann.lesion_id == "1"]["frame"].tolist() == [6]


def test_busi_one_box_per_connected_lesion_region(tmp_path):
    src = tmp_path / "busi"
    for cls in ("benign", "malignant", "normal"):
        (src / cls).mkdir(parents=True)
    img = (np.arange(40 * 50).reshape(40, 50) % 200).astype(np.uint8)
    Image.fromarray(img).save(src / "benign" / "benign (1).png")
    m0 = np.zeros((40, 50), np.uint8)
    m0[5:10, 5:15] = 255
    m0[30:35, 40:45] = 255  # second region in the same mask
    m1 = np.zeros((40, 50), np.uint8)
    m1[8:12, 12:20] = 255  # touches the first: merged
    Image.fromarray(m0).save(src / "benign" / "benign (1)_mask.png")
    Image.fromarray(m1).save(src / "benign" / "benign (1)_mask_1.png")
    Image.fromarray(img).save(src / "normal" / "normal (1).png")
    Image.fromarray(np.zeros_like(m0)).save(src / "normal" / "normal (1)_mask.png")
    out = import_study("busi", src, tmp_path / "s")
    study = load_study(out)
    assert sorted(study.manifest["pathology"]) == ["benign", "normal"]
    boxes = study.boxes("benign_benign_1")[["x0", "y0", "x1", "y1"]].values.tolist()
    assert boxes == [[5.0, 5.0, 20.0, 12.0], [40.0, 30.0, 45.0, 35.0]]
    assert study.boxes("normal_normal_1").empty
    assert check_study(out, progress=False) == []
    assert mask_boxes([np.zeros((4, 4))]) == []


def test_frame_folders_and_existing_output_is_never_touched(tmp_path):
    src = tmp_path / "src"
    for name in ("c1", "c2"):
        (src / name).mkdir(parents=True)
        for i, f in enumerate(pattern_frames(n=2)):
            Image.fromarray(f).save(src / name / f"{i}.png")
    out = import_study("frames", src, tmp_path / "s")
    assert load_study(out).clip_ids == ["c1", "c2"]
    before = tree_hash(out)
    r = run_cli("import", "frames", src, out)
    assert r.returncode == 1 and "already holds files" in r.stderr and "Traceback" not in r.stderr
    assert tree_hash(out) == before
