"""The two detectors of the study.

``FrameDetector`` sees one frame. ``SequenceDetector`` shares the same backbone and head and
adds temporal context: each frame's backbone features are computed once; a causal attention
over the features of the last ``window`` frames (per-pixel similarity of small embeddings,
plus a learned bias per time offset) aggregates them, and the head sees the current features
fused with that aggregate. A mass persists over many frames while fat-lobule mimics and
artifacts last only a few, which is what the temporal context lets the model use.
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

    @torch.no_grad()
    def stream(self, frames: torch.Tensor, state=None):
        """Detect on consecutive frames ``(n, 1, H, W)``; returns outputs and the new state."""
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


def _pad_front(x: torch.Tensor, count: int, dim: int) -> torch.Tensor:
    """``x`` with ``count`` zero frames put in front along ``dim``."""
    if count <= 0:
        return x
    shape = list(x.shape)
    shape[dim] = count
    return torch.cat([x.new_zeros(shape), x], dim)


class SequenceDetector(FrameDetector):
    """Sequence detector: shared backbone, causal temporal attention, same head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.temporal = TemporalAttention(cfg.width, cfg.window, cfg.embed)

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """``clips``: ``(b, t, 1, H, W)``; each frame's features computed once, every frame
        attended over its own causal window; outputs ``(b*t, ...)``."""
        b, t = clips.shape[:2]
        win = self.cfg.window
        f = self.features(clips.flatten(0, 1))
        keys = self.temporal.key(f)
        q = self.temporal.query(f)
        f5 = _pad_front(f.view(b, t, *f.shape[1:]), win - 1, 1)
        k5 = _pad_front(keys.view(b, t, *keys.shape[1:]), win - 1, 1)
        valid = (torch.arange(t)[:, None] - torch.arange(win)[None, :]) >= 0
        fused = self.temporal.aggregate(f5, k5, q.view(b, t, *q.shape[1:]), valid.to(f.device))
        return self.head(fused)

    @torch.no_grad()
    def stream(self, frames: torch.Tensor, state=None):
        """Causal streaming: ``state`` carries the last window-1 frames' features and keys,
        so every frame's backbone runs exactly once however the clip is chunked."""
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
        pos = past + torch.arange(n)
        valid = (pos[:, None] - torch.arange(win)[None, :]) >= 0
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
