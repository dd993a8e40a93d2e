"""Batch sampling, the downstream classifier module, trainer construction (pretraining methods: :mod:`crossl.methods`)."""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from crossl.allocator import keep_freed_memory
from crossl.config import TrainerConfig
from crossl.io import write_atomic
from crossl.masking import drop_modalities
from crossl.models.backbone import CrossModalBackbone
from crossl.seeding import stream_generator

Batch = dict[str, Any]


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


def shard_slice(global_size: int, rank: int, world_size: int) -> slice:
    """The rows of a global batch of ``global_size`` rows that process ``rank`` of ``world_size`` takes:
    a contiguous ``global_size // world_size`` (the rest, fewer than ``world_size`` rows, is dropped)."""
    share = global_size // world_size
    return slice(rank * share, (rank + 1) * share)


class IndexBatchSampler(Sampler[torch.Tensor]):
    """Yields index tensors of ``batch_size`` rows from a seeded permutation per pass.

    ``num_batches`` fixes how many batches one epoch yields (passes are chained, each reshuffled):
    a fixed step budget then costs one epoch however small the dataset is.

    ``batch_size`` is the global batch. With ``world_size`` processes (DDP) every process walks the
    same seeded sequence of global batches and yields only its share of each
    (:func:`shard_slice`): the processes see disjoint rows, take the same number of steps, and
    together see exactly the batches one process would. A global batch that does not split evenly
    (a short last batch) loses its last ``size % world_size`` rows: the gathered loss needs equal
    shares.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, num_batches: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        self.size = size
        self.batch_size = min(batch_size, size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.num_batches = num_batches
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _per_pass(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __len__(self) -> int:
        return self.num_batches if self.num_batches is not None else self._per_pass()

    def __iter__(self) -> Iterator[torch.Tensor]:
        generator = stream_generator(self.seed, "batches", self.epoch)
        emitted = 0
        while True:
            order = torch.randperm(self.size, generator=generator) if self.shuffle else torch.arange(self.size)
            for b in range(self._per_pass()):
                if self.num_batches is not None and emitted == self.num_batches:
                    return
                batch = order[b * self.batch_size : (b + 1) * self.batch_size]
                yield batch[shard_slice(batch.numel(), self.rank, self.world_size)]
                emitted += 1
            if self.num_batches is None:
                return


def batch_loader(batches: Dataset, batch_size: int, shuffle: bool, drop_last: bool = False, seed: int = 0,
                 num_batches: int | None = None, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Batches of ``batches`` (:class:`TensorBatches` or :class:`~crossl.data.batches.WindowBatches`: a
    dataset whose item for an index tensor is that whole batch), in :class:`IndexBatchSampler` order;
    with ``world_size > 1``, this process's share of each global batch of ``batch_size``."""
    size = len(batches)  # type: ignore[arg-type]
    sampler = IndexBatchSampler(size, batch_size, shuffle, drop_last, seed, num_batches, rank, world_size)
    return DataLoader(batches, sampler=sampler, batch_size=None, num_workers=0)


class ClassifierModule(L.LightningModule):
    """A head on backbone features (``backbone`` given) or on precomputed ``features`` (no backbone).

    Adam with a cosine decay to zero over ``total_steps``: the model is scored at its last step, and
    a decayed learning rate makes that step a settled one rather than a random point of the walk.
    With ``head_warmup_steps``, the first steps train the head alone on the backbone frozen (eval
    mode, no gradients: Adam leaves the backbone's state untouched until it joins), and the
    backbone's learning rate decays from its full value over the steps that remain.
    """

    def __init__(self, head: nn.Module, backbone: CrossModalBackbone | None = None, source: str = "aggregator",
                 train_backbone: bool = True, lr: float = 1e-3, backbone_lr_scale: float = 1.0,
                 total_steps: int = 1, modality_dropout: float = 0.0, seed: int = 0, head_warmup_steps: int = 0,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        #: probability that a present modality is hidden from a training window (backbone runs only)
        self.modality_dropout = modality_dropout
        self.seed = seed
        self.head = head
        self.backbone = backbone
        self.source = source
        self.train_backbone = train_backbone
        self.lr = lr
        self.backbone_lr_scale = backbone_lr_scale
        self.total_steps = total_steps
        self.head_warmup_steps = head_warmup_steps
        self.label_smoothing = label_smoothing
        if backbone is not None and not train_backbone:
            backbone.requires_grad_(False)

    def backbone_frozen(self) -> bool:
        """Whether this training step trains the head alone (the head warm-up)."""
        return self.training and self.global_step < self.head_warmup_steps

    def forward(self, batch: Batch) -> torch.Tensor:
        if self.backbone is None:
            return self.head(batch["features"])
        if self.backbone_frozen():
            with torch.no_grad():
                features = self.backbone.features(batch["inputs"], batch["presence"], self.source)
            return self.head(features)
        return self.head(self.backbone.features(batch["inputs"], batch["presence"], self.source))

    def on_train_epoch_start(self) -> None:
        if self.backbone is not None:
            # Fine-tuning trains with dropout; frozen features are computed without it.
            self.backbone.train(self.train_backbone)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        if self.backbone is not None and self.head_warmup_steps > 0:
            # Frozen features are computed without dropout; the backbone trains with it once it joins.
            self.backbone.train(self.train_backbone and not self.backbone_frozen())

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.backbone is not None and self.modality_dropout > 0:
            batch = {**batch, "presence": drop_modalities(batch["presence"], self.modality_dropout,
                                                          stream_generator(self.seed, "modality-dropout", self.global_step))}
        loss = nn.functional.cross_entropy(self(batch), batch["labels"], label_smoothing=self.label_smoothing)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=batch["labels"].shape[0])
        return loss

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch).argmax(dim=1)

    def configure_optimizers(self) -> Any:
        groups = [{"params": list(self.head.parameters()), "lr": self.lr}]
        if self.backbone is not None and self.train_backbone:
            groups.append({"params": list(self.backbone.parameters()), "lr": self.lr * self.backbone_lr_scale})
        optimizer = torch.optim.Adam(groups)
        starts = [0, self.head_warmup_steps][:len(groups)]
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, [functools.partial(classifier_lr_factor, total=self.total_steps, start=s) for s in starts])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def classifier_lr_factor(step: int, total: int, start: int = 0) -> float:
    """A classifier's learning rate at optimiser ``step`` as a share of its configured one: 0 before
    ``start``, then a cosine decay from 1 at ``start`` to 0 at ``total``."""
    if step < start:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step - start, total - start) / max(1, total - start)))


