"""Hostile suite (issue 27): every refusal is one paragraph, naming the file and what to do,
with nothing before or after it (no library warning, no kernel traceback)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from usbkit.errors import UsbkitError


@pytest.mark.parametrize(
    "settings, options, named, not_named",
    [
        ({"model": {"width": 1e12, "input_size": "abc"}}, [],
         ["model.width 1000000000000.0 must be a whole number", 'model.input_size "abc" must be'], []),
        ({"lr": "fast", "epochs": -3, "batch": [4]}, ["--epochs", "1"],
         ['lr "fast" must be a number', "batch [4] must be a whole number"], ["epochs"]),
        ({"epochs": 0, "ema": 2, "augment": "lots", "colour": 1}, [],
         ["epochs 0", "ema 2", "augment 'lots'", "colour"], []),
    ],
)  # fmt: skip
def test_config_errors_name_the_file_and_every_bad_merged_setting(
    tmp_path, capsys, settings, options, named, not_named
):
    from usbkit import cli

    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(settings))
    code = cli.main(["--quiet", "train", str(tmp_path), "--model", "frame", "--out",
                     str(tmp_path / "run"), "--config", str(config), *options])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"usbkit train: error: {config}: "), err
    for text in named:
        assert text in err, (text, err)
    for text in not_named:  # overridden on the command line: not a problem
        assert f"{text} " not in err.split(": ", 2)[2], err
    assert not (tmp_path / "run").exists()


def test_train_settings_of_the_notebooks_are_checked_together():
    from usbkit.models.config import TrainConfig

    with pytest.raises(UsbkitError) as info:
        TrainConfig().with_settings({"lr": "fast", "width": 6, "input_size": [1, 2, 3]})
    text = str(info.value)
    assert "3 settings are invalid" in text and "train_settings" in text, text


class _Code:
    def __reduce__(self):
        return (os.system, ("echo ran > /dev/null",))


def test_a_raw_pickle_checkpoint_carrying_code_gives_only_usbkits_paragraph(tmp_path):
    ckpt = tmp_path / "raw.pt"
    with open(ckpt, "wb") as fh:
        pickle.dump({"model": {}, "x": _Code()}, fh, protocol=4)
    code = textwrap.dedent(
        f"""
        import sys
        from usbkit.models.detect import checkpoint_payload
        from usbkit.errors import UsbkitError
        try:
            checkpoint_payload({str(ckpt)!r})
        except UsbkitError as e:
            print(e, file=sys.stderr)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{ckpt}: this file holds more than model weights"), r.stderr


def test_a_kernel_starting_when_its_folder_is_removed_prints_nothing(tmp_path):
    """What Ctrl-C during `usbkit report` does: the build folder (the kernel's working
    folder) is removed while a kernel is starting. The kernel's traceback must not reach the
    terminal after usbkit's line."""
    script = textwrap.dedent(
        """
        import os, shutil, sys
        from pathlib import Path
        import jupyter_client.launcher as launcher
        import nbformat
        from usbkit.report.builder import run_notebook

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        here = Path(sys.argv[1])
        nbformat.write(nb, here / "a.ipynb")
        (here / "build").mkdir()
        real = launcher.Popen

        def popen(cmd, **kw):  # the interrupt's clean-up removes the folder meanwhile
            proc = real(cmd, **kw)
            shutil.rmtree(kw.get("cwd") or os.getcwd())
            return proc

        launcher.Popen = popen
        try:
            run_notebook(here / "a.ipynb", here / "b.ipynb", {}, progress=False,
                         cwd=here / "build")
        except BaseException:
            pass
        print("usbkit report: interrupted", file=sys.stderr)
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
        timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert r.stderr.strip().splitlines()[-1:] == ["usbkit report: interrupted"], r.stderr
    assert "Traceback" not in r.stderr and "ipykernel" not in r.stderr, r.stderr
