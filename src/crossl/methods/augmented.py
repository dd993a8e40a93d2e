"""Methods whose two views are augmentations of the raw windows (no latent masking)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from crossl.augment import augment_batch, check_augmentations
from crossl.methods.base import PretrainMethod, Stage
from crossl.training import Batch


class AugmentedViewsMethod(PretrainMethod):
    """Two augmented views of each window through encoders and aggregator (absent modalities masked).

    The augmentations draw from the ``augment`` stream of this process (each DDP process its own).
    """

    @classmethod
    def check_data(cls, options: Any, modality_channels: Mapping[str, int]) -> None:
        check_augmentations(options.augmentations, modality_channels)

    def view_embeddings(self, batch: Batch, stage: Stage, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The aggregator outputs ``(batch, out_dim)`` of two augmented views of ``batch``."""
        generator = self.generator("augment", stage, index, per_process=True)
        views = [augment_batch(batch["inputs"], self.options.augmentations, generator) for _ in range(2)]
        z_a, z_b = (self.backbone.features(view, batch["presence"], "aggregator") for view in views)
        return z_a, z_b
