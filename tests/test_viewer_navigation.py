"""The viewer on clips without annotations, its navigation both ways, the message and the
outline it draws, and the report's viewer pages (one per clip up to a cap, their index, their
size).

The case: one clip of 30 frames. Lesion 1 is in view on frames 5-15, lesion 2 on frames
8-20 (both in view on 8-15), lesion 3 on frames 22-25. Model "m" hits lesion 1 on frame 6
and nothing else hits, so at threshold 0.5 it misses lesions 2 and 3. Its false positives
form two tracks: frames 2-3 and frames 26-27.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import ARTIFACTS, chromium_path, run_cli

from usbkit.io.encode import write_video
from usbkit.io.study import load_study

LESIONS = {"1": (range(5, 16), [5, 5, 25, 25]), "2": (range(8, 21), [45, 40, 70, 62]),
           "3": (range(22, 26), [10, 50, 30, 70])}  # fmt: skip
FP_BOX = [60, 5, 80, 20]
THRESHOLD = {"m": 0.5}


def _detections() -> pd.DataFrame:
    rows = [("A", 6, 0.9, 8, 8, 22, 22)]
    rows += [("A", f, 0.8, *FP_BOX) for f in (2, 3)]
    rows += [("A", f, 0.7, 5, 70, 25, 88) for f in (26, 27)]
    return pd.DataFrame(rows, columns=["clip_id", "frame", "score", "x0", "y0", "x1", "y1"])


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """The same clip as an annotated study and as a study with no annotations."""
    root = tmp_path_factory.mktemp("nav")
    frames = np.random.default_rng(3).integers(30, 220, (30, 96, 112), dtype=np.uint8)
    out = {}
    for name in ("annotated", "unannotated"):
        study = root / name
        (study / "clips").mkdir(parents=True)
        write_video(frames, study / "clips" / "A.mp4", fps=10)
        (study / "manifest.csv").write_text("clip_id,patient_id,path\nA,P1,clips/A.mp4\n")
        rows = ""
        if name == "annotated":
            rows = "".join(
                f"A,{f},{lid},{','.join(map(str, box))}\n"
                for lid, (frames_, box) in LESIONS.items()
                for f in frames_
            )
        (study / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n" + rows)
        out[name] = load_study(study)
    return out


# ---------------------------------------------------------------------- Python-side state
def test_unannotated_clip_marks_are_not_judged(studies):
    from usbkit.viewer.scrubber import Scrubber

    s = Scrubber(studies["unannotated"], {"m": _detections()}, thresholds=THRESHOLD)
    clip = s.viewer.clip
    assert s.annotated is False and clip["annotated"] is False
    m = clip["models"][0]
    assert m["marks"]["hit"] is None  # no mark is a hit or a false positive
    assert m["ratings"] == [] and clip["lesions"] == []
    # the tracks "next mark" steps through hold every mark, the lesion's hit included
    assert sorted(f for t in m["tracks"] for f in t["frames"]) == [2, 3, 6, 26, 27]
    assert {k: v.tolist() for k, v in s.view.events("m").items()} == {"mark": [2, 3, 6, 26, 27]}

    a = Scrubber(studies["annotated"], {"m": _detections()}, thresholds=THRESHOLD)
    assert a.annotated is True and a.viewer.clip["annotated"] is True
    m = a.viewer.clip["models"][0]
    assert m["marks"]["hit"] == [1, 0, 0, 0, 0]
    assert sorted(f for t in m["tracks"] for f in t["frames"]) == [2, 3, 26, 27]
    events = a.view.events("m")
    assert set(events) == {"miss", "fp"} and events["fp"].tolist() == [2, 3, 26, 27]


# ---------------------------------------------------------------------- in the browser
def _state(page):
    return page.evaluate(
        "(() => { const s = document.querySelector('.usbkit-viewer').usbkit;"
        " return {frame: s.frame, focus: s.focus}; })()"
    )


def _click(page, text: str):
    page.locator(".usbkit-jump", has_text=text).first.click()
    page.wait_for_timeout(50)
    return page.inner_text(".usbkit-message").strip()


def _ring_is_yellow(page, box) -> bool:
    """Whether the outline of the message's subject is drawn just left of ``box``."""
    return page.evaluate(
        """([b]) => {
          const v = document.querySelector('.usbkit-viewer');
          const c = v.querySelector('canvas.usbkit-image'), s = v.usbkit.scale;
          const dpr = window.devicePixelRatio || 1;
          const x = Math.round(b[0] * s - 5 * dpr), y = Math.round((b[1] + b[3]) / 2 * s);
          const p = c.getContext('2d').getImageData(x, y, 1, 1).data;
          return p[0] > 200 && p[1] > 180 && p[2] < 90;
        }""",
        [box],
    )


