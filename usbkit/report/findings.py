"""The study's result in words, generated from the numbers (never typed by hand).

What the report and the compare notebook print under the study's table: the cohort, each
comparison with its interval and P values and whether it is significant, how the result
stands beside the published study, and the power the comparison had.
"""

from __future__ import annotations

from usbkit.evaluation.results import PUBLISHED, ablation_sentences, format_p

#: Significance level the words use (the paired tests' usual 5%).
ALPHA = 0.05


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _points(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v + 0.0:+.1f} points"


def _p(p) -> str:
    """'P = 0.069' or 'P < 0.001'."""
    text = format_p(p)
    return f"P {text}" if text.startswith("<") else f"P = {text}"


def findings(results: dict, plan=None) -> list[str]:
    """Sentences that say what the evaluation found.

    Parameters
    ----------
    results : dict
        The evaluation's results (``results.json``).
    plan : PlanResult, optional
        :func:`usbkit.evaluation.power.plan_study` on these results: adds the power the
        comparison had and the patients a conclusive study would need.

    Examples
    --------
    >>> r = {"n_patients": 3, "n_clips": 4, "n_lesions": 5, "split": "test", "hit": "center",
    ...      "fp_rates": [0.5], "models": {"a": {"sensitivity": [0.6]},
    ...      "b": {"sensitivity": [0.8]}}, "comparisons": [{"a": "a", "b": "b",
    ...      "fp_rate": 0.5, "diff": -0.2, "diff_ci95": [-0.6, 0.2], "bootstrap_p": 0.4,
    ...      "mcnemar_p": 0.5}]}
    >>> print(findings(r)[1])
    At 0.5 FP/scan b found 80.0% of the lesions and a 60.0%: b found 20.0 points more (95% interval of the difference -20.0 points to +60.0 points: it includes zero, so no difference at all is also consistent with these patients); the difference is not significant (paired bootstrap P = 0.40, McNemar P = 0.50).
    """
    out = [
        f"{results['n_patients']} patients, {results['n_clips']} scans and "
        f"{results['n_lesions']} lesions were evaluated (split: {results.get('split') or 'all'}"
        f"; a mark hits a lesion by the {results['hit']} rule)."
    ]
    significant: dict[tuple[str, str], list[str]] = {}
    for c in results.get("comparisons", []):
        a, b, x = c["a"], c["b"], c["fp_rate"]
        sa = results["models"][a]["sensitivity"][results["fp_rates"].index(x)]
        sb = results["models"][b]["sensitivity"][results["fp_rates"].index(x)]
        # say it from the side of the model that found more
        hi, lo, s_hi, s_lo, sign = (
            (b, a, sb, sa, -1) if (c["diff"] or 0) <= 0 else (a, b, sa, sb, 1)
        )
        ci = c.get("diff_ci95") or [None, None]
        ci = [None if v is None else sign * v for v in ci]
        ci = sorted(ci) if None not in ci else ci
        p, q = c.get("bootstrap_p"), c.get("mcnemar_p")
        by_boot = p is not None and p < ALPHA
        by_mcnemar = q is not None and q < ALPHA
        verdict = (
            "the difference is significant" if by_boot else "the difference is not significant"
        )
        if by_boot != by_mcnemar and q is not None and p is not None:
            verdict += (
                " by the paired bootstrap, which this report goes by (it resamples patients "
                "and lets the threshold move with them)"
                + (
                    ", although McNemar's test, which holds the thresholds fixed, finds one"
                    if by_mcnemar
                    else ", although McNemar's test finds none"
                )
            )
        significant.setdefault((a, b), [])
        if by_boot:
            significant[(a, b)].append(f"{x:g}")
        same = abs(s_hi - s_lo) < 1e-12
        head = (
            f"At {x:g} FP/scan both found {_pct(s_hi)} of the lesions"
            if same
            else f"At {x:g} FP/scan {hi} found {_pct(s_hi)} of the lesions and {lo} "
            f"{_pct(s_lo)}: {hi} found {abs(100 * (s_hi - s_lo)):.1f} points more"
        )
        out.append(
            f"{head} (95% interval of the difference {_points(ci[0])} to {_points(ci[1])}"
            f"{_touches_zero(ci, by_boot)}); {verdict} "
            f"(paired bootstrap {_p(p)}, McNemar {_p(q)})."
        )
    for (a, b), rates in significant.items():
        pair = f" ({a} vs {b})" if len(significant) > 1 else ""
        out.append(
            f"Significant at the {100 * ALPHA:g}% level{pair}: "
            + (f"at {', '.join(rates)} FP/scan." if rates else "none of the FP rates.")
        )
    out += ablation_sentences(results)
    view = results.get("view_fp_rate")
    for c in results.get("ttfd_comparisons", []):
        if view is None or c["fp_rate"] == view:
            sentence = ttfd_sentence(c)
            if sentence:
                out.append(sentence)
    out += _beside_the_study(results)
    if plan is not None:
        out.append("Power: " + plan.summary())
    return out


