"""Notebook set-up shared by the four notebooks."""

from __future__ import annotations


def setup() -> None:
    """Plotly figures that show in JupyterLab and also in HTML exports of executed notebooks
    (plotly.js embedded once per notebook, so the pages work offline)."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"
