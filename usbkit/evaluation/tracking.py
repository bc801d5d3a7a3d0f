"""The study's third arm: single frame + tracking, a training-free temporal rescoring.

Any detections file (``clip_id, frame, score, x0, y0, x1, y1``) is rescored by asking one
question of every mark: does it persist? The marks of each clip are linked over frames by the
evaluation's own linker (:func:`usbkit.evaluation.froc.link_tracks`, the rule that makes FP
tracks, docs/metrics.md#fp-tracks-the-linker), and each mark's score is multiplied by its
track's persistence weight. The rule, exactly (docs/metrics.md#three-arms):

1. Marks with ``score >= min_score`` are linked into tracks, clip by clip, by the linker with
   ``max_gap`` and ``min_iou``.
2. The length ``L`` of a track is the number of marks it holds (one per frame).
3. Each linked mark's new score is ``score * min(1, L / full_length)``; a mark below
   ``min_score`` is not linked and counts as a track of its own (``L = 1``).
4. Nothing else changes: the boxes, the frames, the marks kept; then the study's rules
   (hit, lesion rating, FP tracks, FROC) apply unchanged.

A mass persists over many frames, a fat-lobule mimic or an artifact over a few, so short
tracks lose score. The arm tells a study whether a sequence model's gain comes from its
temporal features or only from linking marks over time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.config import config_to_dict
from usbkit.evaluation.froc import LINK_IOU, MAX_GAP, link_tracks


@dataclass(frozen=True)
class TrackingConfig:
    """The tracking arm's parameters (docs/metrics.md#three-arms).

    Attributes
    ----------
    min_score : float
        Marks at or above this score are linked into tracks; lower ones each count as a
        track of one mark.
    full_length : int
        A track of at least this many marks keeps its scores; a shorter one's are scaled by
        ``length / full_length``. 8 was chosen on the validation split of the shipped
        detectors' training cohort, never on a test split (docs/temporal.md).
    max_gap : int
        Frames a track may skip and still be continued (the linker's ``max_gap``).
    min_iou : float
        The least IoU with a track's last box that continues it (the linker's).
    """

    min_score: float = 0.05
    full_length: int = 8
    max_gap: int = MAX_GAP
    min_iou: float = LINK_IOU

    def __post_init__(self) -> None:
        from usbkit.errors import UsbkitError

        problems = []
        if not 0 <= self.min_score <= 1:
            problems.append(f"min_score {self.min_score} must be from 0 to 1")
        if int(self.full_length) != self.full_length or self.full_length < 1:
            problems.append(f"full_length {self.full_length} must be a whole number >= 1")
        if int(self.max_gap) != self.max_gap or self.max_gap < 1:
            problems.append(f"max_gap {self.max_gap} must be a whole number >= 1")
        if not 0 < self.min_iou <= 1:
            problems.append(f"min_iou {self.min_iou} must be above 0 and at most 1")
        if problems:
            raise UsbkitError(
                "invalid tracking setting: " + "; ".join(problems), fix="Correct these settings"
            )

    def to_dict(self) -> dict:
        """The settings as plain JSON-ready values."""
        return config_to_dict(self)


def track_lengths(det: pd.DataFrame, cfg: TrackingConfig = TrackingConfig()) -> np.ndarray:
    """The length (marks) of the track each detection belongs to, in row order; 1 for a
    mark below ``cfg.min_score``.

    Examples
    --------
    A mark on frames 0-2 at one place, a one-frame mark elsewhere:

    >>> det = pd.DataFrame({"clip_id": ["a"] * 4, "frame": [0, 1, 2, 1],
    ...     "score": [0.9, 0.8, 0.7, 0.6], "x0": [0, 0, 1, 50], "y0": [0, 0, 1, 50],
    ...     "x1": [10, 10, 11, 60], "y1": [10, 10, 11, 60]})
    >>> track_lengths(det).tolist()
    [3, 3, 3, 1]
    """
    n = len(det)
    lengths = np.ones(n, dtype=np.int64)
    linked = np.flatnonzero(det["score"].to_numpy(float) >= cfg.min_score)
    if len(linked) == 0:
        return lengths
    sub = det.iloc[linked]
    clips = pd.factorize(sub["clip_id"].astype(str))[0]
    tracks = link_tracks(
        sub["frame"].to_numpy(np.int64),
        sub["score"].to_numpy(float),
        sub[["x0", "y0", "x1", "y1"]].to_numpy(float),
        max_gap=int(cfg.max_gap),
        min_iou=float(cfg.min_iou),
        clips=clips,
    )
    key = clips.astype(np.int64) * (int(tracks.max()) + 1) + tracks
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    lengths[linked] = counts[inverse.ravel()]
    return lengths


def rescore_by_tracks(det: pd.DataFrame, cfg: TrackingConfig = TrackingConfig()) -> pd.DataFrame:
    """The tracking arm: every mark's score times its track's persistence weight
    ``min(1, L / full_length)`` (module docstring); rows, boxes and order unchanged.

    Parameters
    ----------
    det : DataFrame
        Detections (``clip_id, frame, score, x0, y0, x1, y1``), e.g. of the single-frame
        detector.
    cfg : TrackingConfig
        The rescoring's parameters.

    Returns
    -------
    DataFrame
        A copy of ``det`` with the new scores.

    Examples
    --------
    >>> det = pd.DataFrame({"clip_id": ["a"] * 3, "frame": [0, 1, 1], "score": [0.8, 0.8, 0.4],
    ...     "x0": [0, 0, 50], "y0": [0, 0, 50], "x1": [10, 10, 60], "y1": [10, 10, 60]})
    >>> rescore_by_tracks(det, TrackingConfig(full_length=2))["score"].tolist()
    [0.8, 0.8, 0.2]
    """
    out = det.copy()
    weight = np.minimum(1.0, track_lengths(det, cfg) / float(cfg.full_length))
    out["score"] = det["score"].to_numpy(float) * weight
    return out


def track_file(
    detections: str | Path,
    out: str | Path,
    cfg: TrackingConfig = TrackingConfig(),
    overwrite: bool = False,
) -> Path:
    """``usbkit track``: write the tracking arm's rescoring of a detections file.

    The new file has the same rows in the same order with the new scores
    (:func:`rescore_by_tracks`); beside it, ``OUT.json`` records the file it came from and
    the settings. Like every usbkit output it is written aside and swapped in whole, and an
    existing file is replaced only with ``overwrite`` and only when usbkit wrote it.

    Parameters
    ----------
    detections : str or Path
        A detections file (docs/study-format.md#detections), e.g. ``usbkit detect``'s.
    out : str or Path
        The rescored detections file to write.
    cfg : TrackingConfig
        The rescoring's parameters.
    overwrite : bool
        Replace an earlier output of usbkit.

    Returns
    -------
    Path
        ``out``.
    """
    from usbkit.errors import UsbkitError
    from usbkit.io.detections import (
        DETECTION_COLUMNS,
        detections_info_path,
        is_detections_file,
        load_detections,
    )
    from usbkit.safeio import check_output_file, write_csv, write_text

    src, out = Path(detections), Path(out)
    if out.resolve() == src.resolve():
        raise UsbkitError(
            "the rescored detections would replace the file they are computed from",
            file=src,
            fix="Give another file name with --out (e.g. single_frame_tracked.csv)",
        )
    out = check_output_file(out, overwrite, is_detections_file)
    det = rescore_by_tracks(load_detections(src), cfg)[DETECTION_COLUMNS]
    write_csv(out, det)
    write_text(
        detections_info_path(out),
        json.dumps(
            {"rescoring": "tracking", "source": str(src), "tracking": cfg.to_dict()}, indent=1
        ),
    )
    return out
