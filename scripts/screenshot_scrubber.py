"""Take the README's picture of the clip viewer in JupyterLab (figures/scrubber.png).

After ``make report``, run from the repository root:

    .venv/bin/python scripts/screenshot_scrubber.py [--frame-of-lesion] [--out figures/scrubber.png]

It starts JupyterLab (no browser, a free local port) on a temporary workspace that holds the
shipped notebooks and a link to ``reports/latest``, opens ``notebooks/04_scrub.ipynb`` in
headless Chromium (Playwright), runs all cells as a user would, steps the viewer to the frame
where the shown clip's first lesion is largest, and saves a screenshot. Nothing in the
repository is written apart from the picture.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEWER = ".usbkit-viewer"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--report", default=str(ROOT / "reports" / "latest"))
    p.add_argument("--out", default=str(ROOT / "figures" / "scrubber.png"))
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from usbkit.report.figures import browser_path
    from usbkit.report.lab import headless_lab, launch_chromium, prepare_workspace, run_all_cells
    from usbkit.report.run import WORKSPACE_ENV

    if browser_path() is None:
        raise SystemExit("no Chromium found (apt-get install chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="usbkit-shot-"))
    practice = Path(args.report) / "practice"  # the notebook's annotate section makes it
    had_practice = practice.exists()
    try:
        root = tmp / "workspace"
        root.mkdir()
        prepare_workspace(root)
        (root / "reports").mkdir()
        (root / "reports" / "latest").symlink_to(Path(args.report).resolve())
        with (
            headless_lab(root, tmp / "lab", env={WORKSPACE_ENV: str(root)}) as lab,
            sync_playwright() as pw,
        ):
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            run_all_cells(page, lab.notebook("notebooks/04_scrub.ipynb"))
            page.wait_for_function(
                f"document.querySelector('{VIEWER}') && "
                f"document.querySelector('{VIEWER}').dataset.frame === '0'",
                timeout=300_000,
            )
            # the frame where the clip's ground truth box is largest
            target = page.evaluate(
                f"""() => {{
                  const c = document.querySelector('{VIEWER}').usbkit.clip;
                  let best = 0, area = -1;
                  (c.lesions || []).forEach(l => l.boxes.forEach((b, k) => {{
                    const a = (b[2] - b[0]) * (b[3] - b[1]);
                    if (a > area) {{ area = a; best = l.frames[k]; }} }}));
                  return best;
                }}"""
            )
            page.locator(f"{VIEWER} canvas").first.click()
            for _ in range(int(target)):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"document.querySelector('{VIEWER}').dataset.frame === '{int(target)}'",
                timeout=30_000,
            )
            page.locator(VIEWER).first.scroll_into_view_if_needed()
            time.sleep(1.0)
            page.screenshot(path=args.out)
            browser.close()
        print(f"wrote {args.out} (frame {target})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not had_practice:
            shutil.rmtree(practice, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
