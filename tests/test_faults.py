"""Fault suite: bad input ends in a clear error or a correct recovery, and nothing already
written changes (checked by hashing)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import pattern_frames, run_cli, tree_hash, write_study

from usbkit.errors import UsbkitError
from usbkit.io.encode import write_video


@pytest.fixture
def study_with_results(tmp_path):
    root = tmp_path / "s"
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n=4), root / "clips/a.mp4", fps=10)
    write_study(
        root,
        "clip_id,patient_id,path\na,p1,clips/a.mp4\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\na,1,1,10,10,30,30\n",
    )
    det = tmp_path / "det.csv"
    det.write_text("clip_id,frame,score,x0,y0,x1,y1\na,1,0.9,12,12,28,28\na,2,0.3,40,30,60,46\n")
    out = tmp_path / "out"
    assert (
        run_cli(
            "evaluate", root, "--detections", f"m={det}", "--out", out, "--bootstrap", "20"
        ).returncode
        == 0
    )
    return root, det, out


def test_truncated_clip_in_a_study_is_reported_and_nothing_changes(tmp_path):
    root = tmp_path / "s"
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n=30), root / "clips/a.mp4", fps=10)
    data = (root / "clips/a.mp4").read_bytes()
    (root / "clips/a.mp4").write_bytes(data[: len(data) // 2])
    (root / "clips/empty.mp4").write_bytes(b"")
    write_study(
        root,
        "clip_id,patient_id,path\na,p1,clips/a.mp4\nb,p2,clips/empty.mp4\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n",
    )
    before = tree_hash(root)
    r = run_cli("check", root)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "manifest.csv, row 3" in r.stderr and "empty (0 bytes)" in r.stderr
    assert tree_hash(root) == before


def test_disk_full_while_writing_results_keeps_the_old_results(study_with_results, monkeypatch):
    from pathlib import Path

    from usbkit.evaluation.results import EvalConfig, evaluate_study

    root, det, out = study_with_results
    before = tree_hash(out)
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.startswith(".results.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(UsbkitError, match="disk is not full"):
        evaluate_study(root, {"m": det}, out, EvalConfig(n_boot=20), progress=False)
    assert tree_hash(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_read_only_output_folder_is_refused_before_any_work(
    study_with_results, tmp_path, monkeypatch
):
    root, det, _ = study_with_results
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: simulate the read-only mount
        import usbkit.safeio as safeio

        monkeypatch.setattr(safeio.os, "access", lambda p, mode: not str(p).startswith(str(ro)))
        from usbkit.evaluation.results import EvalConfig, evaluate_study

        with pytest.raises(UsbkitError, match="read-only"):
            evaluate_study(root, {"m": det}, ro / "out", EvalConfig(n_boot=10), progress=False)
    else:
        ro.chmod(0o555)
        r = run_cli("evaluate", root, "--detections", f"m={det}", "--out", ro / "out")
        assert r.returncode == 1 and ("read-only" in r.stderr or "cannot create" in r.stderr)
    assert list(ro.iterdir()) == []


def test_detect_never_overwrites_an_existing_detections_file(study_with_results, tmp_path):
    root, det, _ = study_with_results
    before = det.read_bytes()
    r = run_cli("detect", root, "--checkpoint", "pretrained:frame", "--out", det)
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    assert det.read_bytes() == before
    r = run_cli("detect", root, "--checkpoint", tmp_path / "no-run", "--out", tmp_path / "new.csv")
    assert r.returncode == 1 and "no checkpoint" in r.stderr


def test_training_killed_mid_epoch_resumes_from_the_last_finished_epoch(tmp_path):
    from test_models import easy_study

    study = easy_study(tmp_path / "easy", n_clips=4, n_frames=12)
    run = tmp_path / "run"
    code = (
        "from usbkit.models.train import TrainConfig, train; from usbkit.models import ModelConfig;"
        f"cfg = TrainConfig(study={str(study)!r}, model=ModelConfig(kind='frame', input_size=(64, 80), width=16),"
        " epochs=40, batch=2, window_length=4, window_step=2);"
        f"train(cfg, {str(run)!r}, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            if (run / "log.json").exists() and len(json.loads((run / "log.json").read_text())) >= 2:
                break
            time.sleep(0.2)
        else:
            pytest.fail("training did not finish two epochs in time")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    saved = json.loads((run / "log.json").read_text())
    assert len(saved) >= 2
    r = run_cli("train", study, "--model", "frame", "--out", run, "--epochs", str(len(saved) + 1))
    # the CLI uses the run's saved config (model size, batch) and continues where it stopped
    assert r.returncode == 0, r.stderr[-2000:]
    log = json.loads((run / "log.json").read_text())
    assert [row["epoch"] for row in log] == list(range(1, len(saved) + 2))
    assert log[: len(saved)] == saved
