"""usbkit: mass detection in dynamic (cine) breast ultrasound.

A toolkit to reproduce and extend the single-frame vs sequence detection study of
Yuan & Jia (2022). The package's folders are the study's layers, each importing only from
the ones before it::

    errors, safeio, config, style   core: user-facing errors, atomic writes, configs, colours
    io/          decoding, frame cache and B-mode crop, writing media, the study format,
                 check, split, the detections file, formats/ (importers and exporter)
    synth/       the synthetic cohort
    evaluation/  matching (the hit rule), froc, stats, results
    models/      detectors, training data, the training loop, detect, shipped weights
    viewer/      the per-clip view, the JupyterLab scrubber, static pages
    report/      figures, cohort exploration, notebook steps, the run manifest, the report
    cli          the ``usbkit`` command line

The main entry points are available here directly (loaded on first use, so ``import usbkit``
stays quick): ``open_clip``, ``load_study``, ``check_study``, ``synthesize``,
``evaluate_study``, ``EvalConfig``, ``plan_study``, ``PlanConfig``, ``train``, ``TrainConfig``, ``detect_study``,
``Scrubber``, ``run_report``, ``ReportConfig``, ``UsbkitError``.
"""

from importlib import import_module

from usbkit.errors import UsbkitError
from usbkit.version import __version__

_API = {
    "open_clip": "usbkit.io.clip",
    "ReaderSettings": "usbkit.io.clip",
    "load_study": "usbkit.io.study",
    "check_study": "usbkit.io.check",
    "import_study": "usbkit.io.formats",
    "synthesize": "usbkit.synth",
    "SynthConfig": "usbkit.synth",
    "evaluate_study": "usbkit.evaluation.results",
    "evaluate_models": "usbkit.evaluation.results",
    "EvalConfig": "usbkit.evaluation.results",
    "plan_study": "usbkit.evaluation.power",
    "PlanConfig": "usbkit.evaluation.power",
    "ModelConfig": "usbkit.models.config",
    "TrainConfig": "usbkit.models.config",
    "train": "usbkit.models.train",
    "detect_study": "usbkit.models.detect",
    "Scrubber": "usbkit.viewer.scrubber",
    "run_report": "usbkit.report.builder",
    "ReportConfig": "usbkit.report.builder",
}

__all__ = ["UsbkitError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'usbkit' has no attribute {name!r}")
