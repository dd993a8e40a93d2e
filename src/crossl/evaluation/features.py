"""Frozen features of any pretrained model, through one small interface.

Every method exports a backbone that satisfies :class:`FeatureExtractor`; the frozen protocols
(``linear``, ``mlp``) only ever see features computed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch

from crossl.data.batches import WindowBatches


class FeatureExtractor(Protocol):
    """What evaluation needs of a pretrained model."""

    training: bool

    def features(self, inputs: Mapping[str, torch.Tensor], presence: torch.Tensor, source: str = "aggregator"
                 ) -> torch.Tensor:
        """``{modality: (batch, T_m, C_m)}`` and presence ``(batch, modalities)`` -> ``(batch, F)``;
        absent modalities are masked, never read."""
        ...

    def feature_dim(self, source: str) -> int: ...

    def train(self, mode: bool = True) -> object: ...

    def eval(self) -> object: ...


#: Time steps of the longest modality per embedding batch. A batch's activations (batch x time x
#: 96 floats per layer) then stay around 12 MB: speed does not need more (256 windows of 3000 steps,
#: Sleep-EDF, embedded at a third of the speed of 64; HAPT ran as fast at 64 windows as at 256),
#: and memory does: HAPT batches of 1,024 windows added 180 MB to a run's peak (docs/performance.md).
EMBED_TIME_STEPS = 32_768


def embedding_batch_size(windows: WindowBatches, most: int = 1024) -> int:
    """Windows per embedding batch: ``EMBED_TIME_STEPS`` over the longest modality, in [16, most]."""
    longest = max(t for t, _ in windows.windows.shapes.values())
    return max(16, min(most, EMBED_TIME_STEPS // max(longest, 1)))


@torch.no_grad()
def compute_features(backbone: FeatureExtractor, windows: WindowBatches, source: str,
                     batch_size: int | None = None) -> torch.Tensor:
    """Frozen features ``(N, F)`` of every window, in eval mode (no dropout, no masking).

    Reads ``batch_size`` windows at a time (default :func:`embedding_batch_size`), so memory holds
    one batch of inputs and the features.
    """
    if len(windows) == 0:
        return torch.empty((0, backbone.feature_dim(source)))
    batch_size = batch_size or embedding_batch_size(windows)
    was_training = backbone.training
    backbone.eval()
    n = len(windows)
    parts = []
    for start in range(0, n, batch_size):
        batch = windows[torch.arange(start, min(n, start + batch_size))]
        parts.append(backbone.features(batch["inputs"], batch["presence"], source))
    backbone.train(was_training)
    return torch.cat(parts).float()
