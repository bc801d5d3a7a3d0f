"""Fault suite of the io layer: hostile input ends in a clear error naming the file, row or
frame (or in the correct result), and no file the command did not create changes.

Classes (issue 12): ids and paths confined to the study; numbers range-checked before any
cast; media decoded whole or refused (truncated containers, 16-bit images, DICOM timing
tags, frame folders); importers validated at the door against the media; a frame cache that
heals and is never required.
"""

from __future__ import annotations

import errno
import json
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern_frames, run_cli, tree_hash, write_study
from PIL import Image

from usbkit.errors import UsbkitError
from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.encode import write_dicom_cine, write_frame_folder, write_gif, write_video
from usbkit.io.notices import UsbkitWarning

RAW = ReaderSettings(crop=False)
HEADER = "clip_id,frame,lesion_id,x0,y0,x1,y1\n"


def _clip_study(root: Path, manifest: str, annotations: str = HEADER, n: int = 6) -> Path:
    """A study with one good clip ``clips/a.gif`` (n frames of 64 x 48) and given tables."""
    (root / "clips").mkdir(parents=True)
    write_gif(pattern_frames(n=n), root / "clips/a.gif")
    return write_study(root, manifest, annotations)


def _check_fails(root: Path, *expected: str) -> str:
    """Run `usbkit check`; assert exit 1, an unchanged study, and that one problem line
    holds every expected fragment; return that line."""
    before = tree_hash(root)
    r = run_cli("check", root)
    lines = r.stderr.splitlines()
    assert r.returncode == 1, r.stderr
    assert lines[0] == f"{root}: {len(lines) - 2} problem(s) found:", r.stderr
    assert "Traceback" not in r.stderr
    hits = [ln for ln in lines[1:] if all(e in ln for e in expected)]
    assert hits, (expected, r.stderr)
    assert tree_hash(root) == before
    return hits[0]


def _error_line(r) -> str:
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return [ln for ln in r.stderr.splitlines() if ln.startswith("usbkit ")][0]


# -- 1. ids and paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    "clip_id,why",
    [
        ("../victim", "contains '/'"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains '\\'"),
        (".hidden", "starts with '.'"),
        ("..", "names a folder"),
        ("a\u202eb", "control characters (U+202E)"),
        ("a\x07b", "control characters (U+0007)"),
        ("x" * 201, "longer than 200 bytes"),
    ],
)
def test_a_clip_id_that_could_leave_a_folder_is_a_manifest_problem(tmp_path, clip_id, why):
    root = _clip_study(tmp_path / "s", f"clip_id,patient_id,path\n{clip_id},p1,clips/a.gif\n")
    line = _check_fails(root, "manifest.csv, row 2", "cannot be used", why)
    assert "Rename it" in line


@pytest.mark.parametrize(
    "path,why",
    [
        ("/etc/hostname", "absolute path"),
        ("C:\\clips\\a.gif", "absolute path"),
        ("../outside/a.gif", "leads outside the folder (through ..)"),
        ("clips/../../outside/a.gif", "leads outside the folder (through ..)"),
        ("linked/a.gif", "leads outside the folder (through a symbolic link)"),
        (".", "names the study folder itself"),
    ],
)
def test_a_media_path_that_leaves_the_study_is_a_manifest_problem(tmp_path, path, why):
    (tmp_path / "outside").mkdir()
    write_gif(pattern_frames(n=3), tmp_path / "outside/a.gif")
    root = _clip_study(tmp_path / "s", f"clip_id,patient_id,path\na,p1,{path}\n")
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    outside = tree_hash(tmp_path / "outside")
    _check_fails(root, "manifest.csv, row 2", f"path '{path}' cannot be used", why)
    assert tree_hash(tmp_path / "outside") == outside


def test_an_empty_manifest_is_a_problem_not_ok(tmp_path):
    root = _clip_study(tmp_path / "s", "clip_id,patient_id,path\n")
    _check_fails(root, "manifest.csv", "lists no clips")


def test_a_manifest_that_is_a_folder_is_an_error_not_a_traceback(tmp_path):
    root = tmp_path / "s"
    (root / "manifest.csv").mkdir(parents=True)
    (root / "annotations.csv").write_text(HEADER)
    _check_fails(root, "manifest.csv", "is a folder")


