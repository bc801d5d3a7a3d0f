"""The study folder: ``manifest.csv`` + ``annotations.csv`` + media (docs/study-format.md).

Rows are reported as spreadsheet rows: the header is row 1, the first data row is row 2,
which is what a clinician sees when the file is opened in a spreadsheet program. Ids are
compared after Unicode NFC normalisation and clip ids must be safe as file names
(:mod:`usbkit.io.ids`); media paths stay inside the study folder; numbers are range-checked
before any cast (:mod:`usbkit.io.values`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import Problem, StudyProblems, UsbkitError
from usbkit.io.ids import (
    ID_FIX,
    confined_path_reason,
    normalize_id,
    normalize_ids,
    unsafe_name_reason,
    unsafe_text_reason,
)
from usbkit.io.values import COORDINATE, FPS, FRAME

MANIFEST_REQUIRED = ["clip_id", "patient_id", "path"]
MANIFEST_OPTIONAL = ["pathology", "split", "fps"]
ANNOTATION_REQUIRED = ["clip_id", "frame", "lesion_id", "x0", "y0", "x1", "y1"]
ANNOTATION_OPTIONAL = ["label"]
PATHOLOGIES = ("benign", "malignant", "normal")
SPLITS = ("train", "val", "test")
BOX = ["x0", "y0", "x1", "y1"]


def spreadsheet_row(index: int) -> int:
    """Spreadsheet row number of the 0-based data row ``index`` (header is row 1)."""
    return int(index) + 2


@dataclass
class Study:
    """A loaded study.

    Attributes
    ----------
    root : Path
        The study folder; manifest paths are relative to it.
    manifest : pandas.DataFrame
        One row per clip (``clip_id`` unique, string ids).
    annotations : pandas.DataFrame
        One row per lesion box per frame; ``frame`` is int, box columns float.
    """

    root: Path
    manifest: pd.DataFrame
    annotations: pd.DataFrame

    @property
    def manifest_path(self) -> Path:
        """The study's ``manifest.csv``."""
        return self.root / "manifest.csv"

    @property
    def annotations_path(self) -> Path:
        """The study's ``annotations.csv``."""
        return self.root / "annotations.csv"

    @property
    def clip_ids(self) -> list[str]:
        """Every clip id of the manifest, in its order."""
        return list(self.manifest["clip_id"])

    def clip_path(self, clip_id: str) -> Path:
        """Path of a clip's media (always inside the study folder)."""
        row = self._row(clip_id)
        why = confined_path_reason(self.root, str(row["path"]))
        if why:
            raise UsbkitError(
                f"the path '{row['path']}' of clip '{clip_id}' cannot be used: {why}",
                file=self.manifest_path,
                fix="Give the clip's media as a path inside the study folder",
            )
        return self.root / str(row["path"])

    def clip_fps(self, clip_id: str) -> float | None:
        """The manifest's fps for a clip, or None when not given."""
        if "fps" not in self.manifest.columns:
            return None
        value = self._row(clip_id)["fps"]
        return None if pd.isna(value) else float(value)

    def _row(self, clip_id: str) -> pd.Series:
        rows = self.manifest.loc[self.manifest["clip_id"] == normalize_id(clip_id)]
        if rows.empty:
            raise UsbkitError(
                f"clip id '{clip_id}' is not in the manifest",
                file=self.manifest_path,
                fix="Use one of the clip ids listed in manifest.csv",
            )
        return rows.iloc[0]

    def clips(self, split: str | None = None) -> pd.DataFrame:
        """Manifest rows, optionally only those of one split."""
        if split is None:
            return self.manifest
        if "split" not in self.manifest.columns:
            raise UsbkitError(
                f"the split '{split}' was asked for, but this study's manifest has no 'split' "
                "column",
                file=self.manifest_path,
                fix="Leave the split out to use every clip, or run `usbkit split STUDY` to assign "
                "the patients to train, val and test",
            )
        return self.manifest.loc[self.manifest["split"] == split]

    def has_lesions(self, split: str | None = None) -> bool:
        """Whether any clip of ``split`` (every clip for None) has an annotated lesion: what
        sensitivity, FP/scan and every comparison need."""
        ids = set(self.clips(split)["clip_id"])
        return bool(self.annotations["clip_id"].isin(ids).any())

    def boxes(self, clip_id: str) -> pd.DataFrame:
        """Annotation rows of one clip."""
        return self.annotations.loc[self.annotations["clip_id"] == normalize_id(clip_id)]


