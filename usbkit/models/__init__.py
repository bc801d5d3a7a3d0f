"""Pure-torch detectors: a single-frame CenterNet-style detector and a sequence detector that
shares its backbone and adds causal temporal attention over past frames' features.

The configs (:mod:`usbkit.models.config`) import without torch; the detectors load torch
on first use.
"""

from usbkit.models.config import ModelConfig, TrainConfig

__all__ = ["FrameDetector", "SequenceDetector", "ModelConfig", "TrainConfig", "build_model"]


def __getattr__(name: str):
    if name in ("FrameDetector", "SequenceDetector", "build_model"):
        from usbkit.models import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'usbkit.models' has no attribute {name!r}")
