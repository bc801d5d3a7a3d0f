"""Building blocks: the shared convolutional backbone."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    """Convolution, batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """Two 3x3 convolutions with a skip connection."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(x + body(x))``."""
        return self.act(x + self.body(x))


class Backbone(nn.Module):
    """Residual encoder with a small feature pyramid: strides 4, 8 and 16, fused back (top-down,
    FPN-style) to one stride-4 feature map.

    Parameters
    ----------
    width : int
        Channels at stride 4; strides 8 and 16 use 2x and 4x.
    blocks : tuple of int
        Residual blocks (two 3x3 convolutions with a skip) at strides 4, 8 and 16.
    """

    stride = 4

    def __init__(self, width: int = 24, blocks: tuple[int, int, int] = (0, 1, 1)):
        super().__init__()
        w = width
        b4, b8, b16 = blocks
        self.stem = nn.Sequential(
            conv_bn(1, w // 2, 2), conv_bn(w // 2, w, 2), *[Residual(w) for _ in range(b4)]
        )  # /4
        self.s8 = nn.Sequential(conv_bn(w, 2 * w, 2), *[Residual(2 * w) for _ in range(b8)])
        self.s16 = nn.Sequential(conv_bn(2 * w, 4 * w, 2), *[Residual(4 * w) for _ in range(b16)])
        self.lat16 = nn.Conv2d(4 * w, w, 1)
        self.lat8 = nn.Conv2d(2 * w, w, 1)
        self.lat4 = nn.Conv2d(w, w, 1)
        self.fuse = conv_bn(w, w)
        self.out_channels = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stride-4 features ``(n, width, H/4, W/4)`` of frames ``(n, 1, H, W)``."""
        c4 = self.stem(x)
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        p = self.lat16(c16)
        p = nn.functional.interpolate(p, size=c8.shape[-2:], mode="nearest") + self.lat8(c8)
        p = nn.functional.interpolate(p, size=c4.shape[-2:], mode="nearest") + self.lat4(c4)
        return self.fuse(p)
