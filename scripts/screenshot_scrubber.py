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
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEWER = ".usbkit-viewer"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    for name in (os.environ.get("BROWSER_PATH") or "", "chromium", "chromium-browser"):
        if name and (Path(name).exists() or shutil.which(name)):
            return name if Path(name).exists() else shutil.which(name)
    raise SystemExit("no Chromium found (apt-get install chromium)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--report", default=str(ROOT / "reports" / "latest"))
    p.add_argument("--out", default=str(ROOT / "figures" / "scrubber.png"))
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from usbkit.report.lab import prepare_workspace

    tmp = Path(tempfile.mkdtemp(prefix="usbkit-shot-"))
    proc = None
    try:
        root = tmp / "workspace"
        root.mkdir()
        prepare_workspace(root)
        (root / "reports").mkdir()
        (root / "reports" / "latest").symlink_to(Path(args.report).resolve())
        settings = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        port, token = _port(), "usbkit-shot"
        env = {
            **os.environ,
            "USBKIT_WORKSPACE": str(root),
            "JUPYTER_CONFIG_DIR": str(tmp / "jcfg"),
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "jrt"),
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{url}/lab/tree/notebooks/04_scrub.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            try:
                page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=5000)
            except Exception:  # noqa: BLE001 - no kernel dialog
                pass
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
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
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
