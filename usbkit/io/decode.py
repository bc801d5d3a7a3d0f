"""One reader for every clip format of docs/study-format.md.

``open_clip(path)`` returns a :class:`Clip`: grayscale uint8 frames (memory-mapped from
the on-disk cache after the first pass), the frame rate, and the crop of the B-mode region.

Formats: MP4 / AVI / MOV / MKV / WebM (any codec FFmpeg decodes, through PyAV; frame ``i``
is the ``i``-th decoded frame, which is right for variable frame rate), animated GIF, a folder
of PNG/JPEG frames (natural sort order), DICOM cine through pydicom (uncompressed, JPEG
baseline through pylibjpeg; RGB, YBR and MONOCHROME2; frame time from the DICOM tags) and a
single still image (a one-frame clip).

DICOM patient tags never leave this module: only pixels, the frame rate and the frame size
are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usbkit.errors import UsbkitError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
DEFAULT_FPS = 30.0


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


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB array (last axis 3), as uint8 (same as Pillow's 'L')."""
    rgb = rgb.astype(np.uint32)
    y = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000
    return y.astype(np.uint8)


@dataclass
class Decoded:
    """What a decoder yields besides frames: filled in as decoding proceeds."""

    fps: float | None = None
    fps_source: str = "default"


def require_media(path: Path) -> None:
    """Raise the user-facing error for a clip whose media file is missing."""
    if not path.exists():
        raise UsbkitError(
            "this clip's media file is missing",
            file=path,
            fix="Check the 'path' column of manifest.csv (paths are relative to the study folder)",
        )


def _bad_media(path: Path, what: str, frame: int | None = None) -> UsbkitError:
    return UsbkitError(
        f"cannot read this clip: {what}",
        file=path,
        frame=frame,
        fix="Check that the file is complete (not cut short while copying) and in a supported "
        "format (MP4/AVI/MOV/MKV video, GIF, DICOM cine, PNG/JPEG frames)",
    )


def _decode_video(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise _bad_media(path, f"FFmpeg could not open it ({exc.__class__.__name__})") from None
    with container:
        if not container.streams.video:
            raise _bad_media(path, "it has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if rate:
            info.fps, info.fps_source = float(rate), "container"
        i = 0
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="gray")
                i += 1
        except av.error.FFmpegError as exc:
            if i == 0:
                raise _bad_media(
                    path, f"no frame could be decoded ({exc.__class__.__name__})"
                ) from None
            raise _bad_media(
                path,
                f"decoding stopped with an error after {i} frames; the file looks truncated",
                i,
            ) from None
        if i == 0:
            raise _bad_media(path, "it contains no decodable frame")


def _decode_gif(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        im = Image.open(path)
    except (OSError, UnidentifiedImageError) as exc:
        raise _bad_media(path, f"not a readable GIF ({exc})") from None
    with im:
        durations = []
        i = 0
        try:
            for frame in ImageSequence.Iterator(im):
                durations.append(frame.info.get("duration", 0) or 0)
                yield np.asarray(frame.convert("L"))
                i += 1
        except (OSError, EOFError) as exc:
            raise _bad_media(
                path, f"GIF truncated or damaged after {i} frames ({exc})", i
            ) from None
        good = [d for d in durations if d > 0]
        if good:
            info.fps, info.fps_source = 1000.0 / float(np.mean(good)), "gif-duration"


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise _bad_media(path, f"not a readable image ({exc.__class__.__name__})") from None


def folder_frames(path: Path) -> list[Path]:
    """The frame images of a frame folder, in natural order."""
    files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def _decode_folder(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    files = folder_frames(path)
    if not files:
        raise _bad_media(path, "the folder holds no PNG or JPEG frames")
    shape = None
    for i, f in enumerate(files):
        img = _read_image(f)
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise UsbkitError(
                f"frame size {img.shape[1]}x{img.shape[0]} differs from the first frame's "
                f"{shape[1]}x{shape[0]}",
                file=f,
                frame=i,
                fix="All frames of a clip must have the same size",
            )
        yield img


def _decode_image(path: Path, info: Decoded) -> Iterator[np.ndarray]:
    yield _read_image(path)


def dicom_fps(ds) -> tuple[float | None, str]:
    """Frame rate of a DICOM cine from its timing tags (FrameTime, vector, CineRate, ...)."""
    ft = ds.get("FrameTime")
    if ft not in (None, "") and float(ft) > 0:
        return 1000.0 / float(ft), "FrameTime"
    ftv = ds.get("FrameTimeVector")
    if ftv not in (None, ""):
        vals = [float(v) for v in ftv][1:]
        vals = [v for v in vals if v > 0]
        if vals:
            return 1000.0 / float(np.mean(vals)), "FrameTimeVector"
    for tag in ("CineRate", "RecommendedDisplayFrameRate"):
        v = ds.get(tag)
        if v not in (None, "") and float(v) > 0:
            return float(v), tag
    return None, "default"


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
    info.fps, info.fps_source = dicom_fps(ds)
    bits = int(ds.get("BitsStored", 8) or 8)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    i = 0
    try:
        for arr in iter_pixels(path, as_rgb=True):
            if arr.ndim == 3 and arr.shape[-1] == 3:
                arr = to_gray(arr)
            elif arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.dtype != np.uint8:
                arr = arr.astype(np.float64)
                if bits > 8:
                    arr = arr / float(2 ** (bits - 8))
                arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
            if photometric == "MONOCHROME1":
                arr = 255 - arr
            yield arr
            i += 1
    except UsbkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
        raise _bad_media(
            path, f"its pixel data could not be decoded ({exc.__class__.__name__})", i
        ) from None


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
    """
    path = Path(path)
    require_media(path)
    if path.is_file() and path.stat().st_size == 0:
        raise _bad_media(path, "the file is empty (0 bytes)")
    info = info if info is not None else Decoded()
    shape = None
    for i, frame in enumerate(DECODERS[media_kind(path)](path, info)):
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise _bad_media(path, "the frame size changes inside the clip", i)
        yield frame
