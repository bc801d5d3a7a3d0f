"""The clip scrubber for JupyterLab: a clip picker around the browser-side viewer.

The viewer itself (:class:`ClipWidget`, an anywidget running ``assets/viewer.js``) receives a
clip's frames once, as compressed bytes, with the ground truth and each model's marks as data;
frame changes, thresholds, playback, the timeline and the keyboard all run in the browser, so
a key press repaints without a round trip to the kernel. The kernel is involved only to change
the clip or the outcome filter.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import ipywidgets as W
import pandas as pd
import traitlets

from usbkit.errors import UsbkitError
from usbkit.evaluation.results import clip_outcomes, operating_thresholds
from usbkit.io.notices import warn
from usbkit.viewer.clipview import ClipView, outcome_filters

ASSETS = Path(__file__).with_name("assets")


class ClipWidget(anywidget.AnyWidget):
    """The browser-side viewer of one clip (used by :class:`Scrubber`).

    Traits
    ------
    clip : dict
        :meth:`ClipView.payload`.
    frames, offsets : bytes, list of int
        The clip's JPEG frames, concatenated, and their byte offsets.
    frame : int
        The frame shown (set it to move; the browser reports moves back).
    thresholds : dict
        Each model's threshold as last set in the browser.
    annotate : bool
        Annotate mode (drawing lesions); the browser's "annotate" box toggles it.
    ann : dict
        In annotate mode: the open clip's lesions and drafts
        (:meth:`usbkit.viewer.annotate.AnnotateSession.payload`).
    """

    _esm = ASSETS / "viewer.js"
    _css = ASSETS / "viewer.css"
    clip = traitlets.Dict().tag(sync=True)
    frames = traitlets.Bytes(b"").tag(sync=True)
    offsets = traitlets.List(traitlets.Int()).tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)
    thresholds = traitlets.Dict().tag(sync=True)
    annotate = traitlets.Bool(False).tag(sync=True)
    ann = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        #: the annotate mode's session (edits from the browser arrive as messages)
        self.session = None
        self.on_msg(self._on_message)

    def _on_message(self, _widget, content, _buffers) -> None:
        if self.session is not None and isinstance(content, dict) and "op" in content:
            # the lesion the edit concerned travels back, so the browser keeps it selected
            self.ann = self.session.handle(content)
            for hook in getattr(self, "_after_edit", []):
                hook(content)

    def show_clip(self, view: ClipView) -> None:
        """Send a clip to the browser (frames once, marks as data) and show its frame 0."""
        frames, offsets = view.encoded_frames()
        with self.hold_sync():
            self.frame = 0
            self.thresholds = {}
            self.frames = frames
            self.offsets = offsets
            self.clip = view.payload()


class Scrubber(W.VBox):
    r"""Interactive viewer of a study's clips with several models' detections.

    Parameters
    ----------
    study : Study
        The study.
    detections : dict of str to DataFrame
        Each model's detections.
    results : dict, optional
        The evaluation's results of these detections (``results.json``). When given, the
        threshold sliders start at each model's operating point, marks are labelled by the
        run's hit rule, and the picker lists the evaluated clips with per-lesion outcome
        filters (for example "sequence found a lesion single frame missed").
    clip_id : str, optional
        Clip shown first (default: the first of the picker's list).
    thresholds : dict of str to float, optional
        Starting score thresholds (overriding those of ``results``; default 0.5).
    fp_rate : float, optional
        The FP/scan rate whose operating thresholds are used (default: the results'
        ``view_fp_rate``).
    split : str, optional
        Without ``results``: only clips of this split in the picker.
    threshold_notes : dict of str to str, optional
        Where each starting threshold comes from (shown under its slider).
    annotate : bool
        Open in annotate mode: draw, move and resize lesion boxes on key frames, with
        interpolation between them, and save them to the study's annotations.csv
        (docs/annotate.md). The viewer's "annotate" box switches the mode on and off.
    propose : str, DataFrame or Path, optional
        Where the annotate mode's draft lesions come from ("propose from detections"): the
        name of one of ``detections``, a detections table, or a checkpoint (run folder,
        ``.pt`` file or ``pretrained:NAME``) run on each clip when asked.
    propose_threshold : float
        The drafts' starting score threshold.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, pandas as pd
    >>> from usbkit.io.encode import write_video
    >>> from usbkit.io.study import load_study
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_video(np.random.default_rng(0).integers(0, 255, (6, 48, 64), dtype=np.uint8),
    ...                 root / "A.mp4", fps=10)
    >>> _ = (root / "manifest.csv").write_text("clip_id,patient_id,path\nA,P1,A.mp4\n")
    >>> _ = (root / "annotations.csv").write_text(
    ...     "clip_id,frame,lesion_id,x0,y0,x1,y1\nA,2,1,10,10,30,30\n")
    >>> det = pd.DataFrame({"clip_id": ["A"], "frame": [2], "score": [0.9], "x0": [12.0],
    ...                     "y0": [12.0], "x1": [28.0], "y1": [28.0]})
    >>> s = Scrubber(load_study(root), {"model": det})
    >>> s.step(2); s.frame
    2
    >>> s.viewer.clip["models"][0]["marks"]["hit"]
    [1]
    """

    def __init__(
        self,
        study,
        detections: dict[str, pd.DataFrame],
        results: dict | None = None,
        clip_id: str | None = None,
        thresholds: dict[str, float] | None = None,
        fp_rate: float | None = None,
        split: str | None = None,
        threshold_notes: dict[str, str] | None = None,
        annotate: bool = False,
        propose=None,
        propose_threshold: float = 0.5,
    ):
        self.study, self.detections = study, detections
        self.names = list(detections)
        self.hit = results["hit"] if results else "center"
        start = operating_thresholds(results, fp_rate) if results else {}
        self.thresholds = (
            {n: 0.5 for n in self.names} | {n: min(t, 1.0) for n, t in start.items()}
        ) | (thresholds or {})
        if results:
            rate = fp_rate if fp_rate is not None else results["view_fp_rate"]
            notes = {n: f"its operating point at {rate:g} FP/scan" for n in start}
        else:
            notes = {}
        self.threshold_notes = notes | (threshold_notes or {})
        if results:
            self.outcomes = clip_outcomes(results, fp_rate)
            self.filters = outcome_filters(self.names)
        else:
            self.outcomes = study.clips(split)[["clip_id"]].reset_index(drop=True)
            self.filters = outcome_filters([])
        #: whether the clips shown are annotated: without any lesion annotated in them, no
        #: mark is called a hit or a false positive (the viewer shows marks, not judgements)
        self.annotated = bool(results) or study.has_lesions(split)
        self.filter_pick = W.Dropdown(
            options=list(self.filters),
            description="show",
            layout=W.Layout(width="100%", max_width="420px"),
        )
        self.clip_pick = W.Dropdown(
            description="clip", layout=W.Layout(width="100%", max_width="280px")
        )
        self.count = W.HTML()
        self.viewer = ClipWidget()
        self.view: ClipView | None = None
        if isinstance(propose, str) and propose in detections:
            propose = detections[propose]
        self._propose = propose
        self._propose_threshold = propose_threshold
        self.viewer._after_edit = [self._after_edit]
        if annotate:
            self._start_annotating()
        self.viewer.observe(self._annotate_toggled, names="annotate")
        self._filter_clips()
        if clip_id is not None:
            self.clip_pick.value = clip_id
        self.filter_pick.observe(lambda c: self._filter_clips(), names="value")
        self.clip_pick.observe(lambda c: self.load(c["new"]) if c["new"] else None, names="value")
        super().__init__(
            [
                W.HBox(
                    [self.filter_pick, self.clip_pick, self.count],
                    layout=W.Layout(flex_flow="row wrap"),
                ),
                self.viewer,
            ]
        )
        if self.clip_pick.value:
            self.load(self.clip_pick.value)

    # ------------------------------------------------------------------ annotate mode
    @property
    def session(self):
        """The annotate mode's :class:`~usbkit.viewer.annotate.AnnotateSession` (None
        before the mode was first switched on)."""
        return self.viewer.session

    def _start_annotating(self) -> None:
        from usbkit.viewer.annotate import AnnotateSession

        if self.viewer.session is None:
            self.viewer.session = AnnotateSession(
                self.study.root, propose=self._propose, threshold=self._propose_threshold
            )
        self.viewer.annotate = True
        if self.view is not None:
            self.viewer.ann = self.viewer.session.open(self.view)

    def _annotate_toggled(self, change) -> None:
        if change["new"]:
            self._start_annotating()
        elif self.view is not None:
            # back to the outcome view: judged against the annotations as saved
            self._reload_study()
            self.load(self.view.clip_id)

    def _reload_study(self) -> None:
        from usbkit.io.study import load_study

        self.study = load_study(self.study.root)
        self.annotated = self.annotated or self.study.has_lesions()

    def _after_edit(self, content) -> None:
        self._show_count()

    @property
    def unsaved(self) -> list[str]:
        """The clips with annotation edits not yet saved."""
        return self.session.editor.changed_clips if self.session is not None else []

    def save(self, force: bool = False):
        """Save the annotate mode's edits (see :meth:`AnnotationEditor.save
        <usbkit.io.annotation_edit.AnnotationEditor.save>`); returns annotations.csv."""
        if self.session is None:
            raise UsbkitError("nothing to save: the viewer was not in annotate mode")
        self.viewer.ann = self.session.handle({"op": "save", "force": force})
        if self.viewer.ann.get("error"):
            raise UsbkitError(self.viewer.ann["message"])
        self._show_count()
        return self.session.editor.annotations_path

    def close(self) -> None:
        """Close the viewer; warns when annotation edits are not saved."""
        if self.unsaved:
            warn(
                f"annotation edits of clip(s) {', '.join(self.unsaved)} are not saved; they "
                "are lost when the notebook's kernel stops",
                file=self.study.root / "annotations.csv",
                fix="Call save() on the viewer (or press its save button) first",
            )
        super().close()

    @property
    def frame(self) -> int:
        """The frame shown."""
        return self.viewer.frame

    def step(self, k: int) -> None:
        """Move ``k`` frames (clamped to the clip)."""
        if self.view is not None:
            self.viewer.frame = max(0, min(self.view.n - 1, self.viewer.frame + k))

    def _show_count(self) -> None:
        text = f"<span style='color:#555'>{len(self._ids)} of {len(self.outcomes)} clips</span>"
        if self.unsaved:
            text += (
                " <span class='usbkit-unsaved' style='color:#b00020;font-weight:bold'>unsaved "
                f"annotation edits in clip(s) {', '.join(self.unsaved)}: they stay here while "
                "you look at other clips; press save to keep them</span>"
            )
        self.count.value = text

    def _filter_clips(self) -> None:
        rule = self.filters[self.filter_pick.value]
        ids = [r["clip_id"] for _, r in self.outcomes.iterrows() if rule(r)]
        self._ids = ids
        self._show_count()
        self.clip_pick.options = ids
        if ids and self.clip_pick.value not in ids:
            self.clip_pick.value = ids[0]

    def load(self, clip_id: str) -> None:
        """Show a clip: its frames and marks go to the browser once."""
        current = dict(self.thresholds)
        current.update({k: v for k, v in self.viewer.thresholds.items() if k in current})
        self.thresholds = current
        self.view = ClipView(
            self.study,
            clip_id,
            self.detections,
            current,
            hit=self.hit,
            threshold_notes=self.threshold_notes,
            annotated=self.annotated,
        )
        self.viewer.show_clip(self.view)
        if self.viewer.session is not None:
            self.viewer.ann = self.viewer.session.open(self.view)
            self._show_count()
