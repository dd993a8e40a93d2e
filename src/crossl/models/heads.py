"""Classification heads on top of frozen or trainable features ``(batch, features)``."""

from __future__ import annotations

from torch import nn


def mlp_head(in_features: int, num_classes: int, hidden: int = 128, dropout: float = 0.1) -> nn.Module:
    """The release's probe: Dense 128 -> ReLU -> Dropout 0.1 -> classes."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))
