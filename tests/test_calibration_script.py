"""The difficulty calibration (scripts/calibrate_difficulty.py) turns exactly one knob."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from usbkit.synth import preset_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_difficulty.py"


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("calibrate_difficulty", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_size_knob_scales_only_the_smallest_lesion_diameter(calibrate):
    cfg = preset_config("quick")
    new, words = calibrate.knob_config(cfg, "size", 1.25)
    lo, hi = cfg.lesions.size_mm
    assert new.lesions.size_mm == (lo * 1.25, hi)
    assert words == f"lesion diameter {lo * 1.25:g}-{hi:g} mm"
    assert new.mimics == cfg.mimics and new.lesions.contrast == cfg.lesions.contrast


def test_mimic_knob_scales_look_alikes_and_artifacts_together(calibrate):
    cfg = preset_config("quick")
    new, _ = calibrate.knob_config(cfg, "mimics", 0.5)
    assert new.mimics.lobule_mimics_per_clip == cfg.mimics.lobule_mimics_per_clip * 0.5
    assert new.mimics.artifacts_per_100_frames == cfg.mimics.artifacts_per_100_frames * 0.5
    assert new.lesions == cfg.lesions


def test_contrast_knob_scales_each_lesions_contrast_deficit(calibrate):
    assert calibrate.scaled_contrast((0.02, 0.2), 0.5) == (0.51, 0.6)
    cfg = preset_config("quick")
    new, _ = calibrate.knob_config(cfg, "contrast", 1.0)
    assert new.lesions.contrast == cfg.lesions.contrast


def test_the_chosen_factor_is_the_one_closest_to_the_study_row_at_its_worst_rate(calibrate):
    class Args:
        knob, checkpoint, patients, seed, factors = "size", "pretrained:frame", 5, 7, [1, 2]

    rows = [
        {
            "factor": 1,
            "setting": "a",
            "lesions": 9,
            "sensitivity": [0.5, 0.9, 0.9],
            "ap50": 0.5,
            "worst": 0.266,
        },
        {
            "factor": 2,
            "setting": "b",
            "lesions": 9,
            "sensitivity": [0.7, 0.8, 0.9],
            "ap50": 0.6,
            "worst": 0.066,
        },
    ]
    text = calibrate.table(rows, Args)
    assert "| 2 (chosen) | b |" in text and "Chosen: f = 2, b (worst distance 6.6 points)" in text
