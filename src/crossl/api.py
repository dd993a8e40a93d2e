"""The public Python API: one object that pretrains, encodes, saves and loads.

>>> model = CroSSL()
>>> model.fit({"acc": acc, "gyro": gyro})            # arrays (N, T_m, C_m), NaN = missing
>>> z = model.encode({"acc": acc_new})              # gyro missing: still works
>>> model.save("my_model"); CroSSL.load("my_model")
"""

from __future__ import annotations

import json
from dataclasses import asdict
from collections.abc import Mapping
from pathlib import Path

import lightning as L
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crossl.config import ModelConfig, PretrainConfig, TrainerConfig, _build
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import ChannelStats, fit_channel_stats
from crossl.distributed import leave_process_group, per_process_batch, placement
from crossl.errors import CrosslError
from crossl.evaluation.protocols import compute_features
from crossl.io import write_atomic, write_json_atomic
from crossl.models.backbone import FEATURE_SOURCES, CrossModalBackbone
from crossl.training import PretrainModule, batch_loader, build_trainer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"


class CroSSL:
    """A CroSSL model with its input normalisation.

    ``fit`` fits per-channel normalisation on the data it is given, then pretrains; ``encode``
    applies the same normalisation, so it takes raw arrays.
    """

    def __init__(self, model: ModelConfig | None = None, pretrain: PretrainConfig | None = None,
                 trainer: TrainerConfig | None = None) -> None:
        self.model_config = model or ModelConfig()
        self.pretrain_config = pretrain or PretrainConfig()
        self.trainer_config = trainer or TrainerConfig()
        self.backbone: CrossModalBackbone | None = None
        self.stats: ChannelStats | None = None

    # ---------------------------------------------------------------- inputs
    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.model_config.modality_channels)

    def as_windows(self, data: WindowSet | Mapping[str, np.ndarray], presence: np.ndarray | None = None) -> WindowSet:
        """A :class:`WindowSet` from a set or from ``{modality: (N, T_m, C_m)}`` arrays.

        After ``fit``, modalities the model knows may be left out (treated as missing); unknown
        names are an error.
        """
        if isinstance(data, WindowSet):
            windows = data
        else:
            arrays = dict(data)
            if self.backbone is not None:
                unknown = sorted(set(arrays) - set(self.modality_names))
                if unknown:
                    raise CrosslError(f"unknown modality {unknown}; this model knows {list(self.modality_names)}")
                arrays, presence = self._fill_missing(arrays, presence)
            windows = WindowSet.from_arrays(arrays, presence=presence)
        if self.backbone is not None:
            self._check_compatible(windows)
        return windows

    def _fill_missing(self, arrays: dict[str, np.ndarray], presence: np.ndarray | None
                      ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        if not arrays:
            raise CrosslError(f"no modality given; pass at least one of {list(self.modality_names)}")
        n = len(next(iter(arrays.values())))
        filled = {}
        for m in self.modality_names:
            if m in arrays:
                filled[m] = arrays[m]
            else:
                filled[m] = np.full((n, 1, self.model_config.modality_channels[m]), np.nan, np.float32)
        if presence is not None and presence.shape[1] != len(self.modality_names):
            raise CrosslError(f"presence mask has {presence.shape[1]} columns; this model has {len(self.modality_names)} modalities")
        return filled, presence

    def _check_compatible(self, windows: WindowSet) -> None:
        if windows.modality_names != self.modality_names:
            raise CrosslError(f"data modalities {list(windows.modality_names)} differ from the model's {list(self.modality_names)}")
        for m, (_, channels) in windows.shapes.items():
            expected = self.model_config.modality_channels[m]
            if channels != expected:
                raise CrosslError(f"modality '{m}' has {channels} channels; the model expects {expected}")

    # ---------------------------------------------------------------- training
    def fit(self, data: WindowSet | Mapping[str, np.ndarray], presence: np.ndarray | None = None,
            val: WindowSet | None = None, run_dir: str | Path | None = None, resume: bool = False,
            indices: np.ndarray | None = None, val_indices: np.ndarray | None = None) -> CroSSL:
        """Fit normalisation on ``data`` and pretrain on it with Lightning.

        ``indices`` / ``val_indices`` select the windows of ``data`` / ``val`` to use (default all):
        a memory-mapped set is then read batch by batch, never copied whole into memory.
        ``run_dir`` keeps CSV logs and the ``last``/``best`` checkpoints (``checkpoints/``);
        ``resume=True`` continues from ``checkpoints/last.ckpt`` there.

        With several devices or nodes (``TrainerConfig``, strategy ``ddp``) Lightning re-runs the
        calling script once per extra device; every process returns the same trained model, and
        the batch size is the global batch, split evenly across the processes.
        """
        windows = self.as_windows(data, presence)
        train_rows = np.arange(len(windows)) if indices is None else np.asarray(indices, dtype=np.int64)
        channels = {m: c for m, (_, c) in windows.shapes.items()}
        if self.backbone is None:
            self.model_config.modality_channels = channels
        self._check_compatible(windows)
        if train_rows.size < 2:
            raise CrosslError("pretraining needs at least 2 windows")
        cfg = self.pretrain_config
        place = placement(self.trainer_config)
        per_process_batch(cfg.batch_size, place.world_size)
        L.seed_everything(cfg.seed, workers=False, verbose=False)
        self.stats = fit_channel_stats(windows, train_rows)
        self.backbone = CrossModalBackbone(self.model_config)
        module = PretrainModule(self.backbone, cfg)
        train = WindowBatches(windows, self.stats, train_rows)
        drop_last = len(train) > cfg.batch_size
        train_loader = batch_loader(train, cfg.batch_size, shuffle=True, drop_last=drop_last, seed=cfg.seed,
                                    rank=place.rank, world_size=place.world_size)
        val_loader = None
        val_rows = np.arange(len(val)) if val is not None and val_indices is None else np.asarray(val_indices)
        if val is not None and val_rows.size >= 2:
            # Windows are stored recording by recording: in stored order a batch would hold one
            # subject doing one thing, and VICReg's batch statistics would measure that. One fixed
            # shuffle gives representative batches, the same every epoch.
            order = np.random.default_rng(cfg.seed).permutation(val_rows.size)
            val_loader = batch_loader(WindowBatches(self.as_windows(val), self.stats, val_rows[order]),
                                      cfg.batch_size, shuffle=False, drop_last=val_rows.size > cfg.batch_size,
                                      rank=place.rank, world_size=place.world_size)
        root = Path(run_dir) if run_dir is not None else None
        callbacks: list[L.Callback] = []
        ckpt_path = None
        if root is not None:
            from lightning.pytorch.callbacks import ModelCheckpoint

            monitor = "val/loss" if val_loader is not None else "train/loss"
            callbacks.append(ModelCheckpoint(dirpath=root / "checkpoints", filename="best", monitor=monitor,
                                             mode="min", save_last=True, enable_version_counter=False))
            last = root / "checkpoints" / "last.ckpt"
            if resume and last.is_file():
                ckpt_path = str(last)
        log_version = f"resumed-{len(list((root / 'logs').glob('resumed-*')))}" if ckpt_path and root else ""
        trainer = build_trainer(self.trainer_config, root, max_epochs=cfg.epochs, max_steps=cfg.max_steps,
                                callbacks=callbacks, log_version=log_version)
        try:
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
        except RuntimeError as exc:
            if ckpt_path and ("size mismatch" in str(exc) or "Missing key" in str(exc) or "Unexpected key" in str(exc)):
                raise CrosslError(f"checkpoint {ckpt_path} was written by another model config; "
                                  "resume with the config it was made with, or start a new run") from exc
            raise
        leave_process_group()
        self.backbone.cpu().eval()
        return self

    # ---------------------------------------------------------------- inference
    def _require_fitted(self) -> CrossModalBackbone:
        if self.backbone is None or self.stats is None:
            raise CrosslError("this model is not fitted; call fit() or CroSSL.load() first")
        return self.backbone

    def encode(self, data: WindowSet | Mapping[str, np.ndarray], presence: np.ndarray | None = None,
               source: str = "aggregator", batch_size: int | None = None) -> np.ndarray:
        """Embeddings of every window: ``(N, out_dim)`` for ``aggregator``, ``(N, M * dim)`` for ``concat``.

        Missing modalities (left out of the dict, NaN, or False in ``presence``) are masked.
        """
        backbone = self._require_fitted()
        if source not in FEATURE_SOURCES:
            raise CrosslError(f"unknown feature source '{source}'; use one of {list(FEATURE_SOURCES)}")
        windows = WindowBatches(self.as_windows(data, presence), self.stats)  # type: ignore[arg-type]
        return compute_features(backbone, windows, source, batch_size).numpy()

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write ``model.safetensors`` (weights + normalisation) and ``model.json`` (config)."""
        backbone = self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {f"backbone.{k}": v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
        for m in self.modality_names:
            tensors[f"stats.mean.{m}"] = torch.from_numpy(self.stats.mean[m])  # type: ignore[union-attr]
            tensors[f"stats.std.{m}"] = torch.from_numpy(self.stats.std[m])  # type: ignore[union-attr]
        write_atomic(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
        write_json_atomic(path / CONFIG_FILE, {
            "format": "crossl-model", "version": 1,
            "model": _plain_config(self.model_config),
            "pretrain": _plain_config(self.pretrain_config),
        })
        return path

    @classmethod
    def load(cls, path: str | Path) -> CroSSL:
        path = Path(path)
        try:
            header = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            tensors = load_file(str(path / WEIGHTS_FILE))
        except (OSError, ValueError) as exc:
            raise CrosslError(f"cannot load a crossl model from {path} ({type(exc).__name__}: {exc}); "
                              "point to a directory written by CroSSL.save or `crossl pretrain`") from exc
        if header.get("format") != "crossl-model":
            raise CrosslError(f"{path / CONFIG_FILE} is not a crossl model file")
        model = cls(_build(ModelConfig, header["model"], "model"), _build(PretrainConfig, header["pretrain"], "pretrain"))
        backbone = CrossModalBackbone(model.model_config)
        state = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
        try:
            backbone.load_state_dict(state)
        except RuntimeError as exc:
            raise CrosslError(f"weights in {path} do not match its model config; the files come from different runs") from exc
        names = model.modality_names
        model.stats = ChannelStats({m: tensors[f"stats.mean.{m}"].numpy() for m in names},
                                   {m: tensors[f"stats.std.{m}"].numpy() for m in names})
        model.backbone = backbone.eval()
        return model


def _plain_config(config: object) -> dict[str, object]:
    from crossl.config import _plain

    return _plain(asdict(config))  # type: ignore[call-overload, no-any-return]
