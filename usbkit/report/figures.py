"""The study's figures with plotly: HTML plus static PNG and SVG (kaleido + system Chromium).

1. scan-level FROC curves with bootstrap bands and markers at the FP rates;
2. sensitivity at each FP rate as grouped bars with 95% intervals and P values, the
   published values of Yuan & Jia (2022) beside them;
3. a gallery of true positives, false positives and misses of each model;
4. the frame-level FROC.

One colour per model everywhere (:mod:`usbkit.style`, Okabe-Ito, colour-blind safe). Every
number drawn comes from the results of :mod:`usbkit.evaluation.results` (``results.json``);
the gallery labels marks with the run's own hit rule through
:mod:`usbkit.evaluation.matching`, so a figure never disagrees with the table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from usbkit.errors import UsbkitError
from usbkit.evaluation.matching import match
from usbkit.evaluation.results import PUBLISHED, format_p, operating_thresholds
from usbkit.style import GT_COLOR, OKABE_ITO, model_colors, rgba

FONT = dict(family="Arial, Helvetica, sans-serif", size=15, color="#222")


#: A transparent fill: boxes and other shapes are drawn as outlines only.
NO_FILL = "rgba(0,0,0,0)"


def add_box(
    fig: go.Figure, b, row: int, col: int, color: str, offset=(0, 0), dash: str | None = None
) -> None:
    """Draw box ``b`` (anything with x0, y0, x1, y1) on a subplot, shifted by ``-offset``:
    an outline only, so the mass inside (its margin, its echo pattern) stays visible."""
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
        fillcolor=NO_FILL,
        opacity=1,
    )


def style_figure(fig: go.Figure, title: str) -> go.Figure:
    """The house style of usbkit figures: title, font, white template, size."""
    fig.update_layout(
        title=dict(text=title, x=0.01),
        font=FONT,
        template="simple_white",
        legend=dict(bgcolor="rgba(255,255,255,0.8)"),
        margin=dict(l=70, r=20, t=60, b=60),
        width=760,
        height=520,
    )
    # simple_white fills every shape with black at 30% opacity: shapes are outlines here
    fig.layout.template.layout.shapedefaults = dict(fillcolor=NO_FILL, opacity=1)
    return fig


def froc_figure(results: dict, level: str = "scan") -> go.Figure:
    """FROC curves (step curves through the evaluated points) with FP-rate markers.

    Parameters
    ----------
    results : dict
        The evaluation's results (``results.json``).
    level : {'scan', 'frame'}
        The scan-level curve (with its 95% patient-bootstrap band) or the frame-level one.
    """
    names = list(results["models"])
    colors = model_colors(names)
    xs = results["fp_rates"]
    fig = go.Figure()
    xmax = max(1.0, max(xs)) * 1.1
    for name in names:
        m = results["models"][name]
        c = colors[name]
        if level == "scan":
            fp, sens = m["froc"]["fp_per_scan"], m["froc"]["sensitivity"]
            marks = m["sensitivity"]
            band = m.get("froc_band")
        else:
            fp, sens = m["frame_froc"]["fp_per_frame"], m["frame_froc"]["sensitivity"]
            marks = m["frame_sensitivity"]
            band = None
        fp = np.append(np.asarray(fp, float), xmax)
        sens = np.append(np.asarray(sens, float), sens[-1])
        if band is not None:
            grid = np.asarray(band["fp_per_scan"], float)
            lo = np.asarray([np.nan if v is None else v for v in band["lo"]], float)
            hi = np.asarray([np.nan if v is None else v for v in band["hi"]], float)
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([grid, grid[::-1]]),
                    y=np.concatenate([hi, lo[::-1]]),
                    fill="toself",
                    fillcolor=rgba(c, 0.15),
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
    return style_figure(fig, title)


#: Share of an FP rate's slot that its group of bars takes (the rest separates the groups).
BAR_GROUP_WIDTH = 0.8


def sensitivity_bars(results: dict) -> go.Figure:
    """Sensitivity at each FP rate, 95% intervals, P values, the study's published values.

    Each FP rate is a slot on the x axis (0, 1, ...) holding one bar per model. A bar's value
    is written inside it at its base, clear of the interval's whiskers and of the published
    markers near its top; each published marker stands on the bar of the model of the same
    name, right of the bar's whisker (at the slot's centre when the results have no such
    model).
    """
    names = list(results["models"])
    colors = model_colors(names)
    labels = [f"{x:g} FP/scan" for x in results["fp_rates"]]
    slots = np.arange(len(labels), dtype=float)
    width = BAR_GROUP_WIDTH / max(len(names), 1)
    centre = {n: -BAR_GROUP_WIDTH / 2 + (i + 0.5) * width for i, n in enumerate(names)}
    fig = go.Figure()
    for name in names:
        m = results["models"][name]
        s = np.asarray(m["sensitivity"], float)
        ci = np.asarray([[np.nan if v is None else v for v in c] for c in m["ci95"]], float)
        fig.add_trace(
            go.Bar(
                x=slots,
                y=s,
                width=width,
                offset=centre[name] - width / 2,
                name=name,
                marker_color=colors[name],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=ci[:, 1] - s,
                    arrayminus=s - ci[:, 0],
                    color="#333",
                    thickness=1.5,
                    width=3,
                ),
                text=[f"{v:.1%}" for v in s],
                textposition="inside",
                insidetextanchor="start",  # at the bar's base, away from whiskers and markers
                textangle=0,
                textfont=dict(size=12),
                customdata=labels,
                hovertemplate=f"{name}<br>%{{customdata}}: %{{y:.1%}}<extra></extra>",
            )
        )
    for k, pub in enumerate(("single frame", "sequence")):
        at = [
            labels.index(f"{x:g} FP/scan")
            for x in PUBLISHED["fp_rates"]
            if f"{x:g} FP/scan" in labels
        ]
        shown = [
            y for x, y in zip(PUBLISHED["fp_rates"], PUBLISHED[pub]) if f"{x:g} FP/scan" in labels
        ]
        fig.add_trace(
            go.Scatter(
                x=slots[at] + (centre[pub] + 0.3 * width if pub in centre else 0.0),
                y=shown,
                mode="markers",
                marker=dict(
                    symbol=["diamond-open", "star-open"][k],
                    size=13,
                    color="#000",
                    line=dict(width=2),
                ),
                name=f"Yuan & Jia 2022: {pub}",
                hovertemplate=f"Yuan & Jia 2022, {pub}: %{{y:.1%}}<extra></extra>",
            )
        )
    if results["comparisons"]:
        a, b = results["comparisons"][0]["a"], results["comparisons"][0]["b"]
        if any({c["a"], c["b"]} == {"single frame", "sequence"} for c in results["comparisons"]):
            a, b = next(
                (c["a"], c["b"])
                for c in results["comparisons"]
                if {c["a"], c["b"]} == {"single frame", "sequence"}
            )  # the study's own question
        for c in results["comparisons"]:
            if (c["a"], c["b"]) != (a, b):
                continue
            label = f"{c['fp_rate']:g} FP/scan"
            if label not in labels:
                continue
            fig.add_annotation(
                x=slots[labels.index(label)],
                y=1.07,
                showarrow=False,
                text=f"McNemar P {format_p(c['mcnemar_p'])}<br>"
                f"bootstrap P {format_p(c['bootstrap_p'])}",
                font=dict(size=12),
            )
    fig.update_yaxes(title="lesion sensitivity (95% CI)", tickformat=".0%", range=[0, 1.15])
    fig.update_xaxes(
        title="operating point (false positives per scan)",
        tickvals=slots,
        ticktext=labels,
        range=[-0.5, len(labels) - 0.5],
        ticks="",
    )
    title = "Sensitivity at fixed false-positive rates"
    if results["comparisons"] and len(results["models"]) > 2:
        title += f" (P values: {a} vs {b})"
    fig = style_figure(fig, title)
    # the legend below the plot leaves the bars the figure's width: wide enough for a
    # published marker to stand clear of its bar's whisker
    fig.update_layout(
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.2, yanchor="top"),
        margin=dict(b=150),
        height=640,
    )
    return fig


def gallery_examples(
    study, detections: dict, results: dict, fp_rate: float | None = None
) -> dict[str, dict[str, pd.DataFrame]]:
    """True positives, false positives and misses of each model at its operating point.

    Marks are judged by the run's hit rule (``results["hit"]``) on the clips the run
    evaluated, at each model's threshold for ``fp_rate`` (default: the results'
    ``view_fp_rate``), exactly as the evaluation counted them.

    Returns
    -------
    dict
        ``{model: {"true positive": rows, "false positive": rows, "miss": rows}}``: the
        detections (best score first) and the missed ground-truth boxes (largest first).
    """
    ids = set(results["units"]["clips"]["clip_id"])
    ann = study.annotations.loc[study.annotations["clip_id"].isin(ids)].reset_index(drop=True)
    thresholds = operating_thresholds(results, fp_rate)
    out = {}
    for name, det in detections.items():
        d = det.loc[det["clip_id"].isin(ids)].reset_index(drop=True)
        m = match(ann, d, results["hit"])
        shown = (d["score"] >= thresholds[name]).to_numpy()
        misses = ann.loc[~(m.box_rating >= thresholds[name])]
        out[name] = {
            "true positive": d.loc[shown & m.det_hit].sort_values("score", ascending=False),
            "false positive": d.loc[shown & ~m.det_hit].sort_values("score", ascending=False),
            "miss": misses.assign(
                area=(misses.x1 - misses.x0) * (misses.y1 - misses.y0)
            ).sort_values("area", ascending=False),
        }
    return out


def gallery_figure(
    study, detections: dict, results: dict, fp_rate: float | None = None
) -> go.Figure:
    """Frames with a true positive, a false positive and a miss of each model.

    Ground truth in green (dashed), the model's marks at or above its operating threshold in
    the model's colour (see :func:`gallery_examples`).
    """
    from usbkit.io.clip import ReaderSettings, open_clip

    examples = gallery_examples(study, detections, results, fp_rate)
    thresholds = operating_thresholds(results, fp_rate)
    rate = results["view_fp_rate"] if fp_rate is None else fp_rate
    names = list(detections)
    colors = model_colors(names)
    kinds = ["true positive", "false positive", "miss"]
    fig = make_subplots(
        rows=len(names),
        cols=3,
        subplot_titles=[f"{n}: {kd}" for n in names for kd in kinds],
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
    )
    ann = study.annotations
    cache = {}

    def frame_of(cid, f):
        # Cropped to the B-mode image: burned-in patient text never reaches a figure.
        if cid not in cache:
            cache[cid] = open_clip(study.clip_path(cid), ReaderSettings())
        clip = cache[cid]
        return np.asarray(clip[f]), clip.crop_box[0], clip.crop_box[1]

    for row, name in enumerate(names, start=1):
        d = detections[name]
        for col, kind in enumerate(kinds, start=1):
            pick = examples[name][kind]
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
            on_frame = d.loc[(d.clip_id == cid) & (d.frame == f) & (d.score >= thresholds[name])]
            for b in on_frame.itertuples():
                add_box(fig, b, row, col, colors[name], offset=(ox, oy))
            fig.update_xaxes(showticklabels=False, row=row, col=col)
            fig.update_yaxes(
                showticklabels=False,
                autorange="reversed",
                scaleanchor=f"x{(row - 1) * 3 + col}",
                row=row,
                col=col,
            )
    fig = style_figure(
        fig, f"Examples at {rate:g} FP/scan, hit rule {results['hit']} (green dashed: ground truth)"
    )
    fig.update_layout(width=900, height=300 * len(names) + 80)
    return fig


def browser_path() -> str | None:
    """The Chromium kaleido uses for static export (``BROWSER_PATH`` or found on PATH)."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).exists():
        return env
    for name in (env, "chromium", "chromium-browser", "google-chrome"):  # env: a command name
        p = shutil.which(name) if name else None
        if p:
            os.environ["BROWSER_PATH"] = p
            return p
    return None


