"""``usbkit check STUDY``: find every problem of a study at once."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from usbkit.errors import Problem, UsbkitError
from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.study import (
    _read_csv,
    parse_annotations,
    parse_manifest,
    spreadsheet_row,
)


def check_study(
    root: str | Path, settings: ReaderSettings | None = None, progress: bool = True
) -> list[Problem]:
    """Validate a study: tables, media and boxes; return every problem found.

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
    problems: list[Problem] = []
    mpath, apath = root / "manifest.csv", root / "annotations.csv"
    try:
        manifest, mprobs = parse_manifest(_read_csv(mpath, "manifest"), mpath)
    except UsbkitError as exc:
        return [Problem(exc.file or str(mpath), exc.row, exc.message)]
    problems += mprobs
    if any(p.row == 1 for p in mprobs):
        return problems
    try:
        ann, aprobs = parse_annotations(
            _read_csv(apath, "annotations"), apath, set(manifest["clip_id"].dropna())
        )
        problems += aprobs
    except UsbkitError as exc:
        problems.append(Problem(exc.file or str(apath), exc.row, exc.message))
        ann = None
    if ann is not None and any(p.row == 1 and p.file == str(apath) for p in problems):
        ann = None
    seen = set()
    rows = list(manifest.iterrows())
    for i, row in tqdm(rows, desc="checking clips", disable=not progress, unit="clip"):
        cid = row["clip_id"]
        if cid in seen or row.isna()[["clip_id", "path"]].any():
            continue
        seen.add(cid)
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
        try:
            clip = open_clip(media, settings or ReaderSettings(crop=False))
        except UsbkitError as exc:
            problems.append(
                Problem(
                    str(mpath),
                    spreadsheet_row(i),
                    f"clip '{cid}' cannot be read: {exc}",
                )
            )
            continue
        if ann is None:
            continue
        h, w = clip.original_size
        n = clip.meta["n_frames"]
        sub = ann.loc[ann["clip_id"] == cid]
        for j in sub.index[(sub["frame"] >= n).to_numpy()]:
            problems.append(
                Problem(
                    str(apath),
                    spreadsheet_row(j),
                    f"frame {int(ann.at[j, 'frame'])} is past the end of clip '{cid}', which has "
                    f"{n} frames (numbered 0 to {n - 1})",
                )
            )
        out = (sub["x1"] > w) | (sub["y1"] > h) | (sub["x0"] < 0) | (sub["y0"] < 0)
        for j in sub.index[out.to_numpy()]:
            b = ann.loc[j, ["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
            problems.append(
                Problem(
                    str(apath),
                    spreadsheet_row(j),
                    f"box [{', '.join(f'{v:g}' for v in b)}] reaches outside clip '{cid}', whose "
                    f"frames are {w} x {h} pixels (width x height)",
                )
            )
    return sorted(problems, key=lambda p: (p.file, p.row if p.row is not None else 0))
