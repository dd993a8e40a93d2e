"""The base of every pretraining method: optimiser, logging, random streams, DDP rows.

A method is a :class:`PretrainMethod` subclass that adds its own heads (projector, decoder) and
implements :meth:`PretrainMethod.objective`: one batch in, a dict with the ``loss`` and the terms
worth logging out. Everything else (when to reseed, what is logged where, the optimiser, which
rows of a global batch this process owns) lives here, once.

What a method exports is the backbone (:class:`~crossl.models.backbone.CrossModalBackbone`):
encoders and aggregator. Its extra heads serve the objective only and are dropped after
pretraining; checkpoints keep them, so a resumed run continues exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import lightning as L
import torch

from crossl.config import PretrainConfig
from crossl.losses import VICRegLoss
from crossl.models.backbone import CrossModalBackbone
from crossl.representation import representation_stats
from crossl.seeding import stream_generator, stream_seed
from crossl.training import Batch, batch_size_of, shard_slice

Stage = str  # "train" or "val"


class PretrainMethod(L.LightningModule):
    """Self-supervised pretraining of a :class:`CrossModalBackbone` with one objective.

    Subclasses set the class attributes and implement :meth:`objective`.
    """

    #: Registry name (``--method``) and the one line ``crossl methods`` prints.
    name: ClassVar[str]
    summary: ClassVar[str]
    #: False for methods that never train the aggregator (their representation is the
    #: concatenated encoder outputs; ``head_input: auto`` picks ``concat`` for them).
    trains_aggregator: ClassVar[bool] = True
    #: False for the untrained backbone: the fit exports the initialised weights.
    trains: ClassVar[bool] = True

    def __init__(self, backbone: CrossModalBackbone, pretrain: PretrainConfig, options: Any) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = pretrain
        self.options = options

    @classmethod
    def check_data(cls, options: Any, modality_channels: Mapping[str, int]) -> None:
        """Raise :class:`~crossl.errors.CrosslError` if the method cannot run on these modalities."""

    def objective(self, batch: Batch, stage: Stage, index: int) -> dict[str, torch.Tensor]:
        """``{"loss": scalar, term: scalar, ...}`` for one batch; ``index`` is the step or val batch."""
        raise NotImplementedError

    # ---------------------------------------------------------------- randomness
    def generator(self, stream: str, stage: Stage, index: int, per_process: bool = False) -> torch.Generator:
        """Stream ``stream`` (``stream-val`` in validation) at ``index``; ``per_process`` gives each
        DDP process its own draw (rank 0 keeps the single-process one)."""
        name = stream if stage == "train" else f"{stream}-val"
        return stream_generator(self.config.seed, name, index, self.global_rank if per_process else 0)

    @property
    def world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    def own_rows(self, local_size: int) -> tuple[int, slice]:
        """``(global batch size, this process's rows of it)`` for a local share of ``local_size``."""
        world = self.world_size
        return local_size * world, shard_slice(local_size * world, self.global_rank, world)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Dropout draws from the global generator: reseed it per step so that a resumed run
        # continues exactly as an uninterrupted one (Lightning does not checkpoint RNG states).
        # Each DDP process gets its own stream (rank 0 keeps the single-device one): the same
        # dropout pattern on every process's different windows would correlate the shares.
        torch.manual_seed(stream_seed(self.config.seed, "dropout", self.global_step, self.global_rank))

    # ---------------------------------------------------------------- Lightning hooks
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out = self.objective(batch, "train", self.global_step)
        n = batch_size_of(batch["inputs"])
        # sync_dist: under DDP each process's loss holds the batch-wide terms of the global batch
        # and its own share's per-window terms; their mean over processes is the global batch's
        # loss, and every process (the checkpoint's monitor included) must see the same value.
        self.log("train/loss", out["loss"], prog_bar=True, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        for key, value in out.items():
            if key != "loss":
                self.log(f"train/{key}", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        # Every term and statistic per step as well (rank 0's view), for curves within an epoch. They
        # need no reduction, so they go to the loggers in one call a step: through `self.log` each
        # key would cost Lightning's per-key bookkeeping every step (about 5% of `crossl pretrain --data
        # hapt --epochs 6` on a 2-core CPU, 2026-12-06).
        if self.trainer.is_global_zero:
            step_values = {"epoch": self.current_epoch, **{f"step/{key}": float(value.detach()) for key, value in out.items()}}
            for logger in self.loggers:
                logger.log_metrics(step_values, step=self.global_step)
        return out["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.objective(batch, "val", batch_idx)
        n = batch_size_of(batch["inputs"])
        self.log("val/loss", out["loss"], prog_bar=True, batch_size=n, sync_dist=True)
        for key, value in out.items():
            if key != "loss":
                self.log(f"val/{key}", value, batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        if self.config.lr_schedule == "constant" and self.config.warmup_epochs == 0:
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1
        per_epoch = total / max(1, self.config.epochs)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, functools.partial(lr_factor, total=total, warmup=round(self.config.warmup_epochs * per_epoch),
                                         cosine=self.config.lr_schedule == "cosine"))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def lr_factor(step: int, total: int, warmup: int, cosine: bool) -> float:
    """The learning rate at optimiser ``step`` as a share of the configured one: linear warm-up over
    ``warmup`` steps, then constant or a cosine decay reaching 0 at step ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def vicreg_outputs(loss: VICRegLoss, z_a: torch.Tensor, z_b: torch.Tensor,
                   q: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The objective's outputs of a VICReg loss between two views ``(batch, dim)``: the weighted
    loss, its three terms, and the first view's spread and effective rank (with the encoder
    outputs ``q``, their spread too)."""
    terms = loss.terms(z_a, z_b)
    return {"loss": loss.weighted(terms), "invariance": terms.invariance, "variance": terms.variance,
            "covariance": terms.covariance, **representation_stats(z_a, q)}
