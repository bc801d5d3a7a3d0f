"""Lesions boxed on key frames only: find the frames they skip, fill them by interpolation.

The study format judges every frame: a frame with no box of a lesion is a frame where that
lesion is not visible (docs/study-format.md). Annotation tools let one box a lesion on key
frames (every 10th frame, say) and interpolate the frames between; a file that keeps only the
key frames therefore says the lesion vanishes between them, and every mark on it there counts
as a false positive. :func:`frame_gaps` finds such skipped frames (``usbkit check`` warns);
:func:`fill_key_frames` fills them by linear interpolation of the box corners, the rule CVAT
uses for its key frames and the one its importer applies (:func:`interpolate_between`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BOX = ("x0", "y0", "x1", "y1")


def interpolate_between(
    f0: int, box0: Sequence[float], f1: int, box1: Sequence[float]
) -> list[tuple[int, list[float]]]:
    """The boxes of the frames strictly between key frames ``f0 < f1``: each corner moves
    linearly from ``box0`` to ``box1``. Empty when the two frames are neighbours."""
    out = []
    for g in range(f0 + 1, f1):
        a = (g - f0) / (f1 - f0)
        out.append((g, [u + a * (v - u) for u, v in zip(box0, box1)]))
    return out


def _runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """The runs of missing frames between the sorted, unique ``frames``: ``(first, last)``."""
    return [(int(a) + 1, int(b) - 1) for a, b in zip(frames[:-1], frames[1:]) if b > a + 1]


def frame_gaps(annotations: pd.DataFrame) -> list[dict]:
    """The lesions whose boxes skip frames between their first and last boxed frame.

    Returns one dict per such lesion: ``clip_id``, ``lesion_id``, ``gaps`` (runs of missing
    frames as ``(first, last)``), ``boxed`` (frames with a box) and ``span`` (frames from the
    first box to the last).
    """
    found = []
    if annotations.empty:
        return found
    for (cid, lid), g in annotations.groupby(["clip_id", "lesion_id"], sort=True):
        frames = np.unique(g["frame"].to_numpy(dtype=np.int64))
        gaps = _runs(frames)
        if gaps:
            found.append(
                {
                    "clip_id": cid,
                    "lesion_id": lid,
                    "gaps": gaps,
                    "boxed": len(frames),
                    "span": int(frames[-1] - frames[0] + 1),
                }
            )
    return found


def describe_gaps(found: list[dict], shown: int = 5) -> str:
    """One sentence per lesion (the first ``shown``): clip, lesion and the frames skipped."""

    def runs(gaps):
        text = [f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:4]]
        return ", ".join(text) + (f" and {len(gaps) - 4} more runs" if len(gaps) > 4 else "")

    parts = [
        f"clip '{g['clip_id']}', lesion '{g['lesion_id']}': frames {runs(g['gaps'])} have no "
        f"box ({g['boxed']} of the {g['span']} frames from its first box to its last are boxed)"
        for g in found[:shown]
    ]
    more = f"; and {len(found) - shown} more lesion(s)" if len(found) > shown else ""
    return "; ".join(parts) + more


def fill_key_frames(annotations: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Fill the frames each lesion skips between two of its boxes by linear interpolation
    (:func:`interpolate_between`); returns the table with the new rows (sorted by clip,
    lesion and frame, other columns such as ``label`` taken from the earlier key frame) and
    the number of boxes added. A lesion that really leaves the view and comes back is filled
    too: use this only for files boxed on key frames."""
    if annotations.empty:
        return annotations, 0
    added = []
    for _, g in annotations.groupby(["clip_id", "lesion_id"], sort=False):
        g = g.sort_values("frame")
        rows = list(g.itertuples(index=False))
        for r0, r1 in zip(rows, rows[1:]):
            f0, f1 = int(r0.frame), int(r1.frame)
            box0 = [getattr(r0, c) for c in BOX]
            box1 = [getattr(r1, c) for c in BOX]
            for frame, box in interpolate_between(f0, box0, f1, box1):
                row = r0._asdict()
                row.update(frame=frame, **dict(zip(BOX, box)))
                added.append(row)
    if not added:
        return annotations, 0
    filled = pd.concat([annotations, pd.DataFrame(added, columns=annotations.columns)])
    filled = filled.astype(annotations.dtypes.to_dict())
    filled = filled.sort_values(["clip_id", "lesion_id", "frame"], kind="stable")
    return filled.reset_index(drop=True), len(added)
