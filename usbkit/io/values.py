"""Numbers in the user's files: parsed once, range-checked before any cast.

Every numeric field usbkit reads (a frame number in annotations.csv or a detections file, a
box coordinate, a score, a frame rate in the manifest or a DICOM tag, a bbox in a COCO-VID
file, a frame in a CVAT file) goes through :func:`to_number` and one :class:`NumberRule`, so
``1e20``, ``inf``, ``nan`` or ``12abc`` never reach an integer cast.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

#: Frame numbers are below this (a clip of ten million frames is 90 hours at 30 fps).
MAX_FRAME = 10_000_000
#: Box coordinates lie within this many pixels of 0.
MAX_COORDINATE = 1_000_000.0
#: Highest frame rate accepted, in frames per second.
MAX_FPS = 10_000.0

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def to_number(value) -> float:
    """``value`` as a float, or NaN when it is not a plain decimal number.

    Text like ``12``, ``12.0``, `` 3 ``, ``1e3`` is a number; ``inf``, ``nan``, ``1_000``,
    ``0x10``, booleans and empty cells are not (NaN).

    Examples
    --------
    >>> to_number("12"), to_number(" 1e3 "), to_number(2)
    (12.0, 1000.0, 2.0)
    >>> [math.isnan(to_number(v)) for v in ("inf", "abc", None, True, "1_0")]
    [True, True, True, True, True]
    """
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else math.nan
    text = str(value).strip()
    if not _NUMBER.fullmatch(text):
        return math.nan
    v = float(text)
    return v if math.isfinite(v) else math.nan


@dataclass(frozen=True)
class NumberRule:
    """The allowed values of one kind of numeric field.

    Attributes
    ----------
    name : str
        The field as the user knows it (``frame``, ``fps``, ...).
    low, high : float
        Bounds.
    integer : bool
        Only whole numbers.
    low_open, high_open : bool
        Exclude the bound itself.
    expected : str
        The allowed values in plain words, for messages.
    """

    name: str
    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    high_open: bool = False
    expected: str = ""

    def accepts(self, value: float) -> bool:
        """Whether a parsed value (from :func:`to_number`) is allowed."""
        if not math.isfinite(value):
            return False
        if self.integer and value != math.floor(value):
            return False
        if value < self.low or (self.low_open and value == self.low):
            return False
        if value > self.high or (self.high_open and value == self.high):
            return False
        return True

    def parse(self, values) -> tuple[np.ndarray, np.ndarray]:
        """Parse a column; return the values (float64, NaN where unparsable) and a mask of
        the allowed ones."""
        parsed = np.array([to_number(v) for v in values], dtype=np.float64)
        ok = np.array([self.accepts(v) for v in parsed], dtype=bool)
        return parsed, ok

    def check(self, raw) -> tuple[float, str | None]:
        """Parse one value; return it and the problem (None when allowed)."""
        value = to_number(raw)
        if self.accepts(value):
            return value, None
        return value, self.message(raw)

    def message(self, raw) -> str:
        """The plain-words problem with the raw value ``raw``."""
        shown = "" if raw is None else str(raw)
        if not shown.strip():
            return f"{self.name} is empty; it must be {self.expected}"
        return f"{self.name} '{shown}' is not {self.expected}"


FRAME = NumberRule(
    "frame",
    0,
    MAX_FRAME,
    integer=True,
    high_open=True,
    expected=f"a frame number (0, 1, 2, ... below {MAX_FRAME:,})",
)
COORDINATE = NumberRule(
    "coordinate",
    -MAX_COORDINATE,
    MAX_COORDINATE,
    expected=f"a number of pixels (at most {MAX_COORDINATE:,.0f})",
)
SCORE = NumberRule("score", 0.0, 1.0, expected="a number in [0, 1]")
FPS = NumberRule(
    "fps",
    0.0,
    MAX_FPS,
    low_open=True,
    expected=f"a frame rate above 0 and at most {MAX_FPS:,.0f} frames per second",
)
