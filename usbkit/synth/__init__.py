"""The built-in synthetic breast-ultrasound cine cohort (``usbkit synth``)."""

from usbkit.synth.cohort import anatomy_example, plan_cohort, render_clip, synthesize
from usbkit.synth.config import (
    AnatomyConfig,
    ImagingConfig,
    LesionConfig,
    MimicConfig,
    ScreenConfig,
    ShapeConfig,
    SweepConfig,
    SynthConfig,
    preset_config,
)

__all__ = [
    "synthesize",
    "anatomy_example",
    "plan_cohort",
    "render_clip",
    "SynthConfig",
    "ImagingConfig",
    "SweepConfig",
    "LesionConfig",
    "MimicConfig",
    "AnatomyConfig",
    "ShapeConfig",
    "ScreenConfig",
    "preset_config",
]
