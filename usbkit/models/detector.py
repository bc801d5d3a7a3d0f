"""The two detectors of the study.

``FrameDetector`` sees one frame. ``SequenceDetector`` is the single-frame detector with a
temporal part added. Its default temporal part (``ModelConfig.temporal = 'residual'``,
:class:`TemporalResidual`) adds to each frame's centre-heatmap logits a correction computed
from the neighbouring frames: for each neighbour (``window - 1`` before, and as many after
with ``context='both'``), how strongly the single-frame head marked the same place there
(its heat max-pooled over a few cells: the probe and the tissue move) and how similar the
tissue there looks (the best of a small local correlation of learned embeddings). Its last
layer starts at zero, so training starts exactly at the single-frame model and the temporal
part has to earn every change it makes. A mass persists over many frames and grows and
shrinks as the scan plane passes it, while fat-lobule mimics and artifacts last a few frames:
that is what the temporal part can use.

The earlier temporal part (``temporal = 'attention'``, :class:`TemporalAttention`, causal
attention over the last frames' features) is kept so that checkpoints trained with it still
load and can be compared.

Every sequence model can be run with its temporal context cut (``cut_context = True``:
each frame read as if it had no neighbours), the study's temporal ablation.
"""

from __future__ import annotations

import torch
from torch import nn

from usbkit.models.centernet import CenterHead, decode
from usbkit.models.config import ModelConfig
from usbkit.models.layers import Backbone


class FrameDetector(nn.Module):
    """Single-frame detector: backbone + CenterNet head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg.width, tuple(cfg.blocks))
        self.head = CenterHead(cfg.width)
        self.stride = Backbone.stride

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of frames ``(n, 1, H, W)`` in [0, 1]."""
        return self.backbone(x)

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """``clips``: ``(b, t, 1, H, W)``; outputs ``(b*t, ...)`` per frame."""
        b, t = clips.shape[:2]
        return self.head(self.features(clips.flatten(0, 1)))

    #: frames after the current one that a frame's output waits for when streaming
    lookahead = 0

    @torch.no_grad()
    def stream(self, frames: torch.Tensor, state=None, final: bool = True):
        """Detect on consecutive frames ``(n, 1, H, W)``; returns outputs and the new state.

        A model that looks ahead (:attr:`lookahead` > 0) returns the outputs of the frames
        whose following frames it has seen, in order; ``final=True`` (the clip's last chunk)
        returns the rest. The single-frame model returns every frame at once."""
        return self.head(self.features(frames)), None

    def detect(self, out, **kw):
        """Decode head outputs into ``(boxes, scores)`` per frame (peaks + NMS), input pixels."""
        return decode(out, self.stride, **kw)