#: Static images asked for inside a :func:`static_export` block, written at its end.
_PENDING: list[tuple[go.Figure, Path, str, float]] | None = None


@contextlib.contextmanager
def static_export() -> Iterator[None]:
    """Write every static image asked for inside the block with one Chromium, at its end.

    Without it kaleido starts a browser for each PNG or SVG (about 2 s each); with it a
    figure set of eight images takes about as long as two. Each file is built aside and
    renamed into place, and appears when the block ends; if the block raises, none is
    written. Blocks may nest (the outermost one writes). Without a Chromium, images are not
    asked for (:func:`save_figure`), so the block does nothing.
    """
    global _PENDING
    if _PENDING is not None:  # nested: the outermost block writes
        yield
        return
    _PENDING = []
    try:
        yield
        jobs = _PENDING
    finally:
        _PENDING = None
    if jobs:
        _write_batch(jobs)


#: Seconds Chromium may take to draw one static image before the image is retried; a busy
#: machine (load 6 on two cores) needs far more than kaleido's own 90 s. ``USBKIT_EXPORT_TIMEOUT``
#: (seconds) overrides it.
EXPORT_TIMEOUT_S = 300.0

#: How many more times the images that failed are drawn again, each in a fresh browser.
EXPORT_RETRIES = 1


