"""The untrained backbone: encoders and aggregator at their seeded initialisation."""

from __future__ import annotations

import torch

from crossl.methods.base import PretrainMethod, Stage
from crossl.training import Batch


class RandomInitMethod(PretrainMethod):
    name = "random-init"
    summary = "no pretraining: the seeded random backbone, the floor every self-supervised number must clear"
    trains = False

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        raise RuntimeError("random-init has no objective: the fit exports the initial weights without training")
