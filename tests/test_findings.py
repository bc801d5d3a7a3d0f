"""The words under the table follow the numbers, including when the two tests disagree."""

from __future__ import annotations

from usbkit.report.findings import findings


def _results(bootstrap_p, mcnemar_p):
    return {
        "n_patients": 10, "n_clips": 12, "n_lesions": 14, "split": "test", "hit": "center",
        "fp_rates": [0.1],
        "models": {"single frame": {"sensitivity": [0.6]}, "sequence": {"sensitivity": [0.4]}},
        "comparisons": [{"a": "single frame", "b": "sequence", "fp_rate": 0.1, "diff": 0.2,
                         "diff_ci95": [-0.01, 0.3], "bootstrap_p": bootstrap_p,
                         "mcnemar_p": mcnemar_p}],
    }  # fmt: skip


def test_a_difference_only_mcnemar_finds_is_reported_as_not_significant_and_says_so():
    text = findings(_results(0.069, 0.0004))[1]
    assert "not significant by the paired bootstrap" in text
    assert "McNemar's test, which holds the thresholds fixed, finds one" in text
    assert "McNemar P < 0.001" in text and "P = <" not in text
    assert findings(_results(0.069, 0.0004))[2].endswith("none of the FP rates.")


def test_when_both_tests_agree_the_sentence_gives_the_plain_verdict():
    text = findings(_results(0.01, 0.02))[1]
    assert "the difference is significant (paired bootstrap P = 0.010, McNemar P = 0.020)" in text
    assert findings(_results(0.01, 0.02))[2] == "Significant at the 5% level: at 0.1 FP/scan."
