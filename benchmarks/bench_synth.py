"""Synthetic cohort generation speed: the quick preset (the teaching report, about two minutes
in all) and the study preset (the default report, whose run has 15 minutes in all)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from _common import record

from usbkit.io.study import load_study
from usbkit.synth import synthesize
from usbkit.synth.config import preset_config


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    rows = []
    try:
        for preset in ("quick", "study"):
            t = time.perf_counter()
            synthesize(tmp / preset, preset=preset, seed=0, progress=False)
            wall = time.perf_counter() - t
            s = load_study(tmp / preset)
            size = sum(p.stat().st_size for p in (tmp / preset).rglob("*") if p.is_file()) / 2**20
            test = s.annotations.merge(s.manifest[["clip_id", "split"]], on="clip_id")
            test = test[test["split"] == "test"]
            im = preset_config(preset).imaging
            rows.append(
                [
                    preset,
                    f"{im.height}x{im.width} in {im.screen_height}x{im.screen_width}",
                    s.manifest.patient_id.nunique(),
                    s.manifest.shape[0],
                    s.annotations.groupby(["clip_id", "lesion_id"]).ngroups,
                    test.groupby(["clip_id", "lesion_id"]).ngroups,
                    f"{wall:.1f}",
                    f"{size:.0f}",
                ]
            )
            print(rows[-1], flush=True)
        record(
            "Synthetic cohort (`usbkit synth --preset quick|study`)",
            [
                "preset",
                "B-mode in screen (pixels)",
                "patients",
                "clips",
                "lesions",
                "test lesions",
                "wall time (s)",
                "study size (MiB)",
            ],
            rows,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
