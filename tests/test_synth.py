"""The synthetic cohort: real speckle, lesions where the boxes say, mimics at their rates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from usbkit.io.check import check_study
from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.study import load_study
from usbkit.synth import SweepConfig, SynthConfig, preset_config, synthesize
from usbkit.synth.bmode import RAYLEIGH_SNR, complex_scatterers, envelope, psf_transfer
from usbkit.synth.scene import plan_sweep


def test_fully_developed_speckle_has_rayleigh_statistics():
    rng = np.random.default_rng(0)
    tf = psf_transfer((256, 256), 0.9, 1.6)
    env = np.concatenate(
        [
            envelope(np.ones((256, 256)), complex_scatterers(rng, (256, 256)), tf).ravel()
            for _ in range(4)
        ]
    )
    snr = env.mean() / env.std()
    assert RAYLEIGH_SNR == pytest.approx(1.913, abs=1e-3)
    assert snr == pytest.approx(RAYLEIGH_SNR, abs=0.03)
    # Rayleigh: mean^2 / E[A^2] = pi / 4
    assert env.mean() ** 2 / (env**2).mean() == pytest.approx(np.pi / 4, abs=0.01)


def _tiny(seed=0, patients=3):
    cfg = preset_config("quick", patients=patients, seed=seed)
    return replace(cfg, sweep=replace(cfg.sweep, frames=(10, 12)))


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "s"
    synthesize(root, config=_tiny(patients=4), progress=False, workers=1)
    return root


def test_synth_study_passes_check_and_saves_its_config(tiny_study):
    assert check_study(tiny_study, progress=False) == []
    cfg = SynthConfig.load(tiny_study / "synth_config.json")
    assert cfg == _tiny(patients=4)
    study = load_study(tiny_study)
    assert study.manifest["fps"].between(15, 30).all()
    assert (study.manifest.groupby("patient_id")["split"].nunique() == 1).all()


def test_same_seed_gives_identical_annotations_and_frames(tiny_study, tmp_path):
    again = synthesize(tmp_path / "again", config=_tiny(patients=4), progress=False, workers=2)
    assert (again / "annotations.csv").read_bytes() == (tiny_study / "annotations.csv").read_bytes()
    a, b = load_study(tiny_study), load_study(again)
    for cid in a.clip_ids:
        fa = open_clip(a.clip_path(cid), ReaderSettings(cache=False)).frames
        fb = open_clip(b.clip_path(cid), ReaderSettings(cache=False)).frames
        assert np.array_equal(fa, fb)
    other = synthesize(tmp_path / "other", config=_tiny(seed=1, patients=4), progress=False)
    assert (other / "annotations.csv").read_bytes() != (tiny_study / "annotations.csv").read_bytes()


def test_lesions_are_darker_than_the_tissue_around_their_boxes(tmp_path):
    cfg = _tiny(patients=8, seed=5)
    cfg = replace(
        cfg,
        lesions=replace(cfg.lesions, normal_fraction=0.0, dip_rate=0.0),
        mimics=replace(cfg.mimics, lobule_mimics_per_clip=0, artifacts_per_100_frames=0),
    )
    root = synthesize(tmp_path / "s", config=cfg, progress=False)
    study = load_study(root)
    darker, total = 0, 0
    for cid in study.clip_ids:
        clip = open_clip(study.clip_path(cid), ReaderSettings(crop=False))
        for b in study.boxes(cid).itertuples():
            if (b.x1 - b.x0) < 8 or (b.y1 - b.y0) < 8:
                continue
            img = clip[b.frame].astype(float)
            x0, y0, x1, y1 = int(b.x0), int(b.y0), int(b.x1), int(b.y1)
            cx, cy, hw, hh = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 4, (y1 - y0) // 4
            inside = img[cy - hh : cy + hh + 1, cx - hw : cx + hw + 1].mean()
            ring = img[max(y0 - 6, 0) : y1 + 6, max(x0 - 6, 0) : x1 + 6].copy()
            ring[6 : 6 + (y1 - y0), 6 : 6 + (x1 - x0)] = np.nan
            darker += inside < np.nanmean(ring)
            total += 1
    assert total > 20 and darker / total > 0.9


def test_mimics_and_artifacts_follow_their_configured_rates():
    cfg = preset_config("quick")
    rng = np.random.default_rng(0)
    plans = [plan_sweep(rng, cfg, "benign", 1) for _ in range(400)]
    mimics = np.mean([len(p.mimics) for p in plans])
    arts = sum(len(p.artifacts) for p in plans) / sum(p.n_frames for p in plans) * 100
    assert mimics == pytest.approx(cfg.mimics.lobule_mimics_per_clip, rel=0.12)
    assert arts == pytest.approx(cfg.mimics.artifacts_per_100_frames, rel=0.15)
    more = replace(cfg, mimics=replace(cfg.mimics, lobule_mimics_per_clip=4.0))
    assert np.mean([len(plan_sweep(rng, more, "benign", 1).mimics) for _ in range(200)]) > 3.4
    durations = [m.visibility.astype(bool).sum() for p in plans for m in p.mimics]
    assert min(durations) >= cfg.mimics.lobule_frames[0] - 1
    assert max(durations) <= cfg.mimics.lobule_frames[1]


def test_events_file_records_where_mimics_appear(tiny_study):
    events = pd.read_csv(tiny_study / "synth_events.csv")
    assert set(events["kind"]) <= {"lobule_mimic", "contact_loss", "reverberation"}
    assert (events["x1"] > events["x0"]).all()


def test_lesions_enter_grow_and_leave_the_plane():
    cfg = replace(preset_config("quick"), sweep=SweepConfig(frames=(80, 80)))
    rng = np.random.default_rng(3)
    plan = plan_sweep(rng, cfg, "benign", 1)
    from usbkit.synth.scene import SweepRenderer

    r = SweepRenderer(plan, cfg)
    widths = []
    for t in range(plan.n_frames):
        box = r.echo_map(t)[1]["lesions"].get("1")
        widths.append(0 if box is None else box[2] - box[0])
    widths = np.array(widths)
    seen = np.flatnonzero(widths)
    assert len(seen) > 3 and widths.max() > widths[seen[0]] and widths.max() > widths[seen[-1]]


def test_paper_preset_on_a_few_patients_passes_check(tmp_path):
    cfg = preset_config("paper", patients=2, seed=1)
    assert cfg.sweep.frames == (60, 120)
    cfg = replace(cfg, sweep=replace(cfg.sweep, frames=(14, 16)))
    root = synthesize(tmp_path / "p", config=cfg, progress=False)
    assert check_study(root, progress=False) == []
    assert preset_config("paper").patients == 506
