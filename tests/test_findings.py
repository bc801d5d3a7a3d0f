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


def test_the_sentence_names_the_model_that_found_more():
    text = findings(_results(0.069, 0.0004))[1]
    assert "single frame found 60.0% of the lesions and sequence 40.0%: single frame found " \
        "20.0 points more" in text  # fmt: skip


def test_an_interval_that_touches_zero_is_explained_in_words():
    r = _results(0.11, 0.2)
    text = findings(r)[1]
    assert "-1.0 points to +30.0 points: it includes zero, so no difference at all is also " \
        "consistent with these patients" in text  # fmt: skip
    r["comparisons"][0]["diff_ci95"] = [0.0, 0.077]  # the "+0.0 to +7.7"
    assert "its lower end is zero, so no difference" in findings(r)[1]
    assert "zero" not in findings(_results(0.01, 0.02))[1].split(";")[0]  # significant: no note


def _ttfd_comparison(a_seconds, b_seconds):
    import numpy as np

    from usbkit.evaluation.ttfd import paired_difference

    return {"a": "single frame", "b": "sequence", "fp_rate": 0.5,
            **paired_difference(np.asarray(a_seconds, float), np.asarray(b_seconds, float))}  # fmt: skip


def test_time_to_first_detection_says_who_is_faster_with_mean_and_why_the_median_is_zero():
    """The issue's case: a median of +0.00 with P < 0.001 (ties make the median 0; the test
    is driven by the lesions where the models differ)."""
    from usbkit.report.findings import ttfd_sentence

    a = [0.0] * 60 + [0.5] * 30 + [0.0] * 10
    b = [0.0] * 60 + [0.0] * 30 + [0.2] * 10
    c = _ttfd_comparison(a, b)
    assert (c["n_a_first"], c["n_b_first"], c["n_same"]) == (10, 30, 60)
    assert c["median_diff_seconds"] == 0.0 and c["wilcoxon_p"] < 0.001
    text = ttfd_sentence(c)
    assert "sequence marks 30 of them sooner, single frame 10, and 60 are marked by both on " \
        "the same frame" in text  # fmt: skip
    assert "on average sequence is 0.13 s sooner" in text
    assert "median difference 0.00 s, because most lesions are marked on the same frame" in text
    assert "Wilcoxon P < 0.001 compares only the 40 lesions where the two differ" in text
    r = {**_results(0.01, 0.02), "ttfd_comparisons": [c], "view_fp_rate": 0.5}
    assert text in findings(r)


def test_time_to_first_detection_of_one_differing_lesion_is_singular():
    from usbkit.report.findings import ttfd_sentence

    text = ttfd_sentence(_ttfd_comparison([0.0, 0.0, 0.2], [0.0, 0.0, 0.0]))
    assert "compares only the 1 lesion where the two differ." in text


def test_time_to_first_detection_table_says_which_model_marks_first(tiny_cohort):
    from usbkit.report.figures import ttfd_table
    from usbkit.report.run import Run

    results = Run.open(tiny_cohort).read_results()
    table = ttfd_table(results)
    first = table["marked first"].dropna()
    first = first[first != ""]
    assert len(first) == len(results["ttfd_comparisons"])
    assert all("same frame" in v and "mean" in v for v in first)


def test_literature_table_says_not_reached_and_the_recall_reached(tiny_cohort):
    from usbkit.report.figures import literature_table
    from usbkit.report.run import Run

    results = Run.open(tiny_cohort).read_results()
    for m in results["models"].values():  # a model that never finds 80% of lesion frames
        m["literature"].update(max_recall=0.61, pr80=None, pr90=None)
        for level in ("fp80", "fp90"):
            m["literature"][level].update(own_fps=None, fps30=None)
        m["literature_published"]["ultradet"].update(max_recall=0.61)
    table = literature_table(results)
    assert table.index.names == ["model", "convention"]
    assert list(table.index) == [
        (name, convention) for name in results["models"] for convention in ("usbkit", "UltraDet's code")
    ]  # fmt: skip
    assert (table["frame recall reached"] == "0.610").all()
    own, published = (table.xs(c, level="convention") for c in ("usbkit", "UltraDet's code"))
    for col in ("Pr80", "Pr90", "FP80 (own fps)", "FP90 (30 fps)"):
        assert (own[col] == "not reached").all()
        # the published code prints a number even there: shown, and marked
        assert published[col].str.fullmatch(r"\d+\.\d{3} \(not reached\)").all()
    assert not (table == "").any().any()  # no blank cell


def test_notebook_tables_show_the_whole_marked_first_cell():
    """The time-to-first-detection table's 'marked first' cell ran past pandas' 50
    characters and ended in '...' in the notebooks and the report."""
    import pandas as pd

    from usbkit.report.figures import ttfd_table
    from usbkit.report.steps import setup_notebook

    c = {**_ttfd_comparison([0.0, 0.5], [0.0, 0.0]), "a": "single frame",
         "b": "single frame + tracking"}  # fmt: skip
    table = ttfd_table({"models": {}, "ttfd_comparisons": [c]})
    assert table.index[0][0] == "single frame vs single frame + tracking"  # no minus sign
    text = table["marked first"].iloc[0]
    assert len(text) > 50
    with pd.option_context("display.max_colwidth", 50):
        setup_notebook()
        assert text in table._repr_html_()  # what a notebook shows
