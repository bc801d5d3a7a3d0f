"""`usbkit plan`: the power simulation against the closed form, hand-worked pilots, the stated
effect and the simulation's properties (docs/metrics.md#power-of-a-comparison-usbkit-plan)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from usbkit.errors import UsbkitError
from usbkit.evaluation.froc import froc_curve, operating_point
from usbkit.evaluation.power import (
    PlanConfig,
    _Effect,
    _load_pilot,
    mcnemar_power,
    mcnemar_sample_size,
    minimal_coupling,
    parse_effect,
    plan_study,
    target_cells,
)
from usbkit.evaluation.results import ratings_from_units
from usbkit.evaluation.stats import _prepare, operating_cut


def unclustered(cells, copies: int = 1) -> dict:
    """A pilot with one patient per lesion (or ``copies`` identical lesions per patient) and
    no false marks; ``cells`` = (both, A only, B only, neither) lesions."""
    a = [1] * cells[0] + [1] * cells[1] + [0] * cells[2] + [0] * cells[3]
    b = [1] * cells[0] + [0] * cells[1] + [1] * cells[2] + [0] * cells[3]
    n = len(a)
    pats = [f"p{i}" for i in range(n)]
    clips = [f"c{i}" for i in range(n)]
    return {
        "models": {"A": {}, "B": {}},
        "units": {
            "clips": {"clip_id": clips, "patient_id": pats, "n_frames": [50] * n},
            "lesions": {
                "clip_id": [c for c in clips for _ in range(copies)],
                "lesion_id": [str(k) for _ in clips for k in range(copies)],
                "patient_id": [p for p in pats for _ in range(copies)],
            },
            "ratings": {
                "A": [0.9 if v else None for v in a for _ in range(copies)],
                "B": [0.8 if v else None for v in b for _ in range(copies)],
            },
            "fp_tracks": {m: {"clip_id": [], "score": []} for m in ("A", "B")},
        },
    }


def clustered(n_patients: int = 60, seed: int = 0) -> dict:
    """A pilot with 1-2 clips per patient, lesions in most, correlated ratings, FP tracks."""
    rng = np.random.default_rng(seed)
    clips, cp, lc, lp, z = [], [], [], [], []
    for p in range(n_patients):
        base = rng.normal(0, 0.7)
        for c in range(int(rng.integers(1, 3))):
            clips.append(f"p{p}c{c}")
            cp.append(f"p{p}")
            if p % 4:
                for _ in range(int(rng.integers(1, 3))):
                    lc.append(clips[-1])
                    lp.append(f"p{p}")
                    z.append(base + rng.normal())
    z = np.asarray(z)
    ratings, tracks = {}, {}
    for name, shift in (("A", 2.0), ("B", 0.8)):
        s = 1 / (1 + np.exp(-(1.2 + shift + 1.5 * z + rng.normal(0, 0.8, len(z)))))
        ratings[name] = s.round(3).tolist()
        k = rng.poisson(6, len(clips))
        tracks[name] = {
            "clip_id": np.repeat(clips, k).tolist(),
            "score": rng.beta(1, 6, k.sum()).round(3).tolist(),
        }
    return {
        "models": {"A": {}, "B": {}},
        "units": {
            "clips": {"clip_id": clips, "patient_id": cp, "n_frames": [40] * len(clips)},
            "lesions": {"clip_id": lc, "lesion_id": ["1"] * len(lc), "patient_id": lp},
            "ratings": ratings,
            "fp_tracks": tracks,
        },
    }


# ----------------------------------------------------------------- closed form
def test_connor_closed_form_hand_values():
    # p10 = 0.05, p01 = 0.45, alpha 0.05, power 0.8: 22.01, i.e. 23 pairs (Connor 1987, the
    # reference R code of the public calculators)
    assert mcnemar_sample_size(0.5, -0.4) == pytest.approx(22.0115, abs=1e-3)
    n = mcnemar_sample_size(0.3, 0.1)
    assert mcnemar_power(n, 0.3, 0.1) == pytest.approx(0.8, abs=1e-3)
    assert math.isinf(mcnemar_sample_size(0.2, 0.0))


@pytest.mark.parametrize("cells", [(600, 200, 100, 100), (700, 120, 60, 120)])
def test_simulation_agrees_with_the_closed_form_on_unclustered_lesions(cells):
    """One lesion per patient, no false marks: a simulated study is a multinomial draw of the
    paired table, the setting of Connor's formula. At its sample size the simulated power of
    the test it assumes (uncorrected chi-square McNemar) is 0.8 within 3 Monte-Carlo standard
    errors; the exact test the evaluation reports is conservative."""
    n = sum(cells)
    psi, diff = (cells[1] + cells[2]) / n, (cells[1] - cells[2]) / n
    size = math.ceil(mcnemar_sample_size(psi, diff))
    cfg = PlanConfig(grid=(size,), n_sim=4000, exact=False, seed=1)
    sim = plan_study(unclustered(cells), cfg)
    se = math.sqrt(0.8 * 0.2 / cfg.n_sim)
    assert abs(sim.power[0] - 0.8) <= 3 * se
    assert sim.power_ci95[0][0] <= sim.closed_form["power"][0] + 2 * se
    exact = plan_study(unclustered(cells), PlanConfig(grid=(size,), n_sim=4000, seed=1))
    assert exact.power[0] < sim.power[0]
    # the size reaching 0.8 on a fine grid is the closed form's, within a few percent
    fine = plan_study(unclustered(cells), PlanConfig(n_sim=2000, exact=False, seed=2))
    assert fine.n_required_interp == pytest.approx(size, rel=0.08)


def test_minimum_detectable_difference_matches_the_closed_form():
    """At the pilot's size (234, discordance 0.3) the closed form detects d = 0.1 with power
    0.8; the simulated minimum detectable difference (chi-square McNemar) is about that."""
    pilot = unclustered((82, 41, 29, 82))  # 234 patients, discordance 70/234 = 0.299
    plan = plan_study(pilot, PlanConfig(n_sim=2000, exact=False, grid=(234,)))
    psi = plan.pilot["discordance"]
    from scipy.optimize import brentq

    d_cf = brentq(lambda d: mcnemar_power(234, psi, d) - 0.8, 0.01, psi - 1e-6)
    assert plan.mdd == pytest.approx(d_cf, abs=0.012)


# ----------------------------------------------------------------- hand-worked pilot
def test_pilot_table_sensitivities_and_discordance():
    plan = plan_study(unclustered((115, 35, 15, 35)), PlanConfig(n_sim=50, grid=(50,)))
    p = plan.pilot
    assert p["table"] == [[115, 35], [15, 35]]
    assert p["sensitivity"] == [0.75, 0.65] and p["diff"] == pytest.approx(0.1)
    assert p["discordance"] == 0.25 and p["n_patients"] == 200 and p["n_lesions"] == 200
    assert p["mcnemar_p"] == pytest.approx(
        __import__("statsmodels.stats.contingency_tables", fromlist=["mcnemar"])
        .mcnemar([[115, 35], [15, 35]], exact=True)
        .pvalue
    )
    assert plan.effect == {"sensitivity": [0.75, 0.65], "diff": pytest.approx(0.1),
                           "discordance": 0.25, "assumed": False}  # fmt: skip


def test_operating_thresholds_are_found_again_in_every_simulated_study():
    """A lesion counts in a simulated study exactly when the evaluation's own operating point
    on that study (the duplicated cohort) finds it."""
    pilot = clustered(12, seed=3)
    r = ratings_from_units(pilot)["A"]
    index = {p: i for i, p in enumerate(sorted(set(r.clips["patient_id"])))}
    rng = np.random.default_rng(0)
    W = rng.integers(0, 3, size=(25, len(index))).astype(float)
    W[:, 1] += 1
    cut = operating_cut(_prepare(r, index), W, [0.5, 2.0])
    pat_clip = r.clips["patient_id"].map(index).to_numpy()
    pat_les = r.lesions["patient_id"].map(index).to_numpy()
    pat_trk = r.tracks["patient_id"].map(index).to_numpy()
    for row in range(len(W)):
        w = W[row]
        les = np.repeat(r.lesions["rating"].to_numpy(), w[pat_les].astype(int))
        trk = np.repeat(r.tracks["score"].to_numpy(), w[pat_trk].astype(int))
        curve = froc_curve(les, trk, len(les), int(w[pat_clip].sum()))
        for k, x in enumerate((0.5, 2.0)):
            thr = operating_point(curve, x)[1]
            assert np.array_equal(les > cut[row, k], les >= thr)


# ----------------------------------------------------------------- stated effect
def test_target_cells_and_minimal_coupling():
    assert target_cells(0.95, 0.86, 0.12).round(4).tolist() == [0.845, 0.105, 0.015, 0.035]
    with pytest.raises(UsbkitError, match="discordance"):
        target_cells(0.95, 0.80, 0.10)  # a difference of 0.15 needs 15% discordance
    q = np.array([0.6, 0.1, 0.1, 0.2])
    p = target_cells(0.80, 0.65, 0.2)
    T = minimal_coupling(q, p)
    assert np.allclose(T.sum(1), 1) and np.allclose(q @ T, p)
    assert np.allclose(minimal_coupling(q, q), np.eye(4))
    # raising only A: no lesion that A found changes cell, so A's verdicts never get worse
    up = minimal_coupling(q, target_cells(0.8, 0.7, 0.2))
    assert up[0, 0] == pytest.approx(1) and up[1, 1] == pytest.approx(1)


def test_stated_effect_gives_the_stated_sensitivities_at_the_pilot_thresholds():
    pilot_results = clustered(80, seed=1)
    cfg = PlanConfig(fp_rate=0.5)
    pilot = _load_pilot(pilot_results, cfg)
    target = target_cells(0.9, 0.7, 0.3)
    eff = _Effect(pilot, target, 3000, np.random.default_rng(0))
    ra, rb = eff.ratings(target)
    ones = np.ones((1, pilot.n_patients))
    ca, cb = (operating_cut(p, ones, [0.5])[0, 0] for p in pilot.prepared)
    fa, fb = ra > ca, rb > cb
    se = math.sqrt(0.25 / ra.size)
    assert fa.mean() == pytest.approx(0.9, abs=4 * se + 1e-9)
    assert fb.mean() == pytest.approx(0.7, abs=4 * se + 1e-9)
    assert (fa != fb).mean() == pytest.approx(0.3, abs=4 * se + 1e-9)
    # the pilot's own sensitivities and discordance: nothing moves
    same = plan_study(pilot_results, PlanConfig(n_sim=200, grid=(40, 80)))
    stated = plan_study(
        pilot_results, PlanConfig(n_sim=200, grid=(40, 80), effect=tuple(same.pilot["sensitivity"]))
    )
    assert stated.power == same.power and not stated.effect["assumed"]


def test_parse_effect_and_errors():
    assert parse_effect("sequence=0.95,single frame=86%") == {
        "sequence": 0.95,
        "single frame": 0.86,
    }
    for bad in ("sequence", "a=1.5", "=0.3"):
        with pytest.raises(UsbkitError):
            parse_effect(bad)
    with pytest.raises(UsbkitError, match="no model"):
        plan_study(unclustered((5, 2, 1, 2)), PlanConfig(models=("A", "C")))
    with pytest.raises(UsbkitError, match="unknown test"):
        PlanConfig(test="t-test")
    with pytest.raises(UsbkitError, match="cannot go with"):
        plan_study(unclustered((5, 2, 1, 2)), PlanConfig(effect=(0.9, 0.5)))


# ----------------------------------------------------------------- properties
def test_power_rises_with_patients_and_one_seed_gives_the_same_numbers():
    pilot = clustered(60, seed=0)
    cfg = PlanConfig(n_sim=300, n_points=10, seed=5)
    a = plan_study(pilot, cfg)
    b = plan_study(pilot, cfg)
    c = plan_study(pilot, PlanConfig(n_sim=300, n_points=10, seed=6))
    da, db = a.to_dict(), b.to_dict()
    da.pop("seconds"), db.pop("seconds")
    assert da == db and a.power != c.power
    p = np.array(a.power)
    assert len(p) == 10 and p[-1] > p[0] + 0.4
    assert (np.diff(p) >= -0.05).all()  # nested studies: monotone up to Monte-Carlo noise
    assert a.n_required is None or a.power[a.n_patients.index(a.n_required)] >= 0.8
    json.dumps(da, allow_nan=False)
    assert "patients" in a.summary()


def test_clusters_are_kept_whole():
    """Each patient with two copies of one lesion carries no more information than with one:
    the paired bootstrap over patients gives the same power; McNemar, which counts lesions as
    independent, is overconfident with the copies."""
    cells = (40, 12, 6, 12)
    cfg = PlanConfig(n_sim=300, grid=(70,), test="bootstrap", n_inner=100, seed=3)
    one = plan_study(unclustered(cells), cfg)
    two = plan_study(unclustered(cells, copies=2), cfg)
    assert abs(one.power[0] - two.power[0]) <= 0.08
    mc = PlanConfig(n_sim=1000, grid=(70,), seed=3)
    assert (
        plan_study(unclustered(cells, copies=2), mc).power[0]
        > plan_study(unclustered(cells), mc).power[0] + 0.1
    )


def test_the_bootstrap_test_and_mcnemar_agree_on_unclustered_lesions():
    cells = (60, 20, 8, 12)
    boot = plan_study(unclustered(cells), PlanConfig(n_sim=300, grid=(100,), test="bootstrap"))
    chi2 = plan_study(unclustered(cells), PlanConfig(n_sim=300, grid=(100,), exact=False))
    assert boot.power[0] == pytest.approx(chi2.power[0], abs=0.1)


def test_results_json_of_a_real_evaluation_plans():
    from usbkit.evaluation.results import EvalConfig, evaluate_models

    rows_g, rows_d, clips = [], [], []
    rng = np.random.default_rng(0)
    for c in range(30):
        clips.append((f"c{c}", f"p{c // 2}"))
        if c % 3:
            rows_g += [(f"c{c}", f, "1", 10, 10, 40, 40) for f in range(5)]
            for name, q in (("A", 0.8), ("B", 0.5)):
                if rng.random() < q:
                    rows_d.append((name, f"c{c}", 2, float(rng.uniform(0.5, 1)), 12, 12, 38, 38))
        for name in ("A", "B"):
            for f in range(int(rng.integers(0, 3))):
                rows_d.append((name, f"c{c}", f, float(rng.uniform(0, 0.7)), 80, 80, 90, 90))
    g = pd.DataFrame(rows_g, columns=["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"])
    d = pd.DataFrame(rows_d, columns=["m", "clip_id", "frame", "score", "x0", "y0", "x1", "y1"])
    cl = pd.DataFrame(clips, columns=["clip_id", "patient_id"])
    res = evaluate_models(
        g,
        {m: d.loc[d.m == m].drop(columns="m") for m in ("A", "B")},
        cl,
        dict.fromkeys(cl.clip_id, 5),
        EvalConfig(n_boot=20),
        progress=False,
    )
    res = json.loads(json.dumps(res))  # as read back from results.json
    plan = plan_study(res, PlanConfig(n_sim=100, n_points=5))
    comp = next(c for c in res["comparisons"] if c["fp_rate"] == 0.5)
    assert plan.pilot["table"] == comp["table"]
    assert plan.pilot["sensitivity"] == [res["models"][m]["sensitivity"][2] for m in ("A", "B")]


def test_automatic_grid_starts_from_a_few_patients_so_the_pilot_lies_on_the_curve():
    """The quick preset's pilot (11 patients, no effect): the curve used to run from 1,250 to
    5,000 patients, far from the pilot's diamond."""
    from usbkit.evaluation.power import _default_grid

    for n_closed in (math.inf, 2e6, 300.0):
        grid = _default_grid(n_closed, 11, 20)
        assert grid[0] == 4 and grid[-1] >= 22
        assert any(g <= 11 for g in grid) and any(g > 11 for g in grid)
    assert _default_grid(math.inf, 2, 20)[0] == 2  # never above a tiny pilot


