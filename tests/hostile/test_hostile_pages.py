"""Hostile suite (issue 27): a script payload in every id, name and path that reaches a page
usbkit writes (clip, patient, lesion, model name, study and output folder, detection file
name) never runs when the page is opened in a real browser (headless Chromium)."""

from __future__ import annotations

import pytest
from conftest import chromium_path, pattern_frames, write_study

from usbkit.io.encode import write_gif

#: Sets ``window.pwned`` if any markup or script it carries is ever interpreted (in text,
#: in an attribute, in a link or in the page's data).
PAYLOAD = "x'\"><svg onload=window.pwned=1><img src=q onerror=window.pwned=2>"


def _hostile_study(root):
    (root / "clips").mkdir(parents=True)
    write_gif(pattern_frames(n=6), root / "clips/a.gif")
    cid, pid, lid = f"c{PAYLOAD}", f"p{PAYLOAD}", f"l{PAYLOAD}"

    def q(text):  # one CSV cell, quoted
        return '"' + text.replace('"', '""') + '"'

    return write_study(
        root,
        f"clip_id,patient_id,path,pathology,split\n{q(cid)},{q(pid)},clips/a.gif,malignant,test\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n"
        + "".join(f"{q(cid)},{f},{q(lid)},10,10,30,30\n" for f in range(6)),
    ), cid


def test_the_report_page_and_the_clip_pages_never_run_an_injected_script(tmp_path):
    if chromium_path() is None:  # pragma: no cover - make install provides Chromium
        pytest.skip("no system Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from usbkit.evaluation.results import EvalConfig, evaluate_study
    from usbkit.io.detections import load_detections
    from usbkit.io.study import load_study
    from usbkit.report.builder import index_page
    from usbkit.report.lab import launch_chromium
    from usbkit.safeio import write_text
    from usbkit.viewer.static_page import write_pages

    base = tmp_path / f"d{PAYLOAD}"
    root, cid = _hostile_study(base / f"s{PAYLOAD}")
    model = f"m{PAYLOAD}"
    det = base / f"det{PAYLOAD}.csv"
    det.write_text(
        "clip_id,frame,score,x0,y0,x1,y1\n"
        + "".join(f'"{cid.replace(chr(34), 2 * chr(34))}",{f},0.9,11,11,29,29\n' for f in range(6))
    )
    out = base / f"out{PAYLOAD}"
    results = evaluate_study(root, {model: det}, out, EvalConfig(n_boot=5), progress=False)
    study = load_study(root)
    dets = {model: load_detections(det, set(study.manifest["clip_id"]))}
    pages = write_pages(study, dets, {model: 0.5}, out / "scrubber", [cid])
    fig = out / "results" / f"fig1{PAYLOAD}.png"
    index = write_text(
        out / "index.html",
        index_page(out, results, pages, [fig], 1.0, {"03_compare": PAYLOAD}),
    )
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for path in (index, *pages):
                page = browser.new_page()
                page.route(
                    "**/*",
                    lambda r: r.abort() if not r.request.url.startswith("file:") else r.continue_(),
                )
                page.goto(path.as_uri())
                page.wait_for_timeout(300)
                assert page.evaluate("window.pwned") is None, path
                text = page.inner_text("body")
                assert PAYLOAD in text or path != index  # shown as text, not markup
                page.close()
        finally:
            browser.close()
