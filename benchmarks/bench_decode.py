"""Decoding a clip to grayscale frames: usbkit's reader against the ffmpeg command line and
OpenCV's VideoCapture on the same clips. Budget (the budgets table of benchmarks/README.md): usbkit / ffmpeg time
<= 1.3.

Clips: H.264 MP4s of the synthetic cohort at 208 x 256 and an upscaled 624 x 768 version.
usbkit is timed with its cache off (a cold first decode); ``ffmpeg -f rawvideo -pix_fmt gray``
writes to a pipe that is read and discarded. OpenCV is measured only when installed
(``pip install opencv-python-headless``); it is not a usbkit dependency.
"""

from __future__ import annotations

import shutil
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


def best_of(fn, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        cfg = preset_config("quick", patients=1, seed=4)
        cfg = replace(cfg, sweep=replace(cfg.sweep, frames=(240, 240)), split_fractions=(1, 0, 0))
        study = synthesize(tmp / "s", config=cfg, progress=False)
        small = next((study / "clips").rglob("*.mp4"))
        frames = open_clip(small, ReaderSettings(crop=False, cache=False)).frames
        big = tmp / "big.mp4"
        write_video(np.repeat(np.repeat(frames, 3, axis=1), 3, axis=2), big, fps=25)
        try:
            import cv2
        except ImportError:
            cv2 = None
        rows = []
        for path in (small, big):
            n = len(open_clip(path, ReaderSettings(crop=False, cache=False)))
            ours = best_of(
                lambda path=path: open_clip(path, ReaderSettings(crop=False, cache=False))
            )

            def ff(path=path):
                subprocess.run(
                    [
                        "ffmpeg",
                        "-v",
                        "error",
                        "-threads",
                        "0",
                        "-i",
                        str(path),
                        "-f",
                        "rawvideo",
                        "-pix_fmt",
                        "gray",
                        "-",
                    ],
                    stdout=subprocess.PIPE,
                    check=True,
                )

            ffm = best_of(ff) if shutil.which("ffmpeg") else float("nan")
            if cv2 is not None:

                def cv(path=path):
                    cap = cv2.VideoCapture(str(path))
                    while True:
                        ok, f = cap.read()
                        if not ok:
                            break
                        cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)
                    cap.release()

                cvt = best_of(cv)
            else:
                cvt = float("nan")
            h, w = frames.shape[1:] if path == small else (frames.shape[1] * 3, frames.shape[2] * 3)
            rows.append(
                [
                    f"{w}x{h}",
                    n,
                    f"{n / ours:.0f}",
                    f"{n / ffm:.0f}",
                    "n/a" if cv2 is None else f"{n / cvt:.0f}",
                    f"{ours / ffm:.2f}",
                ]
            )
        record(
            "Decoding to grayscale frames (H.264 MP4, cold, no cache)",
            [
                "size",
                "frames",
                "usbkit frames/s",
                "ffmpeg CLI frames/s",
                "OpenCV frames/s",
                "usbkit / ffmpeg time (budget 1.3)",
            ],
            rows,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
