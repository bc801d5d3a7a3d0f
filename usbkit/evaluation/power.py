"""Power of the paired comparison, and how many patients a study needs (``usbkit plan``).

docs/metrics.md#power-of-a-comparison-usbkit-plan. A pilot run's ``results.json`` holds
every evaluated lesion with its patient and each model's rating, and every FP track with
its clip (``results["units"]``). A study of N patients is simulated by drawing N of the
pilot's patients with replacement, each with all of its clips, lesions and FP tracks (a
cluster kept whole); in each simulated study both models' operating thresholds thr(x) are
found again (FP/scan depends on the clips drawn), the lesions each model finds there form
the paired table, and the test of the evaluation is applied: McNemar's exact test, or the
paired patient bootstrap with a modest number of inner replicates. Power at N is the share
of simulated studies in which the test rejects at level alpha.

What is usbkit's own and what is borrowed: the cluster resampling, the re-derivation of the
operating thresholds in every simulated study (:func:`usbkit.evaluation.stats.operating_cut`,
the machinery of the evaluation's bootstrap), the stated-effect model (below) and the search
for the minimum detectable difference are usbkit's; McNemar's p values are scipy's binomial
and chi-square distributions (checked against statsmodels' ``mcnemar``), the Monte-Carlo
intervals of the power estimates are statsmodels' ``proportion_confint`` (Wilson), the
closed form is Connor (1987), and the minimal-change coupling is solved by scipy's
``linprog``.

A stated effect ("sequence 95% vs single frame 86% at 0.5 FP/scan, discordance as in the
pilot") replaces the pilot's own: the target paired table has p10 = (psi + d) / 2,
p01 = (psi - d) / 2, p11 = sens_A - p10, p00 = 1 - sens_A - p01 (d = sens_A - sens_B, psi
the discordance: the share of lesions found by exactly one model). Each pilot lesion moves
from its pilot cell of the table to a target cell at random, with the transition
probabilities of the coupling of the pilot's cell shares to the target's that changes the
fewest single-model verdicts (an optimal-transport problem on the four cells); a lesion
whose verdict for a model changes takes a rating drawn from that model's pilot lesions with
the new verdict. Every simulated study draws these moves afresh, so patients, thresholds
and ratings vary as in the pilot while the expected sensitivities and discordance at the
pilot's thresholds are the stated ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.evaluation.results import _clean, ratings_from_units
from usbkit.evaluation.stats import (
    _prepare,
    _Prepared,
    bootstrap_p_rows,
    draw_counts,
    mcnemar_p,
    operating_cut,
    paired_table,
    restrict_tracks,
)

#: The tests a simulated study can apply.
TESTS = ("mcnemar", "bootstrap")
#: The cells of the paired table, in this order everywhere: found by both, by A only, by B
#: only, by neither.
CELLS = ("both", "A only", "B only", "neither")
_BITS = np.array([[1, 1], [1, 0], [0, 1], [0, 0]])  # (A finds it, B finds it) per cell
#: Simulated studies whose operating thresholds are found together.
_ROWS = 200


@dataclass(frozen=True)
class PlanConfig:
    """Settings of a power calculation; ``usbkit plan`` reads its defaults from here.

    Attributes
    ----------
    fp_rate : float
        The FP/scan rate x at which the two models' sensitivities are compared.
    power : float
        The power the study should reach.
    alpha : float
        Two-sided significance level; a simulated study rejects when P < alpha.
    test : {'mcnemar', 'bootstrap'}
        McNemar's test on the lesions, or the paired patient bootstrap.
    n_sim : int
        Simulated studies per number of patients.
    n_points : int
        Numbers of patients on the automatic grid (geometric, from a few patients to beyond
        the closed form's answer).
    grid : tuple of int, optional
        The numbers of patients to simulate instead of the automatic grid.
    seed : int
        One seed: the same settings give the same numbers.
    models : tuple of (str, str), optional
        The compared models (A, B); None: "single frame" and "sequence" when the results
        hold both (the study's question), else the first two.
    effect : tuple of (float, float), optional
        Assumed sensitivities of A and B at ``fp_rate`` instead of the pilot's.
    discordance : float, optional
        Assumed share of lesions found by exactly one of the two models; None: the pilot's.
    exact : bool
        McNemar: the exact binomial test the evaluation reports; False: the uncorrected
        chi-square form that the closed-form sample size assumes.
    n_inner : int
        Bootstrap test: replicates per simulated study.
    """

    fp_rate: float = 0.5
    power: float = 0.8
    alpha: float = 0.05
    test: str = "mcnemar"
    n_sim: int = 1000
    n_points: int = 20
    grid: tuple[int, ...] | None = None
    seed: int = 0
    models: tuple[str, str] | None = None
    effect: tuple[float, float] | None = None
    discordance: float | None = None
    exact: bool = True
    n_inner: int = 100

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise UsbkitError(f"unknown test '{self.test}'", fix="Use mcnemar or bootstrap")
        for name, v in (("power", self.power), ("alpha", self.alpha)):
            if not 0 < v < 1:
                raise UsbkitError(f"{name} must lie between 0 and 1 (got {v:g})")
        if not self.fp_rate > 0:
            raise UsbkitError(f"the FP rate must be positive (got {self.fp_rate:g})")
        if self.n_sim < 1 or self.n_points < 1 or self.n_inner < 1:
            raise UsbkitError("n_sim, n_points and n_inner must be at least 1")
        if self.effect is not None and not all(0 <= s <= 1 for s in self.effect):
            raise UsbkitError(f"assumed sensitivities must lie in [0, 1] (got {self.effect})")
        if self.discordance is not None and not 0 <= self.discordance <= 1:
            raise UsbkitError(f"the discordance must lie in [0, 1] (got {self.discordance:g})")


@dataclass
class PlanResult:
    """Power against the number of patients, and what it means for a study.

    Attributes
    ----------
    models : tuple of (str, str)
        Models A and B.
    config : PlanConfig
    pilot : dict
        The pilot at ``fp_rate``: ``n_patients``, ``n_clips``, ``n_lesions``,
        ``sensitivity`` [A, B] (lesion level, at each model's operating point), ``diff``
        (A - B), ``discordance``, ``table`` [[n11, n10], [n01, n00]] and ``mcnemar_p``.
    effect : dict
        The effect simulated: ``sensitivity`` [A, B], ``diff``, ``discordance`` and
        ``assumed`` (False: the pilot's own).
    n_patients : list of int
        The simulated study sizes.
    power : list of float
        Power at each size; ``power_ci95`` its Monte-Carlo 95% interval (Wilson).
    n_required : int or None
        The smallest simulated size whose power reaches the target (None: none does).
    n_required_interp : float or None
        That size interpolated linearly between the two grid points around the target.
    power_at_pilot : float
        Power at the pilot's own number of patients (``power_at_pilot_ci95``).
    mdd : float or None
        Minimum detectable difference at the pilot's size: the smallest sensitivity
        difference reaching the target power there, the weaker model held at its
        sensitivity and the discordance kept (None: not reachable with that discordance).
    closed_form : dict
        Connor (1987) for unclustered lesions: ``lesions`` needed, ``patients`` (lesions /
        the pilot's lesions per patient) and ``power`` at each simulated size.
    seconds : float
        Wall time of the simulation.
    """

    models: tuple[str, str]
    config: PlanConfig
    pilot: dict
    effect: dict
    n_patients: list[int]
    power: list[float]
    power_ci95: list[list[float]]
    n_required: int | None
    n_required_interp: float | None
    power_at_pilot: float
    power_at_pilot_ci95: list[float]
    mdd: float | None
    closed_form: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready (non-finite numbers as None)."""
        out = asdict(self)
        out["models"] = list(self.models)
        out["config"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in out["config"].items()
        }
        return _clean(out)

    def summary(self) -> str:
        """A paragraph in words: the power the pilot had and the size a study needs."""
        a, b = self.models
        c, pl, ef = self.config, self.pilot, self.effect
        test = (
            ("McNemar's exact test" if c.exact else "McNemar's chi-square test")
            if c.test == "mcnemar"
            else "the paired patient bootstrap"
        )
        sa, sb = ef["sensitivity"]
        what = "assumed" if ef["assumed"] else "the pilot's"
        lo, hi = self.power_at_pilot_ci95
        text = [
            f"At {c.fp_rate:g} FP/scan, with {what} sensitivities {a} {sa:.1%} and {b} "
            f"{sb:.1%} (the models disagree on {ef['discordance']:.1%} of lesions), "
            f"{test} at alpha {c.alpha:g} has power {self.power_at_pilot:.2f} "
            f"(Monte-Carlo 95% interval {lo:.2f}-{hi:.2f}) with the pilot's "
            f"{pl['n_patients']} patients ({pl['n_lesions']} lesions)."
        ]
        if abs(ef["diff"]) < 1e-12:
            text.append(
                "The models do not differ at this rate, so no study size gives power: to plan "
                "a study, state the effect it should detect (an assumed pair of sensitivities)."
            )
        elif self.n_required is not None:
            n = self.n_required_interp or self.n_required
            text.append(
                f"A study needs about {math.ceil(n)} patients for power {c.power:g} "
                f"({c.n_sim} simulated studies per size)."
            )
        else:
            text.append(
                f"No simulated size up to {max(self.n_patients)} patients reaches power "
                f"{c.power:g}."
            )
        cf = self.closed_form.get("patients")
        small = (
            pl["n_patients"] < SMALL_PILOT and abs(ef["diff"]) >= 1e-12 and self.n_required is None
        )
        if cf is not None and math.isfinite(cf):
            text.append(
                f"The closed form for independent lesions (Connor 1987) says {math.ceil(cf)}"
                + (
                    "."
                    if small
                    else "; clustering by patient and thresholds that move with the sample "
                    "make the simulated number the one to trust."
                )
            )
        if small:
            text.append(
                f"With a pilot of only {pl['n_patients']} patients the simulation is no guide: "
                f"every simulated study is made of copies of these {pl['n_patients']} "
                f"patients, so its power levels off (here at {max(self.power):.0%}) however "
                "many are drawn. Plan with the closed form, or simulate from a pilot of at "
                f"least {SMALL_PILOT} patients."
            )
        if self.mdd is not None:
            text.append(
                f"At the pilot's size the smallest difference detectable with power {c.power:g} "
                f"is {100 * self.mdd:.1f} percentage points."
            )
        return " ".join(text)


# ------------------------------------------------------------------ closed form
def mcnemar_sample_size(
    discordance: float, difference: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Pairs (lesions) for McNemar's test, Connor (1987): two-sided, normal approximation.

    n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - d^2))^2 / d^2, with psi the
    discordance (p10 + p01) and d the difference (p10 - p01); inf when d = 0.

    Examples
    --------
    >>> round(mcnemar_sample_size(0.5, -0.4), 2)  # p10 = 0.05, p01 = 0.45: 23 pairs
    22.01
    """
    from scipy.stats import norm

    if difference == 0:
        return math.inf
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    root = za * math.sqrt(discordance) + zb * math.sqrt(max(discordance - difference**2, 0.0))
    return float(root**2 / difference**2)


def mcnemar_power(n, discordance: float, difference: float, alpha: float = 0.05):
    """Power of McNemar's test with ``n`` pairs, Connor (1987) (both tails counted); 0 when
    the models never disagree (a discordance of 0: the test has nothing to count).

    Examples
    --------
    >>> mcnemar_power([10, 100], 0.0, 0.0).tolist()  # both find the same lesions
    [0.0, 0.0]
    >>> round(float(mcnemar_power(1000, 0.2, 0.0)), 3)  # no difference: alpha
    0.05
    """
    from scipy.stats import norm

    n = np.asarray(n, float)
    if discordance <= 0:
        return np.zeros_like(n)
    za = norm.ppf(1 - alpha / 2)
    sd = math.sqrt(max(discordance - difference**2, 1e-300))
    d = abs(difference)
    return norm.cdf((d * np.sqrt(n) - za * math.sqrt(discordance)) / sd) + norm.cdf(
        (-d * np.sqrt(n) - za * math.sqrt(discordance)) / sd
    )


# --------------------------------------------------------------- stated effect
def target_cells(sens_a: float, sens_b: float, discordance: float) -> np.ndarray:
    """Shares of the paired table's cells (both, A only, B only, neither) for stated
    sensitivities and discordance.

    Examples
    --------
    >>> target_cells(0.95, 0.86, 0.12).round(3).tolist()
    [0.845, 0.105, 0.015, 0.035]
    """
    d = sens_a - sens_b
    p10, p01 = (discordance + d) / 2, (discordance - d) / 2
    cells = np.array([sens_a - p10, p10, p01, 1 - sens_a - p01])
    if (cells < -1e-9).any():
        raise UsbkitError(
            f"sensitivities {sens_a:.1%} and {sens_b:.1%} cannot go with a discordance of "
            f"{discordance:.1%}",
            fix=f"The discordance (lesions found by exactly one model) must be at least the "
            f"difference, {abs(d):.1%}, and leave room for the rest: state one with "
            "--discordance",
        )
    cells = np.clip(cells, 0, None)
    return cells / cells.sum()


def minimal_coupling(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Transition probabilities between the four cells taking shares ``q`` to ``p`` with the
    fewest changed verdicts (each cell change costs the number of models whose verdict
    changes): row c is where a lesion of cell c goes.

    Examples
    --------
    Raising B from 50% to 75% moves half of the lesions only A found, and half of those
    neither found, over to B:

    >>> q = np.array([0.25, 0.25, 0.25, 0.25])
    >>> minimal_coupling(q, np.array([0.375, 0.125, 0.375, 0.125])).round(2).tolist()[1]
    [0.5, 0.5, 0.0, 0.0]
    """
    from scipy.optimize import linprog

    cost = np.abs(_BITS[:, None, :] - _BITS[None, :, :]).sum(2).ravel().astype(float)
    a_eq = np.zeros((8, 16))
    for c in range(4):
        a_eq[c, 4 * c : 4 * c + 4] = 1  # out of cell c: q_c
        a_eq[4 + c, c::4] = 1  # into cell c: p_c
    sol = linprog(cost, A_eq=a_eq, b_eq=np.r_[q, p], bounds=(0, None), method="highs")
    flow = sol.x.reshape(4, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = flow / q[:, None]
    t[q <= 0] = np.eye(4)[q <= 0]
    return np.clip(t, 0, None) / np.clip(t, 0, None).sum(1, keepdims=True)


def parse_effect(text: str) -> dict[str, float]:
    """``"sequence=0.95,single frame=0.86"`` (or percentages) -> ``{name: sensitivity}``.

    Examples
    --------
    >>> parse_effect("sequence=95%, single frame=0.86")
    {'sequence': 0.95, 'single frame': 0.86}
    """
    out = {}
    for part in str(text).split(","):
        name, sep, value = part.rpartition("=")
        try:
            v = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            v = -1.0
        if not sep or not name.strip() or not 0 <= v <= 1:
            raise UsbkitError(
                f"cannot read the effect '{text}'",
                fix='Write it as "MODEL=SENSITIVITY,MODEL=SENSITIVITY", e.g. '
                '"sequence=0.95,single frame=0.86"',
            )
        out[name.strip()] = v
    return out


# ------------------------------------------------------------------ the pilot
@dataclass
class _Pilot:
    names: tuple[str, str]
    n_patients: int
    n_clips: int
    lesion_patient: np.ndarray
    rating: tuple[np.ndarray, np.ndarray]
    prepared: tuple[_Prepared, _Prepared]
    found: tuple[np.ndarray, np.ndarray]  # at each model's own operating point

    @property
    def cell(self) -> np.ndarray:
        a, b = self.found
        return 2 * (~a) + (~b)  # 0 both, 1 A only, 2 B only, 3 neither


def _load_pilot(results: dict, config: PlanConfig) -> _Pilot:
    names = list(results["models"])
    pair = tuple(config.models) if config.models else tuple(names[:2])
    if not config.models and {"single frame", "sequence"} <= set(names):
        pair = ("single frame", "sequence")  # the study's question, whatever other arms it has
    if len(names) < 2 or len(pair) != 2 or pair[0] == pair[1]:
        raise UsbkitError("a power calculation compares two models; the results hold fewer")
    for n in pair:
        if n not in names:
            raise UsbkitError(
                f"the results have no model '{n}'", fix=f"Choose among {', '.join(names)}"
            )
    if "units" not in results:
        raise UsbkitError(
            "these results carry no per-lesion units", fix="Evaluate again with usbkit >= 0.3"
        )
    ratings = ratings_from_units(results)
    if len(ratings[pair[0]].lesions) == 0:
        raise UsbkitError("the pilot has no lesions: there is nothing to compare")
    clips = ratings[pair[0]].clips
    index = {p: i for i, p in enumerate(sorted(set(clips["patient_id"])))}
    prepared = tuple(_prepare(ratings[n], index) for n in pair)
    rating = tuple(ratings[n].lesions["rating"].to_numpy(float) for n in pair)
    ones = np.ones((1, len(index)))
    found = tuple(
        r > operating_cut(p, ones, [config.fp_rate])[0, 0] for r, p in zip(rating, prepared)
    )
    return _Pilot(
        names=pair,
        n_patients=len(index),
        n_clips=len(clips),
        lesion_patient=ratings[pair[0]].lesions["patient_id"].map(index).to_numpy(np.int64),
        rating=rating,
        prepared=prepared,
        found=found,
    )


class _Effect:
    """Per simulated study, each lesion's ratings under the stated effect (see the module)."""

    def __init__(self, pilot: _Pilot, target: np.ndarray, n_sim: int, rng) -> None:
        q = np.bincount(pilot.cell, minlength=4) / len(pilot.cell)
        self.identity = bool(np.allclose(q, target, atol=1e-12))
        self.pilot = pilot
        self.n_sim = n_sim
        self.u = rng.random((n_sim, len(pilot.cell)))  # where each lesion goes ...
        self.v = rng.random((2, n_sim, len(pilot.cell)))  # ... and which rating it takes
        self.q = q

    def ratings(self, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n_sim, n_lesions) ratings of A and B; the pilot's own, broadcast, without an
        effect to impose."""
        p = self.pilot
        if np.allclose(self.q, target, atol=1e-12):
            return p.rating[0][None, :], p.rating[1][None, :]
        cum = np.cumsum(minimal_coupling(self.q, target), axis=1)[p.cell]  # (L, 4)
        new = (self.u[:, :, None] >= cum[None, :, :3]).sum(2)
        out = []
        for m in range(2):
            was, now = p.found[m][None, :], _BITS[new, m].astype(bool)
            r = np.broadcast_to(p.rating[m], new.shape).copy()
            for verdict, fill in ((True, np.inf), (False, -np.inf)):
                pool = p.rating[m][p.found[m] == verdict]
                change = (now == verdict) & (was != verdict)
                if len(pool):
                    pick = np.minimum((self.v[m] * len(pool)).astype(np.int64), len(pool) - 1)
                    r[change] = pool[pick[change]]
                else:
                    r[change] = fill
            out.append(r)
        return out[0], out[1]


# ------------------------------------------------------------------ simulation
def _rejects(
    pilot: _Pilot,
    W: np.ndarray,
    ratings: tuple[np.ndarray, np.ndarray],
    config: PlanConfig,
    rng,
) -> np.ndarray:
    """Whether the test rejects in each simulated study (rows of patient counts ``W``)."""
    x = [config.fp_rate]
    lp = pilot.lesion_patient
    if config.test == "mcnemar":
        cut = [
            np.concatenate(
                [operating_cut(p, W[s : s + _ROWS], x)[:, 0] for s in range(0, len(W), _ROWS)]
            )
            for p in pilot.prepared
        ]
        fa = ratings[0] > cut[0][:, None]
        fb = ratings[1] > cut[1][:, None]
        lw = W[:, lp]
        n10 = (lw * (fa & ~fb)).sum(1)
        n01 = (lw * (~fa & fb)).sum(1)
        return mcnemar_p(n10, n01, config.exact) < config.alpha
    # The bootstrap: each simulated study on its own, with only its patients' tracks and
    # lesions; its inner replicates draw its N patients with replacement.
    n_inner = config.n_inner
    out = np.zeros(W.shape[0], bool)
    for s in range(W.shape[0]):
        pats = np.flatnonzero(W[s] > 0)
        members = np.repeat(np.arange(len(pats)), W[s, pats].astype(np.int64))  # N patients
        who = members[rng.integers(0, len(members), size=(n_inner, len(members)))]
        flat = (who + np.arange(n_inner)[:, None] * len(pats)).ravel()
        V = np.bincount(flat, minlength=n_inner * len(pats)).reshape(n_inner, len(pats))
        V = V.astype(float)
        local = np.full(pilot.n_patients, -1)
        local[pats] = np.arange(len(pats))
        les = local[lp] >= 0
        lw = V[:, local[lp[les]]]
        total = lw.sum(1)
        sens = []
        for m in range(2):
            cut = operating_cut(restrict_tracks(pilot.prepared[m], pats), V, x)[:, 0]
            r = ratings[m][0 if len(ratings[m]) == 1 else s][les]
            with np.errstate(invalid="ignore", divide="ignore"):
                sens.append((lw * (r[None, :] > cut[:, None])).sum(1) / total)
        out[s] = bootstrap_p_rows((sens[0] - sens[1])[None, :])[0] < config.alpha
    return out


#: The smallest study the automatic grid starts from: the curve is shown from small N, so the
#: pilot's own size lies on it (a grid around a closed form of thousands of patients hid it).
GRID_START = 4


def _default_grid(n_closed: float, n_pilot: int, points: int) -> list[int]:
    """Geometric grid from :data:`GRID_START` patients to four times the closed form's number
    of patients (at least twice the pilot's), capped at max(20 x the pilot, 5,000) patients."""
    cap = max(20 * n_pilot, 5000)
    centre = n_closed if math.isfinite(n_closed) and n_closed > 0 else cap
    lo = float(min(GRID_START, max(n_pilot, 1)))
    hi = min(max(4 * centre, 2 * n_pilot, lo * 2), cap)
    return sorted({int(round(v)) for v in np.geomspace(lo, hi, points)})


def published_effect(results: dict, fp_rate: float, models: tuple[str, str] | None = None):
    """The sensitivities of the published study (Yuan & Jia 2022) at ``fp_rate`` for the two
    compared models, in their order (A, B), when both are the study's single-frame and
    sequence models and the rate is one of the published ones; else None. The effect a
    teaching run states when its pilot shows none (``usbkit plan --effect``)."""
    from usbkit.evaluation.results import PUBLISHED

    names = tuple(models) if models else tuple(list(results["models"])[:2])
    if fp_rate not in PUBLISHED["fp_rates"] or not set(names) <= {"single frame", "sequence"}:
        return None
    if len(set(names)) != 2:
        return None
    k = PUBLISHED["fp_rates"].index(fp_rate)
    return tuple(PUBLISHED[name][k] for name in names)


def shows_no_effect(plan: PlanResult) -> bool:
    """Whether a plan on the pilot's own effect cannot guide a study: the models do not
    differ, or no simulated size reaches the target power."""
    return not plan.effect["assumed"] and (
        abs(plan.effect["diff"]) < 1e-12 or plan.n_required is None
    )


#: Fewer patients than this in the pilot: the simulation, which draws studies from the
#: pilot's own patients, repeats too few of them to plan with (its power levels off).
SMALL_PILOT = 10


def _wilson(k: int, n: int) -> list[float]:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return [float(lo), float(hi)]


def plan_study(
    results: dict, config: PlanConfig = PlanConfig(), progress: bool = False
) -> PlanResult:
    """Power of the paired comparison against the number of patients, by simulation.

    Parameters
    ----------
    results : dict
        A pilot run's ``results.json`` (:func:`usbkit.evaluation.results.load_results`).
    config : PlanConfig
        FP rate, target power, alpha, test, simulated studies, grid, seed, models and an
        optional stated effect.
    progress : bool
        Show a progress bar over the grid.

    Returns
    -------
    PlanResult
        Power at each simulated size with its Monte-Carlo interval, the smallest size
        reaching the target, the power at the pilot's own size, the minimum detectable
        difference there, and the closed form beside them (``.summary()`` says it in words,
        ``.to_dict()`` is JSON-ready).

    Examples
    --------
    A pilot of 200 patients, one lesion each and no false marks: model A finds 150, B 130,
    and they disagree on 50 (A only 35, B only 15):

    >>> n = 200
    >>> a = np.r_[np.ones(115), np.ones(35), np.zeros(15), np.zeros(35)]
    >>> b = np.r_[np.ones(115), np.zeros(35), np.ones(15), np.zeros(35)]
    >>> pilot = {"models": {"A": {}, "B": {}}, "units": {
    ...     "clips": {"clip_id": [f"c{i}" for i in range(n)],
    ...               "patient_id": [f"p{i}" for i in range(n)], "n_frames": [60] * n},
    ...     "lesions": {"clip_id": [f"c{i}" for i in range(n)], "lesion_id": ["1"] * n,
    ...                 "patient_id": [f"p{i}" for i in range(n)]},
    ...     "ratings": {"A": [0.9 if v else None for v in a],
    ...                 "B": [0.9 if v else None for v in b]},
    ...     "fp_tracks": {"A": {"clip_id": [], "score": []},
    ...                   "B": {"clip_id": [], "score": []}}}}
    >>> plan = plan_study(pilot, PlanConfig(n_sim=400, grid=(100, 250, 400)))
    >>> plan.pilot["table"], round(plan.pilot["discordance"], 3)
    ([[115, 35], [15, 35]], 0.25)
    >>> [round(p, 2) for p in plan.power]  # rises with the number of patients
    [0.44, 0.85, 0.98]
    >>> plan.n_required, round(plan.closed_form["patients"])  # simulated, closed form
    (250, 194)
    """
    t0 = time.perf_counter()
    pilot = _load_pilot(results, config)
    seq = np.random.SeedSequence(config.seed).spawn(4)
    r_grid, r_pilot, r_effect, r_inner = (np.random.default_rng(s) for s in seq)
    n_les = len(pilot.lesion_patient)
    table = paired_table(*pilot.found)
    sens_pilot = [float(f.mean()) for f in pilot.found]
    psi_pilot = (table[0][1] + table[1][0]) / n_les
    sens = list(config.effect) if config.effect is not None else sens_pilot
    psi = config.discordance if config.discordance is not None else psi_pilot
    target = target_cells(sens[0], sens[1], psi)
    effect = _Effect(pilot, target, config.n_sim, r_effect)
    ratings = effect.ratings(target)
    per_patient = n_les / pilot.n_patients
    diff = sens[0] - sens[1]
    n_cf = mcnemar_sample_size(psi, diff, config.alpha, config.power)
    grid = sorted(
        {int(v) for v in config.grid}
        if config.grid
        else _default_grid(n_cf / per_patient, pilot.n_patients, config.n_points)
    )
    if grid[0] < 1:
        raise UsbkitError("every number of patients on the grid must be at least 1")

    from tqdm.auto import tqdm

    W = np.zeros((config.n_sim, pilot.n_patients))
    drawn, power = 0, []
    for n in tqdm(grid, desc="power", unit="size", disable=not progress):
        W += draw_counts(r_grid, config.n_sim, pilot.n_patients, n - drawn)  # nested studies
        drawn = n
        power.append(int(_rejects(pilot, W, ratings, config, r_inner).sum()))
    W_pilot = draw_counts(r_pilot, config.n_sim, pilot.n_patients, pilot.n_patients)
    at_pilot = int(_rejects(pilot, W_pilot, ratings, config, r_inner).sum())
    share = [k / config.n_sim for k in power]
    reach = [i for i, v in enumerate(share) if v >= config.power]
    n_req = grid[reach[0]] if reach else None
    n_interp = None
    if reach and reach[0] > 0:
        i = reach[0]
        lo_n, hi_n, lo_p, hi_p = grid[i - 1], grid[i], share[i - 1], share[i]
        n_interp = lo_n + (config.power - lo_p) / (hi_p - lo_p) * (hi_n - lo_n)
    mdd = _min_detectable(pilot, effect, W_pilot, sens, psi, config, r_inner)
    return PlanResult(
        models=pilot.names,
        config=config,
        pilot={
            "n_patients": pilot.n_patients,
            "n_clips": pilot.n_clips,
            "n_lesions": n_les,
            "sensitivity": sens_pilot,
            "diff": sens_pilot[0] - sens_pilot[1],
            "discordance": psi_pilot,
            "table": table,
            "mcnemar_p": float(mcnemar_p([table[0][1]], [table[1][0]])[0]),
        },
        effect={
            "sensitivity": [float(s) for s in sens],
            "diff": float(diff),
            "discordance": float(psi),
            "assumed": not effect.identity,
        },
        n_patients=grid,
        power=share,
        power_ci95=[_wilson(k, config.n_sim) for k in power],
        n_required=n_req,
        n_required_interp=n_interp,
        power_at_pilot=at_pilot / config.n_sim,
        power_at_pilot_ci95=_wilson(at_pilot, config.n_sim),
        mdd=mdd,
        closed_form={
            "lesions": n_cf,
            "patients": n_cf / per_patient,
            "lesions_per_patient": per_patient,
            "power": [
                float(v)
                for v in mcnemar_power(np.array(grid) * per_patient, psi, diff, config.alpha)
            ],
        },
        seconds=time.perf_counter() - t0,
    )


def _min_detectable(
    pilot: _Pilot,
    effect: _Effect,
    W: np.ndarray,
    sens: list[float],
    psi: float,
    config: PlanConfig,
    rng,
    tol: float = 0.0025,
) -> float | None:
    """Smallest difference with the target power at the pilot's size (bisection, common
    random numbers): the weaker model held at its sensitivity, the discordance kept."""
    weak = 0 if sens[0] < sens[1] else 1
    s0 = sens[weak]
    hi = min(psi, 2 * (1 - s0) - psi)
    if hi <= 0:
        return None

    def power_at(d: float) -> float:
        s = [s0, s0]
        s[1 - weak] = s0 + d
        ratings = effect.ratings(target_cells(s[0], s[1], psi))
        return float(_rejects(pilot, W, ratings, config, rng).mean())

    if power_at(hi) < config.power:
        return None
    lo = 0.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if power_at(mid) >= config.power:
            hi = mid
        else:
            lo = mid
    return float(hi)
