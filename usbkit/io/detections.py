"""The detections file (docs/study-format.md): ``clip_id, frame, score, x0, y0, x1, y1``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import Problem, StudyProblems, UsbkitError
from usbkit.io.study import spreadsheet_row

DETECTION_COLUMNS = ["clip_id", "frame", "score", "x0", "y0", "x1", "y1"]
MIN_SCORE = 0.001
MAX_PER_FRAME = 100


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

    Raises
    ------
    UsbkitError
        Naming the file and row of each malformed detection.
    """
    path = Path(path)
    if not path.is_file():
        raise UsbkitError(
            "the detections file is missing",
            file=path,
            fix="Give the CSV written by `usbkit detect`",
        )
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsbkitError(f"not a readable CSV table ({exc})", file=path) from None
    missing = [c for c in DETECTION_COLUMNS if c not in raw.columns]
    if missing:
        raise UsbkitError(
            f"required column(s) {', '.join(missing)} missing; a detections file has "
            f"{', '.join(DETECTION_COLUMNS)}",
            file=path,
            row=1,
        )
    det = pd.DataFrame({"clip_id": raw["clip_id"].astype("string").str.strip().astype(object)})
    for c in DETECTION_COLUMNS[1:]:
        det[c] = pd.to_numeric(raw[c], errors="coerce")
    problems = []
    box = det[["x0", "y0", "x1", "y1"]].to_numpy(float)
    bad_num = ~np.isfinite(det[["frame", "score", "x0", "y0", "x1", "y1"]].to_numpy(float)).all(1)
    bad_score = ~bad_num & ~((det["score"] >= 0) & (det["score"] <= 1)).to_numpy()
    bad_box = ~bad_num & ~((box[:, 0] < box[:, 2]) & (box[:, 1] < box[:, 3]))
    bad_frame = (
        ~bad_num & ((det["frame"] < 0) | (det["frame"] != np.floor(det["frame"]))).to_numpy()
    )
    unknown = np.zeros(len(det), bool)
    if known_clips is not None:
        unknown = ~det["clip_id"].isin(known_clips).to_numpy()
    for i in np.flatnonzero(bad_num | bad_score | bad_box | bad_frame | unknown):
        row = spreadsheet_row(i)
        if unknown[i]:
            msg = f"clip id '{det['clip_id'].iloc[i]}' is not in the study's manifest"
        elif bad_num[i]:
            vals = ", ".join(f"{c}={raw[c].iloc[i]}" for c in DETECTION_COLUMNS[1:])
            msg = f"a value is missing or not a number (NaN) ({vals})"
        elif bad_score[i]:
            msg = f"score {raw['score'].iloc[i]} is outside [0, 1]"
        elif bad_frame[i]:
            msg = f"frame {raw['frame'].iloc[i]} is not a frame number (0, 1, 2, ...)"
        else:
            msg = f"box [{', '.join(f'{v:g}' for v in box[i])}] needs x0 < x1 and y0 < y1"
        problems.append(Problem(str(path), row, msg))
    if problems:
        shown = problems[:max_problems]
        extra = len(problems) - len(shown)
        err = StudyProblems(
            shown,
            "The detections file has malformed rows"
            + (f" (first {len(shown)} of {len(problems)} shown)" if extra else ""),
        )
        raise err
    det["frame"] = det["frame"].astype(int)
    return det