def read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV table as text cells (``what`` names it in messages: "manifest", ...).

    A byte-order mark (Excel's "CSV UTF-8") is accepted and spaces around column names are
    removed. Every failure is a :class:`UsbkitError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise UsbkitError(
            f"the {what} file is missing",
            file=path,
            fix=f"A study folder needs {path.name}; see docs/study-format.md",
        )
    if not path.is_file():
        raise UsbkitError(
            f"the {what} file is a folder (or another kind of file), not a CSV table",
            file=path,
            fix=f"Put the {what} table, saved as CSV, at this path",
        )
    try:
        df = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
        )
    except pd.errors.EmptyDataError:
        raise UsbkitError(
            f"the {what} file is empty (not even a header row)",
            file=path,
            fix="Write the header row described in docs/study-format.md",
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise UsbkitError(
            f"the {what} file is not a readable CSV table ({exc})",
            file=path,
            fix="Save it as comma-separated values (CSV, UTF-8) with one header row",
        ) from None
    except OSError as exc:
        raise UsbkitError(
            f"the {what} file cannot be read ({exc.strerror or exc})",
            file=path,
            fix="Check the file's permissions",
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


#: The former private name, kept for callers outside this module.
_read_csv = read_table


def _check_columns(
    df: pd.DataFrame, path: Path, required: list[str], optional: list[str]
) -> list[Problem]:
    problems = []
    missing = [c for c in required if c not in df.columns]
    if missing:
        problems.append(
            Problem(
                str(path),
                1,
                f"required column(s) {', '.join(missing)} missing from the header "
                f"(it must have {', '.join(required)})",
            )
        )
    unknown = [c for c in df.columns if c not in required + optional]
    if unknown:
        problems.append(
            Problem(
                str(path),
                1,
                f"unknown column(s) {', '.join(unknown)}; allowed are "
                f"{', '.join(required + optional)} (is one a misspelling?)",
            )
        )
    return problems


def parse_manifest(df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Validate a raw (all-string) manifest table; return the typed table and problems.

    ``path`` is the manifest file; media paths are checked against its folder.
    """
    problems = _check_columns(df, path, MANIFEST_REQUIRED, MANIFEST_OPTIONAL)
    if any(p.row == 1 and "missing" in p.message for p in problems):
        return df, problems
    df = df.copy()
    if df.empty:
        problems.append(
            Problem(
                str(path),
                None,
                "the manifest lists no clips (it has only its header row); add one row per clip",
            )
        )
        return df, problems
    for col in ("clip_id", "patient_id"):
        df[col] = normalize_ids(df[col])
    for col in ("clip_id", "patient_id", "path"):
        for i in np.flatnonzero(df[col].isna().to_numpy()):
            problems.append(Problem(str(path), spreadsheet_row(i), f"'{col}' is empty"))
    root = Path(path).parent
    for i, pid in enumerate(df["patient_id"]):
        why = unsafe_text_reason(pid) if pid is not None else None
        if why:
            problems.append(
                Problem(
                    str(path),
                    spreadsheet_row(i),
                    f"patient id '{_shown(pid)}' cannot be used: {why}. Retype it with "
                    "visible characters only",
                )
            )
    for i, (cid, rel) in enumerate(zip(df["clip_id"], df["path"])):
        if cid is not None:
            why = unsafe_name_reason(cid)
            if why:
                problems.append(
                    Problem(
                        str(path),
                        spreadsheet_row(i),
                        f"clip id '{_shown(cid)}' cannot be used: {why}. {ID_FIX}",
                    )
                )
        if not pd.isna(rel):
            why = confined_path_reason(root, str(rel))
            if why:
                problems.append(
                    Problem(
                        str(path),
                        spreadsheet_row(i),
                        f"path '{_shown(rel)}' cannot be used: {why}. Give the media as a path "
                        "inside the study folder (copy the clip into it)",
                    )
                )
    dup = df["clip_id"].duplicated(keep="first") & df["clip_id"].notna()
    for i in np.flatnonzero(dup.to_numpy()):
        first = int(np.flatnonzero((df["clip_id"] == df["clip_id"].iloc[i]).to_numpy())[0])
        problems.append(
            Problem(
                str(path),
                spreadsheet_row(i),
                f"clip id '{_shown(df['clip_id'].iloc[i])}' is used twice (first on row "
                f"{spreadsheet_row(first)}); clip ids must be unique",
            )
        )
    if "pathology" in df.columns:
        for i, v in enumerate(df["pathology"]):
            if not pd.isna(v) and str(v).strip().lower() not in PATHOLOGIES:
                problems.append(
                    Problem(
                        str(path),
                        spreadsheet_row(i),
                        f"pathology '{_shown(v)}' is not one of {', '.join(PATHOLOGIES)}",
                    )
                )
        df["pathology"] = df["pathology"].str.strip().str.lower()
    if "split" in df.columns:
        for i, v in enumerate(df["split"]):
            if not pd.isna(v) and str(v).strip().lower() not in SPLITS:
                problems.append(
                    Problem(
                        str(path),
                        spreadsheet_row(i),
                        f"split '{_shown(v)}' is not one of {', '.join(SPLITS)}",
                    )
                )
        df["split"] = df["split"].str.strip().str.lower()
        problems += _patients_in_two_splits(df, path)
    if "fps" in df.columns:
        values, ok = FPS.parse(df["fps"])
        for i, raw in enumerate(df["fps"]):
            if not pd.isna(raw) and not ok[i]:
                problems.append(Problem(str(path), spreadsheet_row(i), FPS.message(raw)))
        df["fps"] = np.where(ok, values, np.nan)
    return df, problems


def _shown(value, limit: int = 60) -> str:
    """A cell value as it can be shown in a message (control characters made visible)."""
    text = (
        str(value).encode("unicode_escape").decode("ascii")
        if not str(value).isprintable()
        else str(value)
    )
    return text if len(text) <= limit else text[:limit] + "..."


def _patients_in_two_splits(df: pd.DataFrame, path: Path) -> list[Problem]:
    problems = []
    sub = df.dropna(subset=["split"])
    for patient, group in sub.groupby("patient_id", sort=True):
        splits = sorted(set(group["split"]))
        if len(splits) > 1:
            rows = ", ".join(str(spreadsheet_row(i)) for i in group.index)
            problems.append(
                Problem(
                    str(path),
                    spreadsheet_row(group.index[0]),
                    f"patient '{patient}' is in more than one split ({', '.join(splits)}; rows "
                    f"{rows}); all clips of a patient must be in the same split, or the test "
                    "results are optimistic",
                )
            )
    return problems


def parse_annotations(
    df: pd.DataFrame, path: Path, clip_ids: set[str] | None
) -> tuple[pd.DataFrame, list[Problem]]:
    """Validate a raw annotations table; return the typed table and the problems found."""
    problems = _check_columns(df, path, ANNOTATION_REQUIRED, ANNOTATION_OPTIONAL)
    if any(p.row == 1 and "missing" in p.message for p in problems):
        return df, problems
    df = df.copy()
    df["clip_id"] = normalize_ids(df["clip_id"])
    df["lesion_id"] = normalize_ids(df["lesion_id"])
    frame, frame_ok = FRAME.parse(df["frame"])
    coords = {c: COORDINATE.parse(df[c]) for c in BOX}
    bad_rows = np.zeros(len(df), dtype=bool)
    for i in range(len(df)):
        row = spreadsheet_row(i)
        cid = df["clip_id"].iloc[i]
        if pd.isna(cid):
            problems.append(Problem(str(path), row, "'clip_id' is empty"))
            bad_rows[i] = True
        elif clip_ids is not None and cid not in clip_ids:
            problems.append(
                Problem(
                    str(path),
                    row,
                    f"annotation for clip '{_shown(cid)}', which is not in manifest.csv",
                )
            )
            bad_rows[i] = True
        if pd.isna(df["lesion_id"].iloc[i]):
            problems.append(Problem(str(path), row, "'lesion_id' is empty"))
            bad_rows[i] = True
        elif why := unsafe_text_reason(df["lesion_id"].iloc[i]):
            problems.append(
                Problem(
                    str(path),
                    row,
                    f"lesion id '{_shown(df['lesion_id'].iloc[i])}' cannot be used: {why}. "
                    "Retype it with visible characters only",
                )
            )
            bad_rows[i] = True
        if not frame_ok[i]:
            problems.append(Problem(str(path), row, FRAME.message(df["frame"].iloc[i])))
            bad_rows[i] = True
        vals = [coords[c][0][i] for c in BOX]
        if any(not np.isfinite(v) for v in vals):
            raw = ", ".join(f"{c}={df[c].iloc[i]!s}" for c in BOX)
            problems.append(
                Problem(str(path), row, f"box has a missing or non-numeric value ({raw})")
            )
            bad_rows[i] = True
            continue
        if not all(coords[c][1][i] for c in BOX):
            raw = ", ".join(f"{c}={df[c].iloc[i]!s}" for c in BOX)
            problems.append(
                Problem(
                    str(path), row, f"box coordinate out of range ({raw}): {COORDINATE.expected}"
                )
            )
            bad_rows[i] = True
            continue
        x0, y0, x1, y1 = vals
        if not (x0 < x1 and y0 < y1):
            problems.append(
                Problem(
                    str(path),
                    row,
                    f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is empty or swapped: it needs "
                    "x0 < x1 and y0 < y1 (left < right, top < bottom)",
                )
            )
            bad_rows[i] = True
        elif min(vals) < 0:
            problems.append(
                Problem(
                    str(path),
                    row,
                    f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] has a negative coordinate, outside the frame",
                )
            )
            bad_rows[i] = True
    for c in BOX:
        df[c] = coords[c][0]
    ok = ~bad_rows
    df = df.loc[ok].copy()
    df["frame"] = frame[ok].astype(np.int64)  # every kept frame passed the range check
    key = df[["clip_id", "frame", "lesion_id"]]
    dup = key.duplicated(keep="first")
    for i in key.index[dup.to_numpy()]:
        problems.append(
            Problem(
                str(path),
                spreadsheet_row(i),
                f"lesion '{_shown(df.at[i, 'lesion_id'])}' of clip '{_shown(df.at[i, 'clip_id'])}' "
                f"has a second box on frame {int(df.at[i, 'frame'])}; each lesion has one box per "
                "frame",
            )
        )
    return df, problems


def load_study(root: str | Path) -> Study:
    r"""Load and validate the tables of a study folder (not the media).

    Parameters
    ----------
    root : str or Path
        The study folder holding ``manifest.csv`` and ``annotations.csv``.

    Returns
    -------
    Study

    Raises
    ------
    UsbkitError
        When the folder or a table is missing, or any row is invalid (all problems listed).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "manifest.csv").write_text(
    ...     "clip_id,patient_id,path,split\nA1,P001,clips/A1.mp4,test\n")
    >>> _ = (root / "annotations.csv").write_text(
    ...     "clip_id,frame,lesion_id,x0,y0,x1,y1\nA1,12,1,140.5,88,181,120\n")
    >>> study = load_study(root)
    >>> study.clip_ids, len(study.boxes("A1")), list(study.clips("test")["patient_id"])
    (['A1'], 1, ['P001'])

    A mistake names the file and the spreadsheet row:

    >>> _ = (root / "annotations.csv").write_text(
    ...     "clip_id,frame,lesion_id,x0,y0,x1,y1\nA1,12,1,181,88,140.5,120\n")
    >>> load_study(root)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    usbkit.errors.StudyProblems: ...annotations.csv, row 2: box [181, 88, 140.5, 120] is empty or swapped...
    """
    root = Path(root)
    if not root.is_dir():
        raise UsbkitError(
            "this study folder does not exist",
            file=root,
            fix="Give the folder that holds manifest.csv and annotations.csv",
        )
    manifest_path = root / "manifest.csv"
    ann_path = root / "annotations.csv"
    manifest, problems = parse_manifest(read_table(manifest_path, "manifest"), manifest_path)
    if problems and any(p.row == 1 for p in problems):
        raise StudyProblems(problems, "The manifest cannot be read")
    ann_raw = read_table(ann_path, "annotations")
    annotations, ann_problems = parse_annotations(
        ann_raw, ann_path, set(manifest["clip_id"].dropna())
    )
    problems += ann_problems
    if problems:
        raise StudyProblems(problems)
    return Study(root=root, manifest=manifest.reset_index(drop=True), annotations=annotations)


def empty_annotations() -> pd.DataFrame:
    """An annotations table with the required columns and no rows."""
    return pd.DataFrame(
        {c: pd.Series(dtype=float if c in BOX else object) for c in ANNOTATION_REQUIRED}
    )


def write_study_tables(root: str | Path, manifest: pd.DataFrame, annotations: pd.DataFrame) -> None:
    """Write manifest.csv and annotations.csv atomically (columns in the documented order)."""
    from usbkit.safeio import write_csv

    root = Path(root)
    mcols = MANIFEST_REQUIRED + [c for c in MANIFEST_OPTIONAL if c in manifest.columns]
    acols = ANNOTATION_REQUIRED + [c for c in ANNOTATION_OPTIONAL if c in annotations.columns]
    ann = annotations[acols].copy()
    if len(ann):
        ann = ann.sort_values(["clip_id", "frame", "lesion_id"], kind="stable")
        for c in BOX:
            ann[c] = ann[c].astype(float).round(3)
    write_csv(root / "manifest.csv", manifest[mcols])
    write_csv(root / "annotations.csv", ann)
