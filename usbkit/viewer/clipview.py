"""Everything the scrubbers show about one clip, computed once: frames, boxes, scores, outcomes.

Frames are decoded once (cropped to the B-mode image, so burned-in patient text is not shown)
and pre-encoded as JPEG; a frame with overlays is drawn with numpy and encoded on demand, and
kept in a small cache, so changing frames costs a few milliseconds in the kernel.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from usbkit.evaluation.froc import hits
from usbkit.io.clip import ReaderSettings, open_clip

GT_COLOR = (0, 200, 83)
MODEL_COLORS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167)]


def _hex(c) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


@dataclass
class Marks:
    """Per-frame boxes of one source, in crop pixels."""

    frame: np.ndarray
    boxes: np.ndarray
    score: np.ndarray
    hit: np.ndarray  # detection hits a ground-truth box of its frame


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
    """

    def __init__(
        self,
        study,
        clip_id: str,
        detections: dict[str, pd.DataFrame],
        thresholds: dict[str, float] | None = None,
        jpeg_quality: int = 85,
    ):
        self.study, self.clip_id = study, clip_id
        self.clip = open_clip(
            study.clip_path(clip_id), ReaderSettings(), fps=study.clip_fps(clip_id)
        )
        self.n = len(self.clip)
        self.fps = self.clip.fps
        self.quality = jpeg_quality
        gt = study.boxes(clip_id)
        self.gt = Marks(
            gt["frame"].to_numpy(int),
            self.clip.to_crop(gt[["x0", "y0", "x1", "y1"]].to_numpy(float)),
            np.ones(len(gt)),
            np.ones(len(gt), bool),
        )
        self.gt_lesion = gt["lesion_id"].to_numpy()
        gt_by_frame = {
            int(f): g[["x0", "y0", "x1", "y1"]].to_numpy(float) for f, g in gt.groupby("frame")
        }
        self.models: dict[str, Marks] = {}
        self.colors = {}
        for k, (name, det) in enumerate(detections.items()):
            d = det.loc[det["clip_id"] == clip_id]
            boxes = d[["x0", "y0", "x1", "y1"]].to_numpy(float)
            frames = d["frame"].to_numpy(int)
            hit = np.zeros(len(d), bool)
            for f, g in gt_by_frame.items():
                sel = np.flatnonzero(frames == f)
                if len(sel):
                    hit[sel] = hits(boxes[sel][:, None, :], g[None, :, :]).any(axis=1)
            self.models[name] = Marks(
                frames, self.clip.to_crop(boxes), d["score"].to_numpy(float), hit
            )
            self.colors[name] = MODEL_COLORS[k % len(MODEL_COLORS)]
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
        """Frames with a miss (a lesion box no mark above threshold hits) and with an FP."""
        thr = self.thresholds[name] if threshold is None else threshold
        m = self.models[name]
        keep = m.score >= thr
        fp_frames = np.unique(m.frame[keep & ~m.hit])
        miss = []
        for f in np.unique(self.gt.frame):
            g = self.gt.boxes[self.gt.frame == f]
            d = m.boxes[keep & (m.frame == f)]
            for box in g:
                if not len(d) or not hits(d, np.repeat(box[None], len(d), 0)).any():
                    miss.append(f)
                    break
        return {"miss": np.asarray(miss, int), "fp": fp_frames.astype(int)}

    def next_event(self, name: str, kind: str, current: int) -> int | None:
        """The next frame after ``current`` with a ``miss`` or ``fp`` of a model (wrapping)."""
        frames = self.events(name)[kind]
        if not len(frames):
            return None
        later = frames[frames > current]
        return int(later[0] if len(later) else frames[0])

    # --------------------------------------------------------------------------- drawing
    def base(self, i: int) -> np.ndarray:
        if i not in self._base:
            g = np.asarray(self.clip[i])
            self._base[i] = np.repeat(g[:, :, None], 3, axis=2)
        return self._base[i]

    def visible_marks(self, i: int) -> list[tuple[np.ndarray, tuple, bool]]:
        """(box, colour, dashed) of everything drawn on frame ``i``."""
        out = [(b, GT_COLOR, True) for b in self.gt.boxes[self.gt.frame == i]]
        for name, m in self.models.items():
            sel = (m.frame == i) & (m.score >= self.thresholds[name])
            out += [(b, self.colors[name], False) for b in m.boxes[sel]]
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
                x0, y0, x1, y1 = (int(round(v)) for v in box)
                x0, x1 = max(0, min(x0, w - 1)), max(0, min(x1, w - 1))
                y0, y1 = max(0, min(y0, h - 1)), max(0, min(y1, h - 1))
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


def clip_outcomes(
    study,
    detections: dict[str, pd.DataFrame],
    thresholds: dict[str, float],
    split: str | None = None,
) -> pd.DataFrame:
    """Per clip and model: lesions found at the threshold, lesions missed, FP detections."""
    from usbkit.evaluation.froc import rate_scans

    clips = study.clips(split)[["clip_id", "patient_id"]]
    ids = set(clips["clip_id"])
    gt = study.annotations.loc[study.annotations["clip_id"].isin(ids)]
    out = pd.DataFrame({"clip_id": sorted(ids)}).set_index("clip_id")
    for name, det in detections.items():
        d = det.loc[det["clip_id"].isin(ids)]
        r = rate_scans(gt, d, clips, n_frames=1)
        found = r.lesions.assign(found=r.lesions["rating"] >= thresholds[name])
        out[f"{name}: found"] = found.groupby("clip_id")["found"].sum()
        out[f"{name}: missed"] = (~found["found"]).groupby(found["clip_id"]).sum()
        out[f"{name}: FP marks"] = (
            (r.tracks["score"] >= thresholds[name]).groupby(r.tracks["clip_id"]).sum()
        )
    return out.fillna(0).astype(int).reset_index()


def outcome_filters(names: list[str]) -> dict[str, callable]:
    """Named clip filters for the clip picker, e.g. 'sequence found it, single frame did not'."""
    filters = {"all clips": lambda r: True}
    if len(names) >= 2:
        a, b = names[0], names[1]
        filters[f"{b} found it, {a} did not"] = lambda r: (
            r[f"{b}: found"] > 0 and r[f"{a}: missed"] > 0
        )
        filters[f"{a} found it, {b} did not"] = lambda r: (
            r[f"{a}: found"] > 0 and r[f"{b}: missed"] > 0
        )
    for n in names:
        filters[f"{n} missed a lesion"] = lambda r, n=n: r[f"{n}: missed"] > 0
        filters[f"{n} has false positives"] = lambda r, n=n: r[f"{n}: FP marks"] > 0
    return filters
