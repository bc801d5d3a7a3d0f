"""Everything the scrubbers show about one clip, computed once: frames, boxes, scores, outcomes.

Frames are decoded once (cropped to the B-mode image, so burned-in patient text is not shown)
and pre-encoded as JPEG; a frame with overlays is drawn with numpy and encoded on demand, and
kept in a small cache, so changing frames costs a few milliseconds in the kernel.

Marks are labelled hit or false by :func:`usbkit.evaluation.matching.match` under the run's
hit rule, the same call the evaluation counts with.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from usbkit.evaluation.matching import HitRule, match
from usbkit.io.clip import ReaderSettings, clamp_boxes, open_clip
from usbkit.style import GT_COLOR, model_colors, rgb

BOX = ["x0", "y0", "x1", "y1"]


@dataclass
class Marks:
    """Per-frame boxes of one source, in crop pixels.

    Attributes
    ----------
    frame : ndarray of int
    boxes : ndarray, shape (n, 4)
    score : ndarray of float
    hit : ndarray of bool
        For detections: the mark hits a ground-truth box of its frame (run's hit rule).
        For ground-truth boxes: always True.
    """

    frame: np.ndarray
    boxes: np.ndarray
    score: np.ndarray
    hit: np.ndarray


class ClipView:
    """Data behind a scrubber for one clip of a study.

    Parameters
    ----------
    study : Study
        The study holding the clip.
    clip_id : str
        Which clip.
    detections : dict of str to DataFrame
        Each model's detections (any clips; this clip's rows are used).
    thresholds : dict of str to float, optional
        Initial score threshold per model (default 0.5).
    hit : str or HitRule
        The run's hit rule (``results["hit"]``), by which marks are labelled hit or false.
    jpeg_quality : int
        JPEG quality of the rendered frames.
    """

    def __init__(
        self,
        study,
        clip_id: str,
        detections: dict[str, pd.DataFrame],
        thresholds: dict[str, float] | None = None,
        hit: str | HitRule = "center",
        jpeg_quality: int = 85,
    ):
        self.study, self.clip_id, self.hit = study, clip_id, hit
        self.clip = open_clip(
            study.clip_path(clip_id), ReaderSettings(), fps=study.clip_fps(clip_id)
        )
        self.n = len(self.clip)
        self.fps = self.clip.fps
        self.quality = jpeg_quality
        gt = study.boxes(clip_id).reset_index(drop=True)
        self.gt = Marks(
            gt["frame"].to_numpy(int),
            self.clip.to_crop(gt[BOX].to_numpy(float)),
            np.ones(len(gt)),
            np.ones(len(gt), bool),
        )
        self.gt_lesion = gt["lesion_id"].to_numpy()
        self.models: dict[str, Marks] = {}
        #: per model: the best score of a detection hitting each ground-truth box
        self.box_rating: dict[str, np.ndarray] = {}
        self.colors = model_colors(list(detections))
        for name, det in detections.items():
            d = det.loc[det["clip_id"] == clip_id].reset_index(drop=True)
            m = match(gt, d, hit)
            self.models[name] = Marks(
                d["frame"].to_numpy(int),
                self.clip.to_crop(d[BOX].to_numpy(float)),
                d["score"].to_numpy(float),
                m.det_hit,
            )
            self.box_rating[name] = m.box_rating
        self.thresholds = {n: 0.5 for n in self.models} | (thresholds or {})
        self._base: dict[int, np.ndarray] = {}
        self._jpeg: OrderedDict = OrderedDict()

    # ------------------------------------------------------------------ per-frame series
    def visibility(self) -> np.ndarray:
        """Number of lesion boxes on each frame (0 = no visible lesion)."""
        return np.bincount(self.gt.frame, minlength=self.n)[: self.n]

    def top_scores(self, name: str) -> np.ndarray:
        """The model's highest detection score on each frame (0 where none)."""
        m = self.models[name]
        top = np.zeros(self.n)
        np.maximum.at(top, m.frame[m.frame < self.n], m.score[m.frame < self.n])
        return top

    def events(self, name: str, threshold: float | None = None) -> dict[str, np.ndarray]:
        """Frames with a miss (a lesion box no mark at or above threshold hits) and with a
        false positive (a mark at or above threshold that hits no box)."""
        thr = self.thresholds[name] if threshold is None else threshold
        m = self.models[name]
        fp_frames = np.unique(m.frame[(m.score >= thr) & ~m.hit])
        missed = ~(self.box_rating[name] >= thr)
        return {"miss": np.unique(self.gt.frame[missed]).astype(int), "fp": fp_frames.astype(int)}

    def next_event(self, name: str, kind: str, current: int) -> int | None:
        """The next frame after ``current`` with a ``miss`` or ``fp`` of a model (wrapping)."""
        frames = self.events(name)[kind]
        if not len(frames):
            return None
        later = frames[frames > current]
        return int(later[0] if len(later) else frames[0])

    # --------------------------------------------------------------------------- drawing
    def base(self, i: int) -> np.ndarray:
        """Frame ``i`` as an RGB array without overlays (decoded once, kept)."""
        if i not in self._base:
            g = np.asarray(self.clip[i])
            self._base[i] = np.repeat(g[:, :, None], 3, axis=2)
        return self._base[i]

    def visible_marks(self, i: int) -> list[tuple[np.ndarray, tuple, bool]]:
        """(box, colour, dashed) of everything drawn on frame ``i``."""
        green = rgb(GT_COLOR)
        out = [(b, green, True) for b in self.gt.boxes[self.gt.frame == i]]
        for name, m in self.models.items():
            sel = (m.frame == i) & (m.score >= self.thresholds[name])
            out += [(b, rgb(self.colors[name]), False) for b in m.boxes[sel]]
        return out

    def render(self, i: int) -> bytes:
        """JPEG bytes of frame ``i`` with the ground truth and the marks above threshold."""
        key = (i, tuple(sorted(self.thresholds.items())))
        if key in self._jpeg:
            self._jpeg.move_to_end(key)
            return self._jpeg[key]
        img = self.base(i)
        marks = self.visible_marks(i)
        if marks:
            img = img.copy()
            h, w = img.shape[:2]
            for box, color, dashed in marks:
                x0, y0, x1, y1 = clamp_boxes(box, w - 1, h - 1)[0].round().astype(int)
                for t in range(2 if not dashed else 1):
                    xs = np.arange(x0, x1 + 1)
                    ys = np.arange(y0, y1 + 1)
                    if dashed:
                        xs, ys = xs[(xs // 3) % 2 == 0], ys[(ys // 3) % 2 == 0]
                    img[min(y0 + t, h - 1), xs] = color
                    img[max(y1 - t, 0), xs] = color
                    img[ys, min(x0 + t, w - 1)] = color
                    img[ys, max(x1 - t, 0)] = color
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=self.quality)
        data = buf.getvalue()
        self._jpeg[key] = data
        if len(self._jpeg) > 512:
            self._jpeg.popitem(last=False)
        return data

    def preencode(self) -> None:
        """Decode and encode every frame once up front (what makes scrubbing instant)."""
        for i in range(self.n):
            self.render(i)


def outcome_filters(names: list[str]) -> dict[str, callable]:
    """Named clip filters for the clip picker, judged per lesion.

    Each filter takes a row of :func:`usbkit.evaluation.results.clip_outcomes`. For example
    "sequence found a lesion single frame missed" keeps a clip only when one and the same
    lesion was found by the sequence model and missed by the single-frame model.
    """
    filters = {"all clips": lambda r: True}
    if len(names) >= 2:
        a, b = names[0], names[1]
        filters[f"{b} found a lesion {a} missed"] = lambda r: r[f"{b} found, {a} missed"] > 0
        filters[f"{a} found a lesion {b} missed"] = lambda r: r[f"{a} found, {b} missed"] > 0
    for n in names:
        filters[f"{n} missed a lesion"] = lambda r, n=n: r[f"{n}: missed"] > 0
        filters[f"{n} has false positives"] = lambda r, n=n: r[f"{n}: FP marks"] > 0
    return filters