def export_timeout_s() -> float:
    """The time allowed to draw one static image (``USBKIT_EXPORT_TIMEOUT`` or the default)."""
    value = os.environ.get("USBKIT_EXPORT_TIMEOUT", "")
    try:
        return float(value) if value.strip() else EXPORT_TIMEOUT_S
    except ValueError:
        raise UsbkitError(
            f"USBKIT_EXPORT_TIMEOUT='{value}' is not a number of seconds",
            fix="Set it to a number such as 600, or unset it",
        ) from None


def _write_batch(jobs: list[tuple[go.Figure, Path, str, float]]) -> None:
    """Render the images of ``jobs`` in one browser session, then draw the ones that failed
    again in a fresh one (:data:`EXPORT_RETRIES` times); an image still missing ends in an
    error that names the cause: Chromium did not start, or the machine was too busy to draw
    in time, or the reason Chromium gave."""
    from usbkit.safeio import atomic_path

    timeout = export_timeout_s()
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(path)) for _, path, _, _ in jobs]
        todo = list(range(len(jobs)))
        errors: list[BaseException] = []
        for _ in range(1 + EXPORT_RETRIES):
            errors = _render([jobs[i] for i in todo], [tmps[i] for i in todo], timeout)
            # kaleido reports a failed image by not writing it (and in its list of errors)
            todo = [i for i in todo if not _written(tmps[i])]
            if not todo:
                return
            if _browser_failure(errors):  # trying again would not start it either
                break
        raise _export_error([jobs[i][1] for i in todo], errors, timeout)


