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
        #: entries that never change: parameters that do not learn and the buffers of modules
        #: kept in evaluation mode (a frozen single-frame part, TrainConfig.train_part)
        self._frozen = frozen_entries(model)
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
            if name in self._frozen:
                continue  # a frozen weight stays exactly as it is (no rounding drift)
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(new)

    def load_state_dict(self, weights: dict, updates: int) -> None:
        """Restore the average (``last.pt``'s ``model``) and its update count when resuming."""
        self.model.load_state_dict(weights)
        self.updates = int(updates)


def frozen_entries(model: torch.nn.Module) -> set[str]:
    """State-dict names of ``model`` that training leaves unchanged: parameters that do not
    require gradients in modules whose parameters all do not (so their batch statistics are
    frozen as well, :meth:`SequenceDetector.freeze_single_frame`)."""
    out = set()
    for prefix, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if not params or any(p.requires_grad for p in module.parameters()):
            continue
        for name, _ in module.named_parameters(recurse=False):
            out.add(f"{prefix}.{name}" if prefix else name)
        for name, _ in module.named_buffers(recurse=False):
            out.add(f"{prefix}.{name}" if prefix else name)
    return out
