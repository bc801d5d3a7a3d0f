"""The study folder: ``manifest.csv`` + ``annotations.csv`` + media (docs/study-format.md).

Rows are reported as spreadsheet rows: the header is row 1, the first data row is row 2,
which is what a clinician sees when the file is opened in a spreadsheet program.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from usbkit.errors import Problem, StudyProblems, UsbkitError

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
        """Absolute path of a clip's media."""
        row = self._row(clip_id)
        return self.root / str(row["path"])

    def clip_fps(self, clip_id: str) -> float | None:
        """The manifest's fps for a clip, or None when not given."""
        if "fps" not in self.manifest.columns:
            return None
        value = self._row(clip_id)["fps"]
        return None if pd.isna(value) else float(value)

    def _row(self, clip_id: str) -> pd.Series:
        rows = self.manifest.loc[self.manifest["clip_id"] == str(clip_id)]
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
                f"--split {split} was asked for but the manifest has no 'split' column",
                file=self.manifest_path,
                fix="Run `usbkit split STUDY` to assign patients to train/val/test first",
            )
        return self.manifest.loc[self.manifest["split"] == split]

    def boxes(self, clip_id: str) -> pd.DataFrame:
        """Annotation rows of one clip."""
        return self.annotations.loc[self.annotations["clip_id"] == str(clip_id)]


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise UsbkitError(
            f"the {what} file is missing",
            file=path,
            fix=f"A study folder needs {path.name}; see the README's 'Study format' section",
        )
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise UsbkitError(
            f"the {what} file is empty (not even a header row)",
            file=path,
            fix="Write the header row described in the README's 'Study format' section",
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UsbkitError(
            f"the {what} file is not a readable CSV table ({exc})",
            file=path,
            fix="Save it as comma-separated values (CSV) with one header row",
        ) from None


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
    """Validate a raw (all-string) manifest table; return the typed table and problems."""
    problems = _check_columns(df, path, MANIFEST_REQUIRED, MANIFEST_OPTIONAL)
    if any(p.row == 1 and "missing" in p.message for p in problems):
        return df, problems
    df = df.copy()
    for col in ("clip_id", "patient_id", "path"):
        for i in np.flatnonzero(df[col].isna().to_numpy()):
            problems.append(Problem(str(path), spreadsheet_row(i), f"'{col}' is empty"))
    df["clip_id"] = df["clip_id"].astype("string").str.strip().astype(object)
    df["patient_id"] = df["patient_id"].astype("string").str.strip().astype(object)
    dup = df["clip_id"].duplicated(keep="first") & df["clip_id"].notna()
    for i in np.flatnonzero(dup.to_numpy()):
        first = int(np.flatnonzero((df["clip_id"] == df["clip_id"].iloc[i]).to_numpy())[0])
        problems.append(
            Problem(
                str(path),
                spreadsheet_row(i),
                f"clip id '{df['clip_id'].iloc[i]}' is used twice (first on row "
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
                        f"pathology '{v}' is not one of {', '.join(PATHOLOGIES)}",
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
                        f"split '{v}' is not one of {', '.join(SPLITS)}",
                    )
                )
        df["split"] = df["split"].str.strip().str.lower()
        problems += _patients_in_two_splits(df, path)
    if "fps" in df.columns:
        fps = pd.to_numeric(df["fps"], errors="coerce")
        for i, (raw, v) in enumerate(zip(df["fps"], fps)):
            if pd.isna(raw):
                continue
            if pd.isna(v) or not np.isfinite(v) or v <= 0:
                problems.append(
                    Problem(str(path), spreadsheet_row(i), f"fps '{raw}' is not a positive number")
                )
        df["fps"] = fps
    return df, problems


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
    df["clip_id"] = df["clip_id"].astype("string").str.strip().astype(object)
    df["lesion_id"] = df["lesion_id"].astype("string").str.strip().astype(object)
    frame = pd.to_numeric(df["frame"], errors="coerce")
    coords = {c: pd.to_numeric(df[c], errors="coerce") for c in BOX}
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
                    f"annotation for clip '{cid}', which is not in manifest.csv",
                )
            )
            bad_rows[i] = True
        if pd.isna(df["lesion_id"].iloc[i]):
            problems.append(Problem(str(path), row, "'lesion_id' is empty"))
            bad_rows[i] = True
        f = frame.iloc[i]
        if pd.isna(f) or f != np.floor(f) or f < 0:
            problems.append(
                Problem(
                    str(path),
                    row,
                    f"frame '{df['frame'].iloc[i]}' is not a frame number (0, 1, 2, ...)",
                )
            )
            bad_rows[i] = True
        vals = [coords[c].iloc[i] for c in BOX]
        if any(pd.isna(v) or not np.isfinite(v) for v in vals):
            raw = ", ".join(f"{c}={df[c].iloc[i]!s}" for c in BOX)
            problems.append(
                Problem(str(path), row, f"box has a missing or non-numeric value ({raw})")
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
        df[c] = coords[c].astype(float)
    df["frame"] = frame
    ok = ~bad_rows
    key = df.loc[ok, ["clip_id", "frame", "lesion_id"]]
    dup = key.duplicated(keep="first")
    for i in key.index[dup.to_numpy()]:
        problems.append(
            Problem(
                str(path),
                spreadsheet_row(i),
                f"lesion '{df['lesion_id'].iloc[i]}' of clip '{df['clip_id'].iloc[i]}' has a second "
                f"box on frame {int(df['frame'].iloc[i])}; each lesion has one box per frame",
            )
        )
    df = df.loc[ok].copy()
    df["frame"] = df["frame"].astype(int)
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
    manifest, problems = parse_manifest(_read_csv(manifest_path, "manifest"), manifest_path)
    if problems and any(p.row == 1 for p in problems):
        raise StudyProblems(problems, "The manifest cannot be read")
    ann_raw = _read_csv(ann_path, "annotations")
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
