"""The clip scrubber: an ipywidgets viewer for JupyterLab.

Play/pause with a frame-rate control, a frame slider, keyboard (left/right one frame, Page
Up/Down ten frames), the frame with the ground truth (green, dashed) and each model's marks
above its own score threshold, a plotly timeline of each model's top score per frame and of
lesion visibility with a cursor at the current frame (click it to jump), buttons to jump to a
model's next miss or false positive, and a clip picker filtered by outcome.
"""

from __future__ import annotations

import time

import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from usbkit.evaluation.results import clip_outcomes, operating_thresholds
from usbkit.style import GT_COLOR, rgba
from usbkit.viewer.clipview import ClipView, outcome_filters


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
    >>> s.step(2); s.slider.value
    2
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
    ):
        self.study, self.detections = study, detections
        self.names = list(detections)
        self.hit = results["hit"] if results else "center"
        start = operating_thresholds(results, fp_rate) if results else {}
        self.init_thresholds = (
            {n: 0.5 for n in self.names} | {n: min(t, 1.0) for n, t in start.items()}
        ) | (thresholds or {})
        if results:
            self.outcomes = clip_outcomes(results, fp_rate)
            self.filters = outcome_filters(self.names)
        else:
            self.outcomes = study.clips(split)[["clip_id"]].reset_index(drop=True)
            self.filters = outcome_filters([])
        self.filter_pick = W.Dropdown(
            options=list(self.filters), description="show", layout=W.Layout(width="340px")
        )
        self.clip_pick = W.Dropdown(description="clip", layout=W.Layout(width="260px"))
        self.image = W.Image(format="jpeg", layout=W.Layout(width="512px"))
        self.label = W.HTML()
        self.slider = W.IntSlider(
            min=0,
            max=1,
            description="frame",
            continuous_update=True,
            layout=W.Layout(width="512px"),
        )
        self.play = W.Play(interval=66, min=0, max=1, step=1, description="play")
        self.rate = W.BoundedFloatText(
            value=15, min=1, max=60, step=1, description="fps", layout=W.Layout(width="150px")
        )
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.thresholds = {
            n: W.FloatSlider(
                value=self.init_thresholds[n],
                min=0.0,
                max=1.0,
                step=0.01,
                description=f"{n} ≥",
                style={"description_width": "initial"},
                continuous_update=False,
            )
            for n in self.names
        }
        self.jumps = []
        for n in self.names:
            for kind, text in (("miss", "next miss"), ("fp", "next false positive")):
                b = W.Button(description=f"{n}: {text}", layout=W.Layout(width="auto"))
                b.on_click(lambda _b, n=n, kind=kind: self.jump(n, kind))
                self.jumps.append(b)
        self.timeline = go.FigureWidget()
        self.view: ClipView | None = None
        self.last_latency_ms = float("nan")
        self._filter_clips()
        if clip_id is not None:
            self.clip_pick.value = clip_id
        self.slider.observe(self._on_frame, names="value")
        self.rate.observe(
            lambda c: setattr(self.play, "interval", int(1000 / max(c["new"], 1))), names="value"
        )
        for n, s in self.thresholds.items():
            s.observe(lambda c, n=n: self._on_threshold(n, c["new"]), names="value")
        self.filter_pick.observe(lambda c: self._filter_clips(), names="value")
        self.clip_pick.observe(lambda c: self.load(c["new"]) if c["new"] else None, names="value")
        self._keyboard()
        controls = W.HBox([self.play, self.rate, self.label])
        super().__init__(
            [
                W.HBox([self.filter_pick, self.clip_pick]),
                W.HBox(
                    [
                        W.VBox([self.image, self.slider, controls]),
                        W.VBox(list(self.thresholds.values()) + self.jumps),
                    ]
                ),
                self.timeline,
            ]
        )
        if self.clip_pick.value:
            self.load(self.clip_pick.value)

    # ---------------------------------------------------------------------------- events
    def _keyboard(self) -> None:
        try:
            from ipyevents import Event
        except ImportError:  # the slider still takes arrow keys when focused
            return
        self._events = Event(
            source=self.image, watched_events=["keydown"], prevent_default_action=True
        )
        self._events.on_dom_event(self._on_key)

    def _on_key(self, event: dict) -> None:
        step = {"ArrowRight": 1, "ArrowLeft": -1, "PageDown": 10, "PageUp": -10}.get(
            event.get("key")
        )
        if step is not None:
            self.step(step)

    def step(self, k: int) -> None:
        """Move ``k`` frames (clamped to the clip)."""
        self.slider.value = int(np.clip(self.slider.value + k, 0, self.slider.max))

    def jump(self, name: str, kind: str) -> None:
        """Go to the model's next miss (``kind='miss'``) or false positive (``'fp'``)."""
        if self.view is None:
            return
        f = self.view.next_event(name, kind, self.slider.value)
        if f is not None:
            self.slider.value = f

    def _filter_clips(self) -> None:
        rule = self.filters[self.filter_pick.value]
        ids = [r["clip_id"] for _, r in self.outcomes.iterrows() if rule(r)]
        self.clip_pick.options = ids
        if ids and self.clip_pick.value not in ids:
            self.clip_pick.value = ids[0]

    def _on_threshold(self, name: str, value: float) -> None:
        if self.view is not None:
            self.view.thresholds[name] = value
            self.show(self.slider.value)

    def _on_frame(self, change) -> None:
        self.show(change["new"])

    # --------------------------------------------------------------------------- drawing
    def load(self, clip_id: str) -> None:
        """Show a clip: decode and pre-encode its frames, draw its timeline."""
        self.view = ClipView(
            self.study,
            clip_id,
            self.detections,
            {n: s.value for n, s in self.thresholds.items()},
            hit=self.hit,
        )
        self.view.preencode()
        self.slider.max = self.play.max = max(self.view.n - 1, 0)
        self.rate.value = round(self.view.fps)
        self._draw_timeline()
        self.slider.value = 0
        self.show(0)

    def _draw_timeline(self) -> None:
        v = self.view
        x = np.arange(v.n)
        with self.timeline.batch_update():
            self.timeline.data = []
            self.timeline.add_bar(
                x=x,
                y=(v.visibility() > 0).astype(float),
                name="lesion visible",
                marker_color=rgba(GT_COLOR, 0.25),
                hoverinfo="skip",
                width=1.0,
            )
            for n in self.names:
                self.timeline.add_scatter(
                    x=x,
                    y=v.top_scores(n),
                    mode="lines",
                    name=f"{n} top score",
                    line=dict(color=v.colors[n], width=2),
                )
            self.timeline.layout.shapes = [
                dict(
                    type="line", x0=0, x1=0, y0=0, y1=1, yref="y", line=dict(color="black", width=2)
                )
            ]
            self.timeline.update_layout(
                height=230,
                width=760,
                margin=dict(l=50, r=10, t=30, b=40),
                title=f"{v.clip_id}: top score per frame (green: lesion in view)",
                xaxis_title="frame",
                yaxis=dict(range=[0, 1.02], title="score"),
                template="simple_white",
                bargap=0,
                showlegend=True,
            )
        for trace in self.timeline.data:
            trace.on_click(self._on_timeline_click)

    def _on_timeline_click(self, trace, points, state) -> None:
        if points.xs:
            self.slider.value = int(round(points.xs[0]))

    def show(self, i: int) -> float:
        """Display frame ``i``; returns the kernel-side latency in milliseconds."""
        if self.view is None:
            return float("nan")
        t = time.perf_counter()
        self.image.value = self.view.render(i)
        seconds = i / self.view.fps
        n_gt = int(self.view.visibility()[i])
        self.label.value = (
            f"<b>frame {i + 1} / {self.view.n}</b> &nbsp; {seconds:5.2f} s &nbsp; "
            f"{'lesion in view' if n_gt else 'no lesion'}"
        )
        if self.timeline.layout.shapes:
            self.timeline.layout.shapes[0].update(x0=i, x1=i)
        self.last_latency_ms = (time.perf_counter() - t) * 1000
        return self.last_latency_ms
