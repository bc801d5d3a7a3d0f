"""Real-browser tests: JupyterLab in headless Chromium (Playwright), and the static pages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ARTIFACTS, CHROMIUM_ARGS, chromium_path, run_detections

pytestmark = pytest.mark.browser

if chromium_path() is None:  # pragma: no cover - make install provides Chromium
    pytest.skip("no system Chromium (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_static_scrubber_page_moves_with_slider_and_keys(tiny_cohort, browser, tmp_path):
    from usbkit.io.study import load_study
    from usbkit.viewer.static_page import write_pages

    study = load_study(tiny_cohort / "study")
    dets = run_detections(tiny_cohort)
    cid = study.clips("test").clip_id.iloc[0]
    page_path = write_pages(study, dets, {"single frame": 0.3, "sequence": 0.3}, tmp_path, [cid])[0]
    assert page_path.stat().st_size < 1_500_000
    page = browser.new_page()
    page.goto(page_path.as_uri())
    page.wait_for_function("document.getElementById('view').dataset.frame === '0'")
    before = page.evaluate("document.getElementById('view').toDataURL()")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.getElementById('view').dataset.frame === '1'")
    assert "frame 2 /" in page.inner_text("#label")
    after = page.evaluate("document.getElementById('view').toDataURL()")
    assert after != before
    page.keyboard.press("PageDown")
    page.wait_for_function("document.getElementById('view').dataset.frame === '11'")
    page.fill("#slider", "3")
    page.dispatch_event("#slider", "input")
    page.wait_for_function("document.getElementById('view').dataset.frame === '3'")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "static_scrubber.png"))


@pytest.fixture
def jupyterlab(tiny_cohort, tmp_path):
    from papermill.iorw import load_notebook_node, write_ipynb
    from papermill.parameterize import parameterize_notebook

    from usbkit.report.builder import notebooks_dir

    root = tmp_path / "lab"
    root.mkdir()
    nb = load_notebook_node(str(notebooks_dir() / "04_scrub.ipynb"))
    nb = parameterize_notebook(nb, {"study": str(tiny_cohort / "study"), "out": str(tiny_cohort)})
    write_ipynb(nb, str(root / "scrub.ipynb"))
    port, token = _free_port(), "usbkit-test"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrt"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
            "--LabApp.news_url=",
            "--ServerApp.disable_check_xsrf=True",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start")
    yield f"{url}/lab/tree/scrub.ipynb?token={token}"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_scrubber_in_jupyterlab_changes_frame_with_slider_and_arrow_key(jupyterlab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _drive_scrubber(page, jupyterlab)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "scrubber_jupyterlab_failure.png"), full_page=True)
        raise


def _accept_kernel_dialog(page, timeout_ms: int = 5000) -> None:
    """Some JupyterLab set-ups ask which kernel to start: take the proposed Python 3 kernel."""
    try:
        page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=timeout_ms)
    except Exception:  # no dialog: the kernel started by itself
        pass


def _drive_scrubber(page, jupyterlab):
    page.goto(jupyterlab)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    _accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click(timeout=10_000)
    _accept_kernel_dialog(page)
    img = page.wait_for_selector("img.widget-image", timeout=120_000)
    label = page.locator(".widget-html-content", has_text="frame 1 /").first
    label.wait_for(timeout=60_000)
    src0 = img.get_attribute("src")
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.locator(".widget-html-content", has_text="frame 2 /").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "(s) => document.querySelector('img.widget-image').src !== s", arg=src0, timeout=30_000
    )
    src1 = page.locator("img.widget-image").first.get_attribute("src")
    assert src1 != src0
    # the keyboard on the image itself (ipyevents): right arrow advances again
    page.locator("img.widget-image").first.click()
    page.keyboard.press("ArrowRight")
    page.locator(".widget-html-content", has_text="frame 3 /").first.wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scrubber_jupyterlab.png"), full_page=True)
