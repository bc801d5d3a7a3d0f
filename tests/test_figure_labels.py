"""Labels of the report's figures that must not sit on one another (the sensitivity bars)."""

from __future__ import annotations

import pytest

from usbkit.evaluation.results import PUBLISHED


def _results(names):
    xs = PUBLISHED["fp_rates"]
    models = {
        n: {"sensitivity": [0.79, 0.85, 0.91], "ci95": [[0.71, 0.86], [0.79, 0.9], [0.86, 0.95]]}
        for n in names
    }
    comparisons = [{"a": "single frame", "b": "sequence", "fp_rate": x, "mcnemar_p": 0.01,
                    "bootstrap_p": 0.02} for x in xs]  # fmt: skip
    return {"fp_rates": xs, "models": models, "comparisons": comparisons}


@pytest.mark.parametrize("n_models", [2, 4])
def test_bar_values_sit_at_the_base_and_published_markers_beside_the_whiskers(n_models):
    """The bars' values were written at the bars' tops, under the published markers (76.6,
    84.2, 86.0 and 77.3, 91.8, 95.3) and the intervals' whiskers; the markers stood at the
    centre of each group of bars, not on the bar of their model. Now each value is at its
    bar's base, and each marker stands on its model's bar, clear of that bar's whisker."""
    from usbkit.report.figures import sensitivity_bars

    names = ["single frame", "single frame + tracking", "sequence", "sequence (no context)"]
    if n_models == 2:
        names = ["single frame", "sequence"]
    fig = sensitivity_bars(_results(names))
    bars = [t for t in fig.data if t.type == "bar"]
    markers = [t for t in fig.data if t.type == "scatter"]
    assert [b.name for b in bars] == names and len(markers) == 2
    for b in bars:  # the value inside the bar, at its base
        assert b.textposition == "inside" and b.insidetextanchor == "start"
    lay = fig.layout
    plot_w = lay.width - lay.margin.l - lay.margin.r
    assert lay.legend.orientation == "h"  # below the plot: the bars have the full width
    px = plot_w / (lay.xaxis.range[1] - lay.xaxis.range[0])  # pixels per FP-rate slot
    for marker, model in zip(markers, ("single frame", "sequence")):
        bar = next(b for b in bars if b.name == model)
        assert list(marker.y) == PUBLISHED[model]
        for k, x in enumerate(marker.x):
            lo = bar.x[k] + bar.offset
            centre = lo + bar.width / 2
            assert lo < x < lo + bar.width  # on its model's bar
            clear = abs(x - centre) * px - marker.marker.size / 2 - marker.marker.line.width
            assert clear > bar.error_y.width + bar.error_y.thickness  # beside the whisker cap


def test_a_published_marker_without_its_model_stands_at_the_slot_centre():
    from usbkit.report.figures import sensitivity_bars

    fig = sensitivity_bars(_results(["detector A", "detector B"]))
    markers = [t for t in fig.data if t.type == "scatter"]
    assert [list(m.x) for m in markers] == [[0.0, 1.0, 2.0]] * 2
