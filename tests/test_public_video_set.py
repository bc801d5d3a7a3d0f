"""The public breast-ultrasound video set, in miniature: one COCO-VID file per split.

The set ships ``rawframes/{benign,malignant}/<video>/000000.png ...`` with ``train.json``
and ``val.json`` (``imagenet_vid_train_15frames.json``, ``imagenet_vid_val.json``) whose
``file_name``s are relative to ``rawframes/``; each file numbers its own videos and images
from 1; boxes are [x, y, w, h] with an ``instance_id`` per lesion; frames without boxes are
negatives. The miniature below has that shape: 2 benign and 2 malignant videos of 4 frames,
3 videos in train.json and 1 in val.json.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import pattern_frames, tree_hash
from PIL import Image

from usbkit.errors import UsbkitError, UsbkitWarning
from usbkit.io.check import check_study
from usbkit.io.formats import import_study
from usbkit.io.formats.coco_vid import export_coco_vid
from usbkit.io.study import load_study

CATEGORIES = [{"id": 1, "name": "benign"}, {"id": 2, "name": "malignant"}]
CATEGORY = {"benign": 1, "malignant": 2}

#: video -> (class folder, {frame: [(instance_id, [x, y, w, h]), ...]}); frames not listed
#: carry no box (negatives).
VIDEOS = {
    "x1a2b3c4": ("benign", {0: [(1, [10, 8, 12, 10])], 1: [(1, [11, 8, 12, 10])]}),
    "x5d6e7f8": (
        "malignant",
        {1: [(2, [20, 10, 15, 12]), (3, [2, 30, 6, 6])], 2: [(2, [21, 11, 15, 12])]},
    ),
    "x9a0b1c2": ("benign", {}),  # a lesion-free video: every frame is a negative
    "xd3e4f5a": ("malignant", {0: [(1, [30, 20, 10.5, 8])], 3: [(1, [31, 21, 10, 8])]}),
}
TRAIN = ["x1a2b3c4", "x5d6e7f8", "x9a0b1c2"]
VAL = ["xd3e4f5a"]
N_FRAMES = 4


def _frames(k: int) -> np.ndarray:
    """Four 48 x 64 frames, different in every video (video k)."""
    return ((pattern_frames(n=N_FRAMES).astype(int) + 17 * (k + 1)) % 256).astype(np.uint8)


def _coco_file(names: list[str], folder: dict[str, str] | None = None) -> dict:
    """A COCO-VID file of ``names`` as the set writes it: ids from 1, paths in rawframes/."""
    videos, images, annotations = [], [], []
    for vid, name in enumerate(names, start=1):
        cls, boxes = VIDEOS[name]
        videos.append({"id": vid, "name": name})
        for i in range(N_FRAMES):
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "video_id": vid,
                    "frame_id": i,
                    "file_name": f"{(folder or {}).get(name, cls)}/{name}/{i:06d}.png",
                    "width": 64,
                    "height": 48,
                    "is_vid_train_frame": True,
                }
            )
            for instance, bbox in boxes.get(i, []):
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "video_id": vid,
                        "image_id": image_id,
                        "category_id": CATEGORY[cls],
                        "instance_id": instance,
                        "bbox": bbox,
                        "area": bbox[2] * bbox[3],
                        "iscrowd": False,
                        "occluded": False,
                        "generated": False,
                    }
                )
    return {
        "categories": CATEGORIES,
        "videos": videos,
        "images": images,
        "annotations": annotations,
    }


def _dataset(tmp_path: Path) -> Path:
    """``DATASET/rawframes/<class>/<video>/00000k.png``, ``train.json`` and ``val.json``."""
    root = tmp_path / "BUV"
    for k, (name, (cls, _boxes)) in enumerate(VIDEOS.items()):
        (root / "rawframes" / cls / name).mkdir(parents=True)
        for i, frame in enumerate(_frames(k)):
            Image.fromarray(frame).save(root / "rawframes" / cls / name / f"{i:06d}.png")
    _write(root / "train.json", _coco_file(TRAIN))
    _write(root / "val.json", _coco_file(VAL))
    return root


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


def _import(root: Path, out: Path, **kwargs) -> Path:
    files = {"train": root / "train.json", "test": root / "val.json"}
    return import_study("coco-vid", root, out, split_files=kwargs.pop("files", files), **kwargs)


def _expected_boxes() -> list[list]:
    rows = []
    for name, (_cls, boxes) in VIDEOS.items():
        for frame, marks in boxes.items():
            for instance, (x, y, w, h) in marks:
                rows.append([name, frame, str(instance), x, y, x + w, y + h])
    return sorted(rows)


def _boxes(study, lesions: bool = True) -> list[list]:
    cols = ["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"]
    if not lesions:
        cols.remove("lesion_id")
    return sorted(study.annotations[cols].values.tolist())


def _lesions(study) -> set:
    """Each lesion as the set of its (clip, frame, box): lesion ids themselves left out."""
    ann = study.annotations
    return {
        frozenset(map(tuple, g[["clip_id", "frame", "x0", "y0", "x1", "y1"]].values.tolist()))
        for _key, g in ann.groupby(["clip_id", "lesion_id"])
    }


# -- the set imports ------------------------------------------------------------------------


def test_one_file_per_split_becomes_one_study_with_each_files_split(tmp_path):
    from usbkit.io.clip import ReaderSettings, open_clip

    root = _dataset(tmp_path)
    before = tree_hash(root)
    out = _import(root, tmp_path / "study")
    assert check_study(out, progress=False) == []
    assert tree_hash(root) == before
    study = load_study(out)
    m = study.manifest.set_index("clip_id")
    assert sorted(study.clip_ids) == sorted(VIDEOS)
    assert m["split"].to_dict() == {
        "x1a2b3c4": "train",
        "x5d6e7f8": "train",
        "x9a0b1c2": "train",
        "xd3e4f5a": "test",
    }
    assert m["pathology"].to_dict() == {name: cls for name, (cls, _b) in VIDEOS.items()}
    assert m["patient_id"].to_dict() == {name: name for name in VIDEOS}  # no patient ids
    assert _boxes(study) == _expected_boxes()  # every box, lesion ids from instance_id
    for k, name in enumerate(VIDEOS):  # every frame kept, negatives included, in order
        clip = open_clip(study.clip_path(name), ReaderSettings(crop=False))
        assert len(clip) == N_FRAMES and np.array_equal(np.asarray(clip.frames), _frames(k))
    assert study.boxes("x9a0b1c2").empty  # the lesion-free video is a lesion-free scan
    assert sorted(study.boxes("x1a2b3c4")["frame"]) == [0, 1]  # frames 2, 3 negatives


def test_the_study_round_trips_through_the_coco_vid_export(tmp_path):
    root = _dataset(tmp_path)
    study = load_study(_import(root, tmp_path / "study"))
    js = export_coco_vid(study.root, tmp_path / "export")
    back = load_study(import_study("coco-vid", js, tmp_path / "again"))
    assert _boxes(study) == _expected_boxes()
    # the export numbers lesions anew (instance_id): the same boxes, the same lesions
    assert _boxes(back, lesions=False) == _boxes(study, lesions=False)
    assert _lesions(back) == _lesions(study)
    assert back.manifest.set_index("clip_id")["pathology"].to_dict() == (
        study.manifest.set_index("clip_id")["pathology"].to_dict()
    )


def test_frame_paths_may_be_relative_to_the_dataset_folder_and_names_may_be_missing(tmp_path):
    """file_names 'rawframes/benign/V/000000.png', videos without a name: each video is
    named after its frame folder, so the two files' video ids 1 never collide."""
    root = _dataset(tmp_path)
    for name in ("train.json", "val.json"):
        data = json.loads((root / name).read_text())
        for im in data["images"]:
            im["file_name"] = "rawframes/" + im["file_name"]
        for v in data["videos"]:
            del v["name"]
        _write(root / name, data)
    study = load_study(_import(root, tmp_path / "study"))
    assert sorted(study.clip_ids) == sorted(VIDEOS)
    assert _boxes(study) == _expected_boxes()


