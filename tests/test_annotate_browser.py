"""The annotate mode in a real JupyterLab (headless Chromium): draw a lesion on two key frames,
check the boxes interpolated between them, move one, undo, accept the shipped detector's draft,
save, find every frame in annotations.csv (original pixels) and the key frames in the side
file, and reopen to the same state."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import ARTIFACTS, chromium_path

pytestmark = pytest.mark.browser

if chromium_path() is None:  # pragma: no cover - make install provides Chromium
    pytest.skip("no system Chromium (apt-get install chromium)", allow_module_level=True)

VIEWER = ".usbkit-viewer"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "from usbkit.io.study import load_study\n",
                "from usbkit.viewer.scrubber import Scrubber\n",
                "s = Scrubber(load_study('study'), {}, clip_id=CLIP, annotate=True,\n",
                "             propose='pretrained:sequence', propose_threshold=0.3)\n",
                "s",
            ],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def workspace(tiny_cohort, tmp_path):
    """A study of the built-in cohort with its annotations removed, and a notebook that opens
    the viewer in annotate mode on one of its clips."""
    from usbkit.io.study import load_study

    root = tmp_path / "ws"
    root.mkdir()
    shutil.copytree(tiny_cohort / "study", root / "study")
    study = load_study(root / "study")
    clip = study.clips("test").clip_id.iloc[0]
    (root / "study" / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n")
    nb = json.loads(json.dumps(NOTEBOOK))
    nb["cells"][0]["source"].insert(0, f"CLIP = {clip!r}\n")
    (root / "annotate.ipynb").write_text(json.dumps(nb))
    return root, clip


def _state(page):
    return page.evaluate(
        f"""(() => {{ const s = document.querySelector('{VIEWER}').usbkit;
          return {{frame: s.frame, sel: s.sel, scale: s.scale, dpr: window.devicePixelRatio || 1,
                   lesions: s.les.map(l => ({{id: l.id, keys: l.keys, first: l.first, last: l.last}})),
                   drafts: (s.ann && s.ann.drafts) || [], dirty: s.ann && s.ann.dirty,
                   message: s.ann && s.ann.message, version: s.ann && s.ann.version}}; }})()"""
    )


def _at(page, lesion: str, frame: int):
    return page.evaluate(
        f"""(() => {{ const s = document.querySelector('{VIEWER}').usbkit;
          const l = s.les.find(x => x.id === {lesion!r}); const a = l && l.at.get({frame});
          return a ? {{box: a.box, key: a.key}} : null; }})()"""
    )


def _screen(page, p):
    """Crop pixels -> page coordinates on the frame canvas."""
    box = page.locator(f"{VIEWER} canvas.usbkit-image").bounding_box()
    st = _state(page)
    k = st["scale"] / st["dpr"]
    return box["x"] + p[0] * k, box["y"] + p[1] * k


def _drag(page, a, b):
    x0, y0 = _screen(page, a)
    x1, y1 = _screen(page, b)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=3)
    page.mouse.move(x1, y1, steps=3)
    page.mouse.up()


def _wait_version(page, before: int):
    page.wait_for_function(
        f"(document.querySelector('{VIEWER}').usbkit.ann || {{}}).version > {before}",
        timeout=60_000,
    )


def _go(page, frame: int):
    page.locator(VIEWER).first.focus()
    while _state(page)["frame"] != frame:
        page.keyboard.press("ArrowRight" if _state(page)["frame"] < frame else "ArrowLeft")
    page.wait_for_function(f"document.querySelector('{VIEWER}').dataset.frame === '{frame}'")


def _open(page, lab):
    from usbkit.report.lab import run_all_cells

    run_all_cells(page, lab.notebook("annotate.ipynb"))
    page.wait_for_selector(f"{VIEWER} .usbkit-annotate", state="visible", timeout=180_000)
    page.wait_for_function(
        f"document.querySelector('{VIEWER}').usbkit.ann && "
        f"document.querySelector('{VIEWER}').usbkit.ann.version > 0",
        timeout=60_000,
    )


def test_annotate_draw_interpolate_move_undo_accept_save_reopen(workspace, tmp_path):
    from playwright.sync_api import sync_playwright

    from usbkit.io.annotation_edit import KEYFRAMES_FILE, read_keyframes
    from usbkit.io.clip import ReaderSettings, open_clip
    from usbkit.io.study import load_study
    from usbkit.report.lab import headless_lab, launch_chromium

    root, clip_id = workspace
    study = load_study(root / "study")
    clip = open_clip(study.clip_path(clip_id), ReaderSettings())
    dx, dy = clip.crop_box[:2]
    with headless_lab(root, tmp_path / "lab") as lab, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            _open(page, lab)
            # a lesion drawn on frame 2 and, as the same (selected) lesion, on frame 8
            _go(page, 2)
            v = _state(page)["version"]
            _drag(page, (8, 8), (28, 24))
            _wait_version(page, v)
            st = _state(page)
            assert [le["id"] for le in st["lesions"]] == ["1"] and st["sel"] == "1", st
            _go(page, 8)
            v = _state(page)["version"]
            _drag(page, (20, 14), (44, 34))
            _wait_version(page, v)
            keys = _state(page)["lesions"][0]["keys"]
            assert [k[0] for k in keys] == [2, 8] and {k[5] for k in keys} == {"drawn"}
            k2, k8 = np.array(keys[0][1:5]), np.array(keys[1][1:5])
            # frames 3-7 show boxes interpolated between the key frames (dashed)
            for f in range(3, 8):
                a = _at(page, "1", f)
                assert a is not None and a["key"] is False
                np.testing.assert_allclose(a["box"], k2 + (f - 2) / 6 * (k8 - k2), atol=1e-6)
            # move the interpolated box on frame 5: it becomes a key frame; undo takes it back
            _go(page, 5)
            b5 = np.array(_at(page, "1", 5)["box"])
            centre = ((b5[0] + b5[2]) / 2, (b5[1] + b5[3]) / 2)
            v = _state(page)["version"]
            _drag(page, centre, (centre[0] + 6, centre[1] + 4))
            _wait_version(page, v)
            assert [k[0] for k in _state(page)["lesions"][0]["keys"]] == [2, 5, 8]
            moved = np.array(_at(page, "1", 5)["box"])
            assert moved[0] > b5[0] + 3 and _at(page, "1", 5)["key"] is True
            v = _state(page)["version"]
            page.keyboard.press("z")
            _wait_version(page, v)
            assert [k[0] for k in _state(page)["lesions"][0]["keys"]] == [2, 8]
            assert _at(page, "1", 5)["key"] is False

            # the shipped detector's drafts: accept the first
            v = _state(page)["version"]
            page.locator(".usbkit-propose").first.click()
            _wait_version(page, v)
            drafts = _state(page)["drafts"]
            assert drafts, _state(page)["message"]
            draft = drafts[0]
            page.locator(".usbkit-draft .usbkit-accept").first.click()
            page.wait_for_function(
                f"document.querySelector('{VIEWER}').usbkit.les.length === 2", timeout=30_000
            )
            accepted = next(le for le in _state(page)["lesions"] if le["id"] != "1")
            assert accepted["first"] == draft["frames"][0]
            assert accepted["last"] == draft["frames"][-1]
            ARTIFACTS.mkdir(exist_ok=True)
            _go(page, draft["frames"][0] + 1)
            page.locator(VIEWER).first.screenshot(path=str(ARTIFACTS / "annotate_jupyterlab.png"))
            assert "unsaved" in page.inner_text(f"{VIEWER} .usbkit-annotate")

            # save: every frame of every lesion, original pixels; the key frames beside
            v = _state(page)["version"]
            page.keyboard.press("s")
            _wait_version(page, v)
            st = _state(page)
            assert st["dirty"] is False and st["message"].startswith("saved"), st["message"]
            ann = pd.read_csv(root / "study" / "annotations.csv", dtype={"lesion_id": str})
            one = ann.loc[ann.lesion_id == "1"].sort_values("frame")
            assert one.frame.tolist() == list(range(2, 9))
            want = np.array([k2 + (f - 2) / 6 * (k8 - k2) for f in range(2, 9)])
            want += np.array([dx, dy, dx, dy])
            np.testing.assert_allclose(one[["x0", "y0", "x1", "y1"]].to_numpy(), want, atol=0.02)
            two = ann.loc[ann.lesion_id == accepted["id"]].sort_values("frame")
            assert two.frame.tolist() == list(range(accepted["first"], accepted["last"] + 1))
            keys = read_keyframes(root / "study" / KEYFRAMES_FILE)
            k1 = keys.loc[keys.lesion_id == "1"]
            assert k1.frame.tolist() == [2, 8] and set(k1.source) == {"drawn"}
            assert set(keys.loc[keys.lesion_id == accepted["id"], "source"]) == {"accepted"}
            from usbkit.io.check import check_study

            assert check_study(root / "study", progress=False) == []
            saved = {le["id"]: le["keys"] for le in _state(page)["lesions"]}

            # reopening shows the same lesions and key frames
            page.reload()
            _open(page, lab)
            again = {le["id"]: le["keys"] for le in _state(page)["lesions"]}
            assert again == saved
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "annotate_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
