"""Typed configuration: dataclasses, their checks and YAML; a leaf module (no torch, no registries).

The methods' options live in :mod:`crossl.method_options`, the field-level checks and coercions in
:mod:`crossl.config_fields`.

Defaults follow the paper where it is explicit; other choices are noted. Names that a registry
resolves (methods, aggregators, protocols, masking strategies, augmentations) are ``Literal`` types
here; the tests check that every registry holds exactly these names.

Every config is checked field by field (type, then range) by :func:`check_config`, whether it came
from YAML, the command line or Python: a wrong value fails in one line before any work starts.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from crossl.config_fields import check_type, coerce, fail, non_negative, plain, positive
from crossl.errors import CrosslError
from crossl.io import write_text_atomic
from crossl.method_options import METHOD_OPTIONS, CroSSLOptions, option_owners

MethodName = Literal["crossl", "random-init", "simclr", "vicreg-aug", "cocoa", "mae"]
AggregatorName = Literal["mlp", "attention"]
Elementwise = Literal["native", "eager"]
InputNorm = Literal["train", "subject"]
ProtocolName = Literal["linear", "mlp", "finetune", "supervised"]
#: ``auto``: the representation the method trains (the aggregator output, or the concatenated
#: encoder outputs for methods that never train the aggregator).
HeadInput = Literal["auto", "aggregator", "concat"]
#: Lightning strategies a pretraining may use: ``auto`` (one device, or ``ddp`` for several) and
#: ``ddp``, whose launcher re-runs the command once per extra device and also serves processes that
#: srun or torchrun start. Spawn/fork variants would run the fit in processes that never run the
#: pipeline, and sharded strategies buy nothing for a model this small; neither is tested.
Strategy = Literal["auto", "ddp"]
LRSchedule = Literal["constant", "cosine"]
#: Where pretraining curves go besides the CSV log (which the report's plots read): Lightning's own
#: TensorBoard, MLflow or Weights & Biases logger, each needing its optional package.
LoggerName = Literal["csv", "tensorboard", "mlflow", "wandb"]

METHOD_NAMES: tuple[str, ...] = get_args(MethodName)
PROTOCOL_NAMES: tuple[str, ...] = get_args(ProtocolName)
STRATEGIES: tuple[str, ...] = get_args(Strategy)
LOGGER_NAMES: tuple[str, ...] = get_args(LoggerName)


@dataclass
class ModelConfig:
    """The backbone shared by every method: per-modality encoders and the cross-modal aggregator."""

    modality_channels: dict[str, int] = field(default_factory=dict)
    dim: int = 96
    kernel_sizes: tuple[int, ...] = (24, 16, 8)
    dropout: float = 0.1
    aggregator: AggregatorName = "mlp"
    out_dim: int = 32
    #: Masked entries become a learned per-modality token instead of zero (the paper uses zero).
    mask_token: bool = False
    #: The aggregator's final LayerNorm (the release's); off, its output is the last linear layer's.
    aggregator_norm: bool = True
    #: The encoders' LayerNorm -> PReLU -> dropout: one built C kernel (CPU, fp32 or bf16; eager where it
    #: cannot build) or eager torch ops. They agree to float tolerance but draw different dropout masks.
    elementwise: Elementwise = "native"
    #: Each window standardised first by its own subject's per-channel statistics ("subject"), or only
    #: by the training windows' ("train"). Chosen on validation: docs/results/hapt-subjectnorm-val-*.
    input_norm: InputNorm = "subject"

    def check(self, where: str = "model") -> None:
        if len(self.kernel_sizes) != 3 or self.dim % 4 or self.dim < 4:
            fail(where, f"the TCN encoder has three blocks of dim/4, dim/2, dim filters: give 3 kernel sizes "
                         f"(got {list(self.kernel_sizes)}) and a dim divisible by 4 (got {self.dim})")
        if any(k < 1 for k in self.kernel_sizes):
            fail(f"{where}.kernel_sizes", f"kernel sizes must be positive, got {list(self.kernel_sizes)}")
        if not 0.0 <= self.dropout < 1.0:
            fail(f"{where}.dropout", f"must lie in [0, 1), got {self.dropout}")
        positive(f"{where}.out_dim", self.out_dim)
        for name, channels in self.modality_channels.items():
            if channels < 1:
                fail(f"{where}.modality_channels", f"modality '{name}' has {channels} channels; it needs at least 1")


@dataclass
class PretrainConfig:
    """Optimisation of any pretraining method (the objective's own options are the method's).

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
    seed: int = 0
    #: ``constant`` (the release's) or ``cosine``: decay to 0 over the run's optimiser steps. Cosine
    #: after 2 warm-up epochs is the default since the recipe study on HAPT's validation subjects
    #: (docs/results/hapt-recipe/): on top of the VICReg weights and expander it raised the frozen
    #: probe at 10% labels by 0.017 (CI of the paired difference above 0, 6 of 6 pairs), and left
    #: 1% and fine-tuning level. Every method shares it.
    lr_schedule: LRSchedule = "cosine"
    #: Epochs of linear warm-up from 0 to ``lr`` at the start (either schedule).
    warmup_epochs: float = 2.0
    #: Also pretrain on the training subjects' windows that have no class, from the built-in
    #: dataset's unlabeled pool (HAPT: postural transitions, windows straddling two activities,
    #: stretches between them). Validation and test subjects never enter pretraining; evaluation
    #: still uses the labeled windows only.
    unlabeled_windows: bool = False

    def check(self, where: str = "pretrain") -> None:
        non_negative(f"{where}.epochs", self.epochs)
        if self.max_steps < -1 or self.max_steps == 0:
            fail(f"{where}.max_steps", f"must be -1 (every epoch) or a positive number of steps, got {self.max_steps}")
        if self.batch_size < 2:
            fail(f"{where}.batch_size", f"must be at least 2 (the objectives use batch statistics), got {self.batch_size}")
        positive(f"{where}.lr", self.lr)
        non_negative(f"{where}.weight_decay", self.weight_decay)
        non_negative(f"{where}.seed", self.seed)
        non_negative(f"{where}.warmup_epochs", self.warmup_epochs)