def test_one_file_of_the_set_still_imports_alone_without_a_split(tmp_path):
    root = _dataset(tmp_path)
    out = import_study(
        "coco-vid",
        root / "train.json",
        tmp_path / "study",
        images_root=root / "rawframes",
        exclude_videos=["x9a0b1c2"],
    )
    study = load_study(out)
    assert sorted(study.clip_ids) == ["x1a2b3c4", "x5d6e7f8"]
    assert "split" not in study.manifest.columns
    assert study.manifest.set_index("clip_id")["pathology"].to_dict() == {
        "x1a2b3c4": "benign",
        "x5d6e7f8": "malignant",
    }


def test_split_files_are_found_in_the_dataset_folder_and_any_case_of_split_is_taken(tmp_path):
    root = _dataset(tmp_path)
    out = import_study(
        "coco-vid",
        root,
        tmp_path / "study",
        split_files=[("Train", "train.json"), ("VAL", "val.json")],
    )
    assert set(load_study(out).manifest["split"]) == {"train", "val"}


def test_a_file_listing_only_some_frames_of_a_video_is_imported_as_listed_with_a_warning(
    tmp_path,
):
    """The '15frames' training file lists a few frames per video: the clip holds those."""
    root = _dataset(tmp_path)
    data = json.loads((root / "train.json").read_text())
    kept = {im["id"] for im in data["images"] if not (im["video_id"] == 3 and im["frame_id"] == 1)}
    data["images"] = [im for im in data["images"] if im["id"] in kept]
    _write(root / "train.json", data)
    with pytest.warns(UsbkitWarning, match=r"train.json.*'x9a0b1c2' lists 3 frame ids from 0 to 3"):
        study = load_study(_import(root, tmp_path / "study"))
    from usbkit.io.clip import ReaderSettings, open_clip

    assert len(open_clip(study.clip_path("x9a0b1c2"), ReaderSettings(crop=False))) == 3


