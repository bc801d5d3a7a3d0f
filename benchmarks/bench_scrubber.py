"""The scrubber in JupyterLab, in real headless Chromium (Playwright): key press to new frame
painted, and playback at the clip's own frame rate.

A 300-frame synthetic clip (B-mode 160 x 192, ground truth and both shipped models' marks) is
shown by ``usbkit.Scrubber`` in a notebook run inside JupyterLab. The viewer runs in the page:
for 200 arrow-key presses it records the time from the key event to the animation frame that
shows the new picture (``performance.now()`` in the requestAnimationFrame callback after the
draw), and for one playback of the whole clip the frames shown against the frames the clip
advanced. Budgets (the budgets table of benchmarks/README.md): median key to paint <= 16 ms;
playback >= 95% of frames shown.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import nbformat
from _common import record

from usbkit.report.steps import detect_all, start_run, train_or_load
from usbkit.synth import preset_config, synthesize

VIEWER = ".usbkit-viewer"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> str:
    for name in (os.environ.get("BROWSER_PATH") or "", "chromium", "chromium-browser"):
        path = shutil.which(name) if name else None
        if path:
            return path
    raise SystemExit("needs a system Chromium (apt-get install chromium)")


def main() -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp())
    proc = None
    try:
        cfg = preset_config("quick", patients=1, seed=3)
        cfg = replace(
            cfg,
            sweep=replace(cfg.sweep, frames=(300, 300), fps_choices=(30,)),
            lesions=replace(cfg.lesions, normal_fraction=0.0),
            split_fractions=(0, 0, 1),
        )
        study = synthesize(tmp / "s", config=cfg, progress=False)
        run = start_run(tmp / "run", study)
        train_or_load(run)
        detect_all(run, split=None, progress=False)
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(
                "from usbkit import Scrubber\nfrom usbkit.report.run import Run\n"
                f"run = Run.open({str(run.folder)!r})\n"
                "Scrubber(run.load_study(), run.read_detections(),"
                " thresholds={'single frame': 0.2, 'sequence': 0.2})"
            )
        ]
        nbformat.write(nb, tmp / "bench.ipynb")
        port, token = _port(), "usbkit-bench"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp / "jcfg")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
             "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={tmp}", "--allow-root", "--LabApp.news_url="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/bench.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            try:
                page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=5000)
            except Exception:  # noqa: BLE001 - no kernel dialog
                pass
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            page.wait_for_function(
                f"document.querySelector('{VIEWER}') && "
                f"document.querySelector('{VIEWER}').dataset.frame === '0'",
                timeout=180_000,
            )
            page.wait_for_timeout(2000)  # every frame decoded to a bitmap
            page.locator(f"{VIEWER} canvas").first.click()
            for _ in range(200):
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(15)
            samples = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.samples")
            page.keyboard.press("Home")
            page.locator(".usbkit-play").first.click()
            n = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.clip.n")
            page.wait_for_function(
                f"document.querySelector('{VIEWER}').dataset.frame === '{n - 1}'",
                timeout=60_000,
            )
            played = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.played")
            fps = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.clip.fps")
            browser.close()
        shown = played["shown"] / max(played["advanced"], 1)
        record(
            "Scrubber in JupyterLab (real Chromium, Playwright; viewer runs in the page)",
            [
                "frames",
                "key presses",
                "key to paint median (ms)",
                "95th pct (ms)",
                "budget median (ms)",
                "playback at (fps)",
                "frames shown",
                "budget shown",
            ],
            [
                [
                    n,
                    len(samples),
                    f"{statistics.median(samples):.1f}",
                    f"{sorted(samples)[int(0.95 * (len(samples) - 1))]:.1f}",
                    16,
                    f"{fps:g}",
                    f"{100 * shown:.1f}% ({played['shown']}/{played['advanced']})",
                    ">= 95%",
                ]
            ],
        )
        print(json.dumps({"samples_median": statistics.median(samples), "played": played}))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
