"""The study's result in words, generated from the numbers (never typed by hand).

What the report and the compare notebook print under the study's table: the cohort, each
comparison with its interval and P values and whether it is significant, how the result
stands beside the published study, and the power the comparison had.
"""

from __future__ import annotations

from usbkit.evaluation.results import PUBLISHED, ablation_markdown, format_p

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
    At 0.5 FP/scan b found 80.0% of the lesions and a 60.0%, 20.0 points more (95% interval of the difference -20.0 points to +60.0 points); the difference is not significant (paired bootstrap P = 0.40, McNemar P = 0.50).
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
            f"{_pct(s_lo)}, {abs(100 * (s_hi - s_lo)):.1f} points more"
        )
        out.append(
            f"{head} (95% interval of the difference {_points(ci[0])} to {_points(ci[1])}); "
            f"{verdict} "
            f"(paired bootstrap {_p(p)}, McNemar {_p(q)})."
        )
    for (a, b), rates in significant.items():
        pair = f" ({a} vs {b})" if len(significant) > 1 else ""
        out.append(
            f"Significant at the {100 * ALPHA:g}% level{pair}: "
            + (f"at {', '.join(rates)} FP/scan." if rates else "none of the FP rates.")
        )
    out += [line.replace("**", "") for line in ablation_markdown(results).split("\n\n") if line]
    out += _beside_the_study(results)
    if plan is not None:
        out.append("Power: " + plan.summary())
    return out


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
