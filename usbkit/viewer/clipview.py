"""Everything the viewer shows about one clip, computed once: frames, boxes, scores, outcomes.

Frames are decoded once (cropped to the B-mode image, so burned-in patient text is never
shown) and encoded as JPEG; the ground truth and each model's marks go to the browser as data
(:meth:`ClipView.payload`), where the one front end (``assets/viewer.js``) draws them. Marks are
labelled hit or false by :func:`usbkit.evaluation.matching.match` under the run's hit rule, and
false-positive marks are grouped into tracks by the evaluation's own linker, so "next false
positive" steps from one counted false positive to the next.

On clips without annotations (a study, or the split shown, with no lesion annotated) no mark
is judged: there is no hit, miss or false positive to show, so the payload says
``"annotated": false``, the marks carry no hit label, and the tracks are the tracks of all
marks (what "next mark" steps through).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from usbkit.evaluation.froc import link_tracks
from usbkit.evaluation.matching import HitRule, match, parse_hit
from usbkit.io.clip import ReaderSettings, open_clip
from usbkit.style import model_colors

BOX = ["x0", "y0", "x1", "y1"]
#: Marks below this score are not sent to the viewer (its threshold sliders start here).
MIN_SHOWN_SCORE = 0.05


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
    """Data behind the viewer for one clip of a study.

    Parameters
    ----------
    study : Study
        The study holding the clip.
    clip_id : str
        Which clip.
    detections : dict of str to DataFrame
        Each model's detections (any clips; this clip's rows are used).
    thresholds : dict of str to float, optional
        Starting score threshold per model (default 0.5).
    hit : str or HitRule
        The run's hit rule (``results["hit"]``), by which marks are labelled hit or false.
    threshold_notes : dict of str to str, optional
        Where each starting threshold comes from, shown under its slider.
    min_score : float
        Marks below this score are left out.
    annotated : bool, optional
        Whether the clips shown are annotated (lesion boxes drawn where lesions are). Default:
        whether the study has any lesion annotated. When False no mark is judged: a clip
        with no rows in ``annotations.csv`` is then unannotated, not lesion-free.
    """

    def __init__(
        self,
        study,
        clip_id: str,
        detections: dict[str, pd.DataFrame],
        thresholds: dict[str, float] | None = None,
        hit: str | HitRule = "center",
        threshold_notes: dict[str, str] | None = None,
        min_score: float = MIN_SHOWN_SCORE,
        annotated: bool | None = None,
    ):
        self.study, self.clip_id, self.hit = study, clip_id, str(parse_hit(hit))
        #: whether marks are judged (hit, miss, false positive) against annotations
        self.annotated = study.has_lesions() if annotated is None else bool(annotated)
        self.clip = open_clip(
            study.clip_path(clip_id), ReaderSettings(), fps=study.clip_fps(clip_id)
        )
        self.n = len(self.clip)
        self.fps = self.clip.fps
        self.min_score = min_score
        gt = study.boxes(clip_id).reset_index(drop=True)
        self.gt = Marks(
            gt["frame"].to_numpy(int),
            self.clip.to_crop(gt[BOX].to_numpy(float)),
            np.ones(len(gt)),
            np.ones(len(gt), bool),
        )
        self.gt_lesion = gt["lesion_id"].astype(str).to_numpy()
        order = gt.groupby("lesion_id", sort=False)["frame"].min().sort_values(kind="stable")
        self.lesion_ids = [str(v) for v in order.index]
        self.models: dict[str, Marks] = {}
        #: per model: the best score of a detection hitting each ground-truth box
        self.box_rating: dict[str, np.ndarray] = {}
        self.colors = model_colors(list(detections))
        for name, det in detections.items():
            d = det.loc[det["clip_id"] == clip_id].reset_index(drop=True)
            m = match(gt, d, hit)
            self.box_rating[name] = m.box_rating
            keep = d["score"].to_numpy(float) >= min_score
            self.models[name] = Marks(
                d["frame"].to_numpy(int)[keep],
                self.clip.to_crop(d[BOX].to_numpy(float))[keep],
                d["score"].to_numpy(float)[keep],
                m.det_hit[keep],
            )
        self.thresholds = {n: 0.5 for n in self.models} | (thresholds or {})
        self.threshold_notes = threshold_notes or {}

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

    def lesion_ratings(self, name: str) -> list[float | None]:
        """Per lesion (in :attr:`lesion_ids` order): the best score of a mark hitting one of
        its boxes in this clip, or None when none does (the lesion rating of
        docs/metrics.md#lesion-rating)."""
        r = pd.Series(self.box_rating[name]).groupby(self.gt_lesion).max()
        return [None if not np.isfinite(r[i]) else float(r[i]) for i in self.lesion_ids]

    def fp_tracks(self, name: str) -> list[dict]:
        """The model's false-positive marks linked into tracks by the evaluation's linker:
        ``{"score", "frames", "scores", "marks"}`` per track (``marks``: indices into the
        model's marks). On an unannotated clip: the tracks of all its marks."""
        m = self.models[name]
        fp = np.flatnonzero(~m.hit) if self.annotated else np.arange(len(m.score))
        if not len(fp):
            return []
        tid = link_tracks(m.frame[fp], m.score[fp], m.boxes[fp])
        tracks = []
        for t in np.unique(tid):
            k = fp[tid == t]
            tracks.append(
                {
                    "score": round(float(m.score[k].max()), 4),
                    "frames": m.frame[k].astype(int).tolist(),
                    "scores": [round(float(v), 4) for v in m.score[k]],
                    "marks": k.astype(int).tolist(),
                }
            )
        return tracks

    def events(self, name: str, threshold: float | None = None) -> dict[str, np.ndarray]:
        """Frames with a miss (a lesion box no mark at or above threshold hits) and with a
        false positive (a mark at or above threshold that hits no box); on an unannotated
        clip, only the frames with a mark at or above threshold (``{"mark": ...}``)."""
        thr = self.thresholds[name] if threshold is None else threshold
        m = self.models[name]
        if not self.annotated:
            return {"mark": np.unique(m.frame[m.score >= thr]).astype(int)}
        fp_frames = np.unique(m.frame[(m.score >= thr) & ~m.hit])
        missed = ~(self.box_rating[name] >= thr)
        return {"miss": np.unique(self.gt.frame[missed]).astype(int), "fp": fp_frames.astype(int)}

    # ------------------------------------------------------------------ what the browser gets
    def encoded_frames(self, quality: int = 80, fmt: str = "JPEG") -> tuple[bytes, list[int]]:
        """All frames as JPEG (or ``fmt``, e.g. ``"WEBP"``), concatenated, with the ``n + 1``
        byte offsets."""
        chunks, offsets = [], [0]
        for i in range(self.n):
            buf = io.BytesIO()
            Image.fromarray(np.asarray(self.clip[i])).save(buf, format=fmt, quality=quality)
            chunks.append(buf.getvalue())
            offsets.append(offsets[-1] + len(chunks[-1]))
        return b"".join(chunks), offsets

    def payload(self) -> dict:
        """The clip as data for the viewer front end (see ``assets/viewer.js``)."""

        def boxes(a):
            return [[round(float(v), 1) for v in b] for b in a]

        lesions = []
        for lid in self.lesion_ids:
            sel = self.gt_lesion == lid
            order = np.argsort(self.gt.frame[sel], kind="stable")
            lesions.append(
                {
                    "id": lid,
                    "frames": self.gt.frame[sel][order].astype(int).tolist(),
                    "boxes": boxes(self.gt.boxes[sel][order]),
                }
            )
        models = []
        for name, m in self.models.items():
            models.append(
                {
                    "name": name,
                    "color": self.colors[name],
                    "threshold": float(min(self.thresholds[name], 1.0)),
                    "threshold_note": self.threshold_notes.get(name, ""),
                    "marks": {
                        "frame": m.frame.astype(int).tolist(),
                        "box": boxes(m.boxes),
                        "score": [round(float(v), 4) for v in m.score],
                        # no annotations: no mark is a hit or a false positive
                        "hit": m.hit.astype(int).tolist() if self.annotated else None,
                    },
                    "ratings": self.lesion_ratings(name),
                    "tracks": self.fp_tracks(name),
                }
            )
        return {
            "clip_id": self.clip_id,
            "n": self.n,
            "fps": float(self.fps),
            "width": self.clip.width,
            "height": self.clip.height,
            "hit_rule": self.hit,
            "annotated": self.annotated,
            "min_score": self.min_score,
            "lesions": lesions,
            "models": models,
        }


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
