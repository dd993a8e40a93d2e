"""Cross-modal aggregators: ``(batch, modalities, dim)`` + which modalities are kept -> ``(batch, out_dim)``."""

from __future__ import annotations

import torch
from torch import nn

from crossl.errors import CrosslError


class MLPAggregator(nn.Module):
    """The paper's aggregator: flatten -> 64 -> 32 -> 32 -> LayerNorm.

    Slot-based: tied to modality order; a masked or missing modality is a zero (or token) slot.
    """

    def __init__(self, num_modalities: int, dim: int, hidden: tuple[int, ...] = (64, 32), out_dim: int = 32,
                 norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = num_modalities * dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers += [nn.Linear(width, out_dim), *([nn.LayerNorm(out_dim)] if norm else [])]
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, q: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        return self.net(q.flatten(1))


class AttentionAggregator(nn.Module):
    """One token per modality (+ a learned modality embedding) through a small transformer encoder.

    Masked or missing modalities are excluded by the key-padding mask and from the mean pool, so the
    output is defined for any non-empty subset of modalities.
    """

    def __init__(self, num_modalities: int, dim: int, out_dim: int = 32, heads: int = 4, layers: int = 2,
                 dropout: float = 0.1, norm: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise CrosslError(f"attention aggregator: dim {dim} is not divisible by {heads} heads; change one of them")
        self.modality_embedding = nn.Parameter(torch.zeros(num_modalities, dim))
        nn.init.normal_(self.modality_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.project = nn.Sequential(nn.Linear(dim, out_dim), *([nn.LayerNorm(out_dim)] if norm else []))
        self.out_dim = out_dim

    def forward(self, q: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """``q`` (batch, modalities, dim); ``kept`` bool (batch, modalities), at least one True per row."""
        tokens = self.transformer(q + self.modality_embedding, src_key_padding_mask=~kept)
        weights = kept.to(tokens.dtype)[:, :, None]
        pooled = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return self.project(pooled)


AGGREGATORS = {"mlp": MLPAggregator, "attention": AttentionAggregator}


def build_aggregator(name: str, num_modalities: int, dim: int, out_dim: int = 32, norm: bool = True) -> nn.Module:
    """``norm``: end with a LayerNorm over the output (the release's aggregator does)."""
    if name not in AGGREGATORS:
        raise CrosslError(f"unknown aggregator '{name}'; use one of {sorted(AGGREGATORS)}")
    return AGGREGATORS[name](num_modalities, dim, out_dim=out_dim, norm=norm)
