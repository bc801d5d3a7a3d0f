"""Errors that users see: one paragraph naming the file, the row or frame, and what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class UsbkitError(Exception):
    """An error caused by the user's input, reported without a traceback.

    Parameters
    ----------
    message : str
        What is wrong, in plain words.
    file : str or Path, optional
        The file at fault.
    row : int, optional
        The spreadsheet row (the header is row 1, the first data row is row 2).
    frame : int, optional
        The 0-based frame index at fault.
    fix : str, optional
        What the user should do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        frame: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.frame = frame
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        text = (", ".join(where) + ": " if where else "") + self.message.rstrip(".") + "."
        if self.fix:
            text += " " + self.fix.rstrip(".") + "."
        return text


class UsbkitWarning(UserWarning):
    """Something the user should know that does not stop the command (one paragraph, like
    :class:`UsbkitError`): a damaged cache entry rebuilt, a DICOM timing tag ignored, ..."""


@dataclass(frozen=True)
class Problem:
    """One problem found while checking a study."""

    file: str
    row: int | None
    message: str
    frame: int | None = None

    def __str__(self) -> str:
        return str(UsbkitError(self.message, file=self.file, row=self.row, frame=self.frame))


class StudyProblems(UsbkitError):
    """Several problems found at once (``usbkit check`` lists them all)."""

    def __init__(
        self,
        problems: list[Problem],
        what: str = "The study has problems",
        total: int | None = None,
    ) -> None:
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = (
            f"{self.total} found, the first {len(self.problems)} shown"
            if self.total > len(self.problems)
            else f"{self.total} found"
        )
        super().__init__(
            f"{what} ({count}):\n{lines}\nFix these rows or files and run `usbkit check` again"
        )
        self.message = f"{what} ({count}):\n{lines}"

    def __str__(self) -> str:
        return self.message + "\nFix these rows or files and run `usbkit check` again."
