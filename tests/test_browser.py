"""Real-browser tests: JupyterLab in headless Chromium (Playwright), and the static pages."""

from __future__ import annotations

import shutil

import pytest
from conftest import ARTIFACTS, chromium_path, run_detections

from usbkit.report.lab import launch_chromium, run_all_cells

pytestmark = pytest.mark.browser

if chromium_path() is None:  # pragma: no cover - make install provides Chromium
    pytest.skip("no system Chromium (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


VIEWER = ".usbkit-viewer"


def _frame(page) -> str:
    return page.evaluate(f"document.querySelector('{VIEWER}').dataset.frame")


def _wait_frame(page, value: int, timeout: int = 30_000) -> None:
    page.wait_for_function(
        f"document.querySelector('{VIEWER}') && "
        f"document.querySelector('{VIEWER}').dataset.frame === '{value}'",
        timeout=timeout,
    )


def test_static_viewer_page_moves_with_keys_slider_timeline_and_play(
    tiny_cohort, browser, tmp_path
):
    from usbkit.io.study import load_study
    from usbkit.viewer.static_page import write_pages

    study = load_study(tiny_cohort / "study")
    dets = run_detections(tiny_cohort)
    cid = study.clips("test").clip_id.iloc[0]
    page_path = write_pages(study, dets, {"single frame": 0.3, "sequence": 0.3}, tmp_path, [cid])[0]
    assert page_path.stat().st_size < 1_500_000
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    page.route(
        "**/*", lambda r: r.abort() if not r.request.url.startswith("file:") else r.continue_()
    )
    page.goto(page_path.as_uri())
    _wait_frame(page, 0)
    before = page.evaluate(f"document.querySelector('{VIEWER} canvas').toDataURL()")
    page.keyboard.press("ArrowRight")
    _wait_frame(page, 1)
    assert "frame 1 of 0–" in page.inner_text(".usbkit-label")
    page.wait_for_timeout(100)
    assert page.evaluate(f"document.querySelector('{VIEWER} canvas').toDataURL()") != before
    page.keyboard.press("PageDown")
    _wait_frame(page, 11)
    page.fill(".usbkit-slider", "3")
    page.dispatch_event(".usbkit-slider", "input")
    _wait_frame(page, 3)
    box = page.locator(".usbkit-timeline").bounding_box()
    page.locator(".usbkit-timeline").click(position={"x": box["width"] - 12, "y": 40})
    n = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.clip.n")
    assert int(_frame(page)) >= n - 2  # the right end of the timeline is the last frame
    page.keyboard.press("Home")
    _wait_frame(page, 0)
    page.click(".usbkit-play")
    _wait_frame(page, n - 1, timeout=20_000)
    played = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.played")
    assert played["advanced"] == n - 1 and played["shown"] >= 0.95 * played["advanced"]
    page.locator(".usbkit-jump", has_text="next miss").first.click()
    assert page.inner_text(".usbkit-message").strip()  # says where it went, or that there is none
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "static_viewer.png"), full_page=True)


@pytest.fixture
def jupyterlab(tiny_cohort, tmp_path):
    """JupyterLab opened on a workspace as a user has it after `make report`: the notebooks in
    notebooks/ as shipped (parameters untouched) and the run in reports/latest."""
    from usbkit.report.lab import headless_lab, prepare_workspace

    root = tmp_path / "workspace"
    root.mkdir()
    prepare_workspace(root)
    (root / "reports").mkdir()
    shutil.copytree(tiny_cohort, root / "reports" / "latest")  # the notebooks may write into it
    with headless_lab(root, tmp_path / "lab") as lab:
        yield lab.notebook("notebooks/{}.ipynb")


def test_scrubber_in_jupyterlab_changes_frame_with_slider_and_arrow_key(jupyterlab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _drive_scrubber(page, jupyterlab.format("04_scrub"))
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "scrubber_jupyterlab_failure.png"), full_page=True)
        raise


@pytest.mark.parametrize("name", ["01_explore", "02_train", "03_compare"])
def test_each_notebook_runs_all_in_jupyterlab_from_its_own_folder(jupyterlab, browser, name):
    """The shipped notebook, parameters untouched, opened in notebooks/ of a workspace that
    has had `make report`: Run All finishes every cell without an error."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    run_all_cells(page, jupyterlab.format(name))
    page.wait_for_function(
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
        timeout=240_000,
    )
    text = page.inner_text(".jp-Notebook")
    assert "Traceback" not in text and "usbkit:" not in text, name
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"jupyterlab_{name}.png"))


def _drive_scrubber(page, jupyterlab):
    run_all_cells(page, jupyterlab)
    _wait_frame(page, 0, timeout=180_000)
    page.locator(f"{VIEWER} canvas").first.click()
    page.keyboard.press("ArrowRight")
    _wait_frame(page, 1)
    page.keyboard.press("ArrowRight")
    _wait_frame(page, 2)
    page.keyboard.press("PageDown")
    _wait_frame(page, 12)
    # the timeline jumps wherever it is clicked, not only on a line
    box = page.locator(".usbkit-timeline").first.bounding_box()
    page.locator(".usbkit-timeline").first.click(position={"x": 45, "y": box["height"] - 30})
    _wait_frame(page, 0)
    page.locator(".usbkit-play").first.click()
    n = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.clip.n")
    _wait_frame(page, n - 1, timeout=30_000)
    played = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.played")
    assert played["shown"] >= 0.95 * played["advanced"]
    # the clip picker sends another clip to the same viewer
    first = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.clip.clip_id")
    select = page.locator(".widget-dropdown select").nth(1)
    options = select.locator("option").all_inner_texts()
    other = next(o for o in options if o != first)
    select.select_option(other)
    page.wait_for_function(
        f"document.querySelector('{VIEWER}').usbkit.clip.clip_id === {other!r}", timeout=60_000
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scrubber_jupyterlab.png"), full_page=True)
