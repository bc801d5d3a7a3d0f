"""usbkit: mass detection in dynamic (cine) breast ultrasound.

A toolkit to reproduce and extend the single-frame vs sequence detection study of
Yuan & Jia (2022): study folders, clip readers, a synthetic cohort, detectors,
FROC evaluation with paired statistics, notebooks and reports.
"""

from usbkit.errors import UsbkitError

__version__ = "0.1.0"
__all__ = ["UsbkitError", "__version__"]