# ------------------------------------------------------------------ the split
@dataclass
class SplitConfig:
    """Which split of the dataset a run uses (the dataset names its scheme: :mod:`crossl.data.splits`)."""

    #: Leave-one-subject-out sets only: the held-out test subject's position among the sorted
    #: subject ids (the next subject is validation). 0 elsewhere.
    fold: int = 0
    #: Subject-wise sets only: validate on these subjects instead of the set's own validation
    #: subjects, which join train (test is unchanged). Empty: the set's own split.
    val_subjects: tuple[int, ...] = ()

    def check(self, where: str = "split") -> None:
        non_negative(f"{where}.fold", self.fold)
        if any(s < 0 for s in self.val_subjects):
            fail(f"{where}.val_subjects", f"subject ids are zero or positive, got {list(self.val_subjects)}")


# ------------------------------------------------------------------ evaluation and trainer
@dataclass
class EvalConfig:
    """Downstream label-efficiency evaluation.

    Every trainable protocol gets the same budget of optimiser steps, ``max(steps, epochs passes
    over the labeled windows)``, and is evaluated at its last step: no model selection on labels
    beyond the labeled subset.
    """

    protocols: tuple[ProtocolName, ...] = ("linear", "finetune", "supervised")
    label_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 300
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    #: Fine-tuning's backbone learning rate as a fraction of ``lr`` (the head always gets ``lr``;
    #: supervised training from random weights always trains the backbone at ``lr``). 0.1 since the
    #: recipe study on HAPT's validation subjects (docs/results/hapt-recipe/): fine-tuning at 1%
    #: labels rose by 0.016 over 1.0 (CI above 0, 6 of 6 pairs), level at 10%.
    backbone_lr_scale: float = 0.1
    #: Features the head reads: "aggregator" (the paper's figure), "concat" (the release's default),
    #: or "auto" (what the method trains: the aggregator, or "concat" for encoder-only methods).
    #: "auto" (the aggregator for CroSSL) since the recipe study (docs/results/hapt-recipe/, 6
    #: pretraining seeds): on the chosen recipe "concat" leaves fine-tuning level (+0.004 at 1%,
    #: interval including 0; -0.000 at 10%) while raising the frozen probe (+0.023 at 1%, +0.009 at
    #: 10%); and "concat" fills a missing modality's slot with zeros, where the aggregator was
    #: pretrained on stacks with modalities masked out.
    head_input: HeadInput = "auto"
    #: Trainable protocols on a backbone (``finetune``, ``supervised``): the probability that a present
    #: modality is hidden from a labeled training window (at least one is always kept), so that the
    #: classifier learns to work when a sensor is missing. 0: off (the paper's protocol).
    modality_dropout: float = 0.0
    #: Fine-tuning only: the fraction of the step budget in which only the head trains, on the
    #: pretrained backbone frozen (no dropout, no gradients); the backbone then joins at its learning
    #: rate, decayed over the remaining steps. The budget stays the same. 0 (the head and the
    #: backbone train together from the first step): in the recipe study (docs/results/hapt-recipe/)
    #: 0.5 left fine-tuning level (-0.003 at 1% labels, interval including 0).
    head_warmup: float = 0.0
    #: Trainable protocols (``mlp``, ``finetune``, ``supervised``): the cross-entropy's label
    #: smoothing (PyTorch's ``label_smoothing``). 0 (plain cross-entropy): in the recipe study 0.1
    #: left fine-tuning level (-0.003 at 1% labels, interval including 0).
    label_smoothing: float = 0.0

    def check(self, where: str = "evaluation") -> None:
        for name in ("protocols", "label_fractions", "seeds"):
            if not getattr(self, name):
                fail(f"{where}.{name}", "must not be empty")
        for name in ("protocols", "label_fractions", "seeds"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                fail(f"{where}.{name}", f"lists a value twice: {list(values)}")
        bad = [f for f in self.label_fractions if not 0.0 < f <= 1.0]
        if bad:
            fail(f"{where}.label_fractions", f"fractions must lie in (0, 1], got {bad}")
        if any(s < 0 for s in self.seeds):
            fail(f"{where}.seeds", f"seeds must be zero or positive, got {list(self.seeds)}")
        non_negative(f"{where}.steps", self.steps)
        non_negative(f"{where}.epochs", self.epochs)
        if self.steps == 0 and self.epochs == 0:
            fail(where, "steps and epochs are both 0: a trainable protocol would never train")
        positive(f"{where}.batch_size", self.batch_size)
        positive(f"{where}.lr", self.lr)
        non_negative(f"{where}.backbone_lr_scale", self.backbone_lr_scale)
        if not 0.0 <= self.modality_dropout < 1.0:
            fail(f"{where}.modality_dropout", f"must lie in [0, 1), got {self.modality_dropout}")
        if not 0.0 <= self.head_warmup < 1.0:
            fail(f"{where}.head_warmup", f"is a fraction of the step budget in [0, 1), got {self.head_warmup}")
        if not 0.0 <= self.label_smoothing < 1.0:
            fail(f"{where}.label_smoothing", f"must lie in [0, 1), got {self.label_smoothing}")


@dataclass
class TrainerConfig:
    """Passed through to Lightning.

    ``devices``, ``num_nodes`` and ``strategy`` place pretraining only: pretraining's batch size is
    the global batch, split across ``devices x num_nodes`` processes. Downstream evaluation runs in
    one process on one device.
    """

    accelerator: str = "cpu"
    #: Lightning's devices: a count ("2"), a list of ids ("0,1") or "auto" (YAML may give a number).
    devices: str = field(default="1", metadata={"accepts_int": True})
    num_nodes: int = 1
    strategy: Strategy = "auto"
    #: Lightning's precision ("32-true", "bf16-mixed", "16-mixed"; YAML may give 32), or "auto": bf16-mixed on a
    #: CPU with bf16 instructions, else 32-true; the default since docs/results/hapt-bf16-subjectnorm-val-*/.
    precision: str = field(default="auto", metadata={"accepts_int": True})
    #: Run the encoders' elementwise work through ``torch.compile`` in every fit (needs a C++ compiler on CPU).
    compile: bool = False
    progress: bool = True
    #: ``csv`` (always written), or also ``tensorboard``, ``mlflow`` or ``wandb`` (their extras:
    #: ``pip install 'crossl[tensorboard]'``); runs go to ``<run>/logs`` (``mlflow``: ``<run>/mlruns``).
    logger: LoggerName = "csv"

    def check(self, where: str = "trainer") -> None:
        if self.num_nodes < 1:
            fail(f"{where}.num_nodes", f"number of nodes must be a positive integer, got {self.num_nodes!r}")
        if self.logger != "csv":
            import importlib.util

            if importlib.util.find_spec(self.logger) is None:  # each logger's package has the logger's name
                fail(f"{where}.logger", f"'{self.logger}' needs the {self.logger} package: "
                                         f"pip install 'crossl[{self.logger}]', or use csv")


# ------------------------------------------------------------------ the run
@dataclass
class RunConfig:
    """Everything a run computes with. In YAML the method's options are the section named after it::

        dataset: hapt
        method: crossl
        crossl: {mask_strategy: modality, mask_ratio: 0.5, ...}
        model: {...}
        pretrain: {...}
    """

    dataset: str = "hapt"
    method: MethodName = "crossl"
    options: Any = field(default_factory=CroSSLOptions)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def set_method(self, method: str) -> None:
        """Switch to ``method`` with its default options (keeps them if the method is unchanged)."""
        if method != self.method or not isinstance(self.options, METHOD_OPTIONS.get(method, ())):
            self.options = options_for(method)
            self.method = method  # type: ignore[assignment]

    def validate(self) -> None:
        """Check every field's type and range (one line naming the field and the fix)."""
        check_config(self)

    def to_dict(self) -> dict[str, Any]:
        values = plain(asdict(self))
        options = values.pop("options")
        ordered = {"dataset": values.pop("dataset"), "method": values.pop("method"), self.method: options}
        return {**ordered, **values}

    def save(self, path: Path) -> None:
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RunConfig:
        if not isinstance(obj, dict):
            raise CrosslError(f"config must be a mapping, got {type(obj).__name__}")
        obj = dict(obj)
        method = obj.pop("method", "crossl")
        if method not in METHOD_OPTIONS:
            raise CrosslError(f"config: unknown method {method!r}; use one of {list(METHOD_NAMES)}")
        others = sorted(k for k in obj if k in METHOD_OPTIONS and k != method)
        if others:
            raise CrosslError(f"config: section(s) {others} belong to other methods than '{method}'; "
                              f"remove them or set method to one of them")
        options = options_for(method, obj.pop(method, None) or {})
        if "options" in obj:
            raise CrosslError(f"config: put the method's options under a '{method}' section, not 'options'")
        config = build_config(cls, obj, "config")
        config.method = method
        config.options = options
        check_config(config)
        return config

    @classmethod
    def load(cls, path: Path) -> RunConfig:
        try:
            obj = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CrosslError(f"cannot read config {path} ({type(exc).__name__}); fix or delete it") from exc
        return cls.from_dict(obj or {})


def demo_config(quick: bool) -> RunConfig:
    """The demo's settings: the defaults, or a smoke run with ``quick``."""
    config = RunConfig(dataset="hapt")
    if quick:
        config.pretrain.epochs = 2
        config.evaluation.steps = 20
        config.evaluation.epochs = 0
        config.evaluation.seeds = (0,)
    return config


# ------------------------------------------------------------------ building and checking
def options_for(method: str, values: dict[str, Any] | None = None) -> Any:
    """The options dataclass of ``method``, from defaults updated with ``values`` (checked)."""
    if method not in METHOD_OPTIONS:
        raise CrosslError(f"unknown method '{method}'; use one of {list(METHOD_NAMES)}")
    return build_config(METHOD_OPTIONS[method], values or {}, method)


def build_config(cls: type, obj: Any, where: str) -> Any:
    """Instantiate a (nested) config dataclass from a plain dict, rejecting unknown keys, checked."""
    if not isinstance(obj, dict):
        raise CrosslError(f"{where} must be a mapping, got {type(obj).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(obj) - set(known))
    if unknown:
        owners = {k: option_owners(k) for k in unknown}
        hint = "; ".join(f"'{k}' is an option of {v}" for k, v in owners.items() if v)
        raise CrosslError(f"unknown {where} key(s) {unknown}; known keys are {sorted(known)}" + (f" ({hint})" if hint else ""))
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in obj.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = build_config(type(default), value, f"{where}.{name}")
        else:
            kwargs[name] = coerce(value, hints[name], known[name], f"{where}.{name}")
    instance = cls(**kwargs)
    check_config(instance, where)
    return instance


def check_config(config: Any, where: str | None = None) -> None:
    """Check a config dataclass (and the ones inside it): every field's type, then its ``check()``."""
    where = where or _default_where(config)
    hints = typing.get_type_hints(type(config))
    for spec in fields(config):
        value = getattr(config, spec.name)
        if isinstance(config, RunConfig) and spec.name == "options":
            continue  # checked below, against the method
        if dataclasses.is_dataclass(value):
            check_config(value, spec.name if where == "config" else f"{where}.{spec.name}")
        else:
            check_type(value, hints[spec.name], f"{where}.{spec.name}")
    if isinstance(config, RunConfig):
        expected = METHOD_OPTIONS.get(config.method)
        if expected is None:
            raise CrosslError(f"unknown method '{config.method}'; use one of {list(METHOD_NAMES)}")
        if not isinstance(config.options, expected):
            raise CrosslError(f"config: the options of method '{config.method}' must be {expected.__name__}, "
                              f"got {type(config.options).__name__}")
        check_config(config.options, config.method)
    check = getattr(config, "check", None)
    if check is not None:
        check(where)


def _default_where(config: Any) -> str:
    for name, cls in METHOD_OPTIONS.items():
        if type(config) is cls:
            return name
    return {"SplitConfig": "split", "ModelConfig": "model", "PretrainConfig": "pretrain", "EvalConfig": "evaluation",
            "TrainerConfig": "trainer"}.get(type(config).__name__, "config")