def test_the_whole_files_need_no_warning(tmp_path):
    root = _dataset(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UsbkitWarning)
        _import(root, tmp_path / "study")


# -- the same video twice is refused, naming both places ------------------------------------


def _malignant_copy_of_b1_in_val(root: Path) -> None:
    """The set's known defect: a benign video again, as malignant, under the same name."""
    shutil.copytree(root / "rawframes/benign/x1a2b3c4", root / "rawframes/malignant/x1a2b3c4")
    data = _coco_file(["x1a2b3c4"], folder={"x1a2b3c4": "malignant"})
    for a in data["annotations"]:
        a["category_id"] = 2
    _write(root / "val.json", data)


def _same_frame_files_in_val_as_malignant(root: Path) -> None:
    """val.json lists the very frame files of a training video, under another name."""
    data = _coco_file(["x1a2b3c4"])
    data["videos"][0]["name"] = "other"
    for a in data["annotations"]:
        a["category_id"] = 2
    _write(root / "val.json", data)


def _same_frames_under_another_name(root: Path) -> None:
    """A copy of a benign video's frames filed as another, malignant video."""
    shutil.copytree(root / "rawframes/benign/x1a2b3c4", root / "rawframes/malignant/xcopy")
    data = _coco_file(["x1a2b3c4"], folder={"x1a2b3c4": "malignant"})
    data["videos"][0]["name"] = "xcopy"
    for im in data["images"]:
        im["file_name"] = im["file_name"].replace("x1a2b3c4", "xcopy")
    for a in data["annotations"]:
        a["category_id"] = 2
    _write(root / "val.json", data)


