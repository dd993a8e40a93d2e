"""Pretraining objectives: pure functions over embeddings, thin modules that gather across processes."""

from crossl.losses.cocoa import (
    CocoaLoss,
    CocoaTerms,
    cocoa_loss,
    cocoa_release_negative_weight,
    cocoa_terms,
    negative_term,
    positive_term,
)
from crossl.losses.distributed import gather_with_grad
from crossl.losses.ntxent import NTXentLoss, nt_xent_against, nt_xent_loss
from crossl.losses.reconstruction import MaskedReconstructionLoss, draw_patch_mask, masked_reconstruction_loss
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
    "CocoaLoss", "CocoaTerms", "MaskedReconstructionLoss", "NTXentLoss", "VICRegLoss", "VICRegTerms",
    "cocoa_loss", "cocoa_release_negative_weight", "cocoa_terms", "covariance_term", "draw_patch_mask",
    "gather_with_grad", "invariance_term", "masked_reconstruction_loss", "negative_term", "nt_xent_against",
    "nt_xent_loss", "positive_term", "variance_term", "vicreg_loss", "vicreg_terms",
]
