"""Decoding a clip to grayscale frames: usbkit's reader against the ffmpeg command line and
OpenCV's VideoCapture on the same clips. Budgets (the budgets table of benchmarks/README.md):
no slower than OpenCV; usbkit / ffmpeg time <= 1.3.

Clips: 240-frame H.264 MP4s of one synthetic cohort clip at four sizes: 256 x 208 and
768 x 624 (the sizes the detector issue names), the cohort's own 512 x 416 and 1536 x 1248.
usbkit is timed with its cache off (a cold decode into one in-memory array, what
``open_clip(path, ReaderSettings(cache=False))`` returns); ``ffmpeg -f rawvideo -pix_fmt gray``
writes to a pipe that is read and discarded. OpenCV (``cv2.VideoCapture``, then BGR to gray) is
timed twice: keeping every frame in one preallocated array, which is what usbkit's reader
returns (the like-for-like comparison), and discarding each frame after conversion (a lower
bound: no memory is filled). OpenCV is measured only when installed (``make bench`` installs
``opencv-python-headless``; it is not a usbkit dependency).

The methods take turns, ``ROUNDS`` rounds per size, and the median frames/s is reported
(the best round in brackets): on a shared or virtual machine single runs of the same decode
vary by 10-30 %, mostly in how fast fresh memory is handed out.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import record

from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.io.encode import write_video
from usbkit.synth import preset_config, synthesize

ROUNDS = 9
FRAMES = 240
SIZES = ((256, 208), (512, 416), (768, 624), (1536, 1248))


def resized(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """The clip at another size (nearest neighbour: the picture's content does not matter
    for decoding speed, only its size and texture)."""
    rows = np.arange(height) * frames.shape[1] // height
    cols = np.arange(width) * frames.shape[2] // width
    return np.ascontiguousarray(frames[:, rows][:, :, cols])


def usbkit_decode(path: Path) -> None:
    open_clip(path, ReaderSettings(crop=False, cache=False))


def ffmpeg_decode(path: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-threads", "0", "-i", str(path),
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        stdout=subprocess.PIPE,
        check=True,
    )  # fmt: skip


def opencv_decode(path: Path, keep: bool) -> None:
    import cv2

    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames, i = None, 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if not keep:
            cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            continue
        if frames is None:
            frames = np.empty((max(count, 1), *bgr.shape[:2]), np.uint8)
        if i == len(frames):  # the container's count was short: grow, as a reader must
            frames = np.concatenate([frames, np.empty_like(frames)])
        cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY, dst=frames[i])
        i += 1
    cap.release()


def cell(rates: dict[str, list[float]], name: str) -> str:
    """Median frames/s of a method, its best round in brackets."""
    if name not in rates:
        return "n/a"
    return f"{statistics.median(rates[name]):.0f} ({max(rates[name]):.0f})"


def ratio(rates: dict[str, list[float]], name: str) -> str:
    """usbkit's median speed over a method's."""
    if name not in rates:
        return "n/a"
    return f"{statistics.median(rates['usbkit']) / statistics.median(rates[name]):.2f}"


def main() -> None:
    try:
        import cv2  # noqa: F401
    except ImportError:
        cv2 = None
    methods = {"usbkit": usbkit_decode}
    if cv2 is not None:
        methods["opencv_keep"] = lambda p: opencv_decode(p, keep=True)
        methods["opencv_discard"] = lambda p: opencv_decode(p, keep=False)
    if shutil.which("ffmpeg"):
        methods["ffmpeg"] = ffmpeg_decode
    tmp = Path(tempfile.mkdtemp())
    try:
        cfg = preset_config("quick", patients=1, seed=4)
        cfg = replace(
            cfg, sweep=replace(cfg.sweep, frames=(FRAMES, FRAMES)), split_fractions=(1, 0, 0)
        )
        study = synthesize(tmp / "s", config=cfg, progress=False)
        source = next((study / "clips").rglob("*.mp4"))
        frames = open_clip(source, ReaderSettings(crop=False, cache=False)).frames
        rows = []
        for width, height in SIZES:
            path = write_video(resized(frames, width, height), tmp / f"{width}.mp4", fps=25)
            n = len(open_clip(path, ReaderSettings(crop=False, cache=False)))
            rates: dict[str, list[float]] = {k: [] for k in methods}
            for _ in range(ROUNDS):
                for name, fn in methods.items():
                    t = time.perf_counter()
                    fn(path)
                    rates[name].append(n / (time.perf_counter() - t))

            rows.append(
                [
                    f"{width}x{height}",
                    n,
                    cell(rates, "usbkit"),
                    cell(rates, "opencv_keep"),
                    cell(rates, "opencv_discard"),
                    cell(rates, "ffmpeg"),
                    ratio(rates, "opencv_keep"),
                    ratio(rates, "opencv_discard"),
                    "n/a" if "ffmpeg" not in rates else
                    f"{statistics.median(rates['ffmpeg']) / statistics.median(rates['usbkit']):.2f}",
                ]
            )  # fmt: skip
        record(
            "Decoding to grayscale frames (H.264 MP4, cold, no cache)",
            [
                "size",
                "frames",
                "usbkit frames/s",
                "OpenCV, frames kept",
                "OpenCV, frames discarded",
                "ffmpeg CLI",
                "usbkit / OpenCV kept (speed, >= 1 is no slower)",
                "usbkit / OpenCV discarded (speed)",
                "usbkit / ffmpeg time (budget 1.3)",
            ],
            rows,
            note=f"Median frames/s of {ROUNDS} interleaved rounds (best round in brackets). "
            "'Kept' fills one preallocated array with every frame, as usbkit's reader does; "
            "'discarded' converts each frame and drops it.",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
