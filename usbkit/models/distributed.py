"""Multi-process plumbing for ``usbkit train`` under ``torchrun``.

``torchrun --nproc_per_node N`` starts N copies of the same command and sets ``WORLD_SIZE``,
``RANK`` and the rendezvous address in their environments. :func:`init` joins the process
group (gloo on CPU, NCCL on CUDA); every other function is a no-op in a plain single-process
run (``WORLD_SIZE`` unset or 1), so the training loop reads the same either way.
"""

from __future__ import annotations

import os

import torch
from torch.nn.parallel import DistributedDataParallel


def world_size() -> int:
    """Number of training processes.

    Returns
    -------
    int
        ``WORLD_SIZE`` as set by ``torchrun``; 1 in a plain run.
    """
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 is the one that validates, logs and saves).

    Returns
    -------
    int
        The rank in the process group; 0 in a plain run or before :func:`init`.
    """
    if world_size() > 1 and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def init() -> tuple[int, int]:
    """Join the process group when started by ``torchrun`` (reads ``WORLD_SIZE``/``RANK``).

    The backend is NCCL when CUDA is available, gloo otherwise. Calling it again, or in a
    process group set up by the caller, is harmless.

    Returns
    -------
    rank, world : int
        This process's rank and the number of processes (0 and 1 in a plain run).
    """
    if world_size() > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)  # env:// (RANK, WORLD_SIZE, MASTER_*)
    return rank(), world_size()


def device_for_rank(device: torch.device, rank: int) -> torch.device:
    """The device this process trains on: one GPU per process under ``torchrun``.

    Parameters
    ----------
    device : torch.device
        The device asked for (``cuda`` means "some GPU").
    rank : int
        This process's rank.

    Returns
    -------
    torch.device
        ``cuda:(rank mod number of GPUs)`` in a multi-process CUDA run, else ``device``.
    """
    if world_size() > 1 and device.type == "cuda":
        return torch.device("cuda", rank % torch.cuda.device_count())
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Wrap a model in ``DistributedDataParallel`` in a multi-process run.

    Parameters
    ----------
    model : torch.nn.Module
        The model, already on ``device``.
    device : torch.device
        The device from :func:`device_for_rank`.

    Returns
    -------
    torch.nn.Module
        The wrapped model (gradients averaged across processes), or ``model`` itself.
    """
    if world_size() <= 1:
        return model
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (or ``model`` itself).

    Parameters
    ----------
    model : torch.nn.Module
        A model returned by :func:`wrap`.

    Returns
    -------
    torch.nn.Module
        The plain model.
    """
    return model.module if isinstance(model, DistributedDataParallel) else model


def barrier() -> None:
    """Wait for every process (no-op in a plain run)."""
    if world_size() > 1:
        torch.distributed.barrier()


def teardown() -> None:
    """Leave the process group (no-op in a plain run)."""
    if world_size() > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
