"""Gathering a batch across processes for losses whose terms use the whole batch (statistics, negatives)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


class _GatherWithGrad(torch.autograd.Function):
    """All-gather of equal-sized ``(batch, dim)`` shares along the batch, differentiable.

    Every process's loss depends on every share, so the gradient of this process's share is the
    sum over processes of their gradients for it: all-reduce the whole gradient, keep own rows.
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        shares = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(shares, z.contiguous())
        ctx.rows = z.shape[0]
        return torch.cat(shares, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def gather_with_grad(z: torch.Tensor) -> torch.Tensor:
    """Concatenate ``z`` (batch, dim) from every process, keeping gradients; identity when alone.

    Every process must pass the same batch size (the samplers give each an equal share).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z
    return _GatherWithGrad.apply(z)