class TemporalAttention(nn.Module):
    """Causal attention over a window of per-frame feature maps.

    For every frame and output cell, the current frame's query is compared with the keys of
    the same cell in the current and the ``window - 1`` previous frames (scaled dot product
    plus a learned bias per time offset); the softmax of those similarities weights the
    frames' features. The head then sees the current features, that aggregate, and the
    current features minus the window's mean (what changed).
    """

    def __init__(self, c: int, window: int, embed: int):
        super().__init__()
        self.window = window
        self.query = nn.Conv2d(c, embed, 1)
        self.key = nn.Conv2d(c, embed, 1)
        self.offset_bias = nn.Parameter(torch.zeros(window))
        self.fuse = nn.Sequential(nn.Conv2d(3 * c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.scale = embed**-0.5

    def aggregate(
        self, feats: torch.Tensor, keys: torch.Tensor, q: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """Fuse each of ``n`` frames with its causal window.

        ``feats (..., window - 1 + n, c, h, w)`` and ``keys (..., window - 1 + n, e, h, w)``
        are the frames in time order, with ``window - 1`` earlier (or padding) frames in
        front, so that frame ``i``'s ``j``-th predecessor is row ``window - 1 + i - j``;
        ``q (..., n, e, h, w)`` are the frames' queries and ``valid (n, window)`` says which
        predecessors exist. Each offset is a slice of the sequence (no window is copied out),
        which keeps the cost per frame close to the single-frame model's. Returns the fused
        features ``(prod(...) * n, c, h, w)``.
        """
        win, n = self.window, q.shape[-4]
        logits = []
        for j in range(win):
            kj = keys.narrow(-4, win - 1 - j, n)
            lj = (kj * q).sum(-3) * self.scale + self.offset_bias[j]
            logits.append(lj.masked_fill(~valid[:, j].view(n, 1, 1), float("-inf")))
        weights = torch.softmax(torch.stack(logits), 0)  # (win, ..., n, h, w)
        agg = weights[0].unsqueeze(-3) * feats.narrow(-4, win - 1, n)
        for j in range(1, win):
            agg = agg.addcmul(weights[j].unsqueeze(-3), feats.narrow(-4, win - 1 - j, n))
        # the window's sum by one running sum (the padding in front is zeros, so it adds nothing)
        run = torch.cat([torch.zeros_like(feats.narrow(-4, 0, 1)), feats.cumsum(-4)], -4)
        total = run.narrow(-4, win, n) - run.narrow(-4, 0, n)
        mean = total / valid.sum(1).clamp(min=1).view(n, 1, 1, 1).to(total.dtype)
        cur = feats.narrow(-4, win - 1, n)
        x = torch.cat([cur, agg, cur - mean], -3)
        return self.fuse(x.reshape(-1, *x.shape[-3:]))


class TemporalResidual(nn.Module):
    """A correction of each frame's centre-heatmap logits from its neighbouring frames.

    Neighbours are the ``before = window - 1`` previous frames and, with ``context='both'``,
    the ``after = window - 1`` following ones (stored cine read after the scan); with
    ``context='causal'`` only the previous ones (live use). For the current frame and each
    neighbour the correction network sees three maps on the output grid:

    - *mark*: the neighbour's single-frame heat (sigmoid of the logits) max-pooled over
      ``5 x 5`` cells (does the single-frame head mark this place there too? the pooling
      aligns a structure that moved by up to two cells);
    - *match*: the correlation of the current frame's tissue embedding with the
      neighbour's, averaged over the ``3 x 3`` cells around (does the same tissue continue
      there?);
    - *present*: 1 when the neighbour exists (inside the clip, and the context not cut).

    It also sees the current frame's own heat logits and a reduction of its features. A
    1 x 1 convolution, a 3 x 3 convolution and a 1 x 1 convolution whose weights start at
    zero turn these into the correction, so an untrained temporal part leaves the
    single-frame model unchanged.
    """

    def __init__(
        self, c: int, window: int, context: str, embed: int, compound: int = 0, hidden: int = 16
    ):
        super().__init__()
        self.before = window - 1
        self.after = window - 1 if context == "both" else 0
        self.offsets = [o for o in range(-self.before, self.after + 1) if o != 0]
        # the frames whose features are averaged (compounded) for the current one: ``compound``
        # on each side, or the ``2 * compound`` before it for a causal model
        self.compound = (compound, compound) if context == "both" else (2 * compound, 0)
        self.embed = nn.Conv2d(c, embed, 1)
        self.reduce = nn.Conv2d(c, 8, 1)
        n = len(self.offsets)
        self.net = nn.Sequential(
            nn.Conv2d(1 + 8 + 3 * n + (1 if compound else 0), hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def per_frame(self, f: torch.Tensor, heat: torch.Tensor) -> dict[str, torch.Tensor]:
        """What each frame contributes, as its own frame or as a neighbour: ``logit`` (the
        single-frame heat logits), ``reduced`` features, unit-length ``embedding``, its mean
        over the ``3 x 3`` cells ``around`` each cell, and the pooled single-frame ``mark``."""
        emb = nn.functional.normalize(self.embed(f), dim=1)
        around = nn.functional.avg_pool2d(emb, 3, stride=1, padding=1, count_include_pad=False)
        mark = nn.functional.max_pool2d(torch.sigmoid(heat), 5, stride=1, padding=2)
        out = {
            "logit": heat,
            "reduced": self.reduce(f),
            "embedding": emb,
            "around": around,
            "mark": mark,
        }
        if any(self.compound):
            out["features"] = f
        return out

    def compounded(self, seq: dict[str, torch.Tensor], pos: torch.Tensor, cut: bool, heat_fn):
        """The single-frame head's heat logits ``heat_fn`` on the mean of the features of the
        frames at rows ``pos`` and their compounding neighbours inside the sequence (only the
        frame itself when ``cut``)."""
        f = seq["features"]
        if cut:
            return heat_fn(f[pos])
        return heat_fn(window_mean(f, pos, *self.compound))

    def correct(
        self, seq: dict[str, torch.Tensor], pos: torch.Tensor, cut: bool = False, heat_fn=None
    ) -> torch.Tensor:
        """The heat-logit correction ``(len(pos), 1, h, w)`` of the frames at rows ``pos``
        of a sequence of per-frame tensors ``seq`` (consecutive frames, :meth:`per_frame`);
        a neighbour outside the sequence is absent, and so is every neighbour when ``cut``.
        ``heat_fn``: the single-frame head's heat branch, read on the compounded features
        (needed when the part compounds)."""
        n_seq = seq["logit"].shape[0]
        n = len(pos)
        if n == 0:
            return seq["logit"][:0]
        off = torch.tensor(self.offsets, dtype=torch.long)
        idx = pos[:, None] + off[None, :]  # (n, k)
        present = (idx >= 0) & (idx < n_seq)
        if cut:
            present &= False
        idx = idx.clamp(0, n_seq - 1)
        emb = seq["embedding"][pos]  # (n, e, h, w)
        h, w = emb.shape[-2:]
        match = (seq["around"][idx] * emb[:, None]).sum(2)  # (n, k, h, w)
        p = present.to(emb.dtype)[:, :, None, None]
        mark = seq["mark"][idx][:, :, 0] * p
        parts = [seq["logit"][pos], seq["reduced"][pos], mark, match * p, p.expand(-1, -1, h, w)]
        if any(self.compound):
            parts.append(self.compounded(seq, pos, cut, heat_fn))
        return self.net(torch.cat(parts, 1))


def window_mean(x: torch.Tensor, pos: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """The mean of the rows of ``x`` from ``before`` rows ahead of each row ``pos`` to ``after``
    rows after it, over the rows that exist (by one running sum over ``x``'s first dim)."""
    run = torch.cat([torch.zeros_like(x[:1]), x.cumsum(0)])
    lo = (pos - before).clamp(min=0)
    hi = (pos + after + 1).clamp(max=x.shape[0])
    return (run[hi] - run[lo]) / (hi - lo).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def _pad_front(x: torch.Tensor, count: int, dim: int) -> torch.Tensor:
    """``x`` with ``count`` zero frames put in front along ``dim``."""
    if count <= 0:
        return x
    shape = list(x.shape)
    shape[dim] = count
    return torch.cat([x.new_zeros(shape), x], dim)


class SequenceDetector(FrameDetector):
    """Sequence detector: the single-frame detector (shared backbone and head) plus a temporal
    part, :class:`TemporalResidual` (``cfg.temporal == 'residual'``) or the earlier
    :class:`TemporalAttention` (``'attention'``).

    ``cut_context``: when True, every frame is read as if it had no neighbours (the temporal
    ablation); the network is otherwise unchanged.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.cut_context = False
        if cfg.temporal == "attention":
            self.temporal = TemporalAttention(cfg.width, cfg.window, cfg.embed)
        else:
            self.temporal = TemporalResidual(
                cfg.width, cfg.window, cfg.context, cfg.embed, cfg.compound
            )

    @property
    def lookahead(self) -> int:  # noqa: D102 - documented on FrameDetector
        if self.cfg.temporal == "attention" or self.cut_context:
            return 0
        return self.temporal.after

    def freeze_single_frame(self) -> None:
        """Keep the single-frame part (backbone and head) as it is: only the temporal part
        learns; the frozen part stays in evaluation mode (its batch statistics fixed)."""
        for m in (self.backbone, self.head):
            m.requires_grad_(False)
        self._frozen = True
        self.train(self.training)

    def train(self, mode: bool = True):
        """As :meth:`torch.nn.Module.train`, leaving a frozen single-frame part in eval mode."""
        super().train(mode)
        if getattr(self, "_frozen", False):
            self.backbone.eval()
            self.head.eval()
        return self

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """``clips``: ``(b, t, 1, H, W)``; each frame's features computed once, every frame
        read with its neighbours inside the window; outputs ``(b*t, ...)``."""
        if self.cfg.temporal == "attention":
            return self._attention_forward(clips)
        b, t = clips.shape[:2]
        f = self.features(clips.flatten(0, 1))
        out = self.head(f)
        per = self.temporal.per_frame(f, out["heat"])
        per = {k: v.view(b, t, *v.shape[1:]) for k, v in per.items()}
        heat = torch.cat(
            [
                self.temporal.correct(
                    {k: v[i] for k, v in per.items()},
                    torch.arange(t),
                    self.cut_context,
                    self.head.heat,
                )
                for i in range(b)
            ]
        )
        return {**out, "heat": out["heat"] + heat}

    def _attention_forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cut_context:  # every frame a clip of its own
            clips = clips.flatten(0, 1)[:, None]
        b, t = clips.shape[:2]
        win = self.cfg.window
        f = self.features(clips.flatten(0, 1))
        keys = self.temporal.key(f)
        q = self.temporal.query(f)
        f5 = _pad_front(f.view(b, t, *f.shape[1:]), win - 1, 1)
        k5 = _pad_front(keys.view(b, t, *keys.shape[1:]), win - 1, 1)
        valid = self._attention_valid(torch.arange(t))
        fused = self.temporal.aggregate(f5, k5, q.view(b, t, *q.shape[1:]), valid.to(f.device))
        return self.head(fused)

    def _attention_valid(self, pos: torch.Tensor) -> torch.Tensor:
        return (pos[:, None] - torch.arange(self.cfg.window)[None, :]) >= 0

    @torch.no_grad()
    def stream(self, frames: torch.Tensor, state=None, final: bool = True):
        """Streaming: ``state`` carries what the next chunk needs of the earlier frames
        (their per-frame tensors; with context from both sides, also the frames still
        waiting for their following frames), so every frame's backbone runs exactly once
        however the clip is chunked. Returns the outputs of the frames now complete (all
        given frames for a causal model) and the new state."""
        if self.cfg.temporal == "attention":
            return self._attention_stream(frames, state)
        f = self.features(frames)
        out = self.head(f)
        new = {**out, **self.temporal.per_frame(f, out["heat"])}
        if state is None:
            state = {"first": 0, "emitted": 0, "frames": {k: v[:0] for k, v in new.items()}}
        buf = {k: torch.cat([state["frames"][k], v]) for k, v in new.items()}
        first, emitted = state["first"], state["emitted"]
        received = first + next(iter(buf.values())).shape[0]
        upto = received if final else max(emitted, received - self.lookahead)
        pos = torch.arange(emitted, upto) - first
        heat = self.temporal.correct(buf, pos, self.cut_context, self.head.heat)
        done = {k: buf[k][pos] for k in out}
        done["heat"] = done["heat"] + heat
        keep_from = max(0, upto - self.temporal.before) - first
        state = {
            "first": first + keep_from,
            "emitted": upto,
            "frames": {k: v[keep_from:].clone() for k, v in buf.items()},
        }
        return done, state

    def _attention_stream(self, frames: torch.Tensor, state=None):
        if self.cut_context:
            return self._attention_forward(frames[:, None]), None
        f = self.features(frames)
        keys = self.temporal.key(f)
        q = self.temporal.query(f)
        if state is not None:
            pf, pk = state
            allf, allk = torch.cat([pf, f]), torch.cat([pk, keys])
        else:
            allf, allk = f, keys
        past = allf.shape[0] - f.shape[0]
        win = self.cfg.window
        n = f.shape[0]
        pad = win - 1 - past
        valid = self._attention_valid(past + torch.arange(n))
        fused = self.temporal.aggregate(
            _pad_front(allf, pad, 0)[max(-pad, 0) :],
            _pad_front(allk, pad, 0)[max(-pad, 0) :],
            q,
            valid.to(f.device),
        )
        keep = win - 1
        new_state = (allf[-keep:].clone(), allk[-keep:].clone()) if keep > 0 else None
        return self.head(fused), new_state


def build_model(cfg: ModelConfig) -> FrameDetector:
    """The detector for ``cfg.kind``."""
    if cfg.kind == "frame":
        return FrameDetector(cfg)
    if cfg.kind == "sequence":
        return SequenceDetector(cfg)
    raise ValueError(f"unknown model kind {cfg.kind!r}")
