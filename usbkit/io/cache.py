"""The on-disk frame cache: decode a clip once, memory-map it afterwards, heal what breaks.

An entry is a folder ``<root>/<key[:2]>/<key>`` holding ``frames.u8`` (every frame, raw
uint8, ``n * height * width`` bytes) and ``meta.json`` (geometry, frame rate, crop with the
version of the crop rule that found it, and a CRC-32 of ``frames.u8``). The key is a hash of
the media's bytes, the reader version and the gray conversion, so an edited file is decoded
again.

Rules:

* An entry is verified before use: ``meta.json`` is valid JSON with the expected keys and
  types, it names its own key and reader version, ``frames.u8`` has exactly
  ``n * height * width`` bytes, and its CRC-32 matches (checked once per process). A
  damaged, truncated, garbage or missing part is rebuilt from the media, with a warning.
* The cache is a convenience, never a reason to fail: when its folder is unusable (a file,
  read-only, a full disk), clips are decoded into memory instead, with one warning saying
  so and how to fix it.
* Only pixels, geometry and the frame rate are stored: DICOM patient tags never are.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from usbkit.errors import UsbkitError
from usbkit.io.decode import Decoded, folder_frames, iter_frames, media_kind
from usbkit.io.notices import warn
from usbkit.io.values import FPS

#: Bump when decoded pixels or the entry's layout change (old entries are then unused).
READER_VERSION = 2
KINDS = ("video", "gif", "folder", "image", "dicom")
#: Largest frame side accepted in an entry's metadata.
MAX_SIDE = 100_000
_HASH_MEMO: dict[tuple, str] = {}
_CRC_OK: dict[str, tuple] = {}


class CacheUnusable(Exception):
    """The cache folder cannot be written (read-only, full, not a folder)."""

    def __init__(self, root: Path, error: OSError):
        self.root = root
        self.error = error
        super().__init__(str(error))

    def reason(self) -> str:
        """The cause in plain words."""
        code = self.error.errno
        if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return "the disk holding it is full"
        if code in (errno.EACCES, errno.EPERM, errno.EROFS):
            return "it is read-only"
        if code in (errno.ENOTDIR, errno.EEXIST):
            return "it is a file, not a folder"
        return self.error.strerror or str(self.error)


class Damaged(Exception):
    """A cache entry exists but cannot be trusted; the message says why."""


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


def entry_for(path: Path, root: Path) -> Path:
    """The cache entry folder of the media at ``path``."""
    key = hashlib.blake2b(
        json.dumps(
            {"content": content_hash(path), "reader": READER_VERSION, "gray": "bt601"},
            sort_keys=True,
        ).encode(),
        digest_size=16,
    ).hexdigest()
    return root / key[:2] / key


def _is_int(v, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _check_meta(meta, entry: Path) -> str | None:
    """Why a parsed ``meta.json`` is not a valid entry description, or None."""
    if not isinstance(meta, dict):
        return "meta.json does not hold an object"
    if meta.get("reader") != READER_VERSION or meta.get("key") != entry.name:
        return "meta.json belongs to another entry or reader version"
    if not _is_int(meta.get("n_frames"), 1, 10**9):
        return "meta.json has no valid frame count"
    if not (_is_int(meta.get("height"), 1, MAX_SIDE) and _is_int(meta.get("width"), 1, MAX_SIDE)):
        return "meta.json has no valid frame size"
    fps = meta.get("fps")
    if fps is not None and not (
        isinstance(fps, (int, float)) and not isinstance(fps, bool) and FPS.accepts(float(fps))
    ):
        return "meta.json has an invalid frame rate"
    if not isinstance(meta.get("fps_source"), str) or meta.get("kind") not in KINDS:
        return "meta.json has invalid fields"
    if meta.get("fps_note") is not None and not isinstance(meta.get("fps_note"), str):
        return "meta.json has invalid fields"
    if not _is_int(meta.get("frames_crc32"), 0, 2**32 - 1):
        return "meta.json has no checksum"
    crop = meta.get("crop")
    if crop is not None:
        w, h = meta["width"], meta["height"]
        if not (
            isinstance(crop, list)
            and len(crop) == 4
            and all(_is_int(v, 0, MAX_SIDE) for v in crop)
            and crop[0] < crop[2] <= w
            and crop[1] < crop[3] <= h
        ):
            return "meta.json has an invalid crop"
    return None


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def read_entry(entry: Path) -> dict | None:
    """The verified metadata of a cache entry; None when there is no entry.

    Raises
    ------
    Damaged
        When the entry exists but any part of it is missing, malformed or inconsistent.
    """
    meta_file, frames_file = entry / "meta.json", entry / "frames.u8"
    try:
        if not entry.is_dir():
            if os.path.lexists(entry):
                raise Damaged("the entry is a file, not a folder")
            return None
        text = meta_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Damaged("meta.json is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, NotADirectoryError):
            return None
        raise Damaged(f"meta.json cannot be read ({exc.__class__.__name__})") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise Damaged("meta.json is not valid JSON") from None
    problem = _check_meta(meta, entry)
    if problem:
        raise Damaged(problem)
    expected = meta["n_frames"] * meta["height"] * meta["width"]
    try:
        st = frames_file.stat()
    except OSError:
        raise Damaged("frames.u8 is missing") from None
    if st.st_size != expected:
        raise Damaged(f"frames.u8 has {st.st_size:,} bytes instead of {expected:,}")
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns, meta["frames_crc32"])
    if _CRC_OK.get(str(frames_file)) != stamp:
        try:
            crc = _crc32(frames_file)
        except OSError as exc:
            raise Damaged(f"frames.u8 cannot be read ({exc.__class__.__name__})") from None
        if crc != meta["frames_crc32"]:
            raise Damaged("frames.u8 does not match its checksum")
        _CRC_OK[str(frames_file)] = stamp
    return meta


def _discard(entry: Path) -> None:
    """Move a damaged entry out of the way and delete it (best effort)."""
    try:
        aside = Path(tempfile.mkdtemp(prefix=".damaged-", dir=entry.parent))
        os.replace(entry, aside / "entry")
        shutil.rmtree(aside, ignore_errors=True)
    except OSError:
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        except OSError:
            pass


def _write_entry(entry: Path, frames: Iterable[np.ndarray], info: Decoded, kind: str) -> dict:
    """Write frames into a new entry (built aside, then renamed into place).

    Raises
    ------
    CacheUnusable
        When the cache folder cannot be written.
    UsbkitError
        From the decoder, when the media cannot be read (nothing is left behind).
    """
    root = entry.parent.parent
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    except OSError as exc:
        raise CacheUnusable(root, exc) from None
    try:
        n, shape, crc = 0, None, 0
        with open(tmp / "frames.u8", "wb") as fh:
            for frame in frames:  # C-contiguous uint8 (iter_frames): written as they are
                data = memoryview(frame).cast("B")
                fh.write(data)
                crc = zlib.crc32(data, crc)
                shape = frame.shape
                n += 1
        meta = {
            "reader": READER_VERSION,
            "key": entry.name,
            "n_frames": n,
            "height": int(shape[0]),
            "width": int(shape[1]),
            "fps": info.fps,
            "fps_source": info.fps_source,
            "fps_note": info.fps_note,
            "kind": kind,
            "frames_crc32": crc,
        }
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        _install(tmp, entry)
        return meta
    except OSError as exc:
        raise CacheUnusable(root, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, entry: Path) -> None:
    """Rename the built entry ``tmp`` into place (keeping a sound one already there)."""
    try:
        os.replace(tmp, entry)
        return
    except OSError:
        if not os.path.lexists(entry):
            raise
    try:  # another process filled it first: keep theirs if it is sound
        if read_entry(entry) is not None:
            return
    except Damaged:
        pass
    _discard(entry)
    os.replace(tmp, entry)


def _memmap(entry: Path, meta: dict) -> np.ndarray:
    shape = (meta["n_frames"], meta["height"], meta["width"])
    return np.memmap(entry / "frames.u8", dtype=np.uint8, mode="r", shape=shape)


#: The most memory a clip's frame count, as its header gives it, may reserve before decoding
#: (a damaged or forged header must not ask for more than the machine has).
PREALLOCATE_BYTES = 1 << 30


class FrameStore:
    """The frames of one clip gathered into one array as they are decoded.

    The array is sized once, when the first frame comes, from the frame count the file gives
    (:attr:`Decoded.frames_hint`, capped at ``max_bytes`` so that a damaged or forged header
    cannot reserve more memory than that). Decoders that compute their frames write them
    straight into it (:meth:`slot`, handed to them as :attr:`Decoded.slot`), so a frame is not
    copied again; other frames are copied in. Frames beyond the count, or when the file gives
    none, are kept aside and joined at the end: decoding decides, not the header.

    Examples
    --------
    >>> info = Decoded(frames_hint=2)
    >>> store = FrameStore(info)
    >>> for k in range(3):
    ...     out = store.slot((2, 3))
    ...     out[...] = k
    ...     store.add(out)
    >>> store.array()[:, 0, 0].tolist()
    [0, 1, 2]
    """

    def __init__(self, info: Decoded, max_bytes: int = PREALLOCATE_BYTES):
        self.info, self.max_bytes = info, max_bytes
        self.buf: np.ndarray | None = None
        self.extra: list[np.ndarray] = []
        self.n = 0

    def _reserve(self, shape: tuple[int, ...]) -> None:
        if self.buf is None:
            frame_bytes = max(int(np.prod(shape)), 1)
            cap = min(self.info.frames_hint, self.max_bytes // frame_bytes)
            self.buf = np.empty((max(cap, 0), *shape), np.uint8)

    def slot(self, shape: tuple[int, int]) -> np.ndarray:
        """The array the next frame may be written into (its place in the clip buffer)."""
        self._reserve(tuple(shape))
        if self.n < len(self.buf) and self.buf.shape[1:] == tuple(shape):
            return self.buf[self.n]
        return np.empty(shape, np.uint8)

    def add(self, frame: np.ndarray) -> None:
        """Keep the next frame (no copy when it was written into its :meth:`slot`)."""
        self._reserve(frame.shape)
        if self.n < len(self.buf) and self.buf.shape[1:] == frame.shape:
            place = self.buf[self.n]
            if place.ctypes.data != frame.ctypes.data or place.strides != frame.strides:
                place[...] = frame
        else:
            self.extra.append(frame)
        self.n += 1

    def array(self) -> np.ndarray:
        """All frames kept, shape (n, height, width)."""
        if self.buf is None:
            raise ValueError("no frame was kept")
        if not len(self.buf):
            return np.stack(self.extra)
        if self.extra:
            return np.concatenate([self.buf[: self.n - len(self.extra)], np.stack(self.extra)])
        return self.buf if self.n == len(self.buf) else self.buf[: self.n].copy()


def decode_in_memory(path: Path) -> tuple[np.ndarray, dict]:
    """Decode every frame of ``path`` into memory (no cache); return frames and metadata."""
    info = Decoded()
    store = FrameStore(info)
    info.slot = store.slot
    for frame in iter_frames(path, info):
        store.add(frame)
    if store.n == 0:  # the decoders raise for a clip without frames; kept as a guard
        raise UsbkitError("no frame could be decoded from this clip", file=path)
    frames = store.array()
    meta = {
        "n_frames": int(len(frames)),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
        "fps": info.fps,
        "fps_source": info.fps_source,
        "fps_note": info.fps_note,
        "kind": media_kind(path),
    }
    return frames, meta


def _unusable(path: Path, exc: CacheUnusable) -> None:
    warn(
        f"the frame cache folder {exc.root} cannot be used ({exc.reason()}), so clips are "
        "decoded without caching: slower, but the results are the same",
        fix="Free some disk space, or set USBKIT_CACHE to a folder you can write to "
        "(or unset it to use ~/.cache/usbkit/frames)",
        once=("cache-unusable", str(exc.root)),
    )


def load_frames(path: Path, root: Path | None = None) -> tuple[np.ndarray, dict]:
    """The frames and metadata of a clip, from the cache (decoding it first if needed).

    Parameters
    ----------
    path : Path
        The media file or frame folder.
    root : Path, optional
        Cache folder (default :func:`default_cache_dir`).

    Returns
    -------
    frames : ndarray, shape (n, h, w), uint8
        Memory-mapped from the cache, or in memory when the cache cannot be used.
    meta : dict
        ``n_frames``, ``height``, ``width``, ``fps``, ``fps_source``, ``fps_note``,
        ``kind``, optional ``crop``; ``_entry`` (the entry folder) when cached, ``_fresh``
        when decoded by this call.
    """
    root = Path(root) if root else default_cache_dir()
    entry = entry_for(path, root)
    try:
        meta = read_entry(entry)
    except Damaged as why:
        warn(
            f"the frame cache entry of this clip was damaged ({why}); it is rebuilt from the clip",
            file=path,
            once=("damaged", str(entry), str(why)),
        )
        _discard(entry)
        meta = None
    if meta is not None:
        return _memmap(entry, meta), {**meta, "_entry": str(entry)}
    info = Decoded()
    try:
        meta = _write_entry(entry, iter_frames(path, info), info, media_kind(path))
    except CacheUnusable as exc:
        _unusable(path, exc)
        frames, meta = decode_in_memory(path)
        return frames, {**meta, "_fresh": True}
    return _memmap(entry, meta), {**meta, "_entry": str(entry), "_fresh": True}


def reconcile(path: Path, meta: dict) -> tuple[np.ndarray, dict]:
    """Decode ``path`` again and compare with a cached entry's geometry before trusting it.

    Used before the cache's frame count or frame size is held against the user's
    annotations: an entry that disagrees with the media (edited or forged) is replaced, with
    a warning, and the media's own frames are returned.
    """
    frames, fresh = decode_in_memory(path)
    old = (meta.get("n_frames"), meta.get("height"), meta.get("width"))
    new = (fresh["n_frames"], fresh["height"], fresh["width"])
    entry = Path(meta["_entry"]) if meta.get("_entry") else None
    if old != new and entry is not None:
        warn(
            f"the frame cache entry of this clip did not match the clip ({old[0]} frames of "
            f"{old[2]} x {old[1]} cached, {new[0]} frames of {new[2]} x {new[1]} in the file); "
            "it was replaced. The cache folder may have been edited by hand",
            file=path,
        )
        _discard(entry)
        info = Decoded(fresh["fps"], fresh["fps_source"], fresh["fps_note"])
        try:
            meta = _write_entry(entry, iter(frames), info, fresh["kind"])
            return _memmap(entry, meta), {**meta, "_entry": str(entry), "_fresh": True}
        except CacheUnusable as exc:
            _unusable(path, exc)
    if old == new and entry is not None:
        return _memmap(entry, meta), {**meta, "_fresh": True}
    return frames, {**fresh, "_fresh": True}


def store_crop(meta: dict, box: tuple[int, int, int, int], rule: int) -> None:
    """Remember a clip's crop, found by version ``rule`` of the crop rule, in its cache entry
    (best effort: a read-only cache is fine)."""
    entry = meta.get("_entry")
    if not entry:
        return
    stored = {k: v for k, v in meta.items() if not k.startswith("_")}
    stored["crop"] = [int(v) for v in box]
    stored["crop_rule"] = int(rule)
    tmp = Path(entry) / ".meta.json.tmp"
    try:
        tmp.write_text(json.dumps(stored), encoding="utf-8")
        os.replace(tmp, Path(entry) / "meta.json")
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