def _same_folder_under_two_class_folders(root: Path) -> None:
    """Same frame folder name under benign/ and malignant/, the videos named differently."""
    shutil.copytree(root / "rawframes/malignant/xd3e4f5a", root / "rawframes/benign/xd3e4f5a")
    data = _coco_file(VAL)
    data["videos"][0]["name"] = "renamed"
    data["images"] += [
        {**im, "id": im["id"] + 100, "video_id": 2, "file_name": "benign/" + im["file_name"][10:]}
        for im in data["images"]
    ]
    data["videos"].append({"id": 2, "name": "renamed too"})
    _write(root / "val.json", data)


@pytest.mark.parametrize(
    "defect,expected",
    [
        (_malignant_copy_of_b1_in_val, "'x1a2b3c4' (train.json, videos[0], frames in "
         "benign/x1a2b3c4/, benign) and video 'x1a2b3c4' (val.json, videos[0], frames in "
         "malignant/x1a2b3c4/, malignant) have the same name"),
        (_same_frame_files_in_val_as_malignant, "use the same frame file "
         "'benign/x1a2b3c4/000000.png' (train.json, images[0] and val.json, images[0])"),
        (_same_frames_under_another_name, "have the same frames (4 of the 4 distinct frames"),
        (_same_folder_under_two_class_folders, "are the same frame folder under two class"),
    ],
)  # fmt: skip
def test_the_same_video_in_two_places_is_refused_naming_both(tmp_path, defect, expected):
    root = _dataset(tmp_path)
    defect(root)
    before = tree_hash(root)
    with pytest.raises(UsbkitError) as e:
        _import(root, tmp_path / "study")
    text = str(e.value)
    assert expected in text, text
    assert "--exclude-video" in text
    if defect is not _same_folder_under_two_class_folders:
        assert f"in {root / 'train.json'} and in {root / 'val.json'}" in text, text
    assert tree_hash(root) == before and not (tmp_path / "study").exists()


def test_the_wrong_copy_can_be_left_out_by_name_or_frame_folder(tmp_path):
    root = _dataset(tmp_path)
    _same_frames_under_another_name(root)
    study = load_study(_import(root, tmp_path / "a", exclude_videos=["malignant/xcopy"]))
    assert sorted(study.clip_ids) == sorted(TRAIN)
    study = load_study(_import(root, tmp_path / "b", exclude_videos=["xcopy"]))
    assert sorted(study.clip_ids) == sorted(TRAIN)
    with pytest.raises(UsbkitError, match="no video is named 'xcopyy'"):
        _import(root, tmp_path / "c", exclude_videos=["xcopyy"])


def test_a_benign_category_under_the_malignant_class_folder_is_refused(tmp_path):
    root = _dataset(tmp_path)
    data = json.loads((root / "val.json").read_text())
    for a in data["annotations"]:
        a["category_id"] = 1
    _write(root / "val.json", data)
    with pytest.raises(UsbkitError) as e:
        _import(root, tmp_path / "study")
    assert str(e.value).startswith(
        f"{root / 'val.json'}: videos[0]: video 'xd3e4f5a' is benign by the category of its "
        "boxes (annotations[0], category 'benign') but malignant by the class folder of its "
        "frames (images[0].file_name 'malignant/xd3e4f5a/000000.png')"
    ), e.value


def test_the_class_folder_gives_the_pathology_when_the_category_does_not(tmp_path):
    root = _dataset(tmp_path)
    for name in ("train.json", "val.json"):
        data = json.loads((root / name).read_text())
        data["categories"] = [{"id": 1, "name": "lesion"}, {"id": 2, "name": "lesion 2"}]
        _write(root / name, data)
    study = load_study(_import(root, tmp_path / "study"))
    m = study.manifest.set_index("clip_id")
    assert m["pathology"].to_dict() == {name: cls for name, (cls, _b) in VIDEOS.items()}


# -- splits and patients ---------------------------------------------------------------------


