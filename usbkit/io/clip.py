"""Clips with fast random access: decoded once, cached on disk, memory-mapped after that.

The cache (:mod:`usbkit.io.cache`) holds only pixels and geometry (never DICOM tags); it is
verified before use, rebuilt when damaged, and skipped (with a warning) when its folder
cannot be written. This module adds the B-mode crop and the frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.io.cache import (
    READER_VERSION,
    content_hash,
    decode_in_memory,
    default_cache_dir,
    load_frames,
    reconcile,
    store_crop,
)
from usbkit.io.crop import CROP_RULE, detect_bmode_region
from usbkit.io.decode import DEFAULT_FPS, check_frame_folder, require_media
from usbkit.io.notices import warn

__all__ = [
    "READER_VERSION",
    "Clip",
    "ReaderSettings",
    "clamp_boxes",
    "content_hash",
    "default_cache_dir",
    "open_clip",
]


@dataclass(frozen=True)
class ReaderSettings:
    """How a clip is read.

    Attributes
    ----------
    crop : bool
        Detect the B-mode region and hand on only that part of each frame.
    cache : bool
        Keep decoded frames in the on-disk cache (memory-mapped on later opens).
    cache_dir : str, optional
        Cache location; default ``$USBKIT_CACHE`` or ``~/.cache/usbkit``.
    """

    crop: bool = True
    cache: bool = True
    cache_dir: str | None = None


@dataclass
class Clip:
    """A decoded clip.

    Attributes
    ----------
    path : Path
        The media it came from.
    frames : ndarray, shape (n, h, w), uint8
        Frames cropped to the B-mode region (memory-mapped when cached).
    fps : float
        Frame rate (from the file, the manifest, or 30 when neither gives one).
    crop_box : tuple of int
        ``(x0, y0, x1, y1)`` of the crop in original-frame pixels.
    original_size : tuple of int
        ``(height, width)`` of the original frames.
    fps_source : str
        Where the frame rate came from.
    meta : dict
        Frame count, size and rate as decoded; ``cache_file`` when memory-mapped;
        ``decoded_now`` when the media was decoded by this open (not read from the cache).
    settings : ReaderSettings, optional
        The settings the clip was opened with.
    """

    path: Path
    frames: np.ndarray
    fps: float
    crop_box: tuple[int, int, int, int]
    original_size: tuple[int, int]
    fps_source: str = "default"
    meta: dict = field(default_factory=dict)
    settings: ReaderSettings | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def read(self, indices, retry: bool = True) -> np.ndarray:
        """A copy of the (cropped) frames at ``indices``.

        For a cached clip the cache file is mapped only for the duration of the read, so a
        long training run over many clips does not keep every page it has touched resident.
        A cache file that was deleted or changed since the clip was opened is rebuilt from
        the media (with a warning), never reported as an error of the caller's output.
        """
        entry = self.meta.get("cache_file")
        if entry is None:
            return np.array(self.frames[indices])
        n, h, w = self.meta["n_frames"], self.meta["height"], self.meta["width"]
        try:
            if Path(entry).stat().st_size != n * h * w:
                raise ValueError("size changed")
            mm = np.memmap(entry, dtype=np.uint8, mode="r", shape=(n, h, w))
        except (OSError, ValueError):
            if not retry:
                raise UsbkitError(
                    "the frame cache of this clip keeps changing while it is read",
                    file=self.path,
                    fix="Make sure no other program edits the cache folder, and run again",
                ) from None
            self._reload()
            return self.read(indices, retry=False)
        x0, y0, x1, y1 = self.crop_box
        out = np.array(mm[indices, y0:y1, x0:x1])
        del mm
        return out

    def _reload(self) -> None:
        """Open the media again after its cache file went missing (rebuilt, or in memory).

        The cache says why when it rebuilds a damaged entry; nothing is blamed on the caller.
        """
        settings = self.settings or ReaderSettings()
        fresh = open_clip(
            self.path,
            ReaderSettings(crop=False, cache=settings.cache, cache_dir=settings.cache_dir),
        )
        if fresh.original_size != self.original_size:
            raise UsbkitError(
                "this clip's media changed while it was in use (its frame size is different)",
                file=self.path,
                fix="Run the command again",
            )
        x0, y0, x1, y1 = self.crop_box
        self.frames = fresh.frames[:, y0:y1, x0:x1]
        self.meta = {**fresh.meta}

    def __getitem__(self, i):
        return self.frames[i]

    def __iter__(self):
        for i in range(len(self)):
            yield np.asarray(self.frames[i])

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self)

    @property
    def height(self) -> int:
        """Height of the (cropped) frames in pixels."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Width of the (cropped) frames in pixels."""
        return int(self.frames.shape[2])

    @property
    def offset(self) -> np.ndarray:
        """``[x0, y0, x0, y0]`` to add to crop coordinates to get original coordinates."""
        x0, y0 = self.crop_box[:2]
        return np.array([x0, y0, x0, y0], dtype=float)

    def to_crop(self, boxes) -> np.ndarray:
        """Boxes in original-frame pixels -> boxes in cropped-frame pixels."""
        return np.asarray(boxes, dtype=float).reshape(-1, 4) - self.offset

    def to_original(self, boxes) -> np.ndarray:
        """Boxes in cropped-frame pixels -> boxes in original-frame pixels."""
        return np.asarray(boxes, dtype=float).reshape(-1, 4) + self.offset


