"""CroSSL: embed once, mask the (batch, modalities, dim) stack twice, aggregate each view, VICReg."""

from __future__ import annotations

import torch
from torch import nn

from crossl.config import PretrainConfig
from crossl.losses import VICRegLoss
from crossl.losses.distributed import gather_with_grad
from crossl.masking import draw_keep_mask
from crossl.method_options import CroSSLOptions
from crossl.methods.base import PretrainMethod, Stage, vicreg_outputs
from crossl.models.backbone import CrossModalBackbone
from crossl.representation import representation_stats
from crossl.training import Batch


class CroSSLMethod(PretrainMethod):
    name = "crossl"
    summary = "latent masking of the modality embeddings, two views, VICReg on the aggregator output (the paper)"

    def __init__(self, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: CroSSLOptions) -> None:
        super().__init__(backbone, pretrain, options)
        self.expander = expander_mlp(backbone.config.out_dim, options.expander) if options.expander else None
        # With an expander the views are gathered before it (objective), so the loss sees them whole.
        self.loss = VICRegLoss(options.sim_weight, options.var_weight, options.cov_weight,
                               gather_distributed=self.expander is None)

    def keep_masks(self, q: torch.Tensor, presence: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        """Two keep-masks ``(batch, modalities, dim)`` for this process's rows of ``q``.

        Drawn for the whole global batch and cut to this process's share (the sampler's layout):
        under DDP every window gets the mask it would get on one device, and no two processes
        repeat a pattern on different windows.
        """
        b, m, d = q.shape
        global_size, own = self.own_rows(b)
        # A row's mask depends on that row's presence only, and the draws on shapes only: the other
        # processes' rows may count as fully present without changing this process's masks.
        global_presence = torch.ones((global_size, m), dtype=torch.bool, device=presence.device)
        global_presence[own] = presence.bool()
        return [
            draw_keep_mask((global_size, m, d), self.options.mask_strategy, self.options.mask_ratio, generator,
                           global_presence, q.device)[own]
            for _ in range(2)
        ]

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        q = self.backbone.embed(batch["inputs"])
        masks = self.keep_masks(q, batch["presence"], self.generator("mask", stage, index))
        z_a, z_b = (self.backbone.aggregate(q, keep) for keep in masks)
        if self.expander is None:
            return vicreg_outputs(self.loss, z_a, z_b, q)
        # The expander's BatchNorm must see the global batch, as on one device: under DDP each
        # process runs it on every process's views (a small MLP), and the gather's backward returns
        # each process the gradient of its own rows. The loss sees the expanded views; the logged
        # spread and rank stay the representation's.
        e_a, e_b = (self.expander(gather_with_grad(z)) for z in (z_a, z_b))
        out = vicreg_outputs(self.loss, e_a, e_b, q)
        return {**out, **representation_stats(z_a, q)}


def expander_mlp(in_dim: int, widths: tuple[int, ...]) -> nn.Sequential:
    """VICReg's expander: Linear-BatchNorm-ReLU per width but the last, which is a plain Linear."""
    layers: list[nn.Module] = []
    width = in_dim
    for i, w in enumerate(widths):
        layers.append(nn.Linear(width, w))
        if i < len(widths) - 1:
            layers += [nn.BatchNorm1d(w), nn.ReLU()]
        width = w
    return nn.Sequential(*layers)
