"""The one fit every pretraining method uses: loaders, checkpoints, resume, DDP placement.

A method only says how a batch becomes a loss (:class:`~crossl.methods.base.PretrainMethod`);
this module runs it with Lightning the same way for all of them.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np

from crossl.config import PretrainConfig, TrainerConfig
from crossl.data.batches import WindowBatches
from crossl.distributed import leave_process_group, per_process_batch, placement
from crossl.errors import CrosslError
from crossl.methods.base import PretrainMethod
from crossl.training import batch_loader, build_trainer

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def validation_batches(val: WindowBatches, seed: int) -> WindowBatches:
    """``val`` in one fixed shuffled order.

    Windows are stored recording by recording: in stored order a batch would hold one subject
    doing one thing, and batch statistics (VICReg's, negatives) would measure that. One fixed
    shuffle gives representative batches, the same every epoch.
    """
    order = np.random.default_rng(seed).permutation(len(val))
    return WindowBatches(val.windows, val.stats, val.indices[order])


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
        last = run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
        if resume and last.is_file():
            ckpt_path = str(last)
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
