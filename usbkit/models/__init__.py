"""Pure-torch detectors: a single-frame CenterNet-style detector and a sequence detector that
shares its backbone and adds causal temporal attention over past frames' features."""

from usbkit.models.detector import FrameDetector, ModelConfig, SequenceDetector, build_model

__all__ = ["FrameDetector", "SequenceDetector", "ModelConfig", "build_model"]
