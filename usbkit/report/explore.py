"""Cohort overview for the explore notebook: tables and plotly figures of a study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.report.figures import add_box, style_figure
from usbkit.style import GT_COLOR, OKABE_ITO


class Note:
    """A few sentences shown in a notebook (as Markdown) where a figure would have nothing to
    draw: what is missing and what the user can do about it."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


#: Where a study's lesion boxes come from, said wherever a figure needs them.
HOW_TO_ANNOTATE = (
    "To draw it, box the masses: one row per lesion box per frame in the study's "
    "`annotations.csv` (docs/study-format.md), or import boxes drawn in CVAT "
    "(`usbkit import cvat-video`)."
)


def _no_boxes_reason(study) -> str:
    """Why a study has no lesion boxes, as far as its manifest tells."""
    m = study.manifest
    if "pathology" in m.columns and m["pathology"].isin(["benign", "malignant"]).any():
        return (
            "This study has no lesion boxes (its annotations.csv has no rows), though its "
            "manifest lists benign or malignant clips: the clips are not annotated yet."
        )
    if "pathology" in m.columns and (m["pathology"] == "normal").all():
        return (
            "This study has no lesion boxes: every clip is a normal (lesion-free) scan, so "
            "there is no mass to show."
        )
    return (
        "This study has no lesion boxes (its annotations.csv has no rows): either the clips "
        "are not annotated yet, or none of them shows a mass."
    )


def _nothing_to_draw(study, what: str) -> Note:
    return Note(f"**No {what} to show.** {_no_boxes_reason(study)} {HOW_TO_ANNOTATE}")


def study_notes(study) -> Note | None:
    """What this study lacks for the figures and the study's comparison, and what to do;
    None when it lacks nothing."""
    notes = []
    if study.annotations.empty:
        notes.append(
            f"{_no_boxes_reason(study)} The lesion figures below are left out; the example "
            "frames show the clips without boxes. Without boxes the models' marks cannot be "
            "called hits or false positives, so no sensitivity can be computed; the viewer "
            "still shows each model's marks. " + HOW_TO_ANNOTATE
        )
    n_clips, n_patients = len(study.manifest), study.manifest["patient_id"].nunique()
    if n_clips == 1:
        notes.append(
            "The study has a single clip: the figures describe that one clip, and no "
            "comparison between models can be tested on it. Add the other clips to "
            "manifest.csv (or import the whole folder with `usbkit import clips`)."
        )
    elif n_patients < 3:
        notes.append(
            f"The study has {n_patients} patient(s): too few to split into training, "
            "validation and test patients. The figures describe these clips only."
        )
    if not notes:
        return None
    return Note("\n\n".join(f"**Note.** {n}" for n in notes))


def cohort_summary(study) -> pd.DataFrame:
    """Patients, clips, lesions and boxes per split (and in total), one row per split (the
    split names the rows). A study with no lesion box at all has no "lesion-free clips"
    column: its clips are not known to be free of lesions, only not annotated."""
    m = study.manifest.copy()
    if "split" not in m.columns:
        m["split"] = "all"
    ann = study.annotations.merge(m[["clip_id", "split"]], on="clip_id")
    rows = []
    for split, g in list(m.groupby("split", sort=False)) + [("total", m)]:
        a = ann if split == "total" else ann[ann["split"] == split]
        row = {
            "split": split,
            "patients": g["patient_id"].nunique(),
            "clips": len(g),
            "lesion-free clips": int((~g["clip_id"].isin(a["clip_id"])).sum()),
            "lesions": a.groupby(["clip_id", "lesion_id"]).ngroups,
            "lesion boxes": len(a),
        }
        if "pathology" in g.columns:
            for p in ("benign", "malignant", "normal"):
                row[f"{p} clips"] = int((g["pathology"] == p).sum())
        rows.append(row)
    table = pd.DataFrame(rows).set_index("split")
    return table.drop(columns="lesion-free clips") if ann.empty else table


def pixel_size_mm(study) -> float | None:
    """Millimetres per pixel of the study's frames when known (the synthetic cohort records it
    in ``synth_config.json``), else None: sizes are then given in pixels."""
    from usbkit.synth.config import SynthConfig

    path = study.root / "synth_config.json"
    if not path.is_file():
        return None
    try:
        return float(SynthConfig.load(path).imaging.pixel_mm)
    except Exception:  # noqa: BLE001 - an unreadable config only costs the mm scale
        return None