def test_ids_equal_after_unicode_normalisation_match(tmp_path):
    nfd, nfc = "cafe\u0301", "caf\u00e9"
    root = _clip_study(
        tmp_path / "s",
        f"clip_id,patient_id,path\n{nfd},{nfd},clips/a.gif\n",
        f"{HEADER}{nfc},1,1,10,10,20,20\n",
    )
    r = run_cli("check", root)
    assert r.returncode == 0, r.stderr
    assert "1 clips, 1 patients, 1 lesions" in r.stdout
    from usbkit.io.detections import load_detections
    from usbkit.io.study import load_study

    study = load_study(root)
    assert study.clip_ids == [nfc] and len(study.boxes(nfd)) == 1
    det = tmp_path / "det.csv"
    det.write_text(f"clip_id,frame,score,x0,y0,x1,y1\n{nfd},1,0.5,10,10,20,20\n", encoding="utf-8")
    assert load_detections(det, set(study.clip_ids))["clip_id"].tolist() == [nfc]


def test_ids_equal_after_normalisation_are_duplicates(tmp_path):
    root = _clip_study(
        tmp_path / "s",
        "clip_id,patient_id,path\ncafe\u0301,p1,clips/a.gif\ncaf\u00e9,p2,clips/a.gif\n",
    )
    _check_fails(root, "manifest.csv, row 3", "used twice (first on row 2)")


def test_export_never_writes_outside_its_output(tmp_path):
    root = _clip_study(tmp_path / "s", "clip_id,patient_id,path\n../victim,p1,clips/a.gif\n")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim/00000.png").write_bytes(b"the user's own file")
    before = tree_hash(tmp_path)
    r = run_cli("export", "coco-vid", root, tmp_path / "out")
    line = _error_line(r)
    assert line == "usbkit export: error: The study has problems (1 found):"
    assert "row 2: clip id '../victim' cannot be used" in r.stderr
    assert tree_hash(tmp_path) == before and not (tmp_path / "out").exists()


def test_export_folders_are_safe_and_unique_and_the_json_keeps_the_real_ids(tmp_path):
    from usbkit.io.formats import import_study
    from usbkit.io.formats.coco_vid import export_coco_vid

    root = _clip_study(
        tmp_path / "s",
        "clip_id,patient_id,path\nA 1,p1,clips/a.gif\na 1,p2,clips/a.gif\n",
        f"{HEADER}a 1,2,7,5,6,15,14\n",
    )
    js = export_coco_vid(root, tmp_path / "out")
    data = json.loads(js.read_text())
    assert [v["name"] for v in data["videos"]] == ["A 1", "a 1"]
    folders = {im["file_name"].split("/")[0] for im in data["images"]}
    assert folders == {"A_1", "a_1_2"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".usbkit-output.json",
        "A_1",
        "a_1_2",
        "annotations.json",
    ]
    back = import_study("coco-vid", js, tmp_path / "again")
    from usbkit.io.study import load_study

    assert load_study(back).annotations[["clip_id", "frame", "x0"]].values.tolist() == [
        ["a_1", 2, 5.0]
    ]


# -- 2. numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["1e20", "99999999999999999999", "-1", "1.5", "inf", "x", ""])
def test_a_frame_number_out_of_range_is_a_row_problem_not_an_overflow(tmp_path, frame):
    root = _clip_study(
        tmp_path / "s",
        "clip_id,patient_id,path\na,p1,clips/a.gif\n",
        f"{HEADER}a,1,1,10,10,20,20\na,{frame},1,10,10,20,20\n",
    )
    _check_fails(root, "annotations.csv, row 3", "not a frame number")


@pytest.mark.parametrize(
    "coords,expected",
    [("1e400,10,20,20", "missing or non-numeric"), ("1e9,10,2e9,20", "out of range")],
)
def test_a_coordinate_that_is_not_a_finite_sane_number_is_a_row_problem(tmp_path, coords, expected):
    root = _clip_study(
        tmp_path / "s",
        "clip_id,patient_id,path\na,p1,clips/a.gif\n",
        f"{HEADER}a,1,1,{coords}\n",
    )
    _check_fails(root, "annotations.csv, row 2", expected)


