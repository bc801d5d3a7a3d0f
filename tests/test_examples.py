"""The runnable examples in the docstrings of the main entry points work as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "usbkit.config",
    "usbkit.style",
    "usbkit.safeio",
    "usbkit.io.clip",
    "usbkit.io.study",
    "usbkit.evaluation.matching",
    "usbkit.evaluation.froc",
    "usbkit.evaluation.results",
    "usbkit.evaluation.power",
    "usbkit.models.train",
    "usbkit.viewer.scrubber",
    "usbkit.report.findings",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_the_main_entry_points_carry_examples():
    import usbkit

    for name in ("open_clip", "load_study", "evaluate_models", "Scrubber"):
        assert ">>>" in (getattr(usbkit, name).__doc__ or ""), name
