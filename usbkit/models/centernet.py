"""CenterNet-style anchor-free head: centre heatmap, box size and sub-pixel offset.

Decoding keeps local maxima of the heatmap (3x3 max pooling), then a box-level
non-maximum suppression written in torch removes overlapping boxes.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class CenterHead(nn.Module):
    """Three small convolutional branches on the backbone features: centre heatmap (1 channel,
    logits), log box size (2) and sub-pixel centre offset (2)."""

    def __init__(self, c: int):
        super().__init__()

        def branch(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, out, 1)
            )

        self.heat = branch(1)
        self.size = branch(2)
        self.offset = branch(2)
        nn.init.constant_(self.heat[-1].bias, -math.log((1 - 0.01) / 0.01))

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """Head outputs ``{'heat', 'size', 'offset'}`` for features ``(n, c, h, w)``."""
        return {"heat": self.heat(f), "size": self.size(f), "offset": self.offset(f)}


def gaussian_radius(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A simple, size-proportional Gaussian radius (in output cells)."""
    return torch.clamp(0.25 * torch.sqrt(h * w), min=0.7)


def centernet_sigma(h: float, w: float, min_overlap: float = 0.7) -> float:
    """CenterNet's peak spread for a box of ``h`` x ``w`` output cells: the radius r at which a
    box whose corners move by r still has IoU ``min_overlap`` with the true box (the smallest
    of CornerNet's three cases), as a Gaussian sigma of (2r + 1) / 6."""
    b1, c1 = h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(max(b1 * b1 - 4 * c1, 0.0))) / 2
    b2, c2 = 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(max(b2 * b2 - 16 * c2, 0.0))) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(max(b3 * b3 - 4 * a3 * c3, 0.0))) / 2
    r = max(0.0, min(r1, r2, r3))
    return max((2 * int(r) + 1) / 6, 0.7)


def build_targets(
    boxes: list[torch.Tensor], shape: tuple[int, int], stride: int, radius: str = "proportional"
) -> dict[str, torch.Tensor]:
    """Heatmap, size and offset targets for a batch.

    Parameters
    ----------
    boxes : list of Tensor (k, 4)
        Boxes per image in input pixels.
    shape : tuple of int
        Output map size ``(h, w)``.
    stride : int
        Input pixels per output cell.
    radius : {'proportional', 'centernet'}
        Peak spread (TrainConfig.heat_radius).
    """
    n = len(boxes)
    h, w = shape
    heat = torch.zeros(n, 1, h, w)
    size = torch.zeros(n, 2, h, w)
    offset = torch.zeros(n, 2, h, w)
    mask = torch.zeros(n, 1, h, w)
    box = torch.zeros(n, 4, h, w)  # the true box (output cells) at its centre cell
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    for i, b in enumerate(boxes):
        for x0, y0, x1, y1 in b.tolist():
            cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
            bw, bh = (x1 - x0) / stride, (y1 - y0) / stride
            ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
            r = (
                centernet_sigma(bh, bw)
                if radius == "centernet"
                else float(gaussian_radius(torch.tensor(bh), torch.tensor(bw)))
            )
            g = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * r * r))
            heat[i, 0] = torch.maximum(heat[i, 0], g)
            size[i, :, iy, ix] = torch.tensor([math.log(max(bw, 0.5)), math.log(max(bh, 0.5))])
            offset[i, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[i, 0, iy, ix] = 1.0
            box[i, :, iy, ix] = torch.tensor([x0, y0, x1, y1]) / stride
    return {"heat": heat, "size": size, "offset": offset, "mask": mask, "box": box}


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = torch.log(1 - p) * p**alpha * (1 - target) ** beta * neg
    n_pos = pos.sum()
    return -(pos_loss.sum() + neg_loss.sum()) / torch.clamp(n_pos, min=1.0)


def giou_loss(out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean ``1 - GIoU`` of the boxes decoded at the true centre cells against the true boxes
    (scale-aware: a 2-cell error costs a small box more than a large one)."""
    m = tgt["mask"][:, 0] > 0
    if not m.any():
        return out["size"].sum() * 0.0
    n, _, h, w = out["size"].shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=m.device, dtype=torch.float32),
        torch.arange(w, device=m.device, dtype=torch.float32),
        indexing="ij",
    )
    cx = (xs[None] + out["offset"][:, 0])[m]
    cy = (ys[None] + out["offset"][:, 1])[m]
    sw = out["size"][:, 0].clamp(max=8).exp()[m]
    sh = out["size"][:, 1].clamp(max=8).exp()[m]
    pred = torch.stack([cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2], 1)
    true = tgt["box"].permute(0, 2, 3, 1)[m]
    lt = torch.maximum(pred[:, :2], true[:, :2])
    rb = torch.minimum(pred[:, 2:], true[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp(min=0).prod(1)
    area_t = (true[:, 2:] - true[:, :2]).clamp(min=0).prod(1)
    union = (area_p + area_t - inter).clamp(min=1e-6)
    hull = torch.maximum(pred[:, 2:], true[:, 2:]) - torch.minimum(pred[:, :2], true[:, :2])
    hull_area = hull.clamp(min=0).prod(1).clamp(min=1e-6)
    giou = inter / union - (hull_area - union) / hull_area
    return (1 - giou).mean()


def detection_loss(
    out: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor], box_loss: str = "l1-log"
) -> dict[str, torch.Tensor]:
    """CenterNet loss: focal heatmap loss + 0.5 x L1 on log size + L1 on offset (at box centres)."""
    heat = focal_loss(out["heat"], tgt["heat"])
    m = tgt["mask"]
    denom = torch.clamp(m.sum(), min=1.0)
    size = (F.l1_loss(out["size"], tgt["size"], reduction="none") * m).sum() / denom
    offset = (F.l1_loss(out["offset"], tgt["offset"], reduction="none") * m).sum() / denom
    if box_loss == "giou" and "box" in tgt:
        size = 0.5 * size + giou_loss(out, tgt)
        total = heat + size + offset
    else:
        total = heat + 0.5 * size + offset
    return {"loss": total, "heat": heat, "size": size, "offset": offset}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of (n, 4) and (m, 4) boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.5) -> torch.Tensor:
    """Greedy non-maximum suppression; returns kept indices by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes[order]
    ious = box_iou(boxes, boxes)
    n = len(order)
    keep = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        if keep[i]:
            later = ious[i, i + 1 :] > iou_threshold
            keep[i + 1 :] &= ~later
    return order[keep]


@torch.no_grad()
def decode(
    out: dict[str, torch.Tensor],
    stride: int,
    top_k: int = 100,
    min_score: float = 0.001,
    nms_iou: float = 0.5,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Boxes (input pixels) and scores per image from head outputs."""
    heat = torch.sigmoid(out["heat"].float())
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    n, _, h, w = heat.shape
    results = []
    flat = peaks.view(n, -1)
    k = min(top_k, flat.shape[1])
    scores, idx = flat.topk(k, dim=1)
    for i in range(n):
        keep = scores[i] >= min_score
        s, ind = scores[i][keep], idx[i][keep]
        ys, xs = (ind // w).float(), (ind % w).float()
        off = out["offset"][i].float().view(2, -1)[:, ind]
        sz = out["size"][i].float().view(2, -1)[:, ind].clamp(max=8).exp()
        cx, cy = xs + off[0], ys + off[1]
        boxes = (
            torch.stack([cx - sz[0] / 2, cy - sz[1] / 2, cx + sz[0] / 2, cy + sz[1] / 2], 1)
            * stride
        )
        kept = nms(boxes, s, nms_iou)
        results.append((boxes[kept], s[kept]))
    return results