@pytest.mark.parametrize("fps", ["0", "-5", "nan", "inf", "1e9", "fast"])
def test_a_manifest_fps_that_is_not_a_sane_positive_number_is_a_row_problem(tmp_path, fps):
    root = _clip_study(tmp_path / "s", f"clip_id,patient_id,path,fps\na,p1,clips/a.gif,{fps}\n")
    _check_fails(root, "manifest.csv, row 2", f"fps '{fps}' is not a frame rate")


def test_a_detection_frame_of_1e20_is_a_row_problem(tmp_path):
    root = _clip_study(tmp_path / "s", "clip_id,patient_id,path\na,p1,clips/a.gif\n")
    det = tmp_path / "det.csv"
    det.write_text("clip_id,frame,score,x0,y0,x1,y1\na,1,0.9,1,1,5,5\na,1e20,0.5,1,1,5,5\n")
    before = tree_hash(tmp_path)
    r = run_cli("evaluate", root, "--detections", f"m={det}", "--out", tmp_path / "o")
    line = _error_line(r)
    assert "detections file has malformed rows" in line
    assert "det.csv, row 3: frame '1e20' is not a frame number" in r.stderr
    assert "usbkit check" not in r.stderr  # check does not read detections
    assert tree_hash(tmp_path) == before


# -- 3. decoding ------------------------------------------------------------------------


def _cut(path: Path, fraction: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


@pytest.mark.parametrize(
    "name,codec,options",
    [
        ("a.avi", "mjpeg", {"pix_fmt": "yuvj420p"}),
        ("a.mkv", "libx264", {}),
        ("a.mp4", "libx264", {}),
        ("a.mov", "libx264", {}),
    ],
)
def test_a_truncated_video_is_an_error_naming_the_last_good_frame(tmp_path, name, codec, options):
    root = tmp_path / "s"
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n=30), root / "clips" / name, fps=10, codec=codec, **options)
    _cut(root / "clips" / name)
    write_study(root, f"clip_id,patient_id,path\na,p1,clips/{name}\n", HEADER)
    line = _check_fails(root, "manifest.csv, row 2", "this clip is incomplete", "cut short")
    assert "frames 0 to " in line or "no frame could be decoded" in line


def test_a_video_whose_last_part_holds_frames_is_never_half_read(tmp_path):
    path = tmp_path / "a.mkv"
    write_video(pattern_frames(n=30), path, fps=10)
    _cut(path, 0.99)  # only the index at the end and perhaps one frame are lost
    with pytest.raises(UsbkitError, match="incomplete"):
        open_clip(path, RAW)


def test_a_truncated_gif_is_an_error(tmp_path):
    write_gif(pattern_frames(n=20), tmp_path / "a.gif")
    _cut(tmp_path / "a.gif")
    with pytest.raises(UsbkitError, match=r"a\.gif, frame \d+: this clip is incomplete"):
        open_clip(tmp_path / "a.gif", RAW)


def test_a_16_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    img = (np.arange(48 * 64).reshape(48, 64) * 7 + 1000).astype(np.uint16)
    Image.fromarray(img).save(tmp_path / "still.png")
    frame = np.asarray(open_clip(tmp_path / "still.png", RAW)[0])
    assert frame.min() == 0 and frame.max() == 255
    assert (frame == 255).mean() < 0.01
    expected = np.round((img - 1000.0) * 255 / (img.max() - 1000.0)).astype(np.uint8)
    assert np.array_equal(frame, expected)


