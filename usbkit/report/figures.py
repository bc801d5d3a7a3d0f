"""The study's figures with plotly: HTML plus static PNG and SVG (kaleido + system Chromium).

1. scan-level FROC curves with bootstrap bands and markers at the FP rates;
2. sensitivity at each FP rate as grouped bars with 95% intervals and P values, the
   published values of Yuan & Jia (2022) beside them;
3. a gallery of true positives, false positives and misses of each model;
4. the frame-level FROC.

One colour per model everywhere (Okabe-Ito, colour-blind safe).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from usbkit.evaluation.results import PUBLISHED, format_p

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
FONT = dict(family="Arial, Helvetica, sans-serif", size=15, color="#222")


def model_colors(names) -> dict[str, str]:
    """A fixed colour per model name, in order of appearance."""
    return {n: OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(names)}


GT_COLOR = "#00C853"


def add_box(
    fig: go.Figure, b, row: int, col: int, color: str, offset=(0, 0), dash: str | None = None
) -> None:
    """Draw box ``b`` (anything with x0, y0, x1, y1) on a subplot, shifted by ``-offset``."""
    ox, oy = offset
    fig.add_shape(
        type="rect",
        x0=b.x0 - ox,
        y0=b.y0 - oy,
        x1=b.x1 - ox,
        y1=b.y1 - oy,
        row=row,
        col=col,
        line=dict(color=color, width=2, dash=dash),
    )


def _style(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.01),
        font=FONT,
        template="simple_white",
        legend=dict(bgcolor="rgba(255,255,255,0.8)"),
        margin=dict(l=70, r=20, t=60, b=60),
        width=760,
        height=520,
    )
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _step(fp: list, sens: list) -> tuple[np.ndarray, np.ndarray]:
    s = pd.Series(sens).groupby(np.asarray(fp, float)).max()
    return s.index.to_numpy(float), np.maximum.accumulate(s.to_numpy(float))


def froc_figure(
    results: dict,
    boot_grid: dict | None = None,
    grid: np.ndarray | None = None,
    level: str = "scan",
) -> go.Figure:
    """FROC curves (operating-point step curves) with bootstrap 95% bands and FP-rate markers."""
    names = list(results["models"])
    colors = model_colors(names)
    xs = results["fp_rates"]
    fig = go.Figure()
    xmax = max(1.0, max(xs)) * 1.1
    for name in names:
        m = results["models"][name]
        c = colors[name]
        if level == "scan":
            fp, sens = _step(m["froc"]["fp_per_scan"], m["froc"]["sensitivity"])
            marks = m["sensitivity"]
        else:
            fp, sens = (
                np.asarray(m["frame_froc"]["fp_per_frame"]),
                np.asarray(m["frame_froc"]["sensitivity"]),
            )
            fp, sens = _step(fp, sens)
            marks = m["frame_sensitivity"]
        fp = np.append(fp, xmax)
        sens = np.append(sens, sens[-1])
        if boot_grid is not None and grid is not None and level == "scan":
            b = boot_grid[name]
            lo = np.nanpercentile(b, 2.5, axis=0)
            hi = np.nanpercentile(b, 97.5, axis=0)
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([grid, grid[::-1]]),
                    y=np.concatenate([hi, lo[::-1]]),
                    fill="toself",
                    fillcolor=_rgba(c, 0.15),
                    line=dict(width=0),
                    hoverinfo="skip",
                    showlegend=False,
                    line_shape="hv",
                    name=f"{name} 95% band",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=fp, y=sens, mode="lines", line=dict(color=c, width=3, shape="hv"), name=name
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=marks,
                mode="markers",
                marker=dict(color=c, size=11, line=dict(color="white", width=1.5)),
                showlegend=False,
                hovertemplate=f"{name}<br>%{{x}} FP: sensitivity %{{y:.1%}}<extra></extra>",
            )
        )
    for x in xs:
        fig.add_vline(x=x, line=dict(color="#999", dash="dot", width=1))
    unit = "false positives per scan" if level == "scan" else "false positives per frame"
    fig.update_xaxes(
        title=f"{unit} (FP tracks / clip)" if level == "scan" else unit, range=[0, xmax]
    )
    fig.update_yaxes(title="lesion sensitivity", tickformat=".0%", range=[0, 1.02])
    title = (
        "Scan-level FROC (bands: 95% patient bootstrap)" if level == "scan" else "Frame-level FROC"
    )
    return _style(fig, title)


def sensitivity_bars(results: dict) -> go.Figure:
    """Sensitivity at each FP rate, 95% intervals, P values, the study's published values."""
    names = list(results["models"])
    colors = model_colors(names)
    xs = [f"{x:g} FP/scan" for x in results["fp_rates"]]
    fig = go.Figure()
    for name in names:
        m = results["models"][name]
        s = np.asarray(m["sensitivity"], float)
        ci = np.asarray([[np.nan if v is None else v for v in c] for c in m["ci95"]], float)
        fig.add_trace(
            go.Bar(
                x=xs,
                y=s,
                name=name,
                marker_color=colors[name],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=ci[:, 1] - s,
                    arrayminus=s - ci[:, 0],
                    color="#333",
                    thickness=1.5,
                ),
                text=[f"{v:.1%}" for v in s],
                textposition="inside",
                textangle=0,
            )
        )
    for k, pub in enumerate(("single frame", "sequence")):
        fig.add_trace(
            go.Scatter(
                x=[f"{x:g} FP/scan" for x in PUBLISHED["fp_rates"]],
                y=PUBLISHED[pub],
                mode="markers",
                marker=dict(
                    symbol=["diamond-open", "star-open"][k],
                    size=13,
                    color="#000",
                    line=dict(width=2),
                ),
                name=f"Yuan & Jia 2022: {pub}",
            )
        )
    if results["comparisons"]:
        a, b = results["comparisons"][0]["a"], results["comparisons"][0]["b"]
        for c in results["comparisons"]:
            if (c["a"], c["b"]) != (a, b):
                continue
            fig.add_annotation(
                x=f"{c['fp_rate']:g} FP/scan",
                y=1.07,
                showarrow=False,
                text=f"McNemar P {format_p(c['mcnemar_p'])}<br>"
                f"bootstrap P {format_p(c['bootstrap_p'])}",
                font=dict(size=12),
            )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="lesion sensitivity (95% CI)", tickformat=".0%", range=[0, 1.15])
    fig.update_xaxes(title="operating point (false positives per scan)")
    return _style(fig, "Sensitivity at fixed false-positive rates")


