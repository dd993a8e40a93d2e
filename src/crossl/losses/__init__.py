"""Pretraining objectives: pure functions over embeddings, thin modules that gather across processes."""

from crossl.losses.distributed import gather_with_grad
from crossl.losses.vicreg import (
    VICRegLoss,
    VICRegTerms,
    covariance_term,
    invariance_term,
    variance_term,
    vicreg_loss,
    vicreg_terms,
)

__all__ = [
    "VICRegLoss", "VICRegTerms", "covariance_term", "gather_with_grad", "invariance_term", "variance_term",
    "vicreg_loss", "vicreg_terms",
]
