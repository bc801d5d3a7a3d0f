"""``usbkit check STUDY``: find every problem of a study at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from usbkit.errors import Problem, UsbkitError
from usbkit.io.clip import Clip, ReaderSettings, open_clip
from usbkit.io.ids import confined_path_reason
from usbkit.io.keyframes import describe_gaps, frame_gaps
from usbkit.io.notices import warn
from usbkit.io.study import parse_annotations, parse_manifest, read_table, spreadsheet_row


def check_study(
    root: str | Path, settings: ReaderSettings | None = None, progress: bool = True
) -> list[Problem]:
    """Validate a study: tables, media and boxes; return every problem found.

    A frame count or frame size is held against the annotations only after the media was
    decoded again or the cache entry was confirmed against it, so a damaged or edited cache
    is never blamed on the annotations.

    Parameters
    ----------
    root : str or Path
        The study folder.
    settings : ReaderSettings, optional
        Reader settings used to open the media (the cache is filled as a side effect).
    progress : bool
        Show a progress bar while the media are decoded.

    Returns
    -------
    list of Problem
        Empty when the study is fine.
    """
    root = Path(root)
    if not root.is_dir():
        return [Problem(str(root), None, "this study folder does not exist")]
    settings = settings or ReaderSettings(crop=False)
    problems: list[Problem] = []
    mpath, apath = root / "manifest.csv", root / "annotations.csv"
    try:
        manifest, mprobs = parse_manifest(read_table(mpath, "manifest"), mpath)
    except UsbkitError as exc:
        return [Problem(exc.file or str(mpath), exc.row, exc.message)]
    problems += mprobs
    if any(p.row == 1 for p in mprobs):
        return problems
    try:
        ann, aprobs = parse_annotations(
            read_table(apath, "annotations"), apath, set(manifest["clip_id"].dropna())
        )
        problems += aprobs
    except UsbkitError as exc:
        problems.append(Problem(exc.file or str(apath), exc.row, exc.message))
        ann = None
    if ann is not None and any(p.row == 1 and p.file == str(apath) for p in problems):
        ann = None
    if ann is not None:
        warn_frame_gaps(ann, apath)
    seen = set()
    rows = list(manifest.iterrows())
    for i, row in tqdm(rows, desc="checking clips", disable=not progress, unit="clip"):
        cid = row["clip_id"]
        if cid in seen or row.isna()[["clip_id", "path"]].any():
            continue
        seen.add(cid)
        if confined_path_reason(root, str(row["path"])):
            continue  # reported by parse_manifest; never opened
        media = root / str(row["path"])
        if not media.exists():
            problems.append(
                Problem(
                    str(mpath),
                    spreadsheet_row(i),
                    f"the media file '{row['path']}' of clip '{cid}' does not exist",
                )
            )
            continue
        fps = row.get("fps")
        fps = None if fps is None or pd.isna(fps) else float(fps)
        try:
            clip = open_clip(media, settings, fps=fps)
        except UsbkitError as exc:
            problems.append(
                Problem(str(mpath), spreadsheet_row(i), f"clip '{cid}' cannot be read: {exc}")
            )
            continue
        if ann is None:
            continue
        sub = ann.loc[ann["clip_id"] == cid]
        found = _box_problems(sub, clip, cid, apath)
        if found and not clip.meta.get("decoded_now", False):
            # Confirm the cached geometry against the media before blaming the annotations.
            try:
                clip = open_clip(media, settings, fps=fps, verify=True)
            except UsbkitError as exc:
                problems.append(
                    Problem(str(mpath), spreadsheet_row(i), f"clip '{cid}' cannot be read: {exc}")
                )
                continue
            found = _box_problems(sub, clip, cid, apath)
        problems += found
    return sorted(problems, key=lambda p: (p.file, p.row if p.row is not None else 0))


def warn_frame_gaps(annotations: pd.DataFrame, path: str | Path) -> list[dict]:
    """Warn (one paragraph) when lesions' boxes skip frames between their first and last box:
    boxes drawn on key frames only, which would count the frames between as lesion-free and
    every mark on the lesion there as a false positive. Returns the lesions found."""
    found = frame_gaps(annotations)
    if found:
        warn(
            f"{len(found)} lesion(s) have frames without a box between their first and last "
            f"box: {describe_gaps(found)}. A frame without a box counts as a frame where the "
            "lesion is not visible, so marks on it there count as false positives and its "
            "sensitivity drops",
            file=path,
            fix="If the boxes were drawn on key frames only, fill the frames between by "
            "linear interpolation: import the clips again with `usbkit import clips SRC OUT "
            "--interpolate` (docs/study-format.md). If the lesion really leaves the view on "
            "those frames, nothing needs to change",
        )
    return found


def _box_problems(sub: pd.DataFrame, clip: Clip, cid: str, apath: Path) -> list[Problem]:
    """Annotation rows of one clip that lie past its end or outside its frames."""
    problems = []
    h, w = clip.original_size
    n = clip.meta["n_frames"]
    for j in sub.index[(sub["frame"] >= n).to_numpy()]:
        problems.append(
            Problem(
                str(apath),
                spreadsheet_row(j),
                f"frame {int(sub.at[j, 'frame'])} is past the end of clip '{cid}', which has "
                f"{n} frames (numbered 0 to {n - 1})",
            )
        )
    out = (sub["x1"] > w) | (sub["y1"] > h) | (sub["x0"] < 0) | (sub["y0"] < 0)
    for j in sub.index[out.to_numpy()]:
        b = sub.loc[j, ["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
        problems.append(
            Problem(
                str(apath),
                spreadsheet_row(j),
                f"box [{', '.join(f'{v:g}' for v in b)}] reaches outside clip '{cid}', whose "
                f"frames are {w} x {h} pixels (width x height)",
            )
        )
    return problems
