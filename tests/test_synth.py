"""The synthetic cohort: real speckle, lesions where the boxes say, mimics at their rates."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
import typing
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from usbkit.io.check import check_study
from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.study import load_study
from usbkit.synth import (
    AnatomyConfig,
    ImagingConfig,
    LesionConfig,
    MimicConfig,
    ScreenConfig,
    ShapeConfig,
    SweepConfig,
    SynthConfig,
    preset_config,
    scene,
    screen,
    synthesize,
)
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
            m = 12  # a ring 1.3 mm wide around the box (0.11 mm pixels)
            ring = img[max(y0 - m, 0) : y1 + m, max(x0 - m, 0) : x1 + m].copy()
            ring[min(m, y0) : min(m, y0) + (y1 - y0), min(m, x0) : min(m, x0) + (x1 - x0)] = np.nan
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


def test_a_lesion_is_boxed_in_every_frame_where_its_section_is_at_least_two_mm_wide():
    """The ends of a passage, where the section is small but the mass is seen, are boxed
    too: a mark there is a true positive, never a false one."""
    cfg = replace(preset_config("quick"), sweep=SweepConfig(frames=(80, 80)))
    plan = plan_sweep(np.random.default_rng(3), cfg, "benign", 1)
    from usbkit.synth.scene import SweepRenderer, body_mask

    r = SweepRenderer(plan, cfg)
    body = plan.lesions[0]
    boxed, wide, sections = [], [], []
    for t in range(plan.n_frames):
        g = r._layers(t)
        _, hard, s = body_mask(body, g["X"], g["Z"], g["y"], core=True)
        area_mm2 = 0.0 if hard is None else hard.sum() * cfg.imaging.pixel_mm**2
        wide.append(2 * np.sqrt(area_mm2 / np.pi) >= cfg.lesions.annotate_min_diameter_mm)
        boxed.append(r.echo_map(t)[1]["lesions"].get(body.lesion_id) is not None)
        sections.append(s)
    assert cfg.lesions.annotate_min_diameter_mm == 2.0
    assert boxed == wide and any(boxed) and not all(boxed)
    # the boxed frames reach down to small sections at both ends of the passage
    s_boxed = np.array(sections)[np.array(boxed)]
    assert s_boxed[0] < 0.5 and s_boxed[-1] < 0.5 and s_boxed.max() > 0.9


def test_paper_preset_on_a_few_patients_passes_check(tmp_path):
    cfg = preset_config("paper", patients=2, seed=1)
    assert cfg.sweep.frames == (60, 120)
    cfg = replace(cfg, sweep=replace(cfg.sweep, frames=(14, 16)))
    root = synthesize(tmp_path / "p", config=cfg, progress=False)
    assert check_study(root, progress=False) == []
    assert preset_config("paper").patients == 506


# Numbers that may stay in the synthesis code, because no researcher calibrating the cohort
# would change them (signs are ignored: -1 is a minus applied to 1):
ALLOWED_NUMBERS = {
    0,  # zero: range starts, "no effect", the first frame
    1,  # one: unit gain ("no posterior feature"), full visibility, inclusive ranges (hi + 1)
    2,  # two: diameter -> semi-axis, 2 pi, squares, centring, the two nearest lobule seeds
    0.5,  # half: pixel and frame centres, -1/2 in a Gaussian, the jitter innovation scale
    100,  # artifacts_per_100_frames is a rate per 100 frames
    1e-3,  # floor (mm) on an artifact half-width before dividing by it; drawn sizes are larger
    50,  # clip of a logistic's argument, against overflow in exp
}
# Functions that turn the config into a sweep, its echo maps and the scanner screen.
SYNTHESIS_CODE = [
    scene.plan_sweep,
    scene._visibility,
    scene._shape,
    scene.SweepRenderer.echo_map,
    screen.make_screen,
    screen._text,
]
ARRAY_BUILDERS = {"zeros", "ones", "empty", "full"}


def _bare_numbers(tree: ast.AST) -> list[tuple[int, float]]:
    """Numeric literals other than array indices, axes and array shapes."""
    exempt = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            exempt |= {id(n) for n in ast.walk(node.slice)}
        elif isinstance(node, ast.keyword) and node.arg == "axis":
            exempt |= {id(n) for n in ast.walk(node.value)}
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ARRAY_BUILDERS
            and node.args
        ):
            exempt |= {id(n) for n in ast.walk(node.args[0])}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) in (int, float)
        and id(node) not in exempt
        and node.value not in ALLOWED_NUMBERS
    ]


def test_synthesis_code_holds_no_bare_numbers_every_setting_is_in_the_config():
    for func in SYNTHESIS_CODE:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        assert _bare_numbers(tree) == [], f"{func.__qualname__}: move these into SynthConfig"
    for module in (scene, screen):
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                assert _bare_numbers(node.value) == [], (
                    f"{module.__name__} line {node.lineno}: a table of settings belongs in "
                    "SynthConfig"
                )


def test_bare_number_check_catches_a_number_that_creeps_back():
    src = "def f(rng, cfg):\n    return rng.uniform(0.5, 0.8) * cfg.x[1] + np.zeros((0, 3))\n"
    assert _bare_numbers(ast.parse(src)) == [(2, 0.8)]


SECTIONS = [
    ScreenConfig,
    ImagingConfig,
    SweepConfig,
    AnatomyConfig,
    ShapeConfig,
    LesionConfig,
    MimicConfig,
    SynthConfig,
]
UNIT = re.compile(
    r"\b(mm|mm\^3|pixels?|frames?|db|db/cm|rad|ratio|probability|fractions?|gray level|"
    r"per frame|per 100 frames|envelope units|exponent|number of|characters|cycles per turn|"
    r"quality scale)\b",
    re.IGNORECASE,
)


def _attributes(cls) -> dict[str, str]:
    """The numpydoc ``Attributes`` entries of a config class: field name -> description."""
    section = inspect.getdoc(cls).split("Attributes\n----------\n", 1)[1]
    entries, names = {}, []
    for line in section.splitlines():
        if line and not line.startswith(" "):
            names = [n.strip() for n in line.split(" : ")[0].split(",")]
            entries.update({n: "" for n in names})
        else:
            for n in names:
                entries[n] += " " + line.strip()
    return entries


def test_every_synth_setting_is_frozen_and_documented_with_its_unit():
    for cls in SECTIONS:
        assert cls.__dataclass_params__.frozen, cls.__name__
        docs, hints = _attributes(cls), typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        assert set(docs) == set(names), f"{cls.__name__}: document exactly its fields"
        for name in names:
            if dataclasses.is_dataclass(hints[name]) or hints[name] in (bool, str):
                continue
            assert UNIT.search(docs[name]), f"{cls.__name__}.{name}: state its unit"


def test_synth_config_round_trips_through_json_with_every_section():
    cfg = preset_config("paper", patients=3, seed=9)
    cfg = replace(
        cfg,
        imaging=replace(
            cfg.imaging, screen=replace(cfg.imaging.screen, glyph_px=(9, 6), settings_rows=5)
        ),
        sweep=replace(cfg.sweep, start_y_mm=(5.0, 25.0), jitter_ar=0.9),
        anatomy=replace(cfg.anatomy, fat_depth_mm=(4.0, 6.0), echo_fat=0.08, boundary_waves=2),
        shape=replace(cfg.shape, spicules=(3, 7), irregular_edge_mm=(0.2, 0.5)),
        lesions=replace(cfg.lesions, shadow_probability=0.9, visibility_range=(0.1, 1.0)),
        mimics=replace(cfg.mimics, reverberation_bands=3, lobule_depth_mm=(-2.0, 6.0)),
    )
    for config in (SynthConfig(), preset_config("paper"), cfg):
        again = SynthConfig.from_dict(json.loads(config.to_json()))
        assert again == config
        assert isinstance(again.imaging.screen, ScreenConfig)
        assert isinstance(again.anatomy.skin_thickness_mm, tuple)
    # a config saved before a section existed reads with that section's defaults
    old = json.loads(cfg.to_json())
    del old["anatomy"], old["shape"], old["imaging"]["screen"]
    again = SynthConfig.from_dict(old)
    assert again.anatomy == AnatomyConfig() and again.imaging.screen == ScreenConfig()
    assert again.lesions == cfg.lesions


def test_anatomy_and_screen_settings_reach_the_rendered_frames():
    cfg = preset_config("quick")
    cfg = replace(
        cfg,
        sweep=replace(cfg.sweep, frames=(4, 4)),
        anatomy=replace(cfg.anatomy, skin_thickness_mm=(1.5, 1.5), echo_skin=3.25),
        mimics=replace(cfg.mimics, lobule_mimics_per_clip=0, artifacts_per_100_frames=0),
        imaging=replace(cfg.imaging, screen=replace(cfg.imaging.screen, background_level=40)),
    )
    plan = plan_sweep(np.random.default_rng(0), cfg, "normal", 0)
    assert plan.boundaries["skin"] == 1.5
    echo = scene.SweepRenderer(plan, cfg).echo_map(0)[0]
    skin_rows = int(1.5 / cfg.imaging.pixel_mm)
    assert np.allclose(echo[:skin_rows], 3.25)
    img, ox, oy = screen.make_screen(np.random.default_rng(0), cfg.imaging)
    assert img[-1, 0] == 40 and oy >= cfg.imaging.screen.image_top_min_px


def test_speckle_reduction_keeps_the_mean_echo_and_lowers_the_speckle_contrast():
    from usbkit.synth.bmode import gaussian_transfer, reduce_speckle

    rng = np.random.default_rng(0)
    env = envelope(
        np.ones((128, 128)), complex_scatterers(rng, (128, 128)), psf_transfer((128, 128), 1.8, 3.2)
    )
    smooth = reduce_speckle(env, gaussian_transfer(env.shape, 1.5))
    assert np.mean(smooth**2) == pytest.approx(np.mean(env**2), rel=1e-3)  # energy kept
    assert smooth.std() / smooth.mean() < 0.8 * env.std() / env.mean()
    assert reduce_speckle(env, None) is env