@pytest.mark.parametrize("split", ["trainval", "validation", ""])
def test_only_train_val_and_test_are_splits(tmp_path, split):
    root = _dataset(tmp_path)
    with pytest.raises(UsbkitError, match=f"'{split}' .* is not a split.*train=trainval.json"):
        _import(root, tmp_path / "s", files={split: root / "train.json", "test": "val.json"})


def test_one_file_given_for_two_splits_is_refused(tmp_path):
    root = _dataset(tmp_path)
    with pytest.raises(UsbkitError, match=r"given twice \(as train and as test\)"):
        _import(root, tmp_path / "s", files={"train": "train.json", "test": root / "train.json"})


def test_a_patient_in_two_split_files_is_refused(tmp_path):
    root = _dataset(tmp_path)
    for name, video in (("train.json", 0), ("val.json", 0)):
        data = json.loads((root / name).read_text())
        data["videos"][video]["patient_id"] = "P7"
        _write(root / name, data)
    with pytest.raises(UsbkitError) as e:
        _import(root, tmp_path / "s")
    assert (
        "patient 'P7' has video 'x1a2b3c4' in the train split (train.json, videos[0]) and "
        "video 'xd3e4f5a' in the test split (val.json, videos[0])"
    ) in str(e.value)


def test_a_source_that_is_not_the_dataset_folder_is_refused(tmp_path):
    root = _dataset(tmp_path)
    with pytest.raises(UsbkitError, match="SRC is the dataset folder"):
        import_study(
            "coco-vid", root / "train.json", tmp_path / "s", split_files={"train": "train.json"}
        )


# -- each file is validated as a single file is ---------------------------------------------


def _box_outside(data):
    data["annotations"][0]["bbox"] = [60, 6, 10, 8]


def _image_id_twice(data):
    data["images"][2]["id"] = 1


def _frame_id_twice(data):
    data["images"][2]["frame_id"] = 1


def _declared_size_differs(data):
    data["images"][1]["width"] = 640


def _bbox_text(data):
    data["annotations"][0]["bbox"][0] = "30"


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (_box_outside, "val.json, annotations[0]: box [60, 6, 70, 14] reaches outside"),
        (_image_id_twice, "val.json: images[2].id 1 is used twice (first at images[0])"),
        (_frame_id_twice, "val.json: images[2].frame_id 1 is used twice in video 1"),
        (_declared_size_differs, "val.json: images[1].width is 640 but the file"),
        (_bbox_text, 'val.json: annotations[0].bbox[0] is "30" (text)'),
    ],
)
def test_each_split_file_is_validated_naming_the_file_and_json_path(tmp_path, mutate, expected):
    root = _dataset(tmp_path)
    data = json.loads((root / "val.json").read_text())
    mutate(data)
    _write(root / "val.json", data)
    with pytest.raises(UsbkitError) as e:
        _import(root, tmp_path / "s")
    assert expected in str(e.value), e.value
    assert not (tmp_path / "s").exists()


def test_the_command_line_imports_one_file_per_split_and_refuses_a_malformed_pair(tmp_path):
    from conftest import run_cli

    from usbkit.io.study import load_study

    root = _dataset(tmp_path)
    out = tmp_path / "cli-study"
    r = run_cli(
        "import", "coco-vid", root, out,
        "--split-file", f"train={root / 'train.json'}", "--split-file", f"test={root / 'val.json'}",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    study = load_study(out)
    assert sorted(study.manifest["split"].unique()) == ["test", "train"]
    assert _boxes(study) == _expected_boxes()
    bad = run_cli("import", "coco-vid", root, tmp_path / "x", "--split-file", "train.json")
    assert bad.returncode == 1 and "is not SPLIT=FILE" in bad.stderr
    other = run_cli("import", "frames", root, tmp_path / "y", "--split-file", "train=a.json")
    assert other.returncode == 1 and "options of the coco-vid import only" in other.stderr
