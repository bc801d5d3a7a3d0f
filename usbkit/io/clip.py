"""Clips with fast random access: decoded once, cached on disk, memory-mapped after that.

The cache holds only pixels and geometry (never DICOM tags). Its key is a hash of the file's
bytes (every frame file, for a frame folder) together with the reader settings and the
reader version, so editing the file or changing the settings decodes it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usbkit.io.crop import detect_bmode_region
from usbkit.io.decode import (
    DEFAULT_FPS,
    Decoded,
    folder_frames,
    iter_frames,
    media_kind,
    require_media,
)

READER_VERSION = 1
_HASH_MEMO: dict[tuple, str] = {}


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


def default_cache_dir() -> Path:
    """The frame cache folder (``$USBKIT_CACHE`` or ``~/.cache/usbkit/frames``)."""
    env = os.environ.get("USBKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "usbkit" / "frames"


def content_hash(path: Path) -> str:
    """BLAKE2 hash of a file's bytes (of every frame file, for a frame folder)."""
    files = folder_frames(path) if path.is_dir() else [path]
    stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if stats in _HASH_MEMO:
        return _HASH_MEMO[stats]
    h = hashlib.blake2b(digest_size=16)
    for f in files:
        h.update(f.name.encode() if path.is_dir() else b"")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    digest = h.hexdigest()
    _HASH_MEMO[stats] = digest
    return digest


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
    """

    path: Path
    frames: np.ndarray
    fps: float
    crop_box: tuple[int, int, int, int]
    original_size: tuple[int, int]
    fps_source: str = "default"
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def read(self, indices) -> np.ndarray:
        """A copy of the (cropped) frames at ``indices``.

        For a cached clip the cache file is mapped only for the duration of the read, so a
        long training run over many clips does not keep every page it has touched resident.
        """
        entry = self.meta.get("cache_file")
        if entry is None:
            return np.array(self.frames[indices])
        n, h, w = self.meta["n_frames"], self.meta["height"], self.meta["width"]
        mm = np.memmap(entry, dtype=np.uint8, mode="r", shape=(n, h, w))
        x0, y0, x1, y1 = self.crop_box
        out = np.array(mm[indices, y0:y1, x0:x1])
        del mm
        return out

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


def _decode_to_file(path: Path, dest: Path) -> dict:
    """Decode every frame of ``path`` into the raw file ``dest``; return geometry and fps."""
    info = Decoded()
    n = 0
    shape = None
    with open(dest, "wb") as fh:
        for frame in iter_frames(path, info):
            shape = frame.shape
            fh.write(frame.tobytes())
            n += 1
    return {
        "n_frames": n,
        "height": int(shape[0]),
        "width": int(shape[1]),
        "fps": info.fps,
        "fps_source": info.fps_source,
        "kind": media_kind(path),
    }


def _cache_entry(path: Path, settings: ReaderSettings) -> Path:
    root = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    key = hashlib.blake2b(
        json.dumps(
            {"content": content_hash(path), "reader": READER_VERSION, "gray": "bt601"},
            sort_keys=True,
        ).encode(),
        digest_size=16,
    ).hexdigest()
    return root / key[:2] / key


def _load_or_decode(path: Path, settings: ReaderSettings) -> tuple[np.ndarray, dict]:
    if not settings.cache:
        info = Decoded()
        frames = np.stack(list(iter_frames(path, info)))
        meta = {
            "n_frames": len(frames),
            "height": frames.shape[1],
            "width": frames.shape[2],
            "fps": info.fps,
            "fps_source": info.fps_source,
            "kind": media_kind(path),
        }
        return frames, meta
    entry = _cache_entry(path, settings)
    meta_file = entry / "meta.json"
    if not meta_file.exists():
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
        try:
            meta = _decode_to_file(path, tmp / "frames.u8")
            (tmp / "meta.json").write_text(json.dumps(meta))
            try:
                os.replace(tmp, entry)
            except OSError:  # another process filled it first
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    meta = json.loads(meta_file.read_text())
    shape = (meta["n_frames"], meta["height"], meta["width"])
    frames = np.memmap(entry / "frames.u8", dtype=np.uint8, mode="r", shape=shape)
    meta["_entry"] = str(entry)
    return frames, meta


def open_clip(
    path: str | Path,
    settings: ReaderSettings | None = None,
    *,
    fps: float | None = None,
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
    frames, meta = _load_or_decode(path, settings)
    h, w = int(meta["height"]), int(meta["width"])
    box = (0, 0, w, h)
    if settings.crop:
        if "crop" not in meta:
            box = detect_bmode_region(np.asarray(frames[_sample_indices(len(frames))]))
            if "_entry" in meta:
                stored = {k: v for k, v in meta.items() if not k.startswith("_")}
                stored["crop"] = list(box)
                tmp = Path(meta["_entry"]) / ".meta.json.tmp"
                tmp.write_text(json.dumps(stored))
                os.replace(tmp, Path(meta["_entry"]) / "meta.json")
        else:
            box = tuple(meta["crop"])
    x0, y0, x1, y1 = box
    view = frames[:, y0:y1, x0:x1] if box != (0, 0, w, h) else frames
    src = meta.get("fps_source", "default")
    rate = meta.get("fps")
    if fps is not None:
        rate, src = float(fps), "manifest"
    elif rate is None:
        rate, src = DEFAULT_FPS, "default"
    return Clip(
        path=path,
        frames=view,
        fps=float(rate),
        crop_box=tuple(int(v) for v in box),
        original_size=(h, w),
        fps_source=src,
        meta={
            **{k: v for k, v in meta.items() if not k.startswith("_")},
            **({"cache_file": str(Path(meta["_entry"]) / "frames.u8")} if "_entry" in meta else {}),
        },
    )
