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
from pathlib import Path

import pytest
from conftest import pattern_frames, run_cli, tree_hash, write_study

from usbkit.errors import UsbkitError
from usbkit.io.encode import write_video


def one_clip_study(root, boxes: str = "", n_frames: int = 4, split: str = ""):
    """A study of one short clip 'a' of patient 'p1' with the given annotation rows."""
    (root / "clips").mkdir(parents=True)
    write_video(pattern_frames(n=n_frames), root / "clips/a.mp4", fps=10)
    head, row = ("path,split", f"clips/a.mp4,{split}") if split else ("path", "clips/a.mp4")
    return write_study(
        root,
        f"clip_id,patient_id,{head}\na,p1,{row}\n",
        "clip_id,frame,lesion_id,x0,y0,x1,y1\n" + boxes,
    )


@pytest.fixture
def study_with_results(tmp_path):
    root = one_clip_study(tmp_path / "s", "a,1,1,10,10,30,30\n")
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
        " epochs=40, batch=2, window_length=4, window_step=2, frames_per_epoch=256);"
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


# --------------------------------------------------------------------------------------------
# Output safety per run: built aside, swapped in whole, only over an earlier output of the same
# command and only with --overwrite; nothing else the user has is touched.


def _first_line(stderr: str) -> str:
    return stderr.strip().splitlines()[0] if stderr.strip() else ""


def test_evaluate_refuses_to_replace_earlier_results_without_overwrite(study_with_results):
    root, det, out = study_with_results
    before = tree_hash(out)
    r = run_cli("evaluate", root, "--detections", f"m={det}", "--out", out, "--bootstrap", "20")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert _first_line(r.stderr).endswith(
        "this output folder already holds files. Choose a new folder name, or add --overwrite "
        "to replace this earlier `usbkit evaluate` output."
    )
    assert tree_hash(out) == before