def _as_study_models(pilot: dict) -> dict:
    """The pilot's models A and B renamed as the study's single-frame and sequence models."""
    names = {"A": "single frame", "B": "sequence"}
    pilot["models"] = {names[k]: v for k, v in pilot["models"].items()}
    for key in ("ratings", "fp_tracks"):
        pilot["units"][key] = {names[k]: v for k, v in pilot["units"][key].items()}
    return pilot


def test_a_pilot_without_effect_gets_a_plan_for_a_stated_effect():
    from usbkit.evaluation.power import shows_no_effect
    from usbkit.report.findings import stated_effect

    pilot = _as_study_models(unclustered((30, 0, 0, 10)))  # both find the same lesions
    plan = plan_study(pilot, PlanConfig(n_sim=200, n_points=8))
    assert shows_no_effect(plan)
    words, stated = stated_effect(pilot, plan)
    assert stated is not None and stated.effect["assumed"]
    assert stated.effect["sensitivity"] == pytest.approx([0.860, 0.953])  # published at 0.5
    assert "--effect 'single frame=0.86,sequence=0.953' --discordance 0.093" in words
    assert "The pilot shows no difference" in words and stated.summary() in words
    assert stated.n_patients[0] == 4 and stated.power[-1] > stated.power[0]

    differing = _as_study_models(unclustered((40, 25, 2, 13)))
    plan = plan_study(differing, PlanConfig(n_sim=200, n_points=8))
    words, stated = stated_effect(differing, plan)
    assert stated is None and "the curve above is the plan" in words
    assert "--results RUN/results/results.json" in words  # where the report keeps them


