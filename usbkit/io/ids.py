"""Ids and paths: one rule for every table, importer and exporter.

* Ids (clip, patient, lesion) are text, compared after Unicode NFC normalisation with the
  spaces around them removed, so ``café`` typed on a Mac and on Windows is one id.
* A clip id must be usable as a file or folder name without leaving that folder: no ``/`` or
  ``\\``, no control characters (NUL, tab, line breaks, bidirectional overrides), no leading
  dot (``.``, ``..``, hidden names), at most :data:`MAX_NAME_BYTES` bytes.
* A media path in the manifest is relative to the study folder and stays inside it after
  ``..`` and symbolic links are resolved.
* Names that usbkit makes for files (importers, exporters) come from :func:`safe_name` and
  :func:`unique_names`: always safe, never two alike, even on a case-insensitive disk.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

#: Longest clip id, in UTF-8 bytes (file names may have 255; room is left for a suffix).
MAX_NAME_BYTES = 200
#: Invisible characters that reorder the text around them (they can disguise a file name).
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_UNSAFE_RUN = re.compile(r"[^\w.\-]+")


def normalize_id(value) -> str | None:
    """An id as usbkit compares it: NFC text without surrounding spaces; None when empty.

    Examples
    --------
    >>> normalize_id(" cafe\\u0301 ") == normalize_id("caf\\u00e9")
    True
    >>> normalize_id(float("nan")) is None, normalize_id("  ") is None, normalize_id(7)
    (True, True, '7')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if value != value:  # pandas NA and friends
            return None
    except (TypeError, ValueError):
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def normalize_ids(values) -> list:
    """:func:`normalize_id` of each value (a list, for a pandas column: ``df[c] = ...``)."""
    return [normalize_id(v) for v in values]


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` cannot be used as a file or folder name, or None when it can.

    Examples
    --------
    >>> unsafe_name_reason("A1") is None, unsafe_name_reason("病例 1") is None
    (True, True)
    >>> unsafe_name_reason("../victim")
    "it contains '/', which separates folders"
    """
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"'{name}' names a folder, not a file"
    for sep in ("/", "\\"):
        if sep in name:
            return f"it contains '{sep}', which separates folders"
    bad = [ch for ch in name if _is_control(ch)]
    if bad:
        codes = ", ".join(sorted({f"U+{ord(ch):04X}" for ch in bad}))
        return f"it contains invisible control characters ({codes})"
    if name.startswith("."):
        return "it starts with '.', which makes a hidden file name"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes, too long for a file name"
    return None


def unsafe_text_reason(text: str) -> str | None:
    """Why ``text`` (a patient or lesion id, a model name: anything usbkit shows) cannot be
    shown as it is, or None when it can: invisible control characters (line breaks, NUL,
    bidirectional overrides that reorder what is shown around them) are refused, as in clip
    ids.

    Examples
    --------
    >>> unsafe_text_reason("P/001") is None
    True
    >>> unsafe_text_reason("P\u202e100")
    'it contains invisible control characters (U+202E)'
    """
    bad = [ch for ch in str(text) if _is_control(ch)]
    if bad:
        codes = ", ".join(sorted({f"U+{ord(ch):04X}" for ch in bad}))
        return f"it contains invisible control characters ({codes})"
    return None


#: What to do about an id that :func:`unsafe_name_reason` refuses.
ID_FIX = (
    "Rename it using letters, digits, spaces, '-', '_' or '.' (not first), "
    "in manifest.csv and annotations.csv alike"
)


def _is_absolute(text: str) -> bool:
    return (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or bool(PureWindowsPath(text).drive)
        or text.startswith("~")
    )


def confined_path_reason(root: str | Path, relative: str) -> str | None:
    """Why ``relative`` is not a path inside the folder ``root``, or None when it is.

    ``..`` and symbolic links are resolved first, so a link that leads out of ``root`` is
    refused as well.

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> confined_path_reason(root, "clips/a.mp4") is None
    True
    >>> confined_path_reason(root, "../a.mp4")
    'it leads outside the folder (through ..)'
    """
    text = str(relative)
    if not text.strip():
        return "it is empty"
    if "\x00" in text:
        return "it contains a NUL character"
    if _is_absolute(text):
        return "it is an absolute path; paths are relative to the study folder"
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(Path(root) / text))
    if target == base:
        return "it names the study folder itself, not a clip"
    if not target.is_relative_to(base):
        lexical = Path(os.path.normpath(Path(root).absolute() / text))
        if lexical.is_relative_to(Path(os.path.normpath(Path(root).absolute()))):
            return "it leads outside the folder (through a symbolic link)"
        return "it leads outside the folder (through ..)"
    return None


def safe_name(text, default: str = "clip") -> str:
    """A file-system-safe name made from ``text`` (letters and digits of any script kept).

    Examples
    --------
    >>> safe_name("benign (1)"), safe_name("../../x"), safe_name("病例 1"), safe_name("...")
    ('benign_1', 'x', '病例_1', 'clip')
    """
    name = unicodedata.normalize("NFC", str(text))
    name = "".join(" " if _is_control(ch) else ch for ch in name)
    name = _UNSAFE_RUN.sub("_", name).strip("._")
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        name = name[:-1]
    return name or default


def unique_names(ids: Iterable[str], default: str = "clip") -> dict[str, str]:
    """A safe, distinct file name for each id; distinct even where case is ignored.

    Examples
    --------
    >>> unique_names(["A1", "a1", "../A1", "b"])
    {'A1': 'A1', 'a1': 'a1_2', '../A1': 'A1_3', 'b': 'b'}
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for cid in ids:
        if cid in out:
            continue
        base = safe_name(cid, default)
        name, k = base, 1
        while name.casefold() in taken:
            k += 1
            name = f"{base}_{k}"
        taken.add(name.casefold())
        out[cid] = name
    return out