def gallery_figure(
    study, detections: dict, results: dict, fp_rate: float = 0.5, per_kind: int = 1
) -> go.Figure:
    """Frames with a true positive, a false positive and a miss of each model at ``fp_rate``.

    Ground truth in green (dashed), the model's marks at or above its operating threshold in
    the model's colour.
    """
    from usbkit.evaluation.froc import hits
    from usbkit.io.clip import ReaderSettings, open_clip

    names = list(detections)
    colors = model_colors(names)
    k = results["fp_rates"].index(fp_rate) if fp_rate in results["fp_rates"] else -1
    kinds = ["true positive", "false positive", "miss"]
    fig = make_subplots(
        rows=len(names),
        cols=3,
        subplot_titles=[f"{n}: {kd}" for n in names for kd in kinds],
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
    )
    ann = study.annotations
    ids = set(study.clips(results.get("split"))["clip_id"])
    cache = {}

    def frame_of(cid, f):
        # Cropped to the B-mode image: burned-in patient text never reaches a figure.
        if cid not in cache:
            cache[cid] = open_clip(study.clip_path(cid), ReaderSettings())
        clip = cache[cid]
        return np.asarray(clip[f]), clip.crop_box[0], clip.crop_box[1]

    for row, name in enumerate(names, start=1):
        thr = results["models"][name]["threshold"][k]
        thr = np.inf if thr is None else thr
        d = detections[name]
        d = d.loc[d["clip_id"].isin(ids) & (d["score"] >= thr)]
        merged = d.reset_index().merge(
            ann, on=["clip_id", "frame"], how="left", suffixes=("", "_g")
        )
        hit = np.zeros(len(merged), bool)
        ok = merged["x0_g"].notna().to_numpy()
        if ok.any():
            hit[ok] = hits(
                merged.loc[ok, ["x0", "y0", "x1", "y1"]].to_numpy(float),
                merged.loc[ok, ["x0_g", "y0_g", "x1_g", "y1_g"]].to_numpy(float),
            )
        tp_idx = set(merged.loc[hit, "index"])
        tps = d.loc[d.index.isin(tp_idx)].sort_values("score", ascending=False)
        fps = d.loc[~d.index.isin(tp_idx)].sort_values("score", ascending=False)
        hit_boxes = merged.loc[hit, ["clip_id", "frame", "lesion_id"]].drop_duplicates()
        g = ann.loc[ann["clip_id"].isin(ids)].merge(
            hit_boxes, how="left", indicator=True, on=["clip_id", "frame", "lesion_id"]
        )
        misses = g.loc[g["_merge"] == "left_only"]
        misses = misses.assign(area=(misses.x1 - misses.x0) * (misses.y1 - misses.y0)).sort_values(
            "area", ascending=False
        )
        for col, pick in enumerate([tps, fps, misses], start=1):
            if pick.empty:
                fig.add_annotation(
                    text="none",
                    showarrow=False,
                    row=row,
                    col=col,
                    x=0.5,
                    y=0.5,
                    xref="x domain",
                    yref="y domain",
                )
                continue
            cid, f = pick.iloc[0]["clip_id"], int(pick.iloc[0]["frame"])
            img, ox, oy = frame_of(cid, f)
            fig.add_trace(
                go.Heatmap(
                    z=img, colorscale="gray", showscale=False, zmin=0, zmax=255, hoverinfo="skip"
                ),
                row=row,
                col=col,
            )
            for b in ann.loc[(ann.clip_id == cid) & (ann.frame == f)].itertuples():
                add_box(fig, b, row, col, GT_COLOR, offset=(ox, oy), dash="dash")
            for b in d.loc[(d.clip_id == cid) & (d.frame == f)].itertuples():
                add_box(fig, b, row, col, colors[name], offset=(ox, oy))
            fig.update_xaxes(showticklabels=False, row=row, col=col)
            fig.update_yaxes(
                showticklabels=False,
                autorange="reversed",
                scaleanchor=f"x{(row - 1) * 3 + col}",
                row=row,
                col=col,
            )
    fig = _style(fig, f"Examples at {fp_rate:g} FP/scan (green dashed: ground truth)")
    fig.update_layout(width=900, height=300 * len(names) + 80)
    return fig


