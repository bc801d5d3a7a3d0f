"""Synthetic cohort generation speed: the quick preset (budget: under 60 s)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from _common import record

from usbkit.io.study import load_study
from usbkit.synth import synthesize


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        synthesize(tmp / "q", preset="quick", seed=0, progress=False)
        wall = time.perf_counter() - t
        s = load_study(tmp / "q")
        n_frames = int(s.manifest.shape[0])
        size = sum(p.stat().st_size for p in (tmp / "q").rglob("*") if p.is_file()) / 2**20
        frames = sum(1 for _ in open(tmp / "q" / "synth_events.csv"))  # noqa: F841
        record(
            "Synthetic cohort (`usbkit synth --preset quick`)",
            ["patients", "clips", "lesions", "wall time (s)", "budget (s)", "study size (MiB)"],
            [
                [
                    s.manifest.patient_id.nunique(),
                    n_frames,
                    s.annotations.groupby(["clip_id", "lesion_id"]).ngroups,
                    f"{wall:.1f}",
                    60,
                    f"{size:.0f}",
                ]
            ],
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
