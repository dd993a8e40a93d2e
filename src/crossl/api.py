"""The public Python API: one object that pretrains (with any method), encodes, evaluates, saves, loads.

>>> model = CroSSL()                                 # or CroSSL(method="simclr"), see `crossl methods`
>>> model.fit({"acc": acc, "gyro": gyro})            # arrays (N, T_m, C_m), NaN = missing
>>> z = model.encode({"acc": acc_new})              # gyro missing: still works
>>> model.save("my_model"); CroSSL.load("my_model")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from crossl.config import EvalConfig, ModelConfig, PretrainConfig, TrainerConfig, build_config, check_config, options_for
from crossl.config_fields import plain_config
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import ChannelStats, Split, data_fingerprint, fit_channel_stats
from crossl.data.subject_norm import prepared_inputs
from crossl.errors import CrosslError
from crossl.evaluation.features import compute_features
from crossl.evaluation.label_efficiency import Record, evaluate_label_efficiency, label_subsets
from crossl.fitting import fit_pretraining
from crossl.io import write_atomic, write_json_atomic
from crossl.methods import build_method, check_method_data
from crossl.models.backbone import FEATURE_SOURCES, CrossModalBackbone

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
MODEL_FORMAT = "crossl-model"
#: 2: the pretraining method and its options are their own fields (1 held CroSSL's in "pretrain").
MODEL_VERSION = 2


class CroSSL:
    """A backbone (per-modality encoders + aggregator) pretrained by one method, with its input normalisation.

    ``method`` is any name of ``crossl methods`` (default ``crossl``, the paper's); ``options`` its
    options dataclass from :mod:`crossl.config` (default: the method's defaults). ``fit`` fits
    per-channel normalisation on the data it is given, then pretrains; ``encode`` applies the same
    normalisation, so it takes raw arrays. Every config is checked when the model is made.
    """

    def __init__(self, model: ModelConfig | None = None, pretrain: PretrainConfig | None = None,
                 trainer: TrainerConfig | None = None, method: str = "crossl", options: Any = None) -> None:
        self.model_config = model or ModelConfig()
        self.pretrain_config = pretrain or PretrainConfig()
        self.trainer_config = trainer or TrainerConfig()
        self.method = method
        self.options = options if options is not None else options_for(method)
        for config in (self.model_config, self.pretrain_config, self.trainer_config):
            check_config(config)
        expected = type(options_for(method))
        if not isinstance(self.options, expected):
            raise CrosslError(f"options of method '{method}' must be a {expected.__name__}, "
                              f"got {type(self.options).__name__}")
        check_config(self.options, method)
        self.backbone: CrossModalBackbone | None = None
        self.stats: ChannelStats | None = None
        #: :func:`~crossl.data.splits.data_fingerprint` of the data the model was fitted on.
        self.data: dict[str, object] | None = None

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
        if presence is not None and (np.ndim(presence) != 2 or np.shape(presence)[1] != len(self.modality_names)):
            raise CrosslError(f"presence mask has shape {np.shape(presence)}; this model needs (windows, "
                              f"{len(self.modality_names)}) with one column per modality")
        return filled, presence

    def _check_compatible(self, windows: WindowSet) -> None:
        if windows.modality_names != self.modality_names:
            raise CrosslError(f"data modalities {list(windows.modality_names)} differ from "
                              f"the model's {list(self.modality_names)}")
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
        a memory-mapped set is then read batch by batch, never copied whole into memory (except with
        ``model.input_norm: subject``, which standardises a copy: :mod:`crossl.data.subject_norm`).
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
        check_method_data(self.method, self.options, channels)
        if train_rows.size < 2:
            raise CrosslError("pretraining needs at least 2 windows")
        L.seed_everything(self.pretrain_config.seed, workers=False, verbose=False)
        self.data = data_fingerprint(windows)
        windows = prepared_inputs(windows, self.model_config.input_norm)
        self.stats = fit_channel_stats(windows, train_rows)
        self.backbone = CrossModalBackbone(self.model_config)
        module = build_method(self.method, self.backbone, self.pretrain_config, self.options)
        val_batches = None
        if val is not None:
            val_rows = np.arange(len(val)) if val_indices is None else np.asarray(val_indices, dtype=np.int64)
            val_batches = WindowBatches(prepared_inputs(self.as_windows(val), self.model_config.input_norm),
                                        self.stats, val_rows)
        fit_pretraining(module, WindowBatches(windows, self.stats, train_rows), val_batches, self.pretrain_config,
                        self.trainer_config, Path(run_dir) if run_dir is not None else None, resume)
        self.backbone.cpu().eval()
        return self

    def evaluate(self, windows: WindowSet, split: Split, config: EvalConfig | None = None,
                 trainer: TrainerConfig | None = None) -> list[Record]:
        """Label efficiency of this fitted model on ``windows``: every protocol, label fraction and
        seed of ``config`` (default :class:`EvalConfig`), trained on nested subsets of
        ``split.train``, scored on the whole of ``split.test``; one record per cell (see
        :mod:`crossl.evaluation.label_efficiency`). Runs in this process on one device."""
        self._require_fitted()
        config = config or EvalConfig()
        check_config(config)
        self._check_compatible(windows)
        from crossl.distributed import one_device

        return evaluate_label_efficiency(windows, split, label_subsets(windows, split, config), self, config,
                                         one_device(trainer or self.trainer_config), self.model_config)

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
        windows = WindowBatches(prepared_inputs(self.as_windows(data, presence), self.model_config.input_norm),
                                self.stats)  # type: ignore[arg-type]
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
            "format": MODEL_FORMAT, "version": MODEL_VERSION, "method": self.method, "data": self.data,
            "options": plain_config(self.options),
            "model": plain_config(self.model_config),
            "pretrain": plain_config(self.pretrain_config),
        })
        return path

    @classmethod
    def load(cls, path: str | Path) -> CroSSL:
        """Read a model written by :meth:`save`. Anything wrong with the files (missing, empty,
        truncated, damaged, another format version, a foreign or incomplete config, weights or
        statistics that do not fit it) is a :class:`CrosslError` naming the file."""
        path = Path(path)
        config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
        fix = "point to a directory written by CroSSL.save or `crossl pretrain`, or pretrain again"
        try:
            header = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CrosslError(f"cannot read {config_file} ({type(exc).__name__}); {fix}") from exc
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise CrosslError(f"{config_file} is not a crossl model file; {fix}")
        if header.get("version") != MODEL_VERSION:
            raise CrosslError(f"{config_file} has model format version {header.get('version')!r}; this crossl "
                              f"reads version {MODEL_VERSION}: pretrain the model again with this version")
        for key in ("method", "options", "model", "pretrain"):
            if not isinstance(header.get(key), dict if key != "method" else str):
                raise CrosslError(f"{config_file} lacks a valid '{key}' section; the file is damaged: {fix}")
        try:
            method = header["method"]
            model = cls(build_config(ModelConfig, header["model"], "model"),
                        build_config(PretrainConfig, header["pretrain"], "pretrain"),
                        method=method, options=options_for(method, header["options"]))
        except CrosslError as exc:
            raise CrosslError(f"{config_file}: {exc}") from exc
        data = header.get("data")
        model.data = dict(data) if isinstance(data, dict) else None
        try:
            tensors = load_file(str(weights_file))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for damaged files
            raise CrosslError(f"cannot read the weights {weights_file} ({type(exc).__name__}): the file is missing, "
                              f"truncated or damaged; {fix}") from exc
        names = model.modality_names
        missing = [k for m in names for k in (f"stats.mean.{m}", f"stats.std.{m}") if k not in tensors]
        if missing:
            raise CrosslError(f"{weights_file} lacks the normalisation statistics {missing}; {fix}")
        backbone = CrossModalBackbone(model.model_config)
        state = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
        try:
            backbone.load_state_dict(state)
        except RuntimeError as exc:
            raise CrosslError(f"weights in {path} do not match its model config; the files come from different runs") from exc
        stats = ChannelStats({m: tensors[f"stats.mean.{m}"].numpy() for m in names},
                             {m: tensors[f"stats.std.{m}"].numpy() for m in names})
        for m in names:
            expected = (model.model_config.modality_channels[m],)
            if stats.mean[m].shape != expected or stats.std[m].shape != expected:
                raise CrosslError(f"{weights_file}: the statistics of '{m}' have shape {stats.mean[m].shape}, "
                                  f"expected {expected}; {fix}")
        model.stats = stats
        model.backbone = backbone.eval()
        return model