def lesion_table(study) -> pd.DataFrame:
    """One row per lesion: frames in view, largest box size (pixels, and mm when the pixel
    size is known), label."""
    a = study.annotations.assign(w=lambda d: d.x1 - d.x0, h=lambda d: d.y1 - d.y0)
    g = a.groupby(["clip_id", "lesion_id"])
    out = pd.DataFrame(
        {
            "frames_in_view": g.size(),
            "first_frame": g["frame"].min(),
            "last_frame": g["frame"].max(),
            "max_width_px": g["w"].max(),
            "max_height_px": g["h"].max(),
        }
    )
    mm = pixel_size_mm(study)
    if mm is not None:
        out["max_width_mm"] = out["max_width_px"] * mm
        out["max_height_mm"] = out["max_height_px"] * mm
    if "label" in a.columns:
        out["label"] = g["label"].first()
    return out.reset_index()


def lesion_figure(study) -> go.Figure | Note:
    """Lesion sizes and how many frames each lesion is in view (a :class:`Note` saying what
    is missing when the study has no lesion boxes)."""
    if study.annotations.empty:
        return _nothing_to_draw(study, "lesion size")
    t = lesion_table(study)
    size, unit = ("max_width_mm", "mm") if "max_width_mm" in t else ("max_width_px", "pixels")
    fig = make_subplots(
        1,
        2,
        subplot_titles=(f"largest lesion width ({unit})", "frames in view per lesion"),
    )
    labels = (
        t["label"].fillna("lesion") if "label" in t.columns else pd.Series("lesion", index=t.index)
    )
    for k, lab in enumerate(sorted(labels.unique())):
        sel = labels == lab
        c = OKABE_ITO[k % len(OKABE_ITO)]
        fig.add_histogram(x=t.loc[sel, size], name=lab, marker_color=c, opacity=0.75, row=1, col=1)
        fig.add_histogram(
            x=t.loc[sel, "frames_in_view"],
            name=lab,
            marker_color=c,
            opacity=0.75,
            showlegend=False,
            row=1,
            col=2,
        )
    fig.update_xaxes(
        title=unit if unit == "mm" else "pixels (the study gives no pixel size)", row=1, col=1
    )
    fig.update_xaxes(title="frames", row=1, col=2)
    fig.update_yaxes(title="lesions", row=1, col=1)
    fig.update_layout(barmode="overlay")
    return style_figure(fig, "Lesions of the cohort")


def visibility_figure(study, max_lesions: int = 12) -> go.Figure | Note:
    """Box area of lesions over their clip's frames: lesions enter, grow and leave the plane
    (in mm² when the pixel size is known, else in pixels²; a :class:`Note` when the study
    has no lesion boxes)."""
    if study.annotations.empty:
        return _nothing_to_draw(study, "lesion visibility")
    mm = pixel_size_mm(study)
    scale, unit = (mm * mm, "mm²") if mm is not None else (1.0, "pixels²")
    a = study.annotations.assign(area=lambda d: (d.x1 - d.x0) * (d.y1 - d.y0) * scale)
    groups = list(a.groupby(["clip_id", "lesion_id"]))
    fig = go.Figure()
    for k, ((cid, lid), g) in enumerate(groups):
        if k >= max_lesions:
            break
        fig.add_scatter(
            x=g["frame"],
            y=g["area"],
            mode="lines+markers",
            name=f"{cid} / {lid}",
            line=dict(color=OKABE_ITO[k % len(OKABE_ITO)]),
        )
    fig.update_xaxes(title="frame")
    fig.update_yaxes(title=f"box area ({unit})")
    shown = min(max_lesions, len(groups))
    title = "Lesion visibility over time" + (
        f" (the first {shown} of {len(groups)} lesions)" if shown < len(groups) else ""
    )
    return style_figure(fig, title)


def _gray(image: np.ndarray, **axes) -> go.Heatmap:
    """An 8-bit gray image as a heatmap (gray levels 0-255, no colour bar or hover)."""
    return go.Heatmap(
        z=image, colorscale="gray", zmin=0, zmax=255, showscale=False, hoverinfo="skip", **axes
    )


#: The strip of example frames: its width, the gap between frames (share of the width) and
#: its margins in pixels (room for the titles above, none wasted beside or below).
STRIP_WIDTH, STRIP_GAP = 880, 0.01
STRIP_MARGIN = dict(l=10, r=10, t=72, b=8)