def test_evaluate_with_overwrite_replaces_its_own_earlier_results_whole(study_with_results):
    root, det, out = study_with_results
    (out / "table.md").write_text("stale")
    r = run_cli(
        "evaluate", root, "--detections", f"m={det}", "--out", out, "--bootstrap", "30",
        "--overwrite", "--figures",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "stale" not in (out / "table.md").read_text()
    assert json.loads((out / "results.json").read_text())["n_bootstrap"] == 30
    assert (out / "fig1_froc.html").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_evaluate_never_writes_into_a_folder_of_the_users_own_files(
    study_with_results, tmp_path, overwrite
):
    root, det, _ = study_with_results
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.json").write_text('{"my": "notes"}')
    before = tree_hash(mine)
    r = run_cli("evaluate", root, "--detections", f"m={det}", "--out", mine, *overwrite)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "never overwrites files it did not write" in _first_line(r.stderr)
    assert tree_hash(mine) == before


def test_evaluate_failing_over_earlier_results_leaves_them_byte_identical(
    study_with_results, tmp_path
):
    root, _, out = study_with_results
    before = tree_hash(out)
    bad = tmp_path / "bad.csv"
    bad.write_text("clip_id,frame,score,x0,y0,x1,y1\na,1,0.9,12,12,28,28\na,99,0.5,1,1,5,5\n")
    r = run_cli("evaluate", root, "--detections", f"m={bad}", "--out", out, "--overwrite")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "bad.csv" in r.stderr
    assert tree_hash(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]


def test_evaluate_interrupted_keeps_earlier_results_and_leaves_no_temporary_folder(
    study_with_results, monkeypatch, capsys
):
    """Ctrl-C (KeyboardInterrupt, what SIGINT raises) in the middle of writing the new
    results: exit 130 with the message, the earlier results byte for byte, no temporary
    folder left. The interrupt is raised at a fixed point (after the first of the new files
    is written), so the test does not depend on how fast the machine is."""
    from usbkit import cli
    from usbkit.evaluation import results as results_module

    root, det, out = study_with_results
    before = tree_hash(out)
    real_write, calls = results_module.write_text, []

    def write_then_interrupt(path, text):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, text)

    monkeypatch.setattr(results_module, "write_text", write_then_interrupt)
    code = cli.main(
        ["--quiet", "evaluate", str(root), "--detections", f"m={det}", "--out", str(out),
         "--bootstrap", "50", "--overwrite"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert len(calls) == 2  # it was stopped half-way through writing
    assert code == 130
    assert "interrupted; earlier outputs are unchanged" in err and "Traceback" not in err
    assert tree_hash(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("owner", ["user", "evaluate"])
def test_training_never_writes_into_a_folder_that_is_not_its_own_run(
    study_with_results, tmp_path, owner
):
    root, det, out = study_with_results
    if owner == "user":
        out = tmp_path / "mine"
        out.mkdir()
        (out / "config.json").write_text('{"my": "settings"}')
        (out / "log.csv").write_text("epoch,loss\n1,0.5\n")
    before = tree_hash(out)
    r = run_cli("train", root, "--model", "frame", "--out", out, "--epochs", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "not a usbkit training run" in _first_line(r.stderr)
    assert tree_hash(out) == before


def test_detect_overwrite_replaces_only_a_detections_file(study_with_results, tmp_path):
    root, _, _ = study_with_results
    mine = tmp_path / "notes.csv"
    mine.write_text("patient,comment\np1,look again\n")
    r = run_cli("detect", root, "--checkpoint", "pretrained:frame", "--out", mine, "--overwrite")
    assert r.returncode == 1 and "only replaces a file usbkit wrote" in _first_line(r.stderr)
    assert mine.read_text() == "patient,comment\np1,look again\n"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_synth_refuses_a_folder_holding_other_files(tmp_path, overwrite):
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "clip.mp4").write_bytes(b"my scan")
    r = run_cli("synth", out, "--patients", "1", *overwrite)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "already holds files" in r.stderr or "never overwrites" in r.stderr
    assert (out / "clip.mp4").read_bytes() == b"my scan" and len(list(out.iterdir())) == 1


# --------------------------------------------------------------------------------------------
# Checkpoints are data: loaded with weights_only, checked against their config.


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ.get("USBKIT_EVIL_MARK", "/tmp/usbkit_evil"),))


def _checkpoints(tmp_path) -> dict:
    import torch

    from usbkit.models.detect import checkpoint_payload

    good = checkpoint_payload("pretrained:frame")
    files = {}
    files["code"] = tmp_path / "code.pt"
    torch.save({"model": good["model"], "model_config": good["model_config"], "x": _Evil()},
               files["code"])  # fmt: skip
    files["dict"] = tmp_path / "dict.pt"
    torch.save({"weights": [1, 2, 3]}, files["dict"])
    files["tensor"] = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), files["tensor"])
    files["mismatch"] = tmp_path / "mismatch.pt"
    wider = good["model_config"]["width"] + 8  # a config its weights cannot fit
    torch.save(
        {**good, "model_config": {**good["model_config"], "width": wider}}, files["mismatch"]
    )
    files["truncated"] = tmp_path / "truncated.pt"
    data = Path(
        __import__("usbkit.models.detect", fromlist=["x"]).pretrained_path("frame")
    ).read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["text"] = tmp_path / "text.pt"
    files["text"].write_text("not a checkpoint at all")
    return files


@pytest.mark.parametrize(
    "kind, message",
    [
        ("code", "holds more than model weights"),
        ("dict", "is not a usbkit checkpoint"),
        ("tensor", "is not a usbkit checkpoint"),
        ("mismatch", "weights do not fit its own model config"),
        ("truncated", "looks damaged or cut short"),
        ("text", "is not a PyTorch checkpoint"),
    ],
)
def test_a_checkpoint_that_is_not_a_clean_usbkit_checkpoint_is_refused_and_never_run(
    study_with_results, tmp_path, monkeypatch, kind, message
):
    root, _, _ = study_with_results
    mark = tmp_path / "evil-ran"
    monkeypatch.setenv("USBKIT_EVIL_MARK", str(mark))
    ckpt = _checkpoints(tmp_path)[kind]
    r = run_cli("detect", root, "--checkpoint", ckpt, "--out", tmp_path / "d.csv")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert message in _first_line(r.stderr) and str(ckpt) in _first_line(r.stderr)
    assert not mark.exists() and not (tmp_path / "d.csv").exists()


