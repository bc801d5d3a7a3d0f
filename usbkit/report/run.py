"""The manifest of one study run: ``OUT/run.json``.

A run folder holds everything one pass of the study produced. The notebooks (and
``usbkit report``) hand results to each other only through this manifest, never through
file-name conventions:

.. code-block:: text

    OUT/run.json                  this manifest
    OUT/study/                    the synthetic cohort, when no study was given
    OUT/runs/<kind>/              training runs, when the models were trained here
    OUT/detections/<model>.csv    each model's detections
    OUT/results/                  results.json, table.csv, table.md and the figures
    OUT/scrubber/<clip>.html      static scrubber pages

``run.json`` holds::

    {"usbkit_version": "0.1.0",
     "study": "/abs/path/to/study",          # the study evaluated
     "split": "test",                        # the clips the models were run on
     "checkpoints": {"single frame": "pretrained:frame", "sequence": "runs/sequence"},
     "detections": {"single frame": "detections/single_frame.csv", ...},
     "results": "results/results.json"}

Paths inside the run folder (a synthesized study too) are stored relative to it, so a run
folder can be moved.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from usbkit.errors import UsbkitError
from usbkit.safeio import write_text
from usbkit.version import __version__

RUN_FILE = "run.json"
#: Environment variable naming the workspace (set by ``usbkit lab``).
WORKSPACE_ENV = "USBKIT_WORKSPACE"


def workspace() -> Path:
    """The folder that relative run and study paths of the notebooks are resolved against.

    The one documented place (docs/notebooks.md): ``$USBKIT_WORKSPACE`` when set (``usbkit
    lab`` sets it to the folder it was started in); else the nearest folder at or above the
    current one that holds a usbkit checkout (``Makefile`` and ``usbkit/``) or a ``reports/``
    folder, so a notebook opened from ``notebooks/`` finds ``reports/latest`` of the
    repository; else the current folder.
    """
    env = os.environ.get(WORKSPACE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if ((folder / "Makefile").is_file() and (folder / "usbkit").is_dir()) or (
            folder / "reports"
        ).is_dir():
            return folder
    return here


def resolve(path: str | Path) -> Path:
    """An absolute path: ``path`` itself, or relative to :func:`workspace`."""
    path = Path(path).expanduser()
    return path.resolve() if path.is_absolute() else (workspace() / path).resolve()


def model_slug(name: str) -> str:
    """A file name for a model name: ``'single frame'`` -> ``'single_frame'``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


@dataclass
class Run:
    """One study run and what it produced (``OUT/run.json``).

    Attributes
    ----------
    folder : Path
        The run folder (``OUT``).
    study : str
        The study folder (absolute).
    split : str, optional
        The split the models were run on and evaluated.
    checkpoints : dict of str to str
        Each model's checkpoint reference (a run folder or ``pretrained:KIND``).
    detections : dict of str to str
        Each model's detections file, relative to ``folder``.
    results : str
        ``results.json``, relative to ``folder`` (empty until evaluated).
    usbkit_version : str
        The usbkit that wrote the run.
    """

    folder: Path
    study: str = ""
    split: str | None = None
    checkpoints: dict[str, str] = field(default_factory=dict)
    detections: dict[str, str] = field(default_factory=dict)
    results: str = ""
    usbkit_version: str = ""

    # ------------------------------------------------------------------ file
    @classmethod
    def open(cls, folder: str | Path) -> Run:
        """Read ``folder/run.json`` (a relative ``folder`` is in the :func:`workspace`); a
        clear error saying what to run first when there is none."""
        folder = resolve(folder)
        path = folder / RUN_FILE
        if not path.is_file():
            raise UsbkitError(
                "there is no usbkit run here yet",
                file=folder,
                fix="Run `make report` (or `usbkit report`) first, or run the notebooks "
                "01_explore and 02_train with this same `out`",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data.pop("folder", None)
            run = cls(folder=folder, **data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise UsbkitError(f"this run manifest cannot be read ({exc})", file=path) from None
        if run.study and not Path(run.study).is_absolute():
            run.study = str(folder / run.study)
        return run

    def save(self) -> Path:
        """Write ``run.json`` atomically."""
        self.usbkit_version = __version__
        data = {k: v for k, v in asdict(self).items() if k != "folder"}
        study = Path(self.study) if self.study else None
        if study is not None and study.is_relative_to(self.folder):
            data["study"] = str(study.relative_to(self.folder))  # moves with the run folder
        self.folder.mkdir(parents=True, exist_ok=True)
        return write_text(self.folder / RUN_FILE, json.dumps(data, indent=1))

    # ------------------------------------------------------------------ paths
    def path(self, relative: str) -> Path:
        """An absolute path for a path stored relative to the run folder."""
        return self.folder / relative

    def detections_path(self, name: str) -> Path:
        """Where a model's detections file of this run goes (the one place it is named)."""
        return self.folder / "detections" / f"{model_slug(name)}.csv"

    @property
    def results_dir(self) -> Path:
        """``OUT/results``: results.json, tables and figures."""
        return self.folder / "results"

    @property
    def scrubber_dir(self) -> Path:
        """``OUT/scrubber``: the static scrubber pages."""
        return self.folder / "scrubber"

    # ------------------------------------------------------------------ reading
    def load_study(self):
        """The run's study (tables loaded and checked)."""
        from usbkit.io.study import load_study

        self._require(self.study, "no study is recorded", "Run the explore notebook first")
        return load_study(self.study)

    def read_detections(self) -> dict:
        """Each model's detections as a DataFrame."""
        from usbkit.io.detections import load_detections

        self._require(self.detections, "no detections are recorded", "Run the train notebook first")
        return {name: load_detections(self.path(rel)) for name, rel in self.detections.items()}

    def read_results(self) -> dict:
        """The evaluation's results (``results.json``)."""
        from usbkit.evaluation.results import load_results

        self._require(self.results, "no results are recorded", "Run the compare notebook first")
        return load_results(self.path(self.results))

    def _require(self, value, what: str, fix: str) -> None:
        if not value:
            raise UsbkitError(f"{what} in this run", file=self.folder / RUN_FILE, fix=fix)