def _touches_zero(ci: list, significant: bool) -> str:
    """Words for an interval of the difference that reaches zero (read with a P >= 5%)."""
    lo = ci[0]
    if lo is None or significant:
        return ""
    if round(100 * lo, 1) == 0:
        where = "its lower end is zero"
    elif lo < 0:
        where = "it includes zero"
    else:
        return ""
    return f": {where}, so no difference at all is also consistent with these patients"


def ttfd_sentence(c: dict) -> str | None:
    """Who marks lesions sooner, in words, from one of the results' ``ttfd_comparisons``:
    the lesions each model marks first, the mean and the median difference, and the
    Wilcoxon P with what it compares (None for results without these counts).

    Examples
    --------
    >>> c = {"a": "single frame", "b": "sequence", "fp_rate": 0.5, "n_both": 100,
    ...      "n_a_first": 12, "n_b_first": 30, "n_same": 58, "mean_diff_seconds": 0.21,
    ...      "median_diff_seconds": 0.0, "wilcoxon_p": 0.0004}
    >>> print(ttfd_sentence(c))
    Time to first detection at 0.5 FP/scan, on the 100 lesions both models find: sequence marks 30 of them sooner, single frame 12, and 58 are marked by both on the same frame; on average sequence is 0.21 s sooner (median difference 0.00 s, because most lesions are marked on the same frame). Wilcoxon P < 0.001 compares only the 42 lesions where the two differ.
    """
    if c.get("n_a_first") is None or not c.get("n_both"):
        return None
    a, b = c["a"], c["b"]
    na, nb, same = c["n_a_first"], c["n_b_first"], c["n_same"]
    mean, median = c["mean_diff_seconds"], c["median_diff_seconds"]
    # the faster model: the one that marks more lesions first (by the mean when as many)
    a_faster = na > nb or (na == nb and mean < 0)
    fast, slow, n_fast, n_slow = (a, b, na, nb) if a_faster else (b, a, nb, na)
    head = (
        f"Time to first detection at {c['fp_rate']:g} FP/scan, on the {c['n_both']} lesions "
        f"both models find: "
    )
    if na == nb == 0:
        return head + "both models mark every one of them on the same frame."
    order = (
        f"{fast} marks {n_fast} of them sooner, {slow} {n_slow}, and {same} are marked by "
        "both on the same frame"
    )
    mean_fast = a if mean < 0 else b
    on_average = (
        "on average they are equally fast"
        if abs(mean) < 5e-3
        else f"on average {mean_fast} is {abs(mean):.2f} s sooner"
    )
    why_median = (
        ", because most lesions are marked on the same frame"
        if abs(median) < 1e-12 and same > (na + nb)
        else ""
    )
    sentence = f"{head}{order}; {on_average} (median difference {abs(median):.2f} s{why_median})."
    if c.get("wilcoxon_p") is not None:
        sentence += f" Wilcoxon {_p(c['wilcoxon_p'])} compares only " + (
            "the 1 lesion where the two differ."
            if na + nb == 1
            else f"the {na + nb} lesions where the two differ."
        )
    return sentence