@pytest.mark.parametrize("name", ["usbkit.evaluation.power", "usbkit.evaluation.stats"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_a_pilot_where_the_models_never_disagree_has_no_closed_form_power():
    """Both models find the same lesions: the dashed closed-form curve stood at 100% beside a
    simulated 0% (0/0 in Connor's formula); McNemar has nothing to count, so its power is 0."""
    plan = plan_study(unclustered((3, 0, 0, 0)), PlanConfig(n_sim=100, n_points=6))
    assert plan.closed_form["power"] == [0.0] * len(plan.n_patients)


def test_a_tiny_pilot_says_its_simulation_levels_off_and_to_plan_with_the_closed_form():
    """From 3 patients every simulated study repeats those 3: power levels off below the
    target however many are drawn, and the words no longer call it the number to trust."""
    from usbkit.evaluation.power import SMALL_PILOT

    tiny = unclustered((2, 1, 0, 0))  # 3 patients, one lesion found by A only
    plan = plan_study(
        tiny, PlanConfig(n_sim=200, n_points=6, effect=(0.953, 0.86), discordance=0.093)
    )
    assert plan.n_required is None and plan.pilot["n_patients"] < SMALL_PILOT
    words = plan.summary()
    assert "the simulation is no guide" in words and "Plan with the closed form" in words
    assert "the one to trust" not in words

    big = plan_study(clustered(), PlanConfig(n_sim=100, n_points=6))
    assert "the simulation is no guide" not in big.summary()
