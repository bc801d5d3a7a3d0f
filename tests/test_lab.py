"""``usbkit lab`` started as a user starts it: as root, with JupyterLab's own options passed
on, without Jupyter's news pop-up."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from usbkit.report.lab import NEWS_PLUGIN, lab_command, running_as_root


def _usbkit_command() -> list[str]:
    """The ``usbkit`` console script next to this Python (as installed), else ``-m usbkit``."""
    script = Path(sys.executable).with_name("usbkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "usbkit"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_command_adds_allow_root_for_root_only_and_passes_jupyter_options_on(tmp_path):
    extra = ["--ip", "0.0.0.0", "--ServerApp.token=x"]
    as_user = lab_command(tmp_path, "04_scrub.ipynb", None, False, extra, as_root=False)
    as_root = lab_command(tmp_path, "04_scrub.ipynb", None, False, extra, as_root=True)
    assert "--allow-root" not in as_user and as_root.count("--allow-root") == 1
    for cmd in (as_user, as_root):
        i = cmd.index("--ip")
        assert cmd[i : i + 3] == extra  # in order, unchanged
        assert cmd[-1] == str(Path("notebooks") / "04_scrub.ipynb")
        assert "--LabApp.news_url=None" in cmd  # no news fetched from the internet
    given = lab_command(tmp_path, "04_scrub.ipynb", None, False, ["--allow-root"], as_root=True)
    assert given.count("--allow-root") == 1


def test_usbkit_lab_as_the_user_runs_it_serves_with_options_passed_through_and_no_news(tmp_path):
    """Started as a shell starts it (as root where the tests run as root, as in containers),
    with a Jupyter option after ``--`` and another one usbkit does not know; then stopped."""
    port, token = _free_port(), "usbkit-lab-test"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jcfg"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jrt"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    env.pop("JUPYTER_CONFIG_PATH", None)
    cmd = [*_usbkit_command(), "lab", "--folder", str(tmp_path), "--no-browser",
           f"--IdentityProvider.token={token}", "--", "--port", str(port), "--ip=127.0.0.1"]  # fmt: skip
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, f"usbkit lab stopped:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
        page = urllib.request.urlopen(f"{base}/lab?token={token}", timeout=30).read().decode()
        data = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S)
        config = json.loads(data.group(1))
        assert NEWS_PLUGIN in config["disabledExtensions"]  # no news pop-up
        assert config["news"]["disabled"] is True
        assert (tmp_path / "notebooks" / "04_scrub.ipynb").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # both usbkit and its JupyterLab, as Ctrl-C does
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    said_root = "running as root" in text
    assert said_root == running_as_root()
    if running_as_root():
        assert "Running as root is not recommended" not in text


@pytest.mark.parametrize("args", [["check", "x", "--allow-root"], ["synth", "x", "--ip", "1"]])
def test_other_commands_still_refuse_unknown_options(args):
    from usbkit.cli import main

    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
