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
import shutil
import statistics
import tempfile
from pathlib import Path

import nbformat
from _common import long_clip_study, record

from usbkit.report.figures import browser_path
from usbkit.report.lab import headless_lab, launch_chromium, run_all_cells
from usbkit.report.steps import detect_all, start_run, train_or_load

VIEWER = ".usbkit-viewer"


def main() -> None:
    from playwright.sync_api import sync_playwright

    if browser_path() is None:
        raise SystemExit("needs a system Chromium (apt-get install chromium)")
    tmp = Path(tempfile.mkdtemp())
    try:
        study = long_clip_study(tmp / "s")
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
        with headless_lab(tmp, tmp / "lab") as lab, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run_all_cells(page, lab.notebook("bench.ipynb"))
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
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