def quiet_lightning() -> None:
    """Keep Lightning's start-up chatter off the screen; warnings about our own choices stay."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`isinstance\\(treespec, LeafSpec\\)`.*")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written like every other file (:func:`crossl.io.write_atomic`): a full disk or a
    kill during the write leaves the previous checkpoint intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        write_atomic(Path(path), lambda tmp: torch.save(checkpoint, tmp))


class CompiledElementwise(L.Callback):
    """Switches the backbone's encoders to their compiled elementwise path for a fit or prediction."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        backbone = getattr(pl_module, "backbone", None)
        if isinstance(backbone, CrossModalBackbone):
            backbone.encoders.set_fused(True)


def extra_loggers(config: TrainerConfig, root: Path, log_version: str) -> list[Any]:
    """The logger ``config.logger`` names besides the CSV one (its package is checked with the config)."""
    if config.logger == "csv":
        return []
    from lightning.pytorch import loggers

    name = root.name.removesuffix(".incomplete")
    if config.logger == "tensorboard":
        return [loggers.TensorBoardLogger(root, name="logs", version=log_version or "tensorboard")]
    if config.logger == "mlflow":
        return [loggers.MLFlowLogger(experiment_name="crossl", run_name=name,
                                     tracking_uri=(root / "mlruns").resolve().as_uri())]
    return [loggers.WandbLogger(project="crossl", name=name, save_dir=str(root))]


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX tiles), where oneDNN runs the
    convolutions in bf16 faster than in float32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(config: TrainerConfig) -> str:
    """Lightning's precision for ``config.precision``: ``auto`` is ``bf16-mixed`` on a CPU with bf16
    instructions and ``32-true`` elsewhere (GPUs included: bf16 training there is not measured);
    any other value is Lightning's own."""
    if config.precision != "auto":
        return config.precision
    on_cpu = config.accelerator == "cpu" or (config.accelerator == "auto" and not torch.cuda.is_available())
    return "bf16-mixed" if on_cpu and cpu_has_bf16() else "32-true"


def build_trainer(config: TrainerConfig, root: Path | None, *, max_epochs: int = -1, max_steps: int = -1,
                  callbacks: list[L.Callback] | None = None, progress: bool | None = None,
                  validate: bool = True, log_version: str = "") -> L.Trainer:
    """A Lightning trainer with our defaults; ``root=None`` writes no logs.

    CSV logs go to ``root/logs/<log_version>/metrics.csv`` (a resumed attempt uses its own version,
    so the first attempt's log is kept).
    """
    quiet_lightning()
    keep_freed_memory()  # large activations reused across steps, not faulted in again (crossl.allocator)
    devices: int | str = int(config.devices) if str(config.devices).isdigit() else config.devices
    logger: Any = False
    if root is not None:
        from lightning.pytorch.loggers import CSVLogger

        logger = [CSVLogger(root, name="logs", version=log_version), *extra_loggers(config, root, log_version)]
    return L.Trainer(
        accelerator=config.accelerator,
        devices=devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        # Our samplers shard each global batch themselves (IndexBatchSampler's rank and world_size);
        # Lightning's replacement would deal whole batches to processes and never reshuffle ours.
        use_distributed_sampler=False,
        precision=resolve_precision(config),  # type: ignore[arg-type]
        max_epochs=max_epochs,
        max_steps=max_steps,
        # A step budget ends the epoch at that step, so that validation (and the best checkpoint)
        # still runs: stopped mid-epoch by max_steps alone, Lightning would skip it.
        limit_train_batches=max_steps if max_steps > 0 else 1.0,
        logger=logger,
        callbacks=[*(callbacks or []), *([CompiledElementwise()] if config.compile else [])],
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=bool(callbacks),
        enable_progress_bar=config.progress if progress is None else progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        limit_val_batches=1.0 if validate else 0,
        deterministic=False,
        default_root_dir=str(root) if root is not None else None,
    )