def _render(jobs, tmps, timeout: float) -> list[BaseException]:
    """One browser session drawing ``jobs`` into ``tmps`` at each figure's own size; the
    errors it met (a browser that does not start is one error for all)."""
    import kaleido
    import plotly.io as pio
    from plotly.io._utils import validate_coerce_fig_to_dict

    specs = []
    for (fig, _, fmt, scale), tmp in zip(jobs, tmps):
        layout = fig.layout
        specs.append(
            dict(
                fig=validate_coerce_fig_to_dict(fig, True),
                path=Path(tmp),
                opts=dict(
                    format=fmt,
                    width=layout.width or pio.defaults.default_width,
                    height=layout.height or pio.defaults.default_height,
                    scale=scale,
                ),
            )
        )
    kopts = {"timeout": timeout}
    for key in ("plotlyjs", "mathjax"):
        if getattr(pio.defaults, key, None):
            kopts[key] = getattr(pio.defaults, key)
    try:
        errors = kaleido.write_fig_from_object_sync(specs, kopts=kopts, cancel_on_error=False)
    except Exception as exc:  # noqa: BLE001 - the browser did not start: said by _export_error
        return [exc]
    return [_timed_out(e) for e in (errors or ()) if e is not None]


def _timed_out(error: BaseException) -> BaseException:
    """``error`` as a :class:`TimeoutError` when it only says that an image's time ran out.

    When an image takes longer than its timeout, kaleido cancels its drawing; a cancelled
    message to the browser then surfaces as choreographer's ``ChannelClosedError`` caused by
    the cancellation, which must not read as "Chromium did not start".
    """
    import asyncio

    if type(error).__name__ in _BROWSER_ERRORS and isinstance(
        error.__cause__, asyncio.CancelledError
    ):
        return TimeoutError(f"cancelled when its time ran out ({type(error).__name__})")
    return error