def clamp_boxes(boxes, width: float, height: float) -> np.ndarray:
    """Clip boxes ``(n, 4)`` to a ``width`` x ``height`` frame (a copy, as floats).

    Examples
    --------
    >>> clamp_boxes([[-5, 2, 30, 50]], width=20, height=40).tolist()
    [[0.0, 2.0, 20.0, 40.0]]
    """
    b = np.array(boxes, dtype=float).reshape(-1, 4)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b


def _sample_indices(n: int, k: int = 16) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def open_clip(
    path: str | Path,
    settings: ReaderSettings | None = None,
    *,
    fps: float | None = None,
    verify: bool = False,
) -> Clip:
    """Open a clip of any supported format.

    Parameters
    ----------
    path : str or Path
        Media file or frame folder.
    settings : ReaderSettings, optional
        Crop and cache options (default: crop to the B-mode region, use the cache).
    fps : float, optional
        Frame rate to use instead of the file's (the manifest's ``fps`` column).
    verify : bool
        Decode the media again and compare it with a cached entry before use (what
        ``usbkit check`` does before it holds a frame count or size against annotations).

    Returns
    -------
    Clip

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from usbkit.io.encode import write_video
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "clip.mp4"
    >>> frames = np.random.default_rng(0).integers(0, 255, (5, 48, 64), dtype=np.uint8)
    >>> _ = write_video(frames, path, fps=20)
    >>> clip = open_clip(path, ReaderSettings(crop=False))
    >>> clip.n_frames, clip.fps, clip[0].shape, clip[0].dtype
    (5, 20.0, (48, 64), dtype('uint8'))
    >>> clip.to_original([[0, 0, 10, 10]]).tolist()  # crop pixels -> original pixels
    [[0.0, 0.0, 10.0, 10.0]]
    """
    settings = settings or ReaderSettings()
    path = Path(path)
    require_media(path)
    if path.is_dir():
        check_frame_folder(path)
    if settings.cache:
        frames, meta = load_frames(path, Path(settings.cache_dir) if settings.cache_dir else None)
        if verify and not meta.get("_fresh"):
            frames, meta = reconcile(path, meta)
    else:
        frames, meta = decode_in_memory(path)
    h, w = int(meta["height"]), int(meta["width"])
    box = (0, 0, w, h)
    if settings.crop:
        if "crop" not in meta or meta.get("crop_rule") != CROP_RULE:
            box = detect_bmode_region(np.asarray(frames[_sample_indices(len(frames))]))
            store_crop(meta, box, CROP_RULE)
        else:
            box = tuple(meta["crop"])
    x0, y0, x1, y1 = box
    view = frames[:, y0:y1, x0:x1] if box != (0, 0, w, h) else frames
    src = meta.get("fps_source", "default")
    rate = meta.get("fps")
    if fps is not None:
        rate, src = float(fps), "manifest"
    else:
        if meta.get("fps_note"):
            warn(
                f"{meta['fps_note']}; the frame rate is taken from "
                + (f"{src} instead" if rate is not None else f"the default, {DEFAULT_FPS:g} fps"),
                file=path,
                fix="Correct the tag, or give the clip's frame rate in the manifest's fps column",
                once=("fps-note", str(path)),
            )
        if rate is None:
            rate, src = DEFAULT_FPS, "default"
    entry = meta.get("_entry")
    return Clip(
        path=path,
        frames=view,
        fps=float(rate),
        crop_box=tuple(int(v) for v in box),
        original_size=(h, w),
        fps_source=src,
        meta={
            **{k: v for k, v in meta.items() if not k.startswith("_")},
            **({"cache_file": str(Path(entry) / "frames.u8")} if entry else {}),
            "decoded_now": bool(meta.get("_fresh")) or not settings.cache,
        },
        settings=settings,
    )
