"""Masked autoencoder: hide random patches of each modality's input, reconstruct them from the rest."""

from __future__ import annotations

import math

import torch
from torch import nn

from crossl.config import PretrainConfig
from crossl.losses import MaskedReconstructionLoss, draw_patch_mask
from crossl.method_options import MAEOptions
from crossl.methods.base import PretrainMethod, Stage
from crossl.models.backbone import CrossModalBackbone
from crossl.representation import representation_stats
from crossl.training import Batch


class MAEMethod(PretrainMethod):
    """The encoders' sequence output ``(batch, T_m, dim)`` feeds a light decoder per modality (one
    linear map per time step back to the ``C_m`` channels); the loss is the squared error on the
    hidden patches of present modalities only. Hidden samples are set to 0, the channel mean after
    normalisation. The aggregator is not trained."""

    name = "mae"
    summary = "masked autoencoder: reconstruct hidden input patches of each modality (no aggregator training)"
    trains_aggregator = False

    def __init__(self, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: MAEOptions) -> None:
        super().__init__(backbone, pretrain, options)
        dim = backbone.config.dim
        self.decoders = nn.ModuleDict({m: nn.Linear(dim, c) for m, c in backbone.config.modality_channels.items()})
        self.loss = MaskedReconstructionLoss(gather_distributed=True)

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        generator = self.generator("input-mask", stage, index, per_process=True)
        presence = batch["presence"]
        losses, pooled = [], []
        for i, name in enumerate(self.backbone.modality_names):
            x = batch["inputs"][name]
            b, t, _ = x.shape
            hidden = draw_patch_mask(b, t, math.ceil(t / self.options.patches), self.options.mask_ratio, generator,
                                     x.device)
            sequence = self.backbone.encoders.sequence(name, x * (~hidden)[:, :, None].to(x.dtype))
            pooled.append(sequence.mean(dim=1))
            prediction = self.decoders[name](sequence)
            losses.append(self.loss(prediction, x, hidden, weight=presence[:, i].to(x.dtype)))
        loss = torch.stack(losses).mean()
        return {"loss": loss, **representation_stats(torch.cat(pooled, dim=1))}