@pytest.mark.browser
def test_viewer_navigation_both_ways_outline_message_and_unannotated_pages(studies, tmp_path):
    if chromium_path() is None:  # pragma: no cover - make install provides Chromium
        pytest.skip("no system Chromium")
    from playwright.sync_api import sync_playwright

    from usbkit.report.lab import launch_chromium
    from usbkit.viewer.static_page import write_pages

    pages = {
        name: write_pages(study, {"m": _detections()}, THRESHOLD, tmp_path / name, ["A"])[0]
        for name, study in studies.items()
    }
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(pages["annotated"].as_uri())
        page.wait_for_function("document.querySelector('.usbkit-viewer').dataset.frame === '0'")
        page.wait_for_timeout(200)  # frames decoded
        lesion_ids = [lesion["id"] for lesion in page.evaluate(
            "document.querySelector('.usbkit-viewer').usbkit.clip.lesions")]  # fmt: skip

        # next / previous miss: lesion 2 (while lesion 1 is in view too), lesion 3, and back
        msg = _click(page, "next miss")
        st = _state(page)
        assert st["frame"] == 8 and lesion_ids[st["focus"]["lesion"]] == "2", msg
        assert "lesion 2" in msg and "outlined" in msg
        assert _ring_is_yellow(page, LESIONS["2"][1]) and not _ring_is_yellow(
            page, LESIONS["1"][1]
        )  # of the two lesions in view, the one the message is about is outlined
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer_two_lesions_outlined.png"))
        _click(page, "next miss")
        assert _state(page)["frame"] == 22
        msg = _click(page, "next miss")
        assert _state(page)["frame"] == 22 and msg.startswith("No missed lesion of m after")
        msg = _click(page, "previous miss")
        assert _state(page)["frame"] == 8 and "lesion 2" in msg
        msg = _click(page, "previous miss")
        assert _state(page)["frame"] == 8 and msg.startswith("No missed lesion of m before")
        # next / previous false positive
        _click(page, "next false positive")
        assert _state(page)["frame"] == 26
        assert _ring_is_yellow(page, [5, 70, 25, 88])
        msg = _click(page, "previous false positive")
        assert _state(page)["frame"] == 2 and "False positive 1 of 2" in msg
        # a new clip in the same viewer: the message and the outline go with the old one
        assert page.inner_text(".usbkit-message").strip()
        page.evaluate(
            "(() => { const m = document.getElementById('usbkit-app').usbkitModel;"
            " m.send('clip', {...m.get('clip'), clip_id: 'B'}); })()"
        )
        page.wait_for_function(
            "document.querySelector('.usbkit-viewer').usbkit.clip.clip_id === 'B'"
        )
        assert page.inner_text(".usbkit-message").strip() == ""
        assert _state(page)["focus"] is None

        # the clip without annotations: marks, not judgements
        page.goto(pages["unannotated"].as_uri())
        page.wait_for_function("document.querySelector('.usbkit-viewer').dataset.frame === '0'")
        legend = page.inner_text(".usbkit-legend")
        assert "no annotations" in legend and "false positive" not in legend.replace(
            "no mark is called a hit or a false positive", ""
        )
        buttons = page.locator(".usbkit-jump").all_inner_texts()
        assert buttons == ["◀ previous mark", "next mark ▶"]
        assert "not annotated" in page.inner_text(".usbkit-label")
        assert "no lesion in view" not in page.inner_text(".usbkit-viewer")
        dashed = page.evaluate(
            "document.querySelector('.usbkit-viewer').usbkit.clip.models[0].marks.hit"
        )
        assert dashed is None
        frames = []
        for _ in range(3):
            msg = _click(page, "next mark")
            frames.append(_state(page)["frame"])
        assert frames == [2, 6, 26] and msg.startswith("Mark 3 of 3"), msg
        _click(page, "previous mark")
        assert _state(page)["frame"] == 6
        page.screenshot(path=str(ARTIFACTS / "viewer_unannotated.png"))
        browser.close()


