"""VICReg between two augmented raw views: CroSSL's loss without its latent masking."""

from __future__ import annotations

import torch

from crossl.config import PretrainConfig
from crossl.losses import VICRegLoss
from crossl.method_options import VICRegAugOptions
from crossl.methods.augmented import AugmentedViewsMethod
from crossl.methods.base import Stage, vicreg_outputs
from crossl.models.backbone import CrossModalBackbone
from crossl.training import Batch


class VICRegAugMethod(AugmentedViewsMethod):
    name = "vicreg-aug"
    summary = "VICReg between two augmented views, no latent masking (isolates what masking adds)"

    def __init__(self, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: VICRegAugOptions) -> None:
        super().__init__(backbone, pretrain, options)
        self.loss = VICRegLoss(options.sim_weight, options.var_weight, options.cov_weight, gather_distributed=True)

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        z_a, z_b = self.view_embeddings(batch, stage, index)
        return vicreg_outputs(self.loss, z_a, z_b)
