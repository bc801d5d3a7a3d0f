"""Helpers for the scrub notebook: operating thresholds and static scrubber pages."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from usbkit.viewer.clipview import ClipView
from usbkit.viewer.static_page import write_static_scrubber


def operating_thresholds(
    study, detections: dict[str, pd.DataFrame], split: str | None = "test", fp_rate: float = 0.5
) -> dict[str, float]:
    """Each model's score threshold at its operating point for ``fp_rate`` FP/scan."""
    from usbkit.evaluation.froc import operating_point, rate_scans, scan_froc

    clips = study.clips(split)[["clip_id", "patient_id"]]
    ids = set(clips["clip_id"])
    gt = study.annotations.loc[study.annotations["clip_id"].isin(ids)]
    out = {}
    for name, det in detections.items():
        r = rate_scans(gt, det.loc[det["clip_id"].isin(ids)], clips, n_frames=1)
        thr = operating_point(scan_froc(r), fp_rate)[1]
        out[name] = 1.0 if not math.isfinite(thr) else float(thr)
    return out


def write_pages(
    study,
    detections: dict[str, pd.DataFrame],
    thresholds: dict[str, float],
    folder: str | Path,
    clip_ids,
) -> list[Path]:
    """Write one static scrubber page per clip into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_static_scrubber(ClipView(study, cid, detections, thresholds), folder / f"{cid}.html")
        for cid in clip_ids
        if cid
    ]
