"""An exponential moving average of a model's weights (what training validates and saves)."""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """Exponential moving average of every floating-point weight and buffer of a model.

    After each optimizer step, ``update`` sets ``avg = d * avg + (1 - d) * weight`` with
    ``d = min(decay, (1 + n) / (10 + n))`` at the n-th update (a short average early on, when
    the weights move fast); integer buffers (batch-norm counters) are copied. A decay of 0
    keeps a plain copy of the latest weights.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (its current weights start the average).
    decay : float
        The decay per step (``TrainConfig.ema``).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(1, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(0.0)
    >>> avg = WeightAverage(net, decay=0.9)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)
    >>> avg.update(net)  # first update: d = min(0.9, 2 / 11)
    >>> round(float(avg.model.weight), 4)
    0.8182
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, avg in self.model.state_dict().items():
            new = current[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(new)

    def load_state_dict(self, weights: dict, updates: int) -> None:
        """Restore the average (``last.pt``'s ``model``) and its update count when resuming."""
        self.model.load_state_dict(weights)
        self.updates = int(updates)
