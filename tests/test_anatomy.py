"""The synthetic frame reads as a linear-probe breast view: layers in anatomical order, each
with the echogenicity a clinician expects, and the labelled sketch that shows it."""

from __future__ import annotations

import numpy as np
import pytest

from usbkit.synth import anatomy_example
from usbkit.synth.scene import TISSUES


@pytest.fixture(scope="module", params=["malignant", "benign"])
def example(request):
    return anatomy_example(pathology=request.param)


def test_layers_lie_in_anatomical_order_down_every_column(example):
    _, tissues, _ = example
    order = [
        TISSUES.index(t)
        for t in (
            "skin",
            "subcutaneous fat",
            "fibroglandular tissue",
            "retromammary fat",
            "pectoral muscle",
        )
    ]
    rank = {t: i for i, t in enumerate(order)}
    rank[TISSUES.index("Cooper's ligament")] = rank[TISSUES.index("subcutaneous fat")]
    for col in tissues.T:
        layers = [rank[t] for t in col if t in rank]  # masses and posterior features aside
        assert layers == sorted(layers)
        assert layers[0] == 0 and layers[-1] >= 2
    # the pectoral muscle is in view at the bottom (unless a mass's shadow lies over it)
    bottom = [TISSUES[t] for t in tissues[-1]]
    assert (
        np.mean(
            [t in ("pectoral muscle", "posterior shadow", "posterior enhancement") for t in bottom]
        )
        > 0.9
    )


def test_each_tissue_has_the_echogenicity_a_reader_expects(example):
    frame, tissues, _ = example
    level = {
        name: frame[tissues == k].mean()
        for k, name in enumerate(TISSUES)
        if (tissues == k).sum() > 50
    }
    assert level["skin"] > level["fibroglandular tissue"] > level["subcutaneous fat"]
    assert level["Cooper's ligament"] > level["subcutaneous fat"] + 15  # bright septa in dark fat
    assert level["fibroglandular tissue"] > level["retromammary fat"] + 30
    assert level["mass"] < level["fibroglandular tissue"] - 20  # hypoechoic


def test_the_frame_has_a_real_clips_size_and_pixel_size(example):
    frame, tissues, mm = example
    assert frame.shape == tissues.shape and frame.shape[1] >= 384
    assert 38 <= frame.shape[1] * mm <= 46  # a linear probe's 40 mm field of view


def test_the_anatomy_figure_names_every_layer_it_shows():
    from usbkit.report.explore import anatomy_figure

    fig = anatomy_figure()
    names = {a.text for a in fig.layout.annotations}
    assert {"skin", "subcutaneous fat", "Cooper's ligament", "fibroglandular tissue"} <= names
    assert {"retromammary fat", "pectoral muscle", "mass"} <= names
    assert np.asarray(fig.data[0].z).shape == np.asarray(fig.data[1].z).shape


def test_the_skin_label_does_not_sit_on_the_subcutaneous_fat_label():
    """'skin' was drawn just under 'subcutaneous fat', the two boxes touching, the deeper
    layer's name above the shallower one's. The skin is named at a lateral place of its own,
    just under its line."""
    from usbkit.report.explore import anatomy_figure

    fig = anatomy_figure()
    at = {a.text: a for a in fig.layout.annotations}
    width = float(np.asarray(fig.data[1].x).max() - np.asarray(fig.data[1].x).min())
    for other in ("subcutaneous fat", "Cooper's ligament"):
        assert abs(at["skin"].x - at[other].x) > 0.2 * width, other
    assert at["skin"].ay > 0 and at["skin"].ax == 0  # leader straight up to the line