def test_resuming_from_a_cut_short_last_checkpoint_says_what_to_do(tmp_path):
    from test_models import easy_study

    from usbkit.safeio import mark_output

    study = easy_study(tmp_path / "easy", n_clips=2, n_frames=8)
    run = tmp_path / "run"
    run.mkdir()
    mark_output(run, "train")
    (run / "last.pt").write_bytes(b"PK\x03\x04 cut short")
    r = run_cli("train", study, "--model", "frame", "--out", run, "--epochs", "2")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "last.pt: this checkpoint cannot be read" in _first_line(r.stderr)
    assert "delete last.pt" in r.stderr


# --------------------------------------------------------------------------------------------
# Option values are checked before any work; every failure is one paragraph, never a traceback.


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fp-rates", "nan"], "--fp-rates 'nan' must be finite numbers"),
        (["--fp-rates", "inf"], "--fp-rates 'inf' must be finite numbers"),
        (["--fp-rates=-1,0.5"], "--fp-rates '-1,0.5' must be numbers above 0"),
        (["--fp-rates", "0"], "--fp-rates '0' must be numbers above 0"),
        (["--fp-rates", "abc"], "--fp-rates 'abc' must be FP/scan rates"),
        (["--bootstrap", "0"], "--bootstrap 0 must be at least 1"),
        (["--seed", "-1"], "--seed -1 must be at least 0"),
        (["--hit", "iou:2"], "unknown hit rule 'iou:2'"),
        (["--hit", "middle"], "unknown hit rule 'middle'"),
    ],
)
def test_evaluate_option_values_are_checked_before_any_work(
    study_with_results, tmp_path, args, message
):
    root, det, _ = study_with_results
    r = run_cli("evaluate", root, "--detections", f"m={det}", "--out", tmp_path / "o", *args)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert message in _first_line(r.stderr)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs 0 must be at least 1"),
        (["--epochs", "-1"], "--epochs -1 must be at least 1"),
        (["--seed", "-3"], "--seed -3 must be at least 0"),
        (["--device", "cuda"], "the device 'cuda' is not available"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_train_option_values_are_checked_before_any_work(
    study_with_results, tmp_path, args, message
):
    import torch

    if args == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    root, _, _ = study_with_results
    r = run_cli("train", root, "--model", "frame", "--out", tmp_path / "run", *args)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert message in _first_line(r.stderr)
    assert not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize(
    "fractions, message",
    [
        ("abc", "--fractions 'abc' must be three fractions"),
        ("0.5,0.5", "--fractions '0.5,0.5' must be three fractions"),
        ("0,0,0", "--fractions '0,0,0' sum to zero"),
        ("=0.6,-0.2,0.6", "must not be below 0"),
    ],
)
def test_split_fractions_are_checked_and_the_manifest_is_untouched(
    study_with_results, fractions, message
):
    root, _, _ = study_with_results
    before = tree_hash(root)
    option = (
        ["--fractions" + fractions] if fractions.startswith("=") else ["--fractions", fractions]
    )
    r = run_cli("split", root, *option)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert message in _first_line(r.stderr)
    assert tree_hash(root) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs 0 must be at least 1"),
        (["--bootstrap", "-5"], "--bootstrap -5 must be at least 1"),
        (["--patients", "0"], "--patients 0 must be at least 1"),
    ],
)
def test_report_option_values_are_checked_before_any_work(tmp_path, args, message):
    r = run_cli("report", "--out", tmp_path / "rep", *args)
    assert r.returncode == 1 and message in _first_line(r.stderr)
    assert not (tmp_path / "rep").exists()


