"""``usbkit lab``: JupyterLab in usbkit's own environment, opened on the study notebooks.

A system-wide Jupyter does not see usbkit; this starts the JupyterLab installed with usbkit
(``python -m jupyterlab`` of the same Python), in a workspace folder, with the notebooks there
and ``USBKIT_WORKSPACE`` set, so every relative path in the notebooks (``out =
"reports/latest"``) means the same folder whichever notebook is open
(:func:`usbkit.report.run.workspace`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