def browser_path() -> str | None:
    """The Chromium kaleido uses for static export (``BROWSER_PATH`` or found on PATH)."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            os.environ["BROWSER_PATH"] = p
            return p
    return None


def save_figure(fig: go.Figure, stem: str | Path, static: bool = True) -> list[Path]:
    """Write ``stem.html`` and, when a Chromium is available, ``stem.png`` and ``stem.svg``."""
    from usbkit.safeio import atomic_path

    stem = Path(stem)
    out = []
    with atomic_path(stem.with_suffix(".html")) as tmp:
        fig.write_html(tmp, include_plotlyjs="cdn", full_html=True)
    out.append(stem.with_suffix(".html"))
    if static and browser_path():
        for ext, scale in (("png", 2), ("svg", 1)):
            with atomic_path(stem.with_suffix(f".{ext}")) as tmp:
                fig.write_image(tmp, format=ext, scale=scale)
            out.append(stem.with_suffix(f".{ext}"))
    return out


def study_figures(
    results: dict,
    extras: dict,
    out: str | Path,
    study=None,
    detections: dict | None = None,
    static: bool = True,
) -> list[Path]:
    """Draw and save all four figures into ``out``; returns the files written."""
    out = Path(out)
    ratings = extras["ratings"]
    from usbkit.evaluation.froc import frame_froc

    for name, r in ratings.items():
        fc = frame_froc(r)
        results["models"][name]["frame_froc"] = {
            "fp_per_frame": fc.fp_rate.tolist(),
            "sensitivity": fc.sensitivity.tolist(),
        }
    files = []
    files += save_figure(
        froc_figure(results, extras["boot"]["grid"], extras["grid"]), out / "fig1_froc", static
    )
    files += save_figure(sensitivity_bars(results), out / "fig2_sensitivity", static)
    if study is not None and detections is not None:
        files += save_figure(
            gallery_figure(study, detections, results), out / "fig3_gallery", static
        )
    files += save_figure(froc_figure(results, level="frame"), out / "fig4_frame_froc", static)
    for m in results["models"].values():
        m.pop("frame_froc", None)
    return files
