"""One reader for every clip format of docs/study-format.md.

``open_clip(path)`` returns a :class:`Clip`: grayscale uint8 frames (memory-mapped from
the on-disk cache after the first pass), the frame rate, and the crop of the B-mode region.

Formats: MP4 / AVI / MOV / MKV / WebM (any codec FFmpeg decodes, through PyAV; frame ``i``
is the ``i``-th decoded frame, which is right for variable frame rate), animated GIF, a folder
of PNG/JPEG frames (natural sort order), DICOM cine through pydicom (uncompressed, JPEG
baseline through pylibjpeg; RGB, YBR and MONOCHROME2; frame time from the DICOM tags) and a
single still image (a one-frame clip).

A clip is read whole or not at all: a file cut short (see :mod:`usbkit.io.container`), a
video that yields fewer frames than its container lists, or a frame that does not decode is
an error naming the last good frame, because annotations of the later frames would otherwise
point at the wrong images.

DICOM patient tags never leave this module: only pixels, the frame rate and the frame size
are kept.
"""

from __future__ import annotations

import functools
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.io.container import cut_short
from usbkit.io.pixels import image_array, image_header, scale_to_uint8, to_gray, value_range
from usbkit.io.values import FPS, FRAME, to_number

VIDEO_SUFFIXES = {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
DEFAULT_FPS = 30.0
#: Files a frame folder may hold besides its frames (system clutter, compared lower case).
FOLDER_CLUTTER = {"thumbs.db", "desktop.ini"}


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def media_kind(path: str | Path) -> str:
    """Return ``'video'``, ``'gif'``, ``'dicom'``, ``'image'`` or ``'folder'`` for a path."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix == ".gif":
        return "gif"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        if head[128:132] == b"DICM":
            return "dicom"
    except OSError:
        pass
    return "video"


@dataclass
class Decoded:
    """What a decoder yields besides frames: filled in as decoding proceeds.

    Attributes
    ----------
    fps : float, optional
        The frame rate found in the file.
    fps_source : str
        Where it came from (``container``, ``FrameTime``, ``default``, ...).
    fps_note : str, optional
        A timing tag that was present but unusable (the rate fell back to another source).
    frames_hint : int
        The number of frames the file says it holds (0: not said); known before the first
        frame, so a reader can size its buffer once. Only a hint: the frames decoded count.
    slot : callable, optional
        Set by the reader, not the decoder: ``slot((height, width))`` gives the uint8 array
        the next frame may be written into (a place in the reader's clip buffer, see
        :class:`usbkit.io.cache.FrameStore`), so that it is not copied again. Decoders that
        compute their frames (video) write there; the others yield their own arrays.
    """

    fps: float | None = None
    fps_source: str = "default"
    fps_note: str | None = None
    frames_hint: int = 0
    slot: Callable[[tuple[int, int]], np.ndarray] | None = None

    def out(self, shape: tuple[int, int]) -> np.ndarray:
        """The array to write the next frame into (:attr:`slot`, else a new one)."""
        return self.slot(shape) if self.slot is not None else np.empty(shape, np.uint8)


def require_media(path: Path) -> None:
    """Raise the user-facing error for a clip whose media is missing or not a file/folder."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsbkitError(
            f"this clip's media cannot be reached ({exc.strerror or exc})",
            file=path,
            fix="Check the 'path' column of manifest.csv and the file's permissions",
        ) from None
    if mode is None:
        raise UsbkitError(
            "this clip's media file is missing",
            file=path,
            fix="Check the 'path' column of manifest.csv (paths are relative to the study folder)",
        )
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UsbkitError(
            "this clip's media is not a regular file or folder (a device, pipe or socket)",
            file=path,
            fix="Point the manifest's 'path' at the clip's media file or frame folder",
        )


def _bad_media(path: Path, what: str, frame: int | None = None) -> UsbkitError:
    return UsbkitError(
        f"cannot read this clip: {what}",
        file=path,
        frame=frame,
        fix="Check that the file is complete (not cut short while copying) and in a supported "
        "format (MP4/AVI/MOV/MKV video, GIF, DICOM cine, PNG/JPEG frames)",
    )


