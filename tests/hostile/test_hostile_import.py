"""Hostile suite (issue 27): an importer never copies a file from outside the dataset."""

from __future__ import annotations

import json
import os

import pytest
from conftest import tree_hash
from PIL import Image
from test_faults_io import _coco

from usbkit.errors import UsbkitError


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_a_coco_file_name_leaving_the_dataset_folder_is_refused_naming_the_entry(tmp_path, kind):
    from usbkit.io.formats import import_study

    src = _coco(tmp_path)
    secret = tmp_path / "secret.png"
    Image.open(src.parent / "vid_a/0.png").save(secret)  # a readable frame, outside
    data = json.loads(src.read_text())
    if kind == "dotdot":
        data["images"][1]["file_name"] = "../secret.png"
    elif kind == "absolute":
        data["images"][1]["file_name"] = str(secret)
    else:
        os.symlink(secret, src.parent / "vid_a/link.png")
        data["images"][1]["file_name"] = "vid_a/link.png"
    src.write_text(json.dumps(data))
    before = tree_hash(src.parent)
    with pytest.raises(UsbkitError) as info:
        import_study("coco-vid", src, tmp_path / "s")
    text = str(info.value)
    assert text.startswith(f"{src}: images[1].file_name"), text
    assert "outside" in text and "\n" not in text
    assert tree_hash(src.parent) == before
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.*"))
