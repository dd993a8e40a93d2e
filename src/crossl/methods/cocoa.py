"""COCOA: the modality embeddings of a window agree, those of different windows do not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from crossl.config import PretrainConfig
from crossl.errors import CrosslError
from crossl.losses import CocoaLoss
from crossl.method_options import CocoaOptions
from crossl.methods.base import PretrainMethod, Stage
from crossl.models.backbone import CrossModalBackbone
from crossl.representation import representation_stats
from crossl.training import Batch


class CocoaMethod(PretrainMethod):
    name = "cocoa"
    summary = "cross-modal agreement of per-modality embeddings against other windows (Deldari et al. 2022)"
    trains_aggregator = False

    def __init__(self, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: CocoaOptions) -> None:
        super().__init__(backbone, pretrain, options)
        self.loss = CocoaLoss(options.temperature, options.negative_weight, gather_distributed=True)

    @classmethod
    def check_data(cls, options: Any, modality_channels: Mapping[str, int]) -> None:
        if len(modality_channels) < 2:
            raise CrosslError(f"cocoa needs at least 2 modalities (it aligns them with each other); the data has "
                              f"{list(modality_channels)}: use another --method")

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        q = self.backbone.embed(batch["inputs"])
        terms = self.loss.terms(q, batch["presence"])
        return {"loss": self.loss.weighted(terms), "positive": terms.positive, "negative": terms.negative,
                **representation_stats(q.flatten(1), q)}
