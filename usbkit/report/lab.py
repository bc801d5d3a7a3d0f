"""``usbkit lab``: JupyterLab in usbkit's own environment, opened on the study notebooks.

A system-wide Jupyter does not see usbkit; this starts the JupyterLab installed with usbkit
(``python -m jupyterlab`` of the same Python), in a workspace folder, with the notebooks there
and ``USBKIT_WORKSPACE`` set, so every relative path in the notebooks (``out =
"reports/latest"``) means the same folder whichever notebook is open
(:func:`usbkit.report.run.workspace`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.report.builder import NOTEBOOKS, notebooks_dir
from usbkit.report.run import WORKSPACE_ENV


def prepare_workspace(folder: str | Path) -> Path:
    """Give ``folder`` a ``notebooks/`` with the study notebooks; copies that are already
    there (perhaps edited by the user) are kept as they are. Returns the notebooks folder."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise UsbkitError(
            "this workspace folder does not exist", file=folder, fix="Create it or give another"
        )
    dest = folder / "notebooks"
    dest.mkdir(exist_ok=True)
    for name in NOTEBOOKS:
        target = dest / f"{name}.ipynb"
        if not target.exists():
            shutil.copy2(notebooks_dir() / f"{name}.ipynb", target)
    return dest


def lab_command(folder: Path, notebook: str, port: int | None, open_browser: bool) -> list[str]:
    """The command line that starts JupyterLab on ``notebook`` in ``folder``."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}"]
    if port is not None:
        cmd.append(f"--port={port}")
    if not open_browser:
        cmd.append("--no-browser")
    return [*cmd, str(Path("notebooks") / notebook)]


def start_lab(
    folder: str | Path = ".",
    notebook: str = "04_scrub",
    port: int | None = None,
    open_browser: bool = True,
) -> int:
    """Start JupyterLab (until it is stopped with Ctrl-C); returns its exit code."""
    folder = Path(folder).resolve()
    name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
    if Path(name).stem not in NOTEBOOKS:
        raise UsbkitError(
            f"there is no notebook '{notebook}'", fix=f"Use one of: {', '.join(NOTEBOOKS)}"
        )
    prepare_workspace(folder)
    env = {**os.environ, WORKSPACE_ENV: str(folder)}
    print(f"JupyterLab with usbkit, workspace {folder} (stop it with Ctrl-C) ...", flush=True)
    return subprocess.call(lab_command(folder, name, port, open_browser), cwd=folder, env=env)


# Scripted JupyterLab: the browser tests, the scrubber benchmark and the README's screenshot
# start a private server and drive it from headless Chromium (Playwright) the same way.

#: Chromium flags for scripted, offline use (no sandbox in containers, no network chatter).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_chromium(playwright):
    """The system Chromium, headless with :data:`CHROMIUM_ARGS`, from a Playwright session
    (``with sync_playwright() as p: browser = launch_chromium(p)``)."""
    from usbkit.report.figures import browser_path

    return playwright.chromium.launch(
        executable_path=browser_path(), headless=True, args=list(CHROMIUM_ARGS)
    )


@dataclass(frozen=True)
class LabServer:
    """A running scripted JupyterLab: its address and access token."""

    base: str
    token: str

    def notebook(self, path: str) -> str:
        """The address that opens ``path`` (relative to the server's root) in JupyterLab."""
        return f"{self.base}/lab/tree/{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def headless_lab(
    root: str | Path, scratch: str | Path, env: dict | None = None, timeout_s: float = 60.0
) -> Iterator[LabServer]:
    """Start a private JupyterLab on ``root`` for scripted use, and stop it afterwards.

    The server listens on a free local port with a fixed token, opens no browser and keeps its
    configuration, runtime files and settings in ``scratch`` (the user's own Jupyter settings
    are neither read nor changed); the news pop-up, which would cover the page, is off.

    Parameters
    ----------
    root : str or Path
        The server's root folder (notebooks are opened relative to it).
    scratch : str or Path
        A folder of the caller's for the server's own files (made if missing).
    env : dict, optional
        Extra environment variables for the server and its kernels.
    timeout_s : float
        How long to wait for the server to answer.

    Yields
    ------
    LabServer
        ``server.notebook("notebooks/04_scrub.ipynb")`` is the address to open.
    """
    scratch = Path(scratch)
    settings = scratch / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = _free_port(), "usbkit-scripted"
    full_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(scratch / "jcfg"),
        "JUPYTERLAB_SETTINGS_DIR": str(scratch / "lab-settings"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "jrt"),
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={Path(root).resolve()}",
        "--allow-root",
        "--LabApp.news_url=",
        "--ServerApp.disable_check_xsrf=True",
    ]
    base = f"http://127.0.0.1:{port}"
    with open(scratch / "jupyterlab.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise UsbkitError(
                            "JupyterLab did not start",
                            file=scratch / "jupyterlab.log",
                            fix="Read the server's log named here",
                        ) from None
                    time.sleep(0.5)
            yield LabServer(base, token)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def accept_kernel_dialog(page, timeout_ms: int = 5000) -> None:
    """Some JupyterLab set-ups ask which kernel to start: take the proposed Python kernel."""
    try:
        page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - no dialog: the kernel started by itself
        pass


def run_all_cells(page, url: str) -> None:
    """Open a notebook's ``url`` in a Playwright ``page`` and start Run > Run All Cells, as a
    user would (returns once the cells are queued, not when they finish)."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=30_000)
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click(timeout=10_000)
    accept_kernel_dialog(page)
