"""Peak memory of training and detection on the ``paper`` preset (budget: <= 4 GiB).

The full paper preset (506 patients) takes longer to synthesize than ``make bench`` allows, so
the run uses the paper preset's clips (60-120 frames, 1-3 sweeps a patient) for 16 and 32
patients: frames are memory-mapped from the cache and read window by window, so peak memory
should not grow with the size of the study. Each command runs in its own process and its peak
resident set size (ru_maxrss) is reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import record


def peak_mib(args: list[str], env=None) -> tuple[float, float]:
    """Run ``python -m usbkit ARGS`` in a fresh process; return (peak RSS MiB, seconds)."""
    code = (
        "import resource, runpy, sys; sys.argv = ['usbkit'] + sys.argv[1:];"
        "rc = 0\ntry:\n    runpy.run_module('usbkit', run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code or 0\n"
        "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(rc)"
    )
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", code, "--quiet", *args], capture_output=True, text=True, env=env
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    kib = int(r.stderr.rsplit("PEAK_KIB", 1)[1].split()[0])
    return kib / 1024, time.perf_counter() - t


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "USBKIT_CACHE": str(tmp / "cache")}
    rows = []
    try:
        for patients in (16, 32):
            study = tmp / f"paper{patients}"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "usbkit",
                    "--quiet",
                    "synth",
                    str(study),
                    "--preset",
                    "paper",
                    "--patients",
                    str(patients),
                ],
                check=True,
                env=env,
            )
            from usbkit.io.study import load_study

            n_clips = len(load_study(study).manifest)
            train_mib, train_s = peak_mib(
                [
                    "train",
                    str(study),
                    "--model",
                    "sequence",
                    "--out",
                    str(tmp / f"run{patients}"),
                    "--epochs",
                    "1",
                ],
                env,
            )
            det_mib, det_s = peak_mib(
                [
                    "detect",
                    str(study),
                    "--checkpoint",
                    "pretrained:sequence",
                    "--out",
                    str(tmp / f"det{patients}.csv"),
                ],
                env,
            )
            cache_mib = sum(p.stat().st_size for p in (tmp / "cache").rglob("frames.u8")) / 2**20
            rows.append(
                [
                    patients,
                    n_clips,
                    f"{cache_mib:.0f}",
                    f"{train_mib:.0f}",
                    f"{train_s:.0f}",
                    f"{det_mib:.0f}",
                    f"{det_s:.0f}",
                    4096,
                ]
            )
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record(
        "Peak memory (paper preset clips): sequence-model training (1 epoch) and detection",
        [
            "patients",
            "clips",
            "decoded frames in cache (MiB, cumulative)",
            "train peak RSS (MiB)",
            "train (s)",
            "detect peak RSS (MiB)",
            "detect (s)",
            "budget (MiB)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
