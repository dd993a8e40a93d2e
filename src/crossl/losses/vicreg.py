"""VICReg (variance-invariance-covariance) loss between two views' global embeddings.

The maths are pure functions over ``(batch, dim)`` tensors. :class:`VICRegLoss` wraps them and,
when ``gather_distributed`` is set and a process group is running, gathers the embeddings of every
process (with gradients, :func:`~crossl.losses.distributed.gather_with_grad`) before the variance
and covariance terms, which depend on the whole batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from crossl.errors import CrosslError
from crossl.losses.distributed import gather_with_grad


class VICRegTerms(NamedTuple):
    invariance: torch.Tensor
    variance: torch.Tensor
    covariance: torch.Tensor


def invariance_term(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two ``(batch, dim)`` embeddings."""
    return torch.nn.functional.mse_loss(z_a, z_b)


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Mean over dimensions of ``relu(1 - sqrt(var + eps))``, unbiased variance over the batch."""
    std = torch.sqrt(z.var(dim=0, unbiased=True) + eps)
    return torch.relu(1.0 - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariance entries (divided by batch - 1), divided by dim."""
    n, d = z.shape
    centered = z - z.mean(dim=0)
    cov = centered.T @ centered / (n - 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d


def vicreg_terms(z_a: torch.Tensor, z_b: torch.Tensor, eps: float = 1e-4) -> VICRegTerms:
    """The three unweighted terms; variance averaged and covariance summed over the two views.

    Computed in float32 at least: under bf16 autocast the covariance of a bf16 batch is too coarse.
    """
    _check_embeddings(z_a, z_b)
    z_a, z_b = _at_least_float32(z_a), _at_least_float32(z_b)
    return VICRegTerms(
        invariance=invariance_term(z_a, z_b),
        variance=0.5 * (variance_term(z_a, eps) + variance_term(z_b, eps)),
        covariance=covariance_term(z_a) + covariance_term(z_b),
    )


def vicreg_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    sim_weight: float = 10.0,
    var_weight: float = 10.0,
    cov_weight: float = 100.0,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Weighted VICReg loss of two ``(batch, dim)`` embeddings (defaults: the authors' release)."""
    terms = vicreg_terms(z_a, z_b, eps)
    return sim_weight * terms.invariance + var_weight * terms.variance + cov_weight * terms.covariance


def _at_least_float32(z: torch.Tensor) -> torch.Tensor:
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


def _check_embeddings(z_a: torch.Tensor, z_b: torch.Tensor) -> None:
    if z_a.shape != z_b.shape or z_a.ndim != 2:
        raise CrosslError(f"VICReg needs two (batch, dim) embeddings of one shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if z_a.shape[0] < 2:
        raise CrosslError("VICReg needs a batch of at least 2 windows (variance over the batch); raise the batch size")


class VICRegLoss(nn.Module):
    """VICReg as a module; see :func:`vicreg_loss` for the terms."""

    def __init__(
        self,
        sim_weight: float = 10.0,
        var_weight: float = 10.0,
        cov_weight: float = 100.0,
        eps: float = 1e-4,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.sim_weight = sim_weight
        self.var_weight = var_weight
        self.cov_weight = cov_weight
        self.eps = eps
        self.gather_distributed = gather_distributed

    def terms(self, z_a: torch.Tensor, z_b: torch.Tensor) -> VICRegTerms:
        z_a, z_b = _at_least_float32(z_a), _at_least_float32(z_b)
        local_invariance = invariance_term(z_a, z_b)
        if self.gather_distributed:
            z_a, z_b = gather_with_grad(z_a), gather_with_grad(z_b)
        full = vicreg_terms(z_a, z_b, self.eps)
        return full._replace(invariance=local_invariance)

    def weighted(self, t: VICRegTerms) -> torch.Tensor:
        return self.sim_weight * t.invariance + self.var_weight * t.variance + self.cov_weight * t.covariance

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return self.weighted(self.terms(z_a, z_b))