def test_a_16_bit_tiff_frame_folder_is_scaled_by_the_clips_range(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    a = np.full((16, 16), 1000, np.uint16)
    a[0, 0] = 2000
    b = np.full((16, 16), 1000, np.uint16)
    b[0, 0] = 3000
    Image.fromarray(a).save(folder / "0.tif")
    Image.fromarray(b).save(folder / "1.tif")
    clip = open_clip(folder, RAW)
    assert clip[0][0, 0] == 128 and clip[1][0, 0] == 255 and clip[0][1, 1] == 0


def test_a_frame_folder_mixing_8_and_16_bit_frames_is_refused(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "0.png")
    Image.fromarray(np.zeros((16, 16), np.uint16)).save(folder / "1.png")
    with pytest.raises(UsbkitError, match=r"1\.png, frame 1: this frame has more than 8 bits"):
        open_clip(folder, RAW)


def test_a_file_the_reader_skips_in_a_frame_folder_is_refused_not_renumbered(tmp_path):
    root = tmp_path / "s"
    write_frame_folder(pattern_frames(n=3), root / "clips/a")
    Image.fromarray(pattern_frames(n=1)[0]).save(root / "clips/a/00001b.webp")
    write_study(root, "clip_id,patient_id,path\na,p1,clips/a\n", HEADER)
    _check_fails(root, "manifest.csv, row 2", "not PNG, JPEG, BMP or TIFF frames (00001b.webp)")


def test_a_frame_folder_with_mixed_sizes_is_refused(tmp_path):
    root = tmp_path / "s"
    write_frame_folder(pattern_frames(n=2), root / "clips/a")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / "clips/a/00002.png")
    write_study(root, "clip_id,patient_id,path\na,p1,clips/a\n", HEADER)
    _check_fails(root, "manifest.csv, row 2", "frame 2: frame size 20x20 differs")


def _dicom_with_frame_time(path: Path, text: bytes) -> Path:
    write_dicom_cine(pattern_frames(n=3), path, fps=1000 / 12.3457)
    data = path.read_bytes()
    assert data.count(b"12.3457") == 1
    path.write_bytes(data.replace(b"12.3457", text[:7].ljust(7)))
    return path


def test_a_dicom_frame_time_that_is_not_a_number_warns_naming_the_tag(tmp_path):
    path = _dicom_with_frame_time(tmp_path / "c.dcm", b"fast-is")
    with pytest.warns(
        UsbkitWarning, match=r"c\.dcm: DICOM tag FrameTime \(0018,1063\) is 'fast-is'"
    ):
        clip = open_clip(path, RAW)
    assert clip.fps == 30 and clip.fps_source == "default" and len(clip) == 3
    assert open_clip(path, RAW, fps=12.5).fps == 12.5  # the manifest's fps settles it


# -- 4. importers validate at the door --------------------------------------------------


def _coco(tmp_path: Path) -> Path:
    src = tmp_path / "coco"
    frames = pattern_frames(n=3)
    images = []
    for v, name in [(1, "vid_a"), (2, "vid_b")]:
        (src / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(frames[i]).save(src / f"{name}/{i}.png")
            images.append(
                {
                    "id": len(images) + 1,
                    "video_id": v,
                    "frame_id": i,
                    "file_name": f"{name}/{i}.png",
                }
            )
    data = {
        "videos": [{"id": 1, "name": "vid_a"}, {"id": 2, "name": "vid_b"}],
        "images": images,
        "annotations": [
            {"id": 1, "image_id": 2, "bbox": [5, 6, 10, 8], "instance_id": 7, "category_id": 1}
        ],
        "categories": [{"id": 1, "name": "malignant"}],
    }
    (src / "ann.json").write_text(json.dumps(data))
    return src / "ann.json"


def _top_level_42(d, src):
    return 42


def _video_without_id(d, src):
    del d["videos"][1]["id"]


def _bbox_of_strings(d, src):
    d["annotations"][0]["bbox"] = ["5", "6", "10", "8"]


def _image_without_file_name(d, src):
    del d["images"][3]["file_name"]


def _images_not_a_list(d, src):
    d["images"] = {"1": d["images"][0]}


def _image_id_twice(d, src):
    d["images"][4]["id"] = 2


def _frame_id_twice(d, src):
    d["images"][2]["frame_id"] = 1


def _webp_frame(d, src):
    Image.fromarray(pattern_frames(n=1)[0]).save(src.parent / "vid_a/1.webp")
    d["images"][1]["file_name"] = "vid_a/1.webp"


def _mixed_sizes(d, src):
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(src.parent / "vid_b/2.png")


def _box_outside(d, src):
    d["annotations"][0]["bbox"] = [60, 6, 10, 8]


def _unknown_video(d, src):
    d["images"][0]["video_id"] = 99


def _declared_size_differs(d, src):
    d["images"][0]["width"], d["images"][0]["height"] = 640, 480


def _negative_frame_id(d, src):
    d["images"][0]["frame_id"] = -3


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (_top_level_42, "the top level of the file is 42 (a number)"),
        (_video_without_id, "videos[1] has no 'id'"),
        (_bbox_of_strings, 'annotations[0].bbox[0] is "5" (text)'),
        (_image_without_file_name, "images[3] has no 'file_name'"),
        (_images_not_a_list, "images is an object, not a list"),
        (_image_id_twice, "images[4].id 2 is used twice (first at images[1])"),
        (_frame_id_twice, "images[2].frame_id 1 is used twice in video 1 (first at images[1])"),
        (_webp_frame, "images[1].file_name 'vid_a/1.webp' is a .webp file"),
        (_mixed_sizes, "images[5].file_name 'vid_b/2.png' is 30 x 30 pixels"),
        (_box_outside, "annotations[0]: box [60, 6, 70, 14] reaches outside the frame"),
        (_unknown_video, "images[0].video_id 99 is not the id of any entry in 'videos'"),
        (_declared_size_differs, "images[0].width is 640 but the file 'vid_a/0.png' is 64 x 48"),
        (_negative_frame_id, "images[0].frame_id is -3, not a frame number"),
    ],
)
def test_a_coco_vid_file_is_validated_at_the_door(tmp_path, mutate, expected):
    src = _coco(tmp_path)
    data = json.loads(src.read_text())
    data = mutate(data, src) or data
    src.write_text(json.dumps(data))
    before = tree_hash(src.parent)
    r = run_cli("import", "coco-vid", src, tmp_path / "s")
    line = _error_line(r)
    assert line.startswith(f"usbkit import: error: {src}: ") and expected in line, line
    assert tree_hash(src.parent) == before
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.*"))


