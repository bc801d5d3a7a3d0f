"""The detections file (docs/study-format.md): ``clip_id, frame, score, x0, y0, x1, y1``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import Problem, StudyProblems, UsbkitError
from usbkit.io.ids import normalize_ids
from usbkit.io.study import read_table, spreadsheet_row
from usbkit.io.values import COORDINATE, FRAME, SCORE

DETECTION_COLUMNS = ["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]
MIN_SCORE = 0.001
MAX_PER_FRAME = 100


def is_detections_file(path: str | Path) -> bool:
    """Whether ``path`` starts with the header usbkit writes for detections."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip() == ",".join(DETECTION_COLUMNS)
    except (OSError, UnicodeDecodeError):
        return False


def detections_info_path(detections: str | Path) -> Path:
    """The JSON that usbkit writes beside a detections file: what made it (``usbkit
    detect``: the checkpoint and its operating point; ``usbkit track``: the file it
    rescored and the settings) (``det.csv`` -> ``det.csv.json``)."""
    detections = Path(detections)
    return detections.with_name(detections.name + ".json")


class DetectionProblems(StudyProblems):
    """Malformed rows of a detections file (``usbkit check`` does not read these files)."""

    def __str__(self) -> str:
        return (
            self.message + "\nFix these rows (or the program that wrote the file) and run the "
            "command again."
        )


def load_detections(
    path: str | Path, known_clips: set[str] | None = None, max_problems: int = 20
) -> pd.DataFrame:
    """Read and validate a detections CSV.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    known_clips : set of str, optional
        Clip ids of the manifest; a detection for any other clip is an error.
    max_problems : int
        Problems listed at most (the count says how many there are).

    Returns
    -------
    DataFrame
        ``clip_id`` (NFC text), ``frame`` (int64), ``score`` and the box (float).

    Raises
    ------
    UsbkitError
        Naming the file and row of each malformed detection.
    """
    path = Path(path)
    if not path.exists():
        raise UsbkitError(
            "the detections file is missing",
            file=path,
            fix="Give the CSV written by `usbkit detect`",
        )
    raw = read_table(path, "detections")
    missing = [c for c in DETECTION_COLUMNS if c not in raw.columns]
    if missing:
        raise UsbkitError(
            f"required column(s) {', '.join(missing)} missing; a detections file has "
            f"{', '.join(DETECTION_COLUMNS)}",
            file=path,
            row=1,
        )
    det = pd.DataFrame({"clip_id": normalize_ids(raw["clip_id"])}, index=raw.index)
    frame, frame_ok = FRAME.parse(raw["frame"])
    score, score_ok = SCORE.parse(raw["score"])
    det["frame"] = frame
    det["score"] = score
    coord_ok = np.ones(len(raw), bool)
    for c in DETECTION_COLUMNS[3:]:
        det[c], ok = COORDINATE.parse(raw[c])
        coord_ok &= ok
    values = det[DETECTION_COLUMNS[1:]].to_numpy(float)
    bad_num = ~np.isfinite(values).all(1) if len(det) else np.zeros(0, bool)
    box = det[["x0", "y0", "x1", "y1"]].to_numpy(float)
    bad_coord = ~bad_num & ~coord_ok
    bad_score = ~bad_num & ~score_ok
    bad_box = ~bad_num & ~bad_coord & ~((box[:, 0] < box[:, 2]) & (box[:, 1] < box[:, 3]))
    bad_frame = ~bad_num & ~frame_ok
    unknown = np.zeros(len(det), bool)
    if known_clips is not None:
        unknown = ~det["clip_id"].isin(known_clips).to_numpy()
    problems = []
    for i in np.flatnonzero(bad_num | bad_coord | bad_score | bad_box | bad_frame | unknown):
        row = spreadsheet_row(i)
        if unknown[i]:
            msg = f"clip id '{det['clip_id'].iloc[i]}' is not in the study's manifest"
        elif bad_num[i]:
            vals = ", ".join(f"{c}={raw[c].iloc[i]}" for c in DETECTION_COLUMNS[1:])
            msg = f"a value is missing or not a number (NaN) ({vals})"
        elif bad_score[i]:
            msg = f"score {raw['score'].iloc[i]} is outside [0, 1]"
        elif bad_frame[i]:
            msg = FRAME.message(raw["frame"].iloc[i])
        elif bad_coord[i]:
            vals = ", ".join(f"{c}={raw[c].iloc[i]}" for c in DETECTION_COLUMNS[3:])
            msg = f"box coordinate out of range ({vals}): {COORDINATE.expected}"
        else:
            msg = f"box [{', '.join(f'{v:g}' for v in box[i])}] needs x0 < x1 and y0 < y1"
        problems.append(Problem(str(path), row, msg))
    if problems:
        raise DetectionProblems(
            problems[:max_problems],
            "The detections file has malformed rows",
            total=len(problems),
        )
    det["frame"] = det["frame"].astype(np.int64)  # every frame passed the range check
    return det.reset_index(drop=True)