def strip_size(n: int, frame_shape: tuple[int, int], width: int = STRIP_WIDTH) -> tuple[int, int]:
    """The (width, height) in pixels of a figure of ``n`` frames side by side, each of
    ``frame_shape`` (rows, columns), that the frames fill: the height follows from the
    width of one frame's panel and the frames' aspect ratio, plus the margins.

    >>> strip_size(4, (320, 384))
    (880, 254)
    """
    rows, cols = frame_shape
    panel = (width - STRIP_MARGIN["l"] - STRIP_MARGIN["r"]) * (1 - STRIP_GAP * (n - 1)) / n
    return width, round(panel * rows / cols + STRIP_MARGIN["t"] + STRIP_MARGIN["b"])


def example_frames_figure(study, clip_id: str | None = None, n: int = 4) -> go.Figure:
    """``n`` frames spread over a clip with its ground-truth boxes (the clip with most boxes
    unless ``clip_id`` is given); the title says when the clip has none. The canvas is as
    high as the frames need (:func:`strip_size`): no blank band above or below them."""
    if clip_id is None:
        counts = study.annotations.groupby("clip_id").size()
        clip_id = counts.idxmax() if len(counts) else study.clip_ids[0]
    clip = open_clip(study.clip_path(clip_id), ReaderSettings())  # no burned-in text shown
    boxes = study.boxes(clip_id)
    ox, oy = clip.crop_box[:2]
    if len(boxes):
        lo, hi = boxes["frame"].min(), boxes["frame"].max()
        idx = np.linspace(max(lo - 2, 0), min(hi + 2, len(clip) - 1), n).round().astype(int)
    else:
        idx = np.linspace(0, len(clip) - 1, n).round().astype(int)
    fig = make_subplots(
        1, n, subplot_titles=[f"frame {i}" for i in idx], horizontal_spacing=STRIP_GAP
    )
    shape = None
    for k, i in enumerate(idx, start=1):
        frame = np.asarray(clip[i])
        shape = frame.shape[:2]
        fig.add_trace(_gray(frame), row=1, col=k)
        for b in boxes[boxes["frame"] == i].itertuples():
            add_box(fig, b, 1, k, GT_COLOR, offset=(ox, oy), dash="dash")
        # the image's own extent, no axis lines or ticks: the frames fill their panels
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{k}", visible=False, row=1, col=k)
        fig.update_xaxes(range=[-0.5, shape[1] - 0.5], visible=False, row=1, col=k)
    if len(boxes):
        title = f"Clip {clip_id}: a lesion enters and leaves the imaging plane"
    elif study.annotations.empty:
        title = f"Clip {clip_id}: {n} frames (no lesion boxes: the study is not annotated)"
    else:
        title = f"Clip {clip_id}: {n} frames (a lesion-free scan)"
    fig = style_figure(fig, title)
    width, height = strip_size(n, shape, min(220 * n, STRIP_WIDTH))
    fig.update_layout(width=width, height=height, margin=STRIP_MARGIN)
    return fig


def intensity_figure(study, max_clips: int = 20, seed: int = 0) -> go.Figure | Note:
    """Gray-level histograms inside lesion boxes and in the rest of the B-mode image (a
    :class:`Note` when the study has no lesion boxes)."""
    if study.annotations.empty:
        return _nothing_to_draw(study, "intensity comparison")
    rng = np.random.default_rng(seed)
    inside, outside = [], []
    ids = [c for c in study.clip_ids if len(study.boxes(c))]
    for cid in rng.permutation(ids)[:max_clips]:
        clip = open_clip(study.clip_path(cid), ReaderSettings())
        for b in study.boxes(cid).itertuples():
            img = np.asarray(clip[b.frame])
            x0, y0, x1, y1 = clip.to_crop([[b.x0, b.y0, b.x1, b.y1]])[0].round().astype(int)
            mask = np.zeros(img.shape, bool)
            mask[max(y0, 0) : y1, max(x0, 0) : x1] = True
            inside.append(img[mask][::7])
            outside.append(img[~mask][::97])
    fig = go.Figure()
    if inside:
        fig.add_histogram(
            x=np.concatenate(outside),
            name="tissue outside lesions",
            histnorm="probability",
            marker_color=OKABE_ITO[0],
            opacity=0.6,
            nbinsx=64,
        )
        fig.add_histogram(
            x=np.concatenate(inside),
            name="inside lesion boxes",
            histnorm="probability",
            marker_color=OKABE_ITO[1],
            opacity=0.6,
            nbinsx=64,
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="gray level (0-255)")
    fig.update_yaxes(title="fraction of pixels")
    return style_figure(fig, "Intensity: masses are darker than the tissue around them")