#: Errors of kaleido and its browser driver that mean Chromium did not start or died.
_BROWSER_ERRORS = (
    "ChromeNotFoundError",
    "BrowserFailedError",
    "BrowserDepsError",
    "BrowserClosedError",
    "ChannelClosedError",
    "FileNotFoundError",
    "PermissionError",
)


def _browser_failure(errors: list[BaseException]) -> BaseException | None:
    """The error saying Chromium did not start (or died), if one is among ``errors``."""
    return next((e for e in errors if type(e).__name__ in _BROWSER_ERRORS), None)


def _export_error(missing: list[Path], errors: list[BaseException], timeout: float):
    """The one-paragraph error for static images still missing after the retries."""
    import asyncio

    n = f"{len(missing)} static figure(s)"
    beside = "the HTML figures beside them are complete"
    cause = _browser_failure(errors)
    if cause is not None:
        said = str(cause.args[0] if cause.args else cause).split(". ")[0].rstrip(".")
        return UsbkitError(
            f"{n} could not be drawn: Chromium did not start ({said}; the browser tried: "
            f"{os.environ.get('BROWSER_PATH') or 'none found'})",
            file=missing[0],
            fix="Install Chromium (apt-get install chromium) or name it with BROWSER_PATH, "
            f"and run the command again; {beside}",
        )
    if errors and all(isinstance(e, TimeoutError | asyncio.TimeoutError) for e in errors):
        return UsbkitError(
            f"{n} could not be drawn: Chromium took longer than {timeout:g} s for each "
            f"(tried {1 + EXPORT_RETRIES} times). Chromium is installed and started; the "
            "computer was too busy (other programs are using the processor)",
            file=missing[0],
            fix="Run the command again when the computer is less busy, or allow more time "
            f"with USBKIT_EXPORT_TIMEOUT=SECONDS; {beside}",
        )
    said = "; ".join(sorted({f"{type(e).__name__}: {e}".strip() for e in errors})[:3])
    return UsbkitError(
        f"{n} could not be drawn by Chromium ({said or 'no reason given'})",
        file=missing[0],
        fix=f"Run the command again; if it fails the same way, report it with this message; "
        f"{beside}",
    )


