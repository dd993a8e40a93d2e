"""Typed configuration. Defaults follow the paper where it is explicit; other choices are noted."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from crossl.errors import CrosslError
from crossl.io import write_text_atomic
from crossl.masking import check_mask_args


@dataclass
class ModelConfig:
    """The backbone: per-modality encoders and the cross-modal aggregator."""

    modality_channels: dict[str, int] = field(default_factory=dict)
    dim: int = 96
    kernel_sizes: tuple[int, ...] = (24, 16, 8)
    dropout: float = 0.1
    aggregator: str = "mlp"
    out_dim: int = 32
    #: Masked entries become a learned per-modality token instead of zero (the paper uses zero).
    mask_token: bool = False


@dataclass
class PretrainConfig:
    """CroSSL pretraining.

    The release used batch 8 and Adam 1e-4: at batch 8 the 32-d VICReg covariance has rank 7 at
    most. Batch 64 with Adam 1e-3 is the default here; on HAPT it beat batch 256 (fewer steps for
    the same epochs) and batch 32 (noisier covariance) in frozen-feature probes (docs/design.md).
    """

    epochs: int = 40
    #: Stop after this many optimiser steps even inside an epoch (-1: run every epoch); for smoke
    #: runs and benchmarks on data too large for whole epochs.
    max_steps: int = -1
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    mask_strategy: str = "modality"
    mask_ratio: float = 0.5
    sim_weight: float = 10.0
    var_weight: float = 10.0
    cov_weight: float = 100.0
    seed: int = 0


@dataclass
class EvalConfig:
    """Downstream label-efficiency evaluation.

    Every trainable protocol gets the same budget of optimiser steps, ``max(steps, epochs passes
    over the labeled windows)``, and is evaluated at its last step: no model selection on labels
    beyond the labeled subset.
    """

    protocols: tuple[str, ...] = ("linear", "finetune", "supervised")
    label_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 300
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    #: Fine-tuning's backbone learning rate as a fraction of ``lr`` (the head always gets ``lr``).
    backbone_lr_scale: float = 1.0
    #: Features the head reads: "aggregator" (the paper's figure) or "concat" (the release's default).
    head_input: str = "aggregator"


def step_budget(config: EvalConfig, num_labeled: int) -> int:
    """Optimiser steps of a trainable protocol on ``num_labeled`` windows."""
    return max(config.steps, config.epochs * math.ceil(num_labeled / config.batch_size))


#: Lightning strategies a pretraining may use: ``auto`` (one device, or ``ddp`` for several) and
#: ``ddp``, whose launcher re-runs the command once per extra device and also serves processes that
#: srun or torchrun start. Spawn/fork variants would run the fit in processes that never run the
#: pipeline, and sharded strategies buy nothing for a model this small; neither is tested.
STRATEGIES = ("auto", "ddp")


@dataclass
class TrainerConfig:
    """Passed through to Lightning.

    ``devices``, ``num_nodes`` and ``strategy`` place pretraining only: pretraining's batch size is
    the global batch, split across ``devices x num_nodes`` processes. Downstream evaluation runs in
    one process on one device.
    """

    accelerator: str = "cpu"
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    #: Run the encoders' LayerNorm -> PReLU -> dropout compiled by ``torch.compile`` (fused kernels)
    #: in every Lightning fit; needs a C++ compiler on CPU. Results agree with eager to float tolerance.
    compile: bool = False
    progress: bool = True


@dataclass
class RunConfig:
    dataset: str = "hapt"
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def validate(self) -> None:
        check_mask_args(self.pretrain.mask_strategy, self.pretrain.mask_ratio)
        from crossl.models.aggregators import AGGREGATORS
        from crossl.evaluation.protocols import PROTOCOLS

        if self.model.aggregator not in AGGREGATORS:
            raise CrosslError(f"unknown aggregator '{self.model.aggregator}'; use one of {sorted(AGGREGATORS)}")
        unknown = [p for p in self.evaluation.protocols if p not in PROTOCOLS]
        if unknown:
            raise CrosslError(f"unknown protocol(s) {unknown}; use any of {list(PROTOCOLS)}")
        if self.evaluation.head_input not in ("aggregator", "concat"):
            raise CrosslError(f"head input '{self.evaluation.head_input}' is neither 'aggregator' nor 'concat'")
        if len(self.model.kernel_sizes) != 3 or self.model.dim % 4:
            raise CrosslError(f"the TCN encoder has three blocks of dim/4, dim/2, dim filters: give 3 kernel sizes "
                              f"(got {list(self.model.kernel_sizes)}) and a dim divisible by 4 (got {self.model.dim})")
        if self.pretrain.batch_size < 2:
            raise CrosslError("pretraining batch size must be at least 2 (VICReg's variance term)")
        if self.trainer.strategy not in STRATEGIES:
            raise CrosslError(f"unknown strategy '{self.trainer.strategy}'; use one of {list(STRATEGIES)}")
        if not isinstance(self.trainer.num_nodes, int) or self.trainer.num_nodes < 1:
            raise CrosslError(f"number of nodes must be a positive integer, got {self.trainer.num_nodes!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        write_text_atomic(path, yaml.safe_dump(_plain(self.to_dict()), sort_keys=False))

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RunConfig:
        return _build(cls, obj, "config")

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            obj = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CrosslError(f"cannot read config {path} ({type(exc).__name__}); fix or delete it") from exc
        return cls.from_dict(obj or {})


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, obj: dict[str, Any], where: str) -> Any:
    """Instantiate a (nested) config dataclass from a plain dict, rejecting unknown keys."""
    if not isinstance(obj, dict):
        raise CrosslError(f"{where} must be a mapping, got {type(obj).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(obj) - set(known))
    if unknown:
        raise CrosslError(f"unknown {where} key(s) {unknown}; known keys are {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in obj.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        else:
            kwargs[name] = value
    return cls(**kwargs)
