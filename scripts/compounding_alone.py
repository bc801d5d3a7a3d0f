"""Compounding alone, with no training: the single-frame head reading the mean of the backbone
features of each frame and ``--frames`` frames on each side (docs/temporal.md, *Two more
designs, on three validation cohorts*).

    python scripts/compounding_alone.py STUDY OUT.csv [--frames 2] [--checkpoint pretrained:frame]

Writes a detections file of every clip of STUDY, which ``usbkit evaluate`` reads like any
other. This is an analysis for the design notes, not a reader usbkit ships: the residual
temporal part can read the same compounded frames (``usbkit train --compound``).
"""

from __future__ import annotations

import argparse

import torch

import usbkit.models.detect as detect
from usbkit.models.detector import FrameDetector, window_mean


class CompoundingDetector(FrameDetector):
    """A single-frame detector whose head reads the mean features of ``k`` frames on each side
    (fewer at a clip's ends); streams like the two-sided sequence detector (a delay of ``k``
    frames, every backbone run once)."""

    k = 2

    @property
    def lookahead(self) -> int:  # noqa: D102
        return self.k

    @torch.no_grad()
    def stream(self, frames, state=None, final=True):  # noqa: D102
        f = self.features(frames)
        if state is None:
            state = {"first": 0, "emitted": 0, "features": f[:0]}
        buf = torch.cat([state["features"], f])
        first, emitted = state["first"], state["emitted"]
        received = first + len(buf)
        upto = received if final else max(emitted, received - self.k)
        pos = torch.arange(emitted, upto) - first
        mean = window_mean(buf, pos, self.k, self.k)
        keep = max(0, upto - self.k) - first
        return self.head(mean), {
            "first": first + keep,
            "emitted": upto,
            "features": buf[keep:].clone(),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("out")
    ap.add_argument("--frames", type=int, default=2, help="frames on each side (default 2)")
    ap.add_argument("--checkpoint", default="pretrained:frame")
    args = ap.parse_args()
    CompoundingDetector.k = args.frames
    load = detect.load_checkpoint

    def compounding(ref, device=None):
        model = load(ref, device)
        if model.cfg.kind != "frame":
            raise SystemExit("give a single-frame checkpoint")
        model.__class__ = CompoundingDetector
        return model

    detect.load_checkpoint = compounding
    print(detect.detect_study(args.study, args.checkpoint, args.out, overwrite=True))


if __name__ == "__main__":
    main()
