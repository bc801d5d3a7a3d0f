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
        self.backbone = Backbone(cfg.width)
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
    """Causal attention over a window of per-frame feature maps."""

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
        """Attend from query ``q (n, e, h, w)`` over ``feats (n, k, c, h, w)``, ``keys (n, k, e, h, w)``.

        ``valid (n, k)`` marks real (not padded) past frames; index 0 is the current frame.
        """
        logits = (keys * q[:, None]).sum(2) * self.scale + self.offset_bias[: feats.shape[1]].view(
            1, -1, 1, 1
        )
        logits = logits.masked_fill(~valid[:, :, None, None], float("-inf"))
        w = torch.softmax(logits, dim=1)  # (n, k, h, w)
        agg = (w[:, :, None] * feats).sum(1)
        n_valid = valid.sum(1).clamp(min=1).view(-1, 1, 1, 1).float()
        mean = (feats * valid[:, :, None, None, None]).sum(1) / n_valid
        return self.fuse(torch.cat([feats[:, 0], agg, feats[:, 0] - mean], 1))


class SequenceDetector(FrameDetector):
    """Sequence detector: shared backbone, causal temporal attention, same head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.temporal = TemporalAttention(cfg.width, cfg.window, cfg.embed)

    def _windows(self, f: torch.Tensor, k: torch.Tensor, t: int):
        """Stack, for every time step, the current and previous window-1 frames (causal)."""
        b = f.shape[0]
        win = self.cfg.window
        idx = torch.arange(t)[:, None] - torch.arange(win)[None, :]  # (t, win): t, t-1, ...
        valid = idx >= 0
        idx = idx.clamp(min=0)
        fw = f[:, idx]  # (b, t, win, c, h, w)
        kw = k[:, idx]
        return fw.flatten(0, 1), kw.flatten(0, 1), valid[None].expand(b, -1, -1).flatten(0, 1)

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """``clips``: ``(b, t, 1, H, W)``; each frame's features computed once, every frame
        attended over its own causal window; outputs ``(b*t, ...)``."""
        b, t = clips.shape[:2]
        f = self.features(clips.flatten(0, 1))
        keys = self.temporal.key(f)
        q = self.temporal.query(f)
        f5 = f.view(b, t, *f.shape[1:])
        k5 = keys.view(b, t, *keys.shape[1:])
        fw, kw, valid = self._windows(f5, k5, t)
        fused = self.temporal.aggregate(fw, kw, q, valid)
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
        pos = past + torch.arange(n)
        idx = pos[:, None] - torch.arange(win)[None, :]
        valid = idx >= 0
        idx = idx.clamp(min=0)
        fused = self.temporal.aggregate(allf[idx], allk[idx], q, valid)
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