def _busi(tmp_path: Path, mask_shape=(40, 50), with_image=True) -> Path:
    src = tmp_path / "busi"
    (src / "benign").mkdir(parents=True)
    if with_image:
        img = (np.arange(40 * 50).reshape(40, 50) % 200).astype(np.uint8)
        Image.fromarray(img).save(src / "benign/benign (1).png")
    mask = np.zeros(mask_shape, np.uint8)
    mask[5:15, 5:20] = 255
    Image.fromarray(mask).save(src / "benign/benign (1)_mask.png")
    return src


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        (
            {"mask_shape": (20, 25)},
            "benign (1)_mask.png: this mask is 25 x 20 pixels but its "
            "image benign (1).png is 50 x 40",
        ),
        ({"mask_shape": (80, 100)}, "this mask is 100 x 80 pixels but its image"),
        ({"with_image": False}, "1 mask(s) have no image beside them (benign (1)_mask.png)"),
    ],
)
def test_a_busi_mask_must_match_its_image(tmp_path, kwargs, expected):
    src = _busi(tmp_path, **kwargs)
    before = tree_hash(src)
    line = _error_line(run_cli("import", "busi", src, tmp_path / "s"))
    assert expected in line, line
    assert tree_hash(src) == before and not (tmp_path / "s").exists()


def _cvat(tmp_path: Path, boxes: str, source: str = "scan.mp4", size: int = 8) -> Path:
    src = tmp_path / "cvat"
    src.mkdir()
    write_video(pattern_frames(n=8), src / "scan.mp4", fps=10)
    meta = f"<source>{source}</source>" if source else ""
    (src / "annotations.xml").write_text(
        f'<?xml version="1.0"?><annotations><version>1.1</version><meta><task><name>t</name>'
        f"<size>{size}</size>{meta}</task></meta>"
        f'<track id="0" label="mass">{boxes}</track></annotations>'
    )
    return src


def _box(frame, outside=0):
    return f'<box frame="{frame}" outside="{outside}" occluded="0" xtl="10" ytl="10" xbr="20" ybr="20"/>'


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"boxes": _box(2) + _box(12)}, "track 0, frame 8: box on frame 8, past the end of clip"),
        ({"boxes": _box(-3) + _box(2)}, "track 0, box 0: frame '-3' is not a frame number"),
        ({"boxes": _box(1), "size": 20}, "declares 20 frames for clip 'scan', but its media has 8"),
        ({"boxes": _box(1), "source": "other.mp4"}, "the video 'other.mp4' named in the"),
    ],
)
def test_a_cvat_annotation_is_checked_against_its_video(tmp_path, kwargs, expected):
    src = _cvat(tmp_path, **kwargs)
    before = tree_hash(src)
    line = _error_line(run_cli("import", "cvat-video", src, tmp_path / "s"))
    assert expected in line, line
    assert tree_hash(src) == before and not (tmp_path / "s").exists()


