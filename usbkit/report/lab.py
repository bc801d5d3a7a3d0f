"""``usbkit lab``: JupyterLab in usbkit's own environment, opened on the study notebooks.

A system-wide Jupyter does not see usbkit; this starts the JupyterLab installed with usbkit
(``python -m jupyterlab`` of the same Python), in a workspace folder, with the notebooks there
and ``USBKIT_WORKSPACE`` set, so every relative path in the notebooks (``out =
"reports/latest"``) means the same folder whichever notebook is open
(:func:`usbkit.report.run.workspace`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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


#: The JupyterLab plug-in that asks "Would you like to get notified about official Jupyter
#: news?" and fetches news from the internet; ``usbkit lab`` turns it off.
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"


def running_as_root() -> bool:
    """Whether this process runs as the system administrator (root), as in many containers,
    cloud machines and WSL; Jupyter refuses to start there without ``--allow-root``."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(
    folder: Path,
    notebook: str,
    port: int | None,
    open_browser: bool,
    extra: list[str] | tuple[str, ...] = (),
    as_root: bool = False,
) -> list[str]:
    """The command line that starts JupyterLab on ``notebook`` in ``folder``: ``extra`` are
    Jupyter's own options, passed through as given; ``as_root`` adds ``--allow-root`` (unless
    ``extra`` has it already); the news feed is never fetched."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}"]
    cmd.append("--LabApp.news_url=None")
    if port is not None:
        cmd.append(f"--port={port}")
    if not open_browser:
        cmd.append("--no-browser")
    if as_root and "--allow-root" not in extra:
        cmd.append("--allow-root")
    return [*cmd, *extra, str(Path("notebooks") / notebook)]


def write_lab_config(folder: str | Path) -> Path:
    """Write, in ``folder``, a Jupyter configuration folder that turns the news pop-up off
    (the announcements plug-in disabled); put it on ``JUPYTER_CONFIG_PATH`` to use it. The
    user's own Jupyter settings are neither read nor changed by it."""
    config = Path(folder) / "labconfig"
    config.mkdir(parents=True, exist_ok=True)
    page = {"disabledExtensions": {NEWS_PLUGIN: True}}
    (config / "page_config.json").write_text(json.dumps(page, indent=1), encoding="utf-8")
    return Path(folder)


def start_lab(
    folder: str | Path = ".",
    notebook: str = "04_scrub",
    port: int | None = None,
    open_browser: bool = True,
    extra: list[str] | tuple[str, ...] = (),
) -> int:
    """Start JupyterLab (until it is stopped with Ctrl-C); returns its exit code.

    ``extra`` are further JupyterLab options, passed on unchanged (``usbkit lab -- --ip
    0.0.0.0``). Run as root, ``--allow-root`` is added and one line says so. Jupyter's news
    pop-up is off (a configuration folder of this run only, removed when the server stops).
    """
    folder = Path(folder).resolve()
    name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
    if Path(name).stem not in NOTEBOOKS:
        raise UsbkitError(
            f"there is no notebook '{notebook}'", fix=f"Use one of: {', '.join(NOTEBOOKS)}"
        )
    prepare_workspace(folder)
    as_root = running_as_root()
    with tempfile.TemporaryDirectory(prefix="usbkit-lab-") as scratch:
        config = write_lab_config(scratch)
        config_path = os.pathsep.join(
            p for p in (str(config), os.environ.get("JUPYTER_CONFIG_PATH", "")) if p
        )
        env = {**os.environ, WORKSPACE_ENV: str(folder), "JUPYTER_CONFIG_PATH": config_path}
        if as_root and "--allow-root" not in extra:
            print(
                "usbkit lab: running as root (administrator), so Jupyter is started with "
                "--allow-root.",
                flush=True,
            )
        print(f"JupyterLab with usbkit, workspace {folder} (stop it with Ctrl-C) ...", flush=True)
        command = lab_command(folder, name, port, open_browser, extra, as_root)
        return subprocess.call(command, cwd=folder, env=env)


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
