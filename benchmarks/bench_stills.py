"""The still-image acceptance, rehearsed on synthetic stills.

The real acceptance set (a public breast-ultrasound still-image set of 780 images with masks)
is not part of this repository. This script makes as many synthetic stills (780) that vary the
way real ones do (usbkit.synth.stills: 400-1000 pixels across, 30-50 mm fields of view,
different gains, masses of 3-40 mm, a scanner screen around the picture), writes them in that
set's layout, and runs exactly the five commands of docs/importers.md on them, on the CPU:

    usbkit import busi STILLS STUDY
    usbkit split STUDY --seed 0
    usbkit train STUDY --model frame --out RUN --augment ultrasound --antialias yes --epochs 12
    usbkit detect STUDY --checkpoint RUN --out det.csv --split test
    usbkit evaluate STUDY --detections "single frame=det.csv" --split test --out results

It records the training time, the frame-level AP50 and the sensitivity at 0.1 / 0.2 / 0.5
false positives per image on the test split (targets on the real set: training <= 20 min,
AP50 >= 0.65, >= 90% at 0.5 FP per image).

``--train-args "..."`` adds options to the train command (a variant of the recipe, e.g.
``--antialias yes`` or ``--init pretrained:frame``); its table is recorded under its own
title, beside the default one.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import record

from usbkit.synth.stills import StillsConfig, synthesize_stills


def usbkit(*args) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "usbkit", "--quiet", *map(str, args)],
        check=True,
        env={**os.environ},
    )
    return time.perf_counter() - t


def main(images: int = 780, train_args: str = "") -> None:
    with tempfile.TemporaryDirectory(prefix="usbkit-stills-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("USBKIT_CACHE", str(tmp / "cache"))
        stills = synthesize_stills(tmp / "stills", StillsConfig(images=images), progress=False)
        study, run = tmp / "study", tmp / "run"
        usbkit("import", "busi", stills, study)
        usbkit("split", study, "--seed", "0")
        train_s = usbkit(
            "train", study, "--model", "frame", "--out", run, "--augment", "ultrasound",
            "--antialias", "yes", "--epochs", "12",
            *shlex.split(train_args),
        )  # fmt: skip
        usbkit("detect", study, "--checkpoint", run, "--out", tmp / "det.csv", "--split", "test")
        usbkit(
            "evaluate", study, "--detections", f"single frame={tmp / 'det.csv'}",
            "--split", "test", "--out", tmp / "results",
        )  # fmt: skip
        res = json.loads((tmp / "results" / "results.json").read_text())
        log = json.loads((run / "log.json").read_text())
    m = res["models"]["single frame"]
    title = "Still-image acceptance rehearsed on synthetic stills (README commands, CPU)"
    record(
        title + (f", train with `{train_args}`" if train_args else ""),
        [
            "images",
            "test images / lesions",
            "epochs run",
            "training (min)",
            "frame AP50",
            "sensitivity at 0.1 / 0.2 / 0.5 FP per image",
        ],
        [
            [
                images,
                f"{res['n_clips']} / {res['n_lesions']}",
                len(log),
                f"{train_s / 60:.1f}",
                f"{m['ap50']:.3f}",
                " / ".join(f"{100 * s:.1f}%" for s in m["sensitivity"]),
            ]
        ],
        note="Targets on the real 780-image set: training <= 20 min, AP50 >= 0.65, >= 90% at "
        "0.5 FP per image.",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=int, nargs="?", default=780)
    parser.add_argument("--train-args", default="", help="more options for usbkit train")
    args = parser.parse_args()
    main(args.images, args.train_args)