def test_a_cvat_file_naming_no_video_uses_the_single_video_beside_it(tmp_path):
    from usbkit.io.formats import import_study
    from usbkit.io.study import load_study

    src = _cvat(tmp_path, _box(1), source="")
    study = load_study(import_study("cvat-video", src, tmp_path / "s"))
    assert study.clip_ids == ["scan"] and study.annotations["frame"].tolist() == [1]


@pytest.mark.parametrize("stage", ["copy", "decode", "tables", "swap"])
def test_a_failed_import_leaves_no_temporary_folder(tmp_path, monkeypatch, stage):
    import shutil

    import usbkit.io.formats.writer as writer
    import usbkit.safeio as safeio

    def boom(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    src = _coco(tmp_path)
    if stage == "copy":
        monkeypatch.setattr(writer.shutil, "copyfile", boom)
    elif stage == "decode":
        monkeypatch.setattr(
            writer.StudyWriter,
            "_check_media",
            lambda self: (_ for _ in ()).throw(KeyboardInterrupt),
        )
    elif stage == "tables":
        monkeypatch.setattr(writer, "write_study_tables", boom)
    else:
        real = os.replace
        monkeypatch.setattr(
            safeio.os, "replace", lambda a, b: boom() if Path(b).name == "s" else real(a, b)
        )
    from usbkit.io.formats import import_study

    with pytest.raises((UsbkitError, KeyboardInterrupt)):
        import_study("coco-vid", src, tmp_path / "s")
    monkeypatch.setattr(writer.shutil, "copyfile", shutil.copyfile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco"]


# -- 5. the frame cache heals -----------------------------------------------------------


@pytest.fixture
def cached(tmp_path):
    """A 6-frame clip opened once into a private cache; returns (path, entry, settings)."""
    path = tmp_path / "a.gif"
    write_gif(pattern_frames(n=6), path)
    settings = ReaderSettings(crop=False, cache_dir=str(tmp_path / "cache"))
    clip = open_clip(path, settings)
    return path, Path(clip.meta["cache_file"]).parent, settings


def _truncate_frames(entry):
    (entry / "frames.u8").write_bytes((entry / "frames.u8").read_bytes()[:1000])


def _garbage_meta(entry):
    (entry / "meta.json").write_bytes(b"\x00\xffnot json")


def _wrong_types(entry):
    meta = json.loads((entry / "meta.json").read_text())
    meta["n_frames"] = "six"
    (entry / "meta.json").write_text(json.dumps(meta))


def _garbage_frames(entry):
    size = (entry / "frames.u8").stat().st_size
    (entry / "frames.u8").write_bytes(os.urandom(size))


def _deleted_frames(entry):
    (entry / "frames.u8").unlink()


def _deleted_meta(entry):
    (entry / "meta.json").unlink()


@pytest.mark.parametrize(
    "damage,why",
    [
        (_truncate_frames, "frames.u8 has 1,000 bytes instead of 18,432"),
        (_garbage_meta, "meta.json cannot be read"),
        (_wrong_types, "meta.json has no valid frame count"),
        (_garbage_frames, "frames.u8 does not match its checksum"),
        (_deleted_frames, "frames.u8 is missing"),
        (_deleted_meta, "meta.json is missing"),
    ],
)
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(cached, damage, why):
    path, entry, settings = cached
    damage(entry)
    with pytest.warns(
        UsbkitWarning, match=f"a.gif: the frame cache entry of this clip was damaged \\({why}"
    ):
        clip = open_clip(path, settings)
    assert np.array_equal(np.asarray(clip.frames), pattern_frames(n=6))
    assert json.loads((entry / "meta.json").read_text())["n_frames"] == 6


def test_a_cache_file_deleted_while_in_use_is_rebuilt_not_reported_as_disk_full(cached):
    path, entry, settings = cached
    clip = open_clip(path, settings)
    (entry / "frames.u8").unlink()
    with pytest.warns(UsbkitWarning, match=r"damaged \(frames\.u8 is missing\); it is rebuilt"):
        frames = clip.read(np.arange(6))
    assert np.array_equal(frames, pattern_frames(n=6))


def test_a_forged_cache_entry_is_never_blamed_on_correct_annotations(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("USBKIT_CACHE", str(cache))
    root = _clip_study(
        tmp_path / "s",
        "clip_id,patient_id,path\na,p1,clips/a.gif\n",
        f"{HEADER}a,5,1,10,10,20,20\n",
    )
    assert run_cli("check", root).returncode == 0
    meta_file = next(cache.rglob("meta.json"))
    meta = json.loads(meta_file.read_text())
    two = (meta_file.parent / "frames.u8").read_bytes()[: 2 * 48 * 64]
    (meta_file.parent / "frames.u8").write_bytes(two)
    meta.update(n_frames=2, frames_crc32=zlib.crc32(two))
    meta_file.write_text(json.dumps(meta))  # a consistent forgery: sizes and checksum agree
    before = tree_hash(root)
    r = run_cli("check", root)
    assert r.returncode == 0, r.stderr
    assert "did not match the clip (2 frames of 64 x 48 cached, 6 frames" in r.stderr
    assert tree_hash(root) == before
    assert json.loads(meta_file.read_text())["n_frames"] == 6


def test_a_cache_folder_that_is_a_file_still_decodes_with_one_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("USBKIT_CACHE", str(blocker))
    root = _clip_study(tmp_path / "s", "clip_id,patient_id,path\na,p1,clips/a.gif\n")
    before = tree_hash(tmp_path)
    r = run_cli("check", root)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("cannot be used (it is a file, not a folder)") == 1
    assert "set USBKIT_CACHE to a folder you can write to" in r.stderr
    assert tree_hash(tmp_path) == before


@pytest.mark.parametrize(
    "failure,reason",
    [
        ("read-only", "it is read-only"),
        ("disk-full", "the disk holding it is full"),
    ],
)
def test_an_unwritable_cache_falls_back_to_decoding_with_one_warning(
    tmp_path, monkeypatch, failure, reason
):
    import usbkit.io.cache as cache

    if failure == "read-only":

        def refuse(*a, **k):
            raise PermissionError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(cache.tempfile, "mkdtemp", refuse)
    else:
        real_open = open

        class Full:
            def __init__(self, fh):
                self.fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

        def full_disk_open(p, mode="r", **k):
            fh = real_open(p, mode, **k)
            return Full(fh) if "w" in mode else fh

        monkeypatch.setattr(cache, "open", full_disk_open, raising=False)
    settings = ReaderSettings(crop=False, cache_dir=str(tmp_path / failure))
    clips = []
    for name in ("a.gif", "b.gif"):
        write_gif(pattern_frames(n=4), tmp_path / name)
    with pytest.warns(UsbkitWarning) as record:
        for name in ("a.gif", "b.gif"):
            clips.append(open_clip(tmp_path / name, settings))
    texts = [str(w.message) for w in record if issubclass(w.category, UsbkitWarning)]
    assert len(texts) == 1 and f"cannot be used ({reason})" in texts[0]
    assert all(np.array_equal(np.asarray(c.frames), pattern_frames(n=4)) for c in clips)
    assert not [p for p in (tmp_path / failure).rglob("*") if p.is_file()]


def test_a_12_bit_dicom_cine_is_scaled_by_the_range_of_the_whole_clip(tmp_path):
    import pydicom

    write_dicom_cine(pattern_frames(n=3), tmp_path / "c.dcm")
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    raw = pattern_frames(n=3).astype(np.uint16) * 16 + 100
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelData = raw.tobytes()
    ds.save_as(tmp_path / "c12.dcm")
    frames = np.asarray(open_clip(tmp_path / "c12.dcm", RAW).frames)
    lo, hi = float(raw.min()), float(raw.max())
    assert np.array_equal(frames, np.round((raw - lo) * 255 / (hi - lo)).astype(np.uint8))