def test_training_on_a_split_without_any_lesion_is_refused(tmp_path):
    root = one_clip_study(tmp_path / "s", n_frames=6, split="train")
    r = run_cli("train", root, "--model", "frame", "--out", tmp_path / "run", "--epochs", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "split has no lesion boxes" in _first_line(r.stderr)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_an_unexpected_failure_is_called_a_bug_with_its_log_and_no_traceback(tmp_path):
    code = (
        "import usbkit.cli as c, usbkit.io.check as k\n"
        "def boom(*a, **kw):\n    raise RuntimeError('simulated')\n"
        "k.check_study = boom\n"
        "raise SystemExit(c.main(['--quiet', 'check', {!r}]))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-c", code.format(str(tmp_path))], capture_output=True, text=True, env=env
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    line = _first_line(r.stderr)
    assert "an unexpected problem stopped usbkit (RuntimeError: simulated)" in line
    assert "This is a bug in usbkit" in line and "--debug" in line
    logs = list((tmp_path / ".cache" / "usbkit" / "logs").glob("usbkit-check-*.log"))
    assert logs and "RuntimeError: simulated" in logs[0].read_text()
    debug = subprocess.run(
        [sys.executable, "-c", code.format(str(tmp_path)).replace("'--quiet'", "'--debug'")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert "Traceback" in debug.stderr and debug.returncode == 1


def test_expected_system_failures_are_put_in_words(tmp_path, monkeypatch):
    """A full disk or a permission problem that reaches the command line without a usbkit
    message still ends in one plain paragraph."""
    from usbkit.cli import _plain_error

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o"))
    assert "the disk is full" in _plain_error(full)
    denied = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "p"))
    assert "not allowed to read or write here" in _plain_error(denied)
    assert _plain_error(RuntimeError("x")) is None


def test_usbkits_warnings_are_one_plain_line_not_a_source_listing(study_with_results, tmp_path):
    root, _, _ = study_with_results
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("x")
    env = {**os.environ, "USBKIT_CACHE": str(not_a_folder)}
    r = subprocess.run(
        [sys.executable, "-m", "usbkit", "--quiet", "check", str(root)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if line.strip()]
    assert warning and warning[0].startswith("usbkit check: warning: ")
    assert str(not_a_folder) in warning[0] and ".py:" not in r.stderr
    assert not_a_folder.read_text() == "x"


def test_evaluating_clips_without_any_annotated_lesion_is_refused_not_zero_percent(tmp_path):
    root = one_clip_study(tmp_path / "s")
    det = tmp_path / "det.csv"
    det.write_text("clip_id,frame,score,x0,y0,x1,y1\na,1,0.9,12,12,28,28\n")
    r = run_cli("evaluate", root, "--detections", f"m={det}", "--out", tmp_path / "out")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "no lesion is annotated in the clips evaluated" in _first_line(r.stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ['{"x": 1}', "[1, 2]", '{"models": {}, "fp_rates": []}'])
def test_plan_on_a_file_that_is_not_usbkits_results_says_so(tmp_path, content):
    path = tmp_path / "results.json"
    path.write_text(content)
    r = run_cli("plan", "--results", path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "bug" not in r.stderr
    assert "this is not a results.json of usbkit evaluate" in _first_line(r.stderr)


def test_outputs_built_aside_get_the_permissions_of_any_new_file(tmp_path):
    from usbkit.safeio import atomic_dir, write_text

    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "report") as tmp:
            write_text(tmp / "index.html", "<p>done</p>")
    finally:
        os.umask(old)
    # readable by colleagues as a plain mkdir / open would make them, not private to the user
    assert (tmp_path / "report").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "report" / "index.html").stat().st_mode & 0o777 == 0o644