def _incomplete(path: Path, why: str, decoded: int) -> UsbkitError:
    """The error for a clip that is cut short or stops decoding after ``decoded`` frames."""
    if decoded:
        good = f"frames 0 to {decoded - 1} decode, the rest is missing or damaged"
    else:
        good = "no frame could be decoded"
    return UsbkitError(
        f"this clip is incomplete: {why}; {good}",
        file=path,
        frame=decoded if decoded else None,
        fix="Copy the complete file again from the scanner or archive; usbkit does not use a "
        "clip with missing frames, because annotations of later frames would point at the "
        "wrong images",
    )


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


#: 8-bit pixel formats whose first plane is the luma (Y) of the picture.
LUMA_FIRST_FORMATS = {
    "gray", "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p",
    "yuvj440p", "yuv411p", "yuv410p", "nv12", "nv21",
}  # fmt: skip


#: The luma table of full-range video (:func:`luma_lut` returns this very array for it).
_IDENTITY = np.arange(256, dtype=np.uint8)


@functools.lru_cache(maxsize=32)
def luma_lut(fmt: str, color_range: int) -> np.ndarray | None:
    """FFmpeg's own luma-to-gray mapping for a pixel format and colour range, as a table.

    Built once by converting a ramp of every Y value through FFmpeg's scaler, so that reading
    the Y plane through it gives exactly the pixels ``frame.to_ndarray(format="gray")`` gives
    (limited-range video stretched to 0-255), without converting the whole frame.
    """
    import av

    width, height = 256, 16
    try:
        ramp = av.VideoFrame(width, height, fmt)
        ramp.color_range = color_range
        for k, plane in enumerate(ramp.planes):
            values = np.full((plane.height, plane.line_size), 128, dtype=np.uint8)
            if k == 0:
                values[:, :width] = np.arange(256, dtype=np.uint8)[None, :]
            plane.update(values.tobytes())
        lut = ramp.to_ndarray(format="gray")[0, :256]
    except Exception:  # noqa: BLE001 - a format FFmpeg cannot build: use the slow path
        return None
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    return _IDENTITY if np.array_equal(lut, _IDENTITY) else lut


@functools.lru_cache(maxsize=32)
def _pair_lut(lut_bytes: bytes) -> np.ndarray:
    """The luma table applied to two pixels at once: 65,536 uint16 entries, each byte of the
    index mapped through the table on its own (so byte order does not matter)."""
    lut = np.frombuffer(lut_bytes, np.uint8)
    v = np.arange(65536)
    return lut[v & 255].astype(np.uint16) | (lut[v >> 8].astype(np.uint16) << 8)


