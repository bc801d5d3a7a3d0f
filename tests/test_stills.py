"""Still images like a public breast-ultrasound set (BUSI layout): varied sizes, gains and
mass sizes inside a scanner screen, imported with `usbkit import busi` and carried through the
docs/importers.md's commands (split, train, detect, evaluate)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from usbkit.synth.stills import StillsConfig, render_still, synthesize_stills


@pytest.fixture(scope="module")
def stills(tmp_path_factory):
    cfg = StillsConfig(images=10, seed=3, width_px=(400, 520))
    return synthesize_stills(tmp_path_factory.mktemp("stills") / "busi", cfg, progress=False)


def test_stills_vary_in_size_field_of_view_and_gain_like_a_real_image_set():
    cfg = StillsConfig(seed=1)
    shapes, levels = set(), []
    for k in range(8):
        kind, image, mask = render_still(k, cfg)
        assert image.shape == mask.shape and image.dtype == np.uint8
        shapes.add(image.shape)
        levels.append(image[image > 20].mean())
        if kind == "normal":
            assert not mask.any()
        else:
            assert mask.any() and set(np.unique(mask)) <= {0, 255}
    assert len(shapes) == 8 and min(s[1] for s in shapes) >= 400 + 40
    assert max(levels) - min(levels) > 5  # overall gain differs from image to image


def test_each_mask_covers_a_dark_mass_inside_the_bmode_image_not_the_screen_border():
    for k in range(6):
        kind, image, mask = render_still(k, StillsConfig(seed=4))
        if kind == "normal":
            continue
        ys, xs = np.nonzero(mask)
        rim = image[: ys.min(), :]  # the screen's top border holds text, never a mass
        assert rim.size and mask[: ys.min()].sum() == 0
        inside = image[mask > 0].mean()
        around = image[max(ys.min() - 40, 0) : ys.max() + 40, max(xs.min() - 40, 0) : xs.max() + 40]
        assert inside < around.mean()


def test_stills_go_through_the_readme_commands_from_import_to_evaluation(stills, tmp_path):
    study = tmp_path / "study"
    r = run_cli("import", "busi", stills, study)
    assert r.returncode == 0, r.stderr
    manifest = (study / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 10
    assert run_cli("split", study, "--seed", "0").returncode == 0
    run = tmp_path / "run"
    r = run_cli(
        "train", study, "--model", "frame", "--out", run, "--epochs", "1",
        "--frames-per-epoch", "64", "--input-size", "64x80", "--width", "8", "--workers", "0",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["window_length"] == 1 and cfg["batch"] == 32  # stills: one frame per window
    det = tmp_path / "det.csv"
    r = run_cli("detect", study, "--checkpoint", run, "--out", det, "--split", "test")
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", study, "--detections", f"frame={det}", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert 0.0 <= res["models"]["frame"]["ap50"] <= 1.0


def test_a_stills_folder_is_its_own_output_and_never_overwritten_silently(stills):
    with pytest.raises(Exception, match="overwrite|not empty|earlier"):
        synthesize_stills(stills, StillsConfig(images=1), progress=False)
    assert Image.open(next(stills.glob("*/*).png"))).size[0] >= 400
