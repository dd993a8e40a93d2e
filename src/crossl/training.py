"""Lightning modules for pretraining and classification, in-memory batching, trainer construction."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from crossl.config import PretrainConfig, TrainerConfig
from crossl.data.container import WindowSet
from crossl.losses import VICRegLoss
from crossl.masking import draw_keep_mask
from crossl.models.backbone import CrossModalBackbone

Batch = dict[str, Any]


def window_tensors(windows: WindowSet, indices: np.ndarray | None = None) -> Batch:
    """The windows as tensors: ``{"inputs": {m: (N, T_m, C_m)}, "presence": (N, M), "labels": (N,)}``."""
    idx = np.arange(len(windows)) if indices is None else np.asarray(indices, dtype=np.int64)
    return {
        "inputs": {m: torch.from_numpy(np.ascontiguousarray(a[idx])) for m, a in windows.modalities.items()},
        "presence": torch.from_numpy(np.ascontiguousarray(windows.presence[idx])),
        "labels": torch.from_numpy(np.ascontiguousarray(windows.labels[idx])),
    }


def gather_batch(tree: Any, idx: torch.Tensor) -> Any:
    """Index every tensor of a nested dict with ``idx`` (one indexing op per tensor, no per-window work)."""
    if isinstance(tree, Mapping):
        return {k: gather_batch(v, idx) for k, v in tree.items()}
    return tree[idx]


def batch_size_of(tree: Any) -> int:
    while isinstance(tree, Mapping):
        tree = next(iter(tree.values()))
    return int(tree.shape[0])


class TensorBatches(Dataset):
    """A dataset whose items are whole batches: ``self[index_tensor]`` gathers those rows."""

    def __init__(self, tensors: Batch) -> None:
        self.tensors = tensors
        self.size = batch_size_of(tensors)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, idx: torch.Tensor) -> Batch:
        return gather_batch(self.tensors, idx)


class IndexBatchSampler(Sampler[torch.Tensor]):
    """Yields index tensors of ``batch_size`` rows from a seeded permutation per pass.

    ``num_batches`` fixes how many batches one epoch yields (passes are chained, each reshuffled):
    a fixed step budget then costs one epoch however small the dataset is.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, num_batches: int | None = None) -> None:
        self.size = size
        self.batch_size = min(batch_size, size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.num_batches = num_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _per_pass(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __len__(self) -> int:
        return self.num_batches if self.num_batches is not None else self._per_pass()

    def __iter__(self) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        emitted = 0
        while True:
            order = torch.randperm(self.size, generator=generator) if self.shuffle else torch.arange(self.size)
            for b in range(self._per_pass()):
                if self.num_batches is not None and emitted == self.num_batches:
                    return
                yield order[b * self.batch_size : (b + 1) * self.batch_size]
                emitted += 1
            if self.num_batches is None:
                return


def batch_loader(tensors: Batch, batch_size: int, shuffle: bool, drop_last: bool = False, seed: int = 0,
                 num_batches: int | None = None) -> DataLoader:
    dataset = TensorBatches(tensors)
    sampler = IndexBatchSampler(len(dataset), batch_size, shuffle, drop_last, seed, num_batches)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)


class PretrainModule(L.LightningModule):
    """CroSSL pretraining: embed once, mask twice, aggregate each view, VICReg between the views."""

    def __init__(self, backbone: CrossModalBackbone, config: PretrainConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.loss = VICRegLoss(config.sim_weight, config.var_weight, config.cov_weight, gather_distributed=True)

    def _mask_generator(self, step: int, stage: str) -> torch.Generator:
        # Masks depend only on (seed, stage, step): identical after a resume and on any device.
        offset = 0 if stage == "train" else 7_919
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + offset + step)

    def _shared_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        q = self.backbone.embed(batch["inputs"])
        shape = tuple(q.shape)
        masks = [
            draw_keep_mask(shape, self.config.mask_strategy, self.config.mask_ratio, generator,  # type: ignore[arg-type]
                           batch["presence"], q.device)
            for _ in range(2)
        ]
        z_a, z_b = (self.backbone.aggregate(q, keep) for keep in masks)
        terms = self.loss.terms(z_a, z_b)
        return {"loss": self.loss.weighted(terms), "invariance": terms.invariance, "variance": terms.variance,
                "covariance": terms.covariance, "z_std": z_a.detach().float().std(dim=0).mean()}

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Dropout draws from the global generator: reseed it per step so that a resumed run
        # continues exactly as an uninterrupted one (Lightning does not checkpoint RNG states).
        torch.manual_seed(self.config.seed * 1_000_003 + 104_729 + self.global_step)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out = self._shared_step(batch, self._mask_generator(self.global_step, "train"))
        n = batch_size_of(batch["inputs"])
        self.log("train/loss", out["loss"], prog_bar=True, on_step=False, on_epoch=True, batch_size=n)
        for k in ("invariance", "variance", "covariance", "z_std"):
            self.log(f"train/{k}", out[k], on_step=False, on_epoch=True, batch_size=n)
        return out["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self._shared_step(batch, self._mask_generator(batch_idx, "val"))
        self.log("val/loss", out["loss"], prog_bar=True, batch_size=batch_size_of(batch["inputs"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)


class ClassifierModule(L.LightningModule):
    """A head on backbone features (``backbone`` given) or on precomputed ``features`` (no backbone).

    Adam with a cosine decay to zero over ``total_steps``: the model is scored at its last step, and
    a decayed learning rate makes that step a settled one rather than a random point of the walk.
    """

    def __init__(self, head: nn.Module, backbone: CrossModalBackbone | None = None, source: str = "aggregator",
                 train_backbone: bool = True, lr: float = 1e-3, backbone_lr_scale: float = 1.0,
                 total_steps: int = 1) -> None:
        super().__init__()
        self.head = head
        self.backbone = backbone
        self.source = source
        self.train_backbone = train_backbone
        self.lr = lr
        self.backbone_lr_scale = backbone_lr_scale
        self.total_steps = total_steps
        if backbone is not None and not train_backbone:
            backbone.requires_grad_(False)

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.backbone is None:
            return self.head(batch["features"])
        return self.head(self.backbone.features(batch["inputs"], batch["presence"], self.source))

    def on_train_epoch_start(self) -> None:
        if self.backbone is not None:
            # Fine-tuning trains with dropout; frozen features are computed without it.
            self.backbone.train(self.train_backbone)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch), batch["labels"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=batch["labels"].shape[0])
        return loss

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch).argmax(dim=1)

    def configure_optimizers(self) -> Any:
        groups = [{"params": list(self.head.parameters()), "lr": self.lr}]
        if self.backbone is not None and self.train_backbone:
            groups.append({"params": list(self.backbone.parameters()), "lr": self.lr * self.backbone_lr_scale})
        optimizer = torch.optim.Adam(groups)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter off the screen; warnings about our own choices stay."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`isinstance\\(treespec, LeafSpec\\)`.*")


def build_trainer(config: TrainerConfig, root: Path | None, *, max_epochs: int = -1, max_steps: int = -1,
                  callbacks: list[L.Callback] | None = None, progress: bool | None = None,
                  validate: bool = True, log_version: str = "") -> L.Trainer:
    """A Lightning trainer with our defaults; ``root=None`` writes no logs.

    CSV logs go to ``root/logs/<log_version>/metrics.csv`` (a resumed attempt uses its own version,
    so the first attempt's log is kept).
    """
    quiet_lightning()
    devices: int | str = int(config.devices) if str(config.devices).isdigit() else config.devices
    logger: Any = False
    if root is not None:
        from lightning.pytorch.loggers import CSVLogger

        logger = CSVLogger(root, name="logs", version=log_version)
    return L.Trainer(
        accelerator=config.accelerator,
        devices=devices,
        precision=config.precision,  # type: ignore[arg-type]
        max_epochs=max_epochs,
        max_steps=max_steps,
        logger=logger,
        callbacks=callbacks or [],
        enable_checkpointing=bool(callbacks),
        enable_progress_bar=config.progress if progress is None else progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        limit_val_batches=1.0 if validate else 0,
        deterministic=False,
        default_root_dir=str(root) if root is not None else None,
    )