def apply_luma_lut(lut: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``lut[y]`` for a uint8 image ``y`` whose rows are contiguous, two pixels per lookup
    where the width is even (about twice as fast as one by one); exactly ``np.take(lut, y)``.
    Written into ``out`` (C-contiguous uint8 of ``y``'s shape) where given.
    """
    out = np.empty(y.shape, np.uint8) if out is None else out
    if y.shape[-1] % 2 == 0 and y.strides[-1] == 1:
        # mode="clip": every index is in the table, and numpy then writes to out directly
        np.take(_pair_lut(lut.tobytes()), y.view(np.uint16), out=out.view(np.uint16), mode="clip")
    else:
        np.take(lut, y, out=out, mode="clip")
    return out


def video_gray(frame, out: np.ndarray | None = None) -> np.ndarray:
    """A decoded video frame as grayscale uint8: its luma plane through :func:`luma_lut`
    where the pixel format has one (fast, exact), else FFmpeg's conversion. Written into
    ``out`` (C-contiguous uint8, the frame's height x width) where given."""
    fmt = frame.format.name
    if fmt in LUMA_FIRST_FORMATS:
        lut = luma_lut(fmt, int(getattr(frame, "color_range", 0) or 0))
        if lut is not None:
            plane = frame.planes[0]
            y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            y = y[: frame.height, : frame.width]
            if lut is _IDENTITY:  # full-range video: the Y plane is the gray image
                if out is None:
                    return y.copy()
                np.copyto(out, y)
                return out
            return apply_luma_lut(lut, y, out)
    gray = frame.to_ndarray(format="gray")
    if out is None:
        return gray
    np.copyto(out, gray)
    return out


def _decode_video(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    import av

    short = cut_short(path)
    cause = f"the file is cut short ({short})" if short else None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if short:
            raise _incomplete(path, cause, 0) from None
        raise _bad_media(path, f"FFmpeg could not open it ({exc.__class__.__name__})") from None
    with container:
        if not container.streams.video:
            raise _bad_media(path, "it has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if rate and FPS.accepts(float(rate)):
            info.fps, info.fps_source = float(rate), "container"
        declared = int(stream.frames or 0)
        info.frames_hint = declared
        tb = stream.time_base
        start = _seconds(stream.start_time, tb) or 0.0
        length = _seconds(stream.duration, tb)
        if length is None and container.duration and len(container.streams) == 1:
            length = container.duration / 1_000_000
        i = 0
        # frame times in the stream's time base (integers), turned into seconds once at the end
        pts: list[int] = []
        ends: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size and packet.is_corrupt:
                    raise _incomplete(path, cause or "a frame's data is cut off", i)
                for frame in packet.decode():
                    yield video_gray(frame, info.out((frame.height, frame.width)))
                    i += 1
                    if frame.pts is not None:
                        pts.append(frame.pts)
                        ends.append(frame.pts + (frame.duration or 0))
        except av.error.FFmpegError as exc:
            if i == 0 and not short:
                raise _bad_media(
                    path, f"no frame could be decoded ({exc.__class__.__name__})"
                ) from None
            raise _incomplete(
                path, cause or f"decoding stopped with an error ({exc.__class__.__name__})", i
            ) from None
        if short:
            raise _incomplete(path, cause, i)
        if i == 0:
            raise _bad_media(path, "it contains no decodable frame")
        if declared > i:
            raise _incomplete(path, f"the container lists {declared} frames", i)
        matroska = "matroska" in (container.format.name or "")
        if not declared and matroska and length and pts and tb is not None:
            starts = [float(t * tb) for t in pts]
            last_end = float(max(ends) * tb)
            steps = np.diff(sorted(starts))
            step = float(np.median(steps)) if len(steps) else 1.0 / float(rate or DEFAULT_FPS)
            if last_end - start < length - 1.5 * step:
                raise _incomplete(
                    path,
                    f"the container says it lasts {length:.2f} s, the frames end at "
                    f"{last_end - start:.2f} s",
                    i,
                )


def _decode_gif(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    from PIL import Image, ImageSequence

    try:
        im = Image.open(path)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
        raise _bad_media(path, f"not a readable GIF ({exc.__class__.__name__})") from None
    with im:
        durations = []
        i = 0
        try:
            for frame in ImageSequence.Iterator(im):
                durations.append(frame.info.get("duration", 0) or 0)
                yield np.asarray(frame.convert("L"))
                i += 1
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
            raise _incomplete(
                path, f"the GIF stops inside a frame ({exc.__class__.__name__})", i
            ) from None
        short = cut_short(path)
        if short:
            raise _incomplete(path, f"the file is cut short ({short})", i)
        good = [d for d in durations if d > 0]
        if good:
            rate = 1000.0 / float(np.mean(good))
            if FPS.accepts(rate):
                info.fps, info.fps_source = rate, "gif-duration"


def _read_image(path: Path) -> np.ndarray:
    """A still image or frame file as a 2-D array (uint8, or raw values if wider)."""
    try:
        return image_array(path)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds (SyntaxError, bombs)
        raise _bad_media(path, f"not a readable image ({exc.__class__.__name__})") from None


def _scaled(path: Path, arr: np.ndarray, low: float, high: float) -> np.ndarray:
    return arr if arr.dtype == np.uint8 else scale_to_uint8(arr, low, high)


def _range_of(path: Path, arr: np.ndarray, frame: int | None = None) -> tuple[float, float]:
    try:
        return value_range(arr)
    except ValueError as exc:
        raise _bad_media(path, str(exc), frame) from None


def folder_frames(path: Path) -> list[Path]:
    """The frame images of a frame folder, in natural order."""
    files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def folder_strays(path: Path) -> list[Path]:
    """Files in a frame folder that are not frames (hidden files and clutter excepted).

    A frame folder holds only its frames: a file the reader skips (a ``.webp`` frame, say)
    would silently renumber every later frame, so it is an error instead.
    """
    return sorted(
        (
            p
            for p in path.iterdir()
            if p.is_file()
            and p.suffix.lower() not in IMAGE_SUFFIXES
            and not p.name.startswith(".")
            and p.name.lower() not in FOLDER_CLUTTER
        ),
        key=lambda p: natural_key(p.name),
    )


def check_frame_folder(path: Path) -> None:
    """Refuse a frame folder holding files the reader would skip (see :func:`folder_strays`).

    Checked whenever a folder clip is opened, cached or not: the cache key covers only the
    frames, so a stray file added later must still be caught.
    """
    strays = folder_strays(path)
    if strays:
        names = ", ".join(p.name for p in strays[:5]) + (" ..." if len(strays) > 5 else "")
        raise UsbkitError(
            f"this frame folder holds {len(strays)} file(s) that are not PNG, JPEG, BMP or "
            f"TIFF frames ({names}); skipping them would renumber the frames after them",
            file=path,
            fix="Convert those frames to PNG, or move files that are not frames out of the folder",
        )


def _decode_folder(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    check_frame_folder(path)
    files = folder_frames(path)
    if not files:
        raise _bad_media(path, "the folder holds no PNG or JPEG frames")
    headers = []
    for i, f in enumerate(files):
        try:
            headers.append(image_header(f))
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on bad headers
            raise _bad_media(f, f"not a readable image ({exc.__class__.__name__})", i) from None
    (w0, h0), wide0 = headers[0]
    for i, (f, ((w, h), wide)) in enumerate(zip(files, headers)):
        if (w, h) != (w0, h0):
            raise UsbkitError(
                f"frame size {w}x{h} differs from the first frame's {w0}x{h0}",
                file=f,
                frame=i,
                fix="All frames of a clip must have the same size",
            )
        if wide != wide0:
            bits = "more than 8" if wide else "8"
            first = "more than 8" if wide0 else "8"
            raise UsbkitError(
                f"this frame has {bits} bits per pixel but the first frame ({files[0].name}) "
                f"has {first}",
                file=f,
                frame=i,
                fix="Save all frames of a clip with the same bit depth",
            )
    low = high = 0.0
    if wide0:  # the clip's range, so every frame is scaled alike
        lows, highs = [], []
        for i, f in enumerate(files):
            lo, hi = _range_of(f, _read_image(f), i)
            lows.append(lo)
            highs.append(hi)
        low, high = min(lows), max(highs)
    for f in files:
        yield _scaled(f, _read_image(f), low, high)


def _decode_image(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    arr = _read_image(path)
    if arr.dtype != np.uint8:
        lo, hi = _range_of(path, arr)
        arr = scale_to_uint8(arr, lo, hi)
    yield arr


#: DICOM timing tags in the order they are used, with their (group, element) numbers.
DICOM_TIMING = (
    ("FrameTime", "(0018,1063)"),
    ("FrameTimeVector", "(0018,1065)"),
    ("CineRate", "(0018,0040)"),
    ("RecommendedDisplayFrameRate", "(0008,2144)"),
)


#: DICOM value representations stored as text (read raw, so a bad value cannot raise).
_TEXT_VRS = {"DS", "IS", "CS", "LO", "SH", "LT", "ST", "UT", "AS", "DA", "TM", "DT", "UI"}


def _tag_text(ds, keyword: str) -> str | None:
    """A tag's value as text, or None if absent; text tags are read raw, so that a value
    that is not what its type promises ("fast-ish" as a number) cannot raise here."""
    from pydicom.datadict import dictionary_VR

    try:
        elem = ds.get_item(keyword)
        if elem is None:
            return None
        value = elem.value
        if isinstance(value, bytes):
            vr = getattr(elem, "VR", None) or dictionary_VR(elem.tag)
            if vr in _TEXT_VRS:
                value = value.decode("ascii", errors="replace")
            else:
                value = ds[keyword].value  # binary numbers: let pydicom convert them
    except Exception:  # noqa: BLE001 - a damaged element is as good as absent here
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    text = text.strip().strip("\x00").strip()
    return text or None


def dicom_fps(ds) -> tuple[float | None, str, str | None]:
    """Frame rate of a DICOM cine from its timing tags.

    The first timing tag present decides (FrameTime, FrameTimeVector, CineRate,
    RecommendedDisplayFrameRate). A tag that is present but not a usable number is named in
    the returned note and the next tag is tried.

    Returns
    -------
    fps : float or None
    source : str
        The tag used, or ``default``.
    note : str or None
        Plain words about unusable tags, if any.
    """
    notes = []
    for keyword, number in DICOM_TIMING:
        text = _tag_text(ds, keyword)
        if text is None:
            continue
        if keyword == "FrameTimeVector":
            vals = [to_number(v) for v in text.split("\\")][1:]
            ok = [v for v in vals if np.isfinite(v) and v > 0]
            fps = 1000.0 / float(np.mean(ok)) if ok and len(ok) == len(vals) else None
        elif keyword == "FrameTime":
            ms = to_number(text)
            fps = 1000.0 / ms if np.isfinite(ms) and ms > 0 else None
        else:
            fps = to_number(text)
        if fps is not None and FPS.accepts(fps):
            return fps, keyword, "; ".join(notes) or None
        shown = text if len(text) <= 40 else text[:40] + "..."
        notes.append(f"DICOM tag {keyword} {number} is '{shown}', not a usable frame timing")
    return None, "default", "; ".join(notes) or None


def _dicom_gray(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return to_gray(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        return arr[..., 0]
    return arr


def _decode_dicom(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import iter_pixels

    try:
        # One header read: large elements (the pixel data) are deferred, not loaded.
        with pydicom.dcmread(path, defer_size="1 KB") as ds:
            has_pixels = "PixelData" in ds or "FloatPixelData" in ds
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise _bad_media(path, f"not a readable DICOM file ({exc.__class__.__name__})") from None
    if not has_pixels or "Rows" not in ds or "Columns" not in ds:
        raise _bad_media(
            path, "the DICOM file has no image (its pixel data or image module is missing)"
        )
    info.fps, info.fps_source, info.fps_note = dicom_fps(ds)
    bits = to_number(_tag_text(ds, "BitsStored") or "8")
    bits = int(bits) if np.isfinite(bits) and 1 <= bits <= 32 else 8
    declared = to_number(_tag_text(ds, "NumberOfFrames") or "1")
    declared = int(declared) if FRAME.accepts(declared) else 0
    info.frames_hint = declared
    photometric = _tag_text(ds, "PhotometricInterpretation") or "MONOCHROME2"

    def frames() -> Iterator[np.ndarray]:
        i = 0
        try:
            for arr in iter_pixels(path, as_rgb=True):
                yield _dicom_gray(arr)
                i += 1
        except UsbkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
            raise _incomplete(
                path, f"its pixel data could not be decoded ({exc.__class__.__name__})", i
            ) from None
        if 0 < i < declared:
            raise _incomplete(path, f"NumberOfFrames is {declared}", i)

    low = high = 0.0
    if bits > 8:  # the clip's range, so every frame is scaled alike
        lows, highs = [], []
        for i, arr in enumerate(frames()):
            lo, hi = _range_of(path, arr, i)
            lows.append(lo)
            highs.append(hi)
        low, high = min(lows), max(highs)
    for arr in frames():
        if bits > 8:
            arr = scale_to_uint8(arr, low, high)
        elif arr.dtype != np.uint8:
            arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        if photometric == "MONOCHROME1":
            arr = 255 - arr
        yield arr


DECODERS = {
    "video": _decode_video,
    "gif": _decode_gif,
    "folder": _decode_folder,
    "image": _decode_image,
    "dicom": _decode_dicom,
}


def iter_frames(path: str | Path, info: Decoded | None = None) -> Iterator[np.ndarray]:
    """Decode a clip frame by frame as grayscale uint8 arrays (no cache, no crop).

    Parameters
    ----------
    path : str or Path
        The media file or frame folder.
    info : Decoded, optional
        Filled with the frame rate found in the file while decoding.

    Raises
    ------
    UsbkitError
        When the media is missing, unreadable, cut short or changes frame size.
    """
    path = Path(path)
    require_media(path)
    if path.is_file() and path.stat().st_size == 0:
        raise _bad_media(path, "the file is empty (0 bytes)")
    info = info if info is not None else Decoded()
    shape = None
    try:
        for i, frame in enumerate(DECODERS[media_kind(path)](path, info)):
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if frame.ndim != 2:
                raise _bad_media(path, f"frame {i} is not a 2-D picture", i)
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise _bad_media(path, "the frame size changes inside the clip", i)
            yield frame
    except OSError as exc:  # the media itself could not be read (permissions, I/O error)
        raise UsbkitError(
            f"this clip's media could not be read ({exc.strerror or exc})",
            file=path,
            fix="Check the file's permissions and the disk it is on",
        ) from None
