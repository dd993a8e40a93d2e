"""SimCLR: NT-Xent between two augmented views, through a projection MLP."""

from __future__ import annotations

import torch
from torch import nn

from crossl.config import PretrainConfig
from crossl.losses import NTXentLoss
from crossl.method_options import SimCLROptions
from crossl.methods.augmented import AugmentedViewsMethod
from crossl.methods.base import Stage
from crossl.models.backbone import CrossModalBackbone
from crossl.representation import representation_stats
from crossl.training import Batch


class SimCLRMethod(AugmentedViewsMethod):
    name = "simclr"
    summary = "NT-Xent between two augmented views of the raw windows (contrastive, with negatives)"

    def __init__(self, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: SimCLROptions) -> None:
        super().__init__(backbone, pretrain, options)
        out = backbone.config.out_dim
        self.projector: nn.Module = nn.Identity() if options.projector_dim == 0 else nn.Sequential(
            nn.Linear(out, options.projector_dim), nn.ReLU(), nn.Linear(options.projector_dim, out))
        self.loss = NTXentLoss(options.temperature, gather_distributed=True)

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        z_a, z_b = self.view_embeddings(batch, stage, index)
        loss = self.loss(self.projector(z_a), self.projector(z_b))
        return {"loss": loss, **representation_stats(z_a)}
