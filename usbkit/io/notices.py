"""Warnings that users see: things worth knowing that do not stop the command.

usbkit warns through Python's :mod:`warnings` module with one class,
:class:`UsbkitWarning`, and the same one-paragraph form as its errors (file, frame, what
happened, what to do). A warning about a lasting condition (an unusable cache folder) is
given once per process.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from usbkit.errors import UsbkitError, UsbkitWarning

__all__ = ["UsbkitWarning", "warn"]


_GIVEN: set = set()


def warn(
    message: str,
    *,
    file: str | Path | None = None,
    frame: int | None = None,
    fix: str | None = None,
    once: object = None,
) -> None:
    """Issue a :class:`UsbkitWarning` as one plain paragraph.

    Parameters
    ----------
    message : str
        What happened, in plain words.
    file : str or Path, optional
        The file concerned.
    frame : int, optional
        The frame concerned.
    fix : str, optional
        What the user can do about it.
    once : hashable, optional
        Give this warning only the first time this key is seen in the process.
    """
    if once is not None:
        if once in _GIVEN:
            return
        _GIVEN.add(once)
    text = str(UsbkitError(message, file=file, frame=frame, fix=fix))
    warnings.warn(text, UsbkitWarning, stacklevel=3)
