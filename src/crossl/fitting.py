"""The one fit every pretraining method uses: loaders, checkpoints, resume, DDP placement.

A method only says how a batch becomes a loss (:class:`~crossl.methods.base.PretrainMethod`);
this module runs it with Lightning the same way for all of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch

from crossl.config import PretrainConfig, TrainerConfig
from crossl.data.batches import WindowBatches
from crossl.distributed import leave_process_group, per_process_batch, placement
from crossl.errors import CrosslError
from crossl.methods.base import PretrainMethod
from crossl.training import batch_loader, build_trainer

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT = "best.ckpt"


def validation_batches(val: WindowBatches, seed: int) -> WindowBatches:
    """``val`` in one fixed shuffled order.

    Windows are stored recording by recording: in stored order a batch would hold one subject
    doing one thing, and batch statistics (VICReg's, negatives) would measure that. One fixed
    shuffle gives representative batches, the same every epoch.
    """
    order = np.random.default_rng(seed).permutation(len(val))
    return WindowBatches(val.windows, val.stats, val.indices[order])


def resumable_checkpoint(directory: Path) -> str | None:
    """The checkpoint to resume from: ``last.ckpt``, or ``best.ckpt`` when ``last`` cannot be read
    (the streams are keyed by step, so resuming from an earlier step ends at the same weights);
    None when there is none. Both unreadable: one line saying what to do."""
    found = [directory / name for name in (LAST_CHECKPOINT, BEST_CHECKPOINT) if (directory / name).is_file()]
    problems = []
    for path in found:
        try:
            torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any failure to read means: do not resume from it
            problems.append(f"{path.name} ({type(exc).__name__})")
            continue
        if problems:
            print(f"{problems[0]} in {directory} is unreadable; resuming from {path.name}", file=sys.stderr)
        return str(path)
    if problems:
        raise CrosslError(f"the checkpoints in {directory} are unreadable: {', '.join(problems)}; delete that "
                          "directory to pretrain from the start (finished results are kept)")
    return None


def fit_pretraining(module: PretrainMethod, train: WindowBatches, val: WindowBatches | None,
                    config: PretrainConfig, trainer_config: TrainerConfig, run_dir: Path | None = None,
                    resume: bool = False) -> None:
    """Pretrain ``module`` on ``train`` (``val`` for the ``best`` checkpoint's monitor).

    ``run_dir`` keeps CSV logs and the ``last``/``best`` checkpoints (``checkpoints/``);
    ``resume=True`` continues from ``checkpoints/last.ckpt`` there. A method that does not train
    (``random-init``) returns at once. Under DDP every process calls this with the same data; the
    batch size is the global batch.
    """
    if not module.trains:
        return
    if len(train) < 2:
        raise CrosslError("pretraining needs at least 2 windows")
    place = placement(trainer_config)
    per_process_batch(config.batch_size, place.world_size)
    drop_last = len(train) > config.batch_size
    train_loader = batch_loader(train, config.batch_size, shuffle=True, drop_last=drop_last, seed=config.seed,
                                rank=place.rank, world_size=place.world_size)
    val_loader = None
    if val is not None and len(val) >= 2:
        val_loader = batch_loader(validation_batches(val, config.seed), config.batch_size, shuffle=False,
                                  drop_last=len(val) > config.batch_size, rank=place.rank,
                                  world_size=place.world_size)
    callbacks: list[L.Callback] = []
    ckpt_path = None
    if run_dir is not None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        monitor = "val/loss" if val_loader is not None else "train/loss"
        callbacks.append(ModelCheckpoint(dirpath=run_dir / CHECKPOINT_DIR, filename="best", monitor=monitor,
                                         mode="min", save_last=True, enable_version_counter=False))
        if resume:
            ckpt_path = resumable_checkpoint(run_dir / CHECKPOINT_DIR)
    log_version = f"resumed-{len(list((run_dir / 'logs').glob('resumed-*')))}" if ckpt_path and run_dir else ""
    trainer = build_trainer(trainer_config, run_dir, max_epochs=config.epochs, max_steps=config.max_steps,
                            callbacks=callbacks, log_version=log_version)
    try:
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
    except RuntimeError as exc:
        if ckpt_path and ("size mismatch" in str(exc) or "Missing key" in str(exc) or "Unexpected key" in str(exc)):
            raise CrosslError(f"checkpoint {ckpt_path} was written by another model config; "
                              "resume with the config it was made with, or start a new run") from exc
        raise
    leave_process_group()