@pytest.mark.browser
def test_two_models_scores_on_one_lesion_do_not_overlap(studies, tmp_path):
    """Both models mark lesion 1 on frame 6 with nearly the same box: their score labels used
    to be drawn at the same place, one over the other. The second goes one row up."""
    if chromium_path() is None:  # pragma: no cover - make install provides Chromium
        pytest.skip("no system Chromium")
    from playwright.sync_api import sync_playwright

    from usbkit.report.lab import launch_chromium
    from usbkit.viewer.static_page import write_pages

    cols = ["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]
    dets = {
        "single frame": pd.DataFrame([("A", 6, 0.91, 8, 8, 22, 22)], columns=cols),
        "sequence": pd.DataFrame([("A", 6, 0.87, 9, 8, 23, 22)], columns=cols),
    }
    page_path = write_pages(
        studies["annotated"], dets, {"single frame": 0.5, "sequence": 0.5}, tmp_path, ["A"]
    )[0]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(page_path.as_uri())
        page.wait_for_function("document.querySelector('.usbkit-viewer').dataset.frame === '0'")
        page.wait_for_timeout(200)  # frames decoded
        page.evaluate(
            "(() => { const s = document.querySelector('.usbkit-slider');"
            " s.value = '6'; s.dispatchEvent(new Event('input')); })()"
        )
        page.wait_for_function("document.querySelector('.usbkit-viewer').dataset.frame === '6'")
        labels = page.evaluate("document.querySelector('.usbkit-viewer').usbkit.labels")
        size = page.evaluate(
            "(() => { const c = document.querySelector('canvas.usbkit-image');"
            " return [c.width, c.height]; })()"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("canvas.usbkit-image").screenshot(
            path=str(ARTIFACTS / "viewer_two_scores.png")
        )
        browser.close()
    assert sorted(lab["text"] for lab in labels) == ["0.87", "0.91"]
    a, b = labels
    assert not (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])  # fmt: skip
    for lab in labels:  # both inside the image
        assert 0 <= lab["x"] and lab["x"] + lab["w"] <= size[0]
        assert 0 <= lab["y"] and lab["y"] + lab["h"] <= size[1]


# ---------------------------------------------------------------------- report pages
def test_static_page_frames_are_compact(tiny_cohort, tmp_path):
    """A page costs well under the 19 kB per frame of the JPEG-at-70 pages it replaces."""
    from usbkit.report.run import Run
    from usbkit.viewer.static_page import write_pages

    run = Run.open(tiny_cohort)
    study = run.load_study()
    cid = study.clips("test").clip_id.iloc[0]
    page = write_pages(study, run.read_detections(), {"single frame": 0.3}, tmp_path, [cid])[0]
    data = json.loads(re.search(r"const data = (\{.*?\});\n", page.read_text(), re.S).group(1))
    n = data["clip"]["n"]
    assert data["mime"] == "image/webp"
    assert len(data["frames_b64"]) / n < 12_000, len(data["frames_b64"]) / n
    assert page.stat().st_size < 40_000 + 12_000 * n


@pytest.fixture
def run_copy(tiny_cohort, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(tiny_cohort, dest)
    return dest


def test_report_pages_every_clip_up_to_the_cap_with_an_index(run_copy):
    from usbkit.report.pages import PageCap, write_report_pages
    from usbkit.report.run import Run

    run = Run.open(run_copy)
    clips = list(run.load_study().clips("test").clip_id)
    assert len(clips) >= 3
    two = write_report_pages(run_copy, "2", progress=False)
    assert len(two.pages) == 2 and len(two.left_out) == len(clips) - 2
    index = two.index.read_text()
    assert all(f"<td>{c}</td>" in index for c in clips)  # every clip listed
    assert index.count("no page") == len(clips) - 2 and "--pages all" in index
    assert "found" in index and "false positive" in index  # outcomes at the operating point
    for page in two.pages.values():  # each page leads back to the list of clips
        assert '<a href="index.html">&larr; all clips</a>' in page.read_text()

    everything = write_report_pages(run_copy, "all", progress=False)
    assert sorted(everything.pages) == sorted(clips) and not everything.left_out
    assert "no page" not in everything.index.read_text()
    # the default cap is by size: a budget smaller than a page stops after the first page
    shutil.rmtree(run.scrubber_dir)
    small = write_report_pages(run_copy, PageCap(None, 0.001), progress=False)
    assert len(small.pages) == 1 and len(small.left_out) == len(clips) - 1
    assert "the default cap of 0.001 MB" in small.index.read_text()


def test_report_pages_of_an_unannotated_run_say_not_annotated(run_copy):
    from usbkit.report.pages import write_report_pages
    from usbkit.report.run import Run

    study = run_copy / "study"
    (study / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n")
    run = Run.open(run_copy)
    run.results = None
    run.save()
    result = write_report_pages(run_copy, "all", progress=False)
    index = result.index.read_text()
    assert "not annotated" in index and "No lesion is annotated" in index
    # each model's threshold with where it comes from; the tracking arm's 0.5 is explained
    assert "single frame + tracking ≥ 0.50: no operating point known" in index
    assert index.count("operating point (0.5 FP/scan") == 2
    assert "false positives" not in index.replace("a hit or a false positive", "")
    data = json.loads(
        re.search(
            r"const data = (\{.*?\});\n", next(iter(result.pages.values())).read_text(), re.S
        ).group(1)
    )
    assert data["clip"]["annotated"] is False


def test_report_pages_option_is_checked_before_anything_runs(tmp_path):
    r = run_cli("report", "--out", tmp_path / "r", "--pages", "some")
    assert r.returncode == 1 and "--pages" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()
    assert "--pages" in run_cli("report", "--help").stdout