def _beside_the_study(results: dict) -> list[str]:
    """How the single-frame and sequence rows stand beside Yuan & Jia (2022)."""
    lines = []
    for model in ("single frame", "sequence"):
        if model not in results["models"]:
            continue
        parts = []
        for x, published in zip(PUBLISHED["fp_rates"], PUBLISHED[model]):
            if x in results["fp_rates"]:
                ours = results["models"][model]["sensitivity"][results["fp_rates"].index(x)]
                parts.append(
                    f"{_pct(ours)} against {_pct(published)} at {x:g} ({_points(ours - published)})"
                )
        if parts:
            lines.append(f"The {model} model: " + "; ".join(parts) + ".")
    if lines:
        lines.insert(
            0,
            "Beside the published study (Yuan & Jia 2022, 506 real patients; a different "
            "cohort, for orientation only):",
        )
    return lines


def findings_markdown(results: dict, plan=None) -> str:
    """:func:`findings` as a Markdown list (what the compare notebook shows)."""
    return "\n".join(f"- {line}" for line in findings(results, plan))


def ttfd_markdown(results: dict) -> str:
    """:func:`ttfd_sentence` for every FP rate, as Markdown (under the compare notebook's
    time-to-first-detection table); empty when the results hold no such comparison."""
    lines = [ttfd_sentence(c) for c in results.get("ttfd_comparisons", [])]
    return "\n".join(f"- {line}" for line in lines if line)


def stated_effect(results: dict, plan, seed: int = 0):
    """When the pilot shows no usable effect (the models do not differ, or no study size in
    reach gives power), plan for a stated one: the published study's difference at the same
    FP rate (Yuan & Jia 2022). Returns the words and that plan (None when the pilot's own
    plan stands, or no published effect fits these models), as ``usbkit plan --effect``
    would give it."""
    from dataclasses import replace

    from usbkit.evaluation.power import plan_study, published_effect, shows_no_effect

    a, b = plan.models
    x = plan.config.fp_rate
    how = (
        f"`usbkit plan --results RUN/results/results.json --fp-rate {x:g} --effect "
        f"'{a}=SENSITIVITY,{b}=SENSITIVITY'` (RUN: this report's folder)"
    )
    if not shows_no_effect(plan):
        return (
            f"The pilot shows a difference that a study of the size above can detect, so the "
            f"curve above is the plan. To plan for another effect instead: {how}.",
            None,
        )
    effect = published_effect(results, x, plan.models)
    if effect is None:
        return (
            "The pilot shows no difference a study could be planned on. State the effect the "
            f"study should detect (the two sensitivities you expect): {how}.",
            None,
        )
    diff = abs(effect[0] - effect[1])
    discordance, why = None, ""
    if plan.pilot["discordance"] < diff:  # the pilot's cannot carry this difference
        discordance = diff
        why = (
            f" The pilot's models disagree on {plan.pilot['discordance']:.1%} of lesions, "
            f"less than this difference, so the smallest discordance it allows, {diff:.1%}, "
            "is assumed (one model finds every lesion the other finds: the most favourable "
            "case; `--discordance` states another)."
        )
    config = replace(
        plan.config, seed=seed, models=plan.models, effect=effect, discordance=discordance
    )  # the pilot plan's own settings (test, simulated studies, grid) otherwise
    stated = plan_study(results, config)
    option = f"--effect '{a}={effect[0]:g},{b}={effect[1]:g}'" + (
        f" --discordance {discordance:g}" if discordance is not None else ""
    )
    return (
        "The pilot shows no difference a study could be planned on, so here is a stated "
        f"effect: the published study's sensitivities at {x:g} FP/scan, {a} {effect[0]:.1%} "
        f"and {b} {effect[1]:.1%} (`usbkit plan {option}`).{why} {stated.summary()}",
        stated,
    )
