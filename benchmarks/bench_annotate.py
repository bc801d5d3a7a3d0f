"""The viewer's annotate mode in JupyterLab, in real headless Chromium (Playwright), and saving.

A 300-frame synthetic clip (B-mode 160 x 192) with its annotations removed is shown by
``Scrubber(..., annotate=True)`` in a notebook run inside JupyterLab, with three lesions drawn
on key frames (12 key frames each). The viewer runs in the page:

* key press to painted frame: 200 arrow-key presses in annotate mode, from the key event to the
  animation frame that shows the new picture with the lesions' boxes (key and interpolated);
* drag to painted frame: 200 mouse moves while a box is dragged, from the move event to the
  animation frame that shows the box where the mouse is.

And, without a browser, saving that clip's three lesions (every frame of each, 300 frames):
:meth:`usbkit.io.annotation_edit.AnnotationEditor.save`, backup included (median of 5).
Budgets: median <= 16 ms for both; saving < 1 s.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from _common import long_clip_study, record

from usbkit.io.annotation_edit import AnnotationEditor
from usbkit.report.figures import browser_path
from usbkit.report.lab import headless_lab, launch_chromium, run_all_cells

VIEWER = ".usbkit-viewer"


def _lesions(editor: AnnotationEditor, clip_id: str, n: int, w: float, h: float) -> None:
    c = editor.clip(clip_id, n_frames=n, width=w, height=h)
    for k in range(3):
        lid = c.draw(0, [10 + 50 * k, 20, 40 + 50 * k, 50])
        for f in range(25, n, 25):
            c.draw(f, [10 + 50 * k + f % 7, 20 + f % 5, 40 + 50 * k + f % 7, 50 + f % 5], lid)


def main() -> None:
    from playwright.sync_api import sync_playwright

    from usbkit.io.clip import ReaderSettings, open_clip
    from usbkit.io.study import load_study

    if browser_path() is None:
        raise SystemExit("needs a system Chromium (apt-get install chromium)")
    tmp = Path(tempfile.mkdtemp())
    try:
        root = long_clip_study(tmp / "study")
        (root / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n")
        study = load_study(root)
        cid = study.clip_ids[0]
        clip = open_clip(study.clip_path(cid), ReaderSettings(crop=False))
        n, (h, w) = len(clip), clip.original_size

        # saving: 3 lesions, every frame of a 300-frame clip
        save_times = []
        for _ in range(5):
            (root / "annotations.csv").write_text("clip_id,frame,lesion_id,x0,y0,x1,y1\n")
            (root / "annotation_keyframes.csv").unlink(missing_ok=True)
            ed = AnnotationEditor(root)
            _lesions(ed, cid, n, w, h)
            t0 = time.perf_counter()
            ed.save()
            save_times.append(time.perf_counter() - t0)
        rows = len(load_study(root).annotations)

        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(
                "from usbkit.io.study import load_study\n"
                "from usbkit.viewer.scrubber import Scrubber\n"
                f"Scrubber(load_study({str(root)!r}), {{}}, annotate=True)"
            )
        ]
        nbformat.write(nb, tmp / "bench.ipynb")
        with headless_lab(tmp, tmp / "lab") as lab, sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run_all_cells(page, lab.notebook("bench.ipynb"))
            page.wait_for_function(
                f"document.querySelector('{VIEWER}') && "
                f"document.querySelector('{VIEWER}').usbkit.les.length === 3",
                timeout=180_000,
            )
            page.wait_for_timeout(2000)  # every frame decoded to a bitmap
            page.locator(VIEWER).first.focus()
            page.evaluate(f"document.querySelector('{VIEWER}').usbkit.samples.length = 0")
            for _ in range(200):
                page.keyboard.press("ArrowRight")
                page.wait_for_timeout(15)
            keys = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.samples")
            # a drag drawing a new box: 200 mouse moves (Escape drops it: nothing is sent)
            box = page.locator(f"{VIEWER} canvas.usbkit-image").bounding_box()
            x, y = box["x"] + 0.1 * box["width"], box["y"] + 0.6 * box["height"]
            page.mouse.move(x, y)
            page.mouse.down()
            for i in range(200):
                page.mouse.move(x + 20 + (i % 50) * 3, y + 20 + (i % 30) * 2)
                page.wait_for_timeout(15)
            page.keyboard.press("Escape")
            page.mouse.up()
            drags = page.evaluate(f"document.querySelector('{VIEWER}').usbkit.dragSamples")
            browser.close()

        def p95(v):
            return sorted(v)[int(0.95 * (len(v) - 1))]

        record(
            "Annotate mode in JupyterLab (real Chromium, Playwright) and saving",
            ["what", "samples", "median", "95th pct", "budget"],
            [
                [
                    f"key press to painted frame, annotate mode, 3 lesions, {n} frames",
                    len(keys),
                    f"{statistics.median(keys):.1f} ms",
                    f"{p95(keys):.1f} ms",
                    "median <= 16 ms",
                ],
                [
                    "drag (mouse move) to painted box",
                    len(drags),
                    f"{statistics.median(drags):.1f} ms",
                    f"{p95(drags):.1f} ms",
                    "median <= 16 ms",
                ],
                [
                    f"save: 3 lesions, every frame of a {n}-frame clip ({rows} rows), backup "
                    "included",
                    len(save_times),
                    f"{1000 * statistics.median(save_times):.0f} ms",
                    f"{1000 * max(save_times):.0f} ms (max)",
                    "< 1 s",
                ],
            ],
        )
        print(
            json.dumps(
                {
                    "key_median_ms": statistics.median(keys),
                    "drag_median_ms": statistics.median(drags),
                    "save_median_s": statistics.median(save_times),
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
