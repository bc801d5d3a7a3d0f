"""Shared fixtures: a private frame cache per test session and small generated media."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("usbkit-cache")
    os.environ["USBKIT_CACHE"] = str(cache)
    yield cache


@pytest.fixture
def cache_dir():
    return Path(os.environ["USBKIT_CACHE"])


def pattern_frames(n: int = 6, h: int = 48, w: int = 64) -> np.ndarray:
    """Frames of flat 16x16 blocks whose levels change per frame (codec-friendly)."""
    frames = np.zeros((n, h, w), dtype=np.uint8)
    for i in range(n):
        for by in range(0, h, 16):
            for bx in range(0, w, 16):
                frames[i, by : by + 16, bx : bx + 16] = (40 + 13 * i + 3 * by + 2 * bx) % 220 + 16
    return frames


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m usbkit ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "usbkit", "--quiet", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ},
    )


def tree_hash(root: Path) -> str:
    """Hash of every file (path and bytes) under ``root``: proves nothing changed."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def write_study(root: Path, manifest: str, annotations: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.csv").write_text(manifest)
    (root / "annotations.csv").write_text(annotations)
    return root


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """A finished run folder (``OUT/run.json``) on a 6-patient synthetic study with short
    clips: both shipped models' detections on its test split and their evaluation."""
    from dataclasses import replace

    from usbkit.evaluation.results import EvalConfig
    from usbkit.report.steps import detect_all, evaluate_run, start_run, train_or_load
    from usbkit.synth import preset_config, synthesize

    out = tmp_path_factory.mktemp("tiny") / "out"
    cfg = preset_config("quick", patients=6, seed=2)
    cfg = replace(cfg, sweep=replace(cfg.sweep, frames=(16, 20)), split_fractions=(0.34, 0.0, 0.66))
    study = synthesize(out / "study", config=cfg, progress=False)
    run = start_run(out, study)
    train_or_load(run, train=False)
    detect_all(run, split="test", progress=False)
    evaluate_run(run, EvalConfig(n_boot=50), figures=False, progress=False)
    return out


def run_detections(out: Path) -> dict:
    """Each model's detections of the run in ``out``, as DataFrames."""
    from usbkit.report.run import Run

    return Run.open(out).read_detections()


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def chromium_path() -> str | None:
    from usbkit.report.figures import browser_path

    return browser_path()
