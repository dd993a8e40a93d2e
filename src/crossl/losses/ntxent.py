"""SimCLR's NT-Xent (normalised temperature-scaled cross-entropy) between two views (Chen et al. 2020).

The maths are pure functions over ``(batch, dim)`` tensors. :class:`NTXentLoss` wraps them and,
when ``gather_distributed`` is set and a process group is running, contrasts this process's rows
against the rows of every process (with gradients, :func:`~crossl.losses.distributed.gather_with_grad`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from crossl.errors import CrosslError
from crossl.losses.distributed import gather_with_grad
from crossl.losses.vicreg import _at_least_float32


def nt_xent_loss(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent of two ``(batch, dim)`` views; a scalar.

    Embeddings are L2-normalised; each of the 2N anchors scores all 2N - 1 others by cosine
    similarity / ``temperature``, its other view being the positive and the remaining 2N - 2 the
    negatives. Returns the mean over the 2N anchors of the cross-entropy. Computed in float32 at least.
    """
    _check_views(z_a, z_b, temperature)
    z_a, z_b = _normalised(z_a), _normalised(z_b)
    return nt_xent_against(z_a, z_b, z_a, z_b, offset=0, temperature=temperature)


def nt_xent_against(
    own_a: torch.Tensor,
    own_b: torch.Tensor,
    all_a: torch.Tensor,
    all_b: torch.Tensor,
    offset: int,
    temperature: float,
) -> torch.Tensor:
    """Mean NT-Xent of the anchors ``own_a``, ``own_b`` ``(n, dim)`` against candidates ``all_a``, ``all_b`` ``(N, dim)``.

    All inputs already L2-normalised; the own rows are rows ``offset .. offset + n`` of the
    candidates (this process's share of the global batch). Returns a scalar, the mean over the 2n anchors.
    """
    n, total = own_a.shape[0], all_a.shape[0]
    if total < 2:
        raise CrosslError("NT-Xent needs a batch of at least 2 windows (negatives are the other windows); raise the batch size")
    anchors = torch.cat([own_a, own_b])  # (2n, dim)
    candidates = torch.cat([all_a, all_b])  # (2N, dim)
    logits = anchors @ candidates.T / temperature  # (2n, 2N)
    own = torch.arange(n, device=logits.device) + offset
    self_index = torch.cat([own, own + total])
    positive_index = torch.cat([own + total, own])
    # An anchor is never its own candidate.
    logits = logits.masked_fill(F.one_hot(self_index, 2 * total).bool(), float("-inf"))
    return F.cross_entropy(logits, positive_index)


def _normalised(z: torch.Tensor) -> torch.Tensor:
    return F.normalize(_at_least_float32(z), dim=1)


def _check_views(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> None:
    if z_a.shape != z_b.shape or z_a.ndim != 2:
        raise CrosslError(f"NT-Xent needs two (batch, dim) embeddings of one shape, "
                          f"got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if not temperature > 0:
        raise CrosslError(f"NT-Xent temperature {temperature} must be positive; use e.g. 0.1")


class NTXentLoss(nn.Module):
    """NT-Xent as a module; see :func:`nt_xent_loss`.

    With ``gather_distributed`` under a process group, this process's 2n rows are the anchors and
    the gathered rows of all processes the candidates; the loss is the mean over own anchors, so its
    mean over processes (what the logger reports) is the single-process loss on the global batch
    and the averaged gradients (what DDP applies) its gradients.
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__()
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        _check_views(z_a, z_b, self.temperature)
        z_a, z_b = _normalised(z_a), _normalised(z_b)
        if not (self.gather_distributed and dist.is_available() and dist.is_initialized()):
            return nt_xent_against(z_a, z_b, z_a, z_b, offset=0, temperature=self.temperature)
        offset = dist.get_rank() * z_a.shape[0]
        return nt_xent_against(z_a, z_b, gather_with_grad(z_a), gather_with_grad(z_b), offset, self.temperature)
