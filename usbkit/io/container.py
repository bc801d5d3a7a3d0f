"""Is a media file cut short? What its container says about its own length.

Most containers record how long they are: an MP4/MOV file is a chain of boxes, each with
its size; an AVI file is a RIFF chunk with its size; a Matroska/WebM file has an EBML header
and a Segment with its size; a GIF ends with a trailer byte. A file that stops before the
length its container declares was cut short (an interrupted copy or download), even when
the frames that remain still decode. :func:`cut_short` reads only these headers.
"""

from __future__ import annotations

from pathlib import Path

_MAX_ELEMENTS = 100_000


def cut_short(path: Path) -> str | None:
    """Describe how ``path`` is cut short, in plain words, or None when it looks complete
    (or its format records no length).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.avi"
    >>> _ = p.write_bytes(b"RIFF" + (1000).to_bytes(4, "little") + b"AVI " + bytes(100))
    >>> cut_short(p)
    'its RIFF header declares 1,008 bytes but the file has only 112'
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12:
                return None
            if head[:4] == b"RIFF":
                return _riff(fh, size)
            if head[:4] == b"\x1a\x45\xdf\xa3":
                return _ebml(fh, size)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                fh.seek(size - 1)
                last = fh.read(1)
                return None if last == b"\x3b" else "its end marker (the GIF trailer) is missing"
            if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"styp"):
                return _iso_boxes(fh, size)
    except OSError:
        return None
    return None


def _iso_boxes(fh, size: int) -> str | None:
    pos, seen = 0, set()
    for _ in range(_MAX_ELEMENTS):
        if pos + 8 > size:
            break
        fh.seek(pos)
        header = fh.read(16)
        length = int.from_bytes(header[:4], "big")
        kind = header[4:8]
        if not all(32 <= b < 127 for b in kind):
            return None  # not a box: trailing bytes of another kind, not ours to judge
        if length == 1:
            if len(header) < 16:
                return f"its '{kind.decode()}' box header is cut off"
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:  # the last box runs to the end of the file
            seen.add(kind)
            break
        if length < 8:
            return None
        seen.add(kind)
        if pos + length > size:
            return (
                f"its '{kind.decode()}' box ends at byte {pos + length:,} but the file has "
                f"only {size:,}"
            )
        pos += length
    if b"mdat" in seen and b"moov" not in seen:
        return "its index (the 'moov' box) is missing"
    return None


def _riff(fh, size: int) -> str | None:
    pos = 0
    for _ in range(_MAX_ELEMENTS):
        if pos + 8 > size:
            break
        fh.seek(pos)
        header = fh.read(8)
        if header[:4] != b"RIFF":
            break
        length = int.from_bytes(header[4:8], "little")
        if length == 0:  # never finalised: the length is unknown
            return None
        end = pos + 8 + length + (length & 1)
        if end > size + (length & 1):  # a missing pad byte at the very end is tolerated
            return f"its RIFF header declares {pos + 8 + length:,} bytes but the file has only {size:,}"
        pos = end
    return None


def _vint(fh, keep_marker: bool) -> tuple[int | None, int]:
    """Read an EBML variable-length integer; return (value or None if unknown, bytes)."""
    first = fh.read(1)
    if not first:
        raise EOFError
    b0 = first[0]
    length = next((i + 1 for i in range(8) if b0 & (0x80 >> i)), 0)
    if length == 0:
        raise ValueError("invalid EBML integer")
    rest = fh.read(length - 1)
    if len(rest) < length - 1:
        raise EOFError
    value = b0 if keep_marker else b0 & (0xFF >> length)
    for b in rest:
        value = (value << 8) | b
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return None, length  # "unknown size"
    return value, length


def _ebml(fh, size: int) -> str | None:
    pos = 0
    for _ in range(_MAX_ELEMENTS):
        if pos >= size:
            break
        fh.seek(pos)
        try:
            ident, n1 = _vint(fh, keep_marker=True)
            length, n2 = _vint(fh, keep_marker=False)
        except EOFError:
            return "its last section header is cut off"
        except ValueError:
            return None
        if length is None:  # a live recording: the length was never written
            return None
        end = pos + n1 + n2 + length
        if end > size:
            what = "Segment" if ident == 0x18538067 else "header"
            return f"its Matroska {what} declares {end:,} bytes but the file has only {size:,}"
        pos = end
    return None