#: Colours of the tissues in the anatomy sketch (in the order of ``usbkit.synth.scene.TISSUES``).
TISSUE_COLORS = (
    "#f0f0f0",  # skin
    "#f3d9a4",  # subcutaneous fat
    "#8c6d31",  # Cooper's ligament
    "#e7a3b5",  # fibroglandular tissue
    "#f7e8c4",  # retromammary fat
    "#b2403a",  # pectoral muscle
    "#1b1b1b",  # mass
    "#6b6b8c",  # posterior shadow
    "#c8e6f5",  # posterior enhancement
)


def anatomy_figure(cfg=None, pathology: str = "malignant") -> go.Figure:
    """A synthetic frame beside a labelled sketch of what it shows.

    Left: the B-mode image of a linear-probe breast view from the synthetic cohort. Right:
    each pixel coloured by tissue (skin line, subcutaneous fat lobules and the Cooper's
    ligaments between them, the fibroglandular band, retromammary fat, pectoral muscle, the
    mass and its posterior shadow or enhancement), each tissue named where it lies. Axes in
    millimetres.

    Parameters
    ----------
    cfg : SynthConfig, optional
        The cohort's settings (default: the quick preset).
    pathology : {'malignant', 'benign'}
        A malignant mass (irregular, taller than wide, often shadowing) or a benign one
        (smooth, wider than tall, sometimes with enhancement).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    from usbkit.synth import anatomy_example
    from usbkit.synth.scene import TISSUES

    frame, tissues, mm = anatomy_example(cfg, pathology)
    h, w = frame.shape
    x = (np.arange(w) + 0.5) * mm
    z = (np.arange(h) + 0.5) * mm
    fig = make_subplots(
        1,
        2,
        subplot_titles=["synthetic B-mode frame", "what it shows"],
        horizontal_spacing=0.04,
    )
    fig.add_trace(_gray(frame, x=x, y=z), row=1, col=1)
    n = len(TISSUES)
    scale = []
    for k, color in enumerate(TISSUE_COLORS):
        scale += [(k / n, color), ((k + 1) / n, color)]
    fig.add_trace(
        go.Heatmap(
            z=tissues,
            x=x,
            y=z,
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            showscale=False,
            customdata=np.asarray(TISSUES, dtype=object)[tissues],
            hovertemplate="%{customdata}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    # layers are named at their own lateral position (so labels never pile up), at the
    # layer's middle depth there; a mass and its posterior feature at their own centre
    lateral = {
        "skin": 0.5,
        "subcutaneous fat": 0.2,
        "Cooper's ligament": 0.75,
        "fibroglandular tissue": 0.2,
        "retromammary fat": 0.85,
        "pectoral muscle": 0.2,
    }
    for k, name in enumerate(TISSUES):
        mask = tissues == k
        if mask.sum() < 20:
            continue
        if name in lateral:
            cols_with = np.nonzero(mask.any(axis=0))[0]
            col = cols_with[np.argmin(np.abs(cols_with - lateral[name] * w))]
            rows = np.nonzero(mask[:, col])[0]
            row, col_ = int(np.median(rows)), int(col)
        else:
            rows, cols = np.nonzero(mask)
            i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
            row, col_ = int(rows[i]), int(cols[i])
        fig.add_annotation(
            x=x[col_],
            y=z[row],
            text=name,
            showarrow=name == "skin",
            arrowhead=0,
            # the skin line is a few pixels thick: named just under it with a short leader,
            # half way between the labels of the fat and the ligaments
            ax=0,
            ay=14 if name == "skin" else 0,
            font={"size": 11, "color": "#000"},
            bgcolor="rgba(255,255,255,0.85)",
            xref="x2",
            yref="y2",
        )
    for col in (1, 2):
        fig.update_yaxes(
            autorange="reversed",
            scaleanchor=f"x{col}",
            title_text="depth (mm)" if col == 1 else None,
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="lateral (mm)", row=1, col=col)
    fig = style_figure(fig, "A synthetic linear-probe breast view and its anatomy")
    fig.update_layout(width=900, height=420)
    return fig
