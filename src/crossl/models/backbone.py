"""The CroSSL backbone: per-modality encoders -> latent masks -> cross-modal aggregator."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from crossl.config import ModelConfig
from crossl.errors import CrosslError
from crossl.masking import apply_mask, modality_kept
from crossl.models.aggregators import build_aggregator
from crossl.models.encoders import ModalityEncoders

FEATURE_SOURCES = ("aggregator", "concat")


class CrossModalBackbone(nn.Module):
    """Encoders for every modality and one aggregator over their embeddings.

    Inputs are ``{modality: (batch, T_m, C_m)}`` plus ``presence`` bool ``(batch, modalities)``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.modality_names = tuple(config.modality_channels)
        num_modalities = len(self.modality_names)
        self.encoders = ModalityEncoders(config.modality_channels, config.dim, config.dropout, config.kernel_sizes,
                                         config.elementwise)
        self.aggregator = build_aggregator(config.aggregator, num_modalities, config.dim, config.out_dim,
                                           norm=config.aggregator_norm)
        self.mask_token = nn.Parameter(torch.zeros(num_modalities, config.dim)) if config.mask_token else None

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Modality embeddings ``(batch, modalities, dim)`` before any masking."""
        return self.encoders(inputs)

    def aggregate(self, q: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Mask ``q`` (batch, modalities, dim) with ``keep`` (same shape, bool) -> ``(batch, out_dim)``."""
        return self.aggregator(apply_mask(q, keep, self.mask_token), modality_kept(keep))

    def features(
        self, inputs: Mapping[str, torch.Tensor], presence: torch.Tensor, source: str = "aggregator"
    ) -> torch.Tensor:
        """Unmasked features for downstream heads; absent modalities are masked.

        ``source="aggregator"``: ``(batch, out_dim)``; ``"concat"``: ``(batch, modalities * dim)``.
        """
        if source not in FEATURE_SOURCES:
            raise CrosslError(f"unknown feature source '{source}'; use one of {list(FEATURE_SOURCES)}")
        q = self.embed(inputs)
        keep = presence[:, :, None].expand_as(q)
        if source == "concat":
            return apply_mask(q, keep, self.mask_token).flatten(1)
        return self.aggregate(q, keep)

    def feature_dim(self, source: str) -> int:
        return self.config.out_dim if source == "aggregator" else len(self.modality_names) * self.config.dim