def _written(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def write_static(fig: go.Figure, path: str | Path, fmt: str, scale: float = 1) -> Path:
    """Write ``fig`` as a PNG or SVG file (kaleido and the system Chromium), atomically.

    Inside a :func:`static_export` block the file is written when the block ends.
    """
    path = Path(path)
    if _PENDING is not None:
        _PENDING.append((fig, path, fmt, scale))
        return path
    _write_batch([(fig, path, fmt, scale)])
    return path


def save_figure(fig: go.Figure, stem: str | Path, static: bool = True) -> list[Path]:
    """Write ``stem.html`` and, when a Chromium is available, ``stem.png`` and ``stem.svg``.

    The HTML loads plotly.js from ``plotly.min.js`` beside it, written once per folder, so the
    figures open offline without a copy of plotly.js in every figure.
    """
    from usbkit.safeio import atomic_path

    stem = Path(stem)
    out = []
    with atomic_path(stem.with_suffix(".html")) as tmp:
        fig.write_html(tmp, include_plotlyjs="directory", full_html=True)
    out.append(stem.with_suffix(".html"))
    if static and browser_path():
        with static_export():
            for ext, scale in (("png", 2), ("svg", 1)):
                out.append(write_static(fig, stem.with_suffix(f".{ext}"), ext, scale))
    return out


def study_figures(
    results: dict,
    out: str | Path,
    study=None,
    detections: dict | None = None,
    static: bool = True,
) -> list[Path]:
    """Draw and save all four figures into ``out``; returns the files written.

    Parameters
    ----------
    results : dict
        The evaluation's results (``results.json``).
    out : str or Path
        Folder for ``fig1_froc``, ``fig2_sensitivity``, ``fig3_gallery`` (needs ``study`` and
        ``detections``) and ``fig4_frame_froc``, each as HTML and, with Chromium, PNG and SVG.
    study : Study, optional
        The evaluated study (for the gallery's frames).
    detections : dict of str to DataFrame, optional
        Each model's detections (for the gallery).
    static : bool
        Also write PNG and SVG.
    """
    out = Path(out)
    files = []
    with static_export() if static else contextlib.nullcontext():
        files += save_figure(froc_figure(results), out / "fig1_froc", static)
        files += save_figure(sensitivity_bars(results), out / "fig2_sensitivity", static)
        if study is not None and detections is not None:
            files += save_figure(
                gallery_figure(study, detections, results), out / "fig3_gallery", static
            )
        files += save_figure(froc_figure(results, level="frame"), out / "fig4_frame_froc", static)
    return files


def summary_table(results: dict) -> pd.DataFrame:
    """Whole-curve summary per model: JAFROC figure of merit and frame-level AP50.

    Rounded to three decimals, as a paper prints them; the full values are in the results.
    """
    rows = {
        name: {"JAFROC FOM": m["jafroc_fom"], "AP50 (frame level)": m["ap50"]}
        for name, m in results["models"].items()
    }
    return pd.DataFrame(rows).T.astype(float).round(3)


def literature_table(results: dict) -> pd.DataFrame:
    """The video-detection literature's metrics per model (docs/metrics.md#literature-metrics-of-video-detection).

    COCO AP, AP50, AP75, Pr80, Pr90 (frame level, all frames pooled) and FP80 / FP90 (false-
    positive chains per minute at frame recall 0.8 / 0.9) with each clip's own frame rate and
    at the literature's 30 fps; rounded to three decimals. One row per model and convention
    (index ``model``, ``convention``): usbkit's definitions, and each published reading the
    results hold (``UltraDet's code``: docs/metrics.md#the-published-convention-ultradet), to
    be set beside that paper's tables. A recall level the model never reaches reads "not
    reached" in usbkit's rows; a published reading still gives a number there (its code
    does), marked "(not reached)". The column "frame recall reached" gives the IoU-0.5 frame
    recall the model does reach with every mark kept.
    """
    from usbkit.evaluation.literature import CONVENTION_NAMES

    rows, notes = {}, {}
    for name, m in results["models"].items():
        readings = [("usbkit", m["literature"]), *m.get("literature_published", {}).items()]
        for convention, lit in readings:
            key = (name, CONVENTION_NAMES.get(convention, convention))
            row = {
                k.upper() if k != "ap" else "AP (0.5:0.95)": lit[k] for k in ("ap", "ap50", "ap75")
            }
            if "max_recall" in lit:
                row["frame recall reached"] = lit["max_recall"]
            row.update({"Pr80": lit["pr80"], "Pr90": lit["pr90"]})
            for level in ("fp80", "fp90"):
                row[f"{level.upper()} (own fps)"] = lit[level]["own_fps"]
                row[f"{level.upper()} (30 fps)"] = lit[level]["fps30"]
            rows[key] = row
            notes[key] = (convention, lit)
    table = pd.DataFrame.from_dict(rows, orient="index").astype(float)
    table.index = pd.MultiIndex.from_tuples(list(rows), names=["model", "convention"])
    text = table.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    for key, (convention, lit) in notes.items():
        if lit.get("ap50") is None:  # no lesion boxes: nothing is defined
            continue
        for level, cols in (("80", ("Pr80", "FP80 (own fps)", "FP80 (30 fps)")),
                            ("90", ("Pr90", "FP90 (own fps)", "FP90 (30 fps)"))):  # fmt: skip
            reached = lit.get("max_recall")
            if convention == "usbkit":
                if lit[f"pr{level}"] is None:  # the model never reaches this share
                    for col in cols:
                        text.loc[key, col] = "not reached"
            elif reached is not None and reached < int(level) / 100 - 1e-12:
                for col in cols:  # the published code still prints a number here
                    value = text.loc[key, col]
                    text.loc[key, col] = f"{value} (not reached)" if value else "not reached"
    return text


def ttfd_table(results: dict) -> pd.DataFrame:
    """Time to first detection per model at each FP rate: lesions found and not found, median
    (IQR) in seconds, and the paired comparison on lesions both models find (Wilcoxon)."""
    rows = []
    for name, m in results["models"].items():
        for t in m["ttfd"]:
            med, (q1, q3) = t["median_seconds"], t["iqr_seconds"]
            rows.append(
                {
                    "model": name,
                    "FP/scan": t["fp_rate"],
                    "found": t["n_found"],
                    "not found": t["n_not_found"],
                    "median s (IQR)": "n/a" if med is None else f"{med:.2f} ({q1:.2f}-{q3:.2f})",
                }
            )
    for c in results.get("ttfd_comparisons", []):
        d = c["median_diff_seconds"]
        row = {
            "model": f"{c['a']} vs {c['b']}",
            "FP/scan": c["fp_rate"],
            "found": c["n_both"],
            "not found": "",
            "median s (IQR)": "n/a" if d is None else f"{d:+.2f} (paired median)",
            "P (Wilcoxon)": format_p(c["wilcoxon_p"]),
        }
        if c.get("n_a_first") is not None:  # who is first, so a median of 0 cannot mislead
            row["marked first"] = (
                f"{c['a']} {c['n_a_first']}, {c['b']} {c['n_b_first']}, same frame "
                f"{c['n_same']} (mean {c['mean_diff_seconds']:+.2f} s)"
            )
        rows.append(row)
    return pd.DataFrame(rows).fillna("").set_index(["model", "FP/scan"])


def ttfd_figure(results: dict, fp_rate: float | None = None) -> go.Figure:
    """Time to first detection: the share of all lesions each model has marked within t
    seconds of the lesion's first frame, at its operating point for ``fp_rate`` (default the
    results' ``view_fp_rate``). Each curve ends at the model's sensitivity (lesions never
    marked never count); a curve further left marks lesions sooner."""
    from usbkit.evaluation.results import _rate_index

    k = _rate_index(results, fp_rate)
    x = results["fp_rates"][k]
    names = list(results["models"])
    colors = model_colors(names)
    fig = go.Figure()
    t_max = 0.0
    for name in names:
        secs = np.asarray(
            [np.nan if v is None else v for v in results["units"]["ttfd"][name]["seconds"][k]],
            float,
        )
        found = np.sort(secs[np.isfinite(secs)])
        t_max = max(t_max, float(found.max()) if len(found) else 0.0)
        n = max(len(secs), 1)
        t = results["models"][name]["ttfd"][k]
        med = t["median_seconds"]
        label = (
            f"{name}: median {med:.2f} s, {t['n_not_found']} not found" if med is not None else name
        )
        fig.add_trace(
            go.Scatter(
                x=np.r_[0.0, found],
                y=np.r_[0.0, np.arange(1, len(found) + 1) / n],
                mode="lines",
                line=dict(color=colors[name], width=3, shape="hv"),
                name=label,
            )
        )
    for trace in fig.data:  # hold each curve to the right edge
        trace.x = np.r_[trace.x, max(t_max * 1.05, 0.1)]
        trace.y = np.r_[trace.y, trace.y[-1]]
    fig.update_xaxes(title="seconds from the lesion's first frame to the first mark on it")
    fig.update_yaxes(title="share of lesions marked", tickformat=".0%", range=[0, 1.02])
    fig = style_figure(fig, f"Time to first detection at {x:g} FP/scan")
    fig.update_layout(legend=dict(orientation="h", x=0, y=-0.22), margin=dict(b=120), height=560)
    return fig


def power_figure(plan) -> go.Figure:
    """Power against the number of patients (a :class:`usbkit.evaluation.power.PlanResult`
    or its ``to_dict()``): the simulated power with its Monte-Carlo band, the closed form for
    independent lesions, the target, the size reaching it and the pilot's own size."""
    p = plan.to_dict() if hasattr(plan, "to_dict") else plan
    n = np.asarray(p["n_patients"], float)
    pw = np.asarray(p["power"], float)
    ci = np.asarray(p["power_ci95"], float)
    target = p["config"]["power"]
    color = OKABE_ITO[4]  # not a model's colour: the curve belongs to the pair
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.r_[n, n[::-1]],
            y=np.r_[ci[:, 1], ci[:, 0][::-1]],
            fill="toself",
            fillcolor=rgba(color, 0.15),
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=n,
            y=pw,
            mode="lines+markers",
            line=dict(color=color, width=3),
            name=f"simulated ({p['config']['n_sim']} studies per size)",
        )  # fmt: skip
    )
    cf = p.get("closed_form", {}).get("power")
    if cf:
        fig.add_trace(
            go.Scatter(
                x=n,
                y=cf,
                mode="lines",
                line=dict(color="#555", dash="dash", width=2),
                name="closed form, independent lesions (Connor 1987)",
            )  # fmt: skip
        )
    pilot_n = p["pilot"]["n_patients"]
    lo, hi = p["power_at_pilot_ci95"]
    fig.add_trace(
        go.Scatter(
            x=[pilot_n],
            y=[p["power_at_pilot"]],
            mode="markers",
            marker=dict(symbol="diamond", size=13, color="#000"),
            error_y=dict(
                type="data",
                symmetric=False,
                array=[hi - p["power_at_pilot"]],
                arrayminus=[p["power_at_pilot"] - lo],
                color="#000",
            ),  # fmt: skip
            name=f"the pilot's {pilot_n} patients",
        )
    )
    fig.add_hline(y=target, line=dict(color="#999", dash="dot", width=1))
    if p["n_required"] is not None:
        need = p["n_required_interp"] or p["n_required"]
        fig.add_vline(x=need, line=dict(color=color, dash="dot", width=1))
        fig.add_annotation(x=np.log10(need), y=0.04, text=f"about {int(np.ceil(need))} patients",
                           showarrow=False, xanchor="left", font=dict(size=12))  # fmt: skip
    fig.update_xaxes(title="patients in the study", type="log")
    fig.update_yaxes(title="power", tickformat=".0%", range=[0, 1.02])
    a, b = p["models"]
    title = f"Power to tell {a} from {b} at {p['config']['fp_rate']:g} FP/scan"
    fig = style_figure(fig, title)
    fig.update_layout(legend=dict(orientation="h", x=0, y=-0.22), margin=dict(b=130), height=580)
    return fig
