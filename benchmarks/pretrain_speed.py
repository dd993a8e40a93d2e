"""Speed of CroSSL pretraining and embedding, against a plain PyTorch reference, in one process.

What is measured
----------------
For every (shape, batch, precision, mode, implementation) the script builds a fresh model with the
paper's architecture (D=96 per-modality TCN encoders, kernels 24/16/8, dropout 0.1, MLP aggregator
flatten -> 64 -> 32 -> 32 -> LayerNorm) on random windows with every modality present, and times:

- ``pretrain``: one CroSSL step, as ``PretrainModule._shared_step`` does it, plus the update. Train
  mode (dropout on): embed every modality once; draw two "modality" keep-masks (ratio 0.5) from a
  seeded ``torch.Generator``; aggregate each view; VICReg 10/10/100; backward; Adam step.
- ``embed``: forward-only features (eval mode, ``torch.no_grad()``): ``backbone.features``.

- ``methods``: one pretraining step of each registered method (``crossl.methods.METHODS``) through the
  package's own code: ``module.objective(batch, "train", step)`` (train mode, a fresh step index per
  call), backward, and the Adam step of ``module.configure_optimizers()``. The methods of one
  configuration are timed round robin (one step of each in turn, the order rotated every round), so
  drift on a noisy machine hits them alike, and each is reported as windows/s and as its median step
  over ``crossl``'s, measured in the same rounds. ``--impl`` does not apply to this mode.

Implementations: ``crossl`` is the package's ``CrossModalBackbone`` with ``draw_keep_mask`` and
``vicreg_loss``, run eagerly (``model.elementwise: eager``); ``crossl-native`` is the same with the
encoders' LayerNorm -> PReLU -> dropout in the native C kernel (``model.elementwise: native``, the
package's default since 2026-12-06); ``crossl-compiled`` is the eager one with that elementwise work
compiled by ``torch.compile`` (``--compile`` on the command line); ``reference`` is the same model
written out here in straightforward eager PyTorch (one encoder module per modality in a Python
loop, (batch, channels, time) layout). All run in the same process, so their ratios are comparable.

How
---
``--warmup`` untimed steps, then ``--repeats`` timed ones; windows/s = batch / median step time.
Each pretraining step is split into phases (encoders forward, masking + aggregator forward, loss
forward, backward, optimiser step) with ``time.perf_counter``; on CUDA the device is synchronised
at every phase boundary so each phase is charged its own kernels. ``bf16-mixed`` wraps the forward
(loss included) in ``torch.autocast(device, dtype=torch.bfloat16)``, as Lightning does.

Model FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one extra step after the timed ones
(forward and backward for ``pretrain``, the forward for ``embed``), so they count the matmuls and
convolutions of the model as configured; elementwise work (norms, activations, Adam) counts zero.
The peak is the fastest fp32 dense kernel measured on the same device and threads: the median
FLOP/s of ``torch.mm`` on 2048 x 2048 matrices and of a large compute-bound convolution, whichever
is higher (on AMD CPUs torch's MKL matmul runs a path about half as fast as the oneDNN
convolution; a peak from ``torch.mm`` alone would then overstate every MFU about twice). MFU =
windows/s * FLOPs per window / peak, against the fp32 peak for bf16 too; ``mfu_vs_mm`` gives the
same against the ``torch.mm`` figure alone.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import resource
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from machine import cpu_model
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from crossl.allocator import ENV_SWITCH, keep_freed_memory
from crossl.config import METHOD_NAMES, ModelConfig
from crossl.losses import vicreg_loss
from crossl.masking import draw_keep_mask
from crossl.models.backbone import CrossModalBackbone

if TYPE_CHECKING:
    from crossl.methods import PretrainMethod

#: Dataset shapes: modality -> (time steps, channels) of one window.
SHAPES: dict[str, dict[str, tuple[int, int]]] = {
    "hapt": {"acc": (128, 3), "gyro": (128, 3)},
    "pamap2": {f"{site}_{sensor}": (512, 3) for site in ("hand", "ankle", "chest") for sensor in ("acc", "gyro")},
    "wesad": {"ecg": (1000, 1), "emg": (1000, 1), "eda": (1000, 1)},
    "sleepedf": {"eeg_fpz_cz": (3000, 1), "eeg_pz_oz": (3000, 1), "eog": (3000, 1), "emg": (30, 1)},
}
IMPLEMENTATIONS = ("crossl", "crossl-native", "crossl-compiled", "reference")
PRECISIONS = ("32", "bf16-mixed")
MODES = ("pretrain", "embed", "methods")
METHOD_PHASES = ("objective", "backward", "optimizer")
PHASES = ("encoders", "mask_aggregate", "loss", "backward", "optimizer")
PHASE_LABELS = ("enc", "mask+agg", "loss", "bwd", "opt")

DIM = 96
KERNEL_SIZES = (24, 16, 8)
DROPOUT = 0.1
AGGREGATOR_WIDTHS = (64, 32)
OUT_DIM = 32
MASK_RATIO = 0.5
SIM_WEIGHT, VAR_WEIGHT, COV_WEIGHT = 10.0, 10.0, 100.0
VARIANCE_EPS = 1e-4
LEARNING_RATE = 1e-3
PEAK_MATMUL_SIZE = 2048


@dataclass
class Batch:
    """Random windows ``{modality: (batch, T_m, C_m)}`` and an all-True ``presence (batch, modalities)``."""

    inputs: dict[str, torch.Tensor]
    presence: torch.Tensor


def random_batch(shape: Mapping[str, tuple[int, int]], size: int, device: torch.device) -> Batch:
    generator = torch.Generator().manual_seed(0)
    inputs = {m: torch.randn((size, t, c), generator=generator).to(device) for m, (t, c) in shape.items()}
    return Batch(inputs, torch.ones((size, len(shape)), dtype=torch.bool, device=device))


class BenchModel(nn.Module):
    """The four pieces of a step that an implementation provides; the step itself is shared."""

    def embed(self, batch: Batch) -> torch.Tensor:
        """Modality embeddings ``(batch, modalities, dim)``."""
        raise NotImplementedError

    def two_views(self, q: torch.Tensor, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Two masked views of ``q``, each aggregated to ``(batch, out_dim)``."""
        raise NotImplementedError

    def loss(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features(self, batch: Batch) -> torch.Tensor:
        """Unmasked downstream features ``(batch, out_dim)``."""
        raise NotImplementedError


class CrosslModel(BenchModel):
    """The package's backbone, masks and loss, called as ``PretrainModule._shared_step`` calls them."""

    def __init__(self, channels: Mapping[str, int], elementwise: str = "eager") -> None:
        super().__init__()
        config = ModelConfig(modality_channels=dict(channels), dim=DIM, kernel_sizes=KERNEL_SIZES,
                             dropout=DROPOUT, aggregator="mlp", out_dim=OUT_DIM,
                             elementwise=elementwise)  # type: ignore[arg-type]
        self.backbone = CrossModalBackbone(config)

    def embed(self, batch: Batch) -> torch.Tensor:
        return self.backbone.embed(batch.inputs)

    def two_views(self, q: torch.Tensor, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        b, m, d = q.shape
        masks = [draw_keep_mask((b, m, d), "modality", MASK_RATIO, generator, batch.presence, q.device)
                 for _ in range(2)]
        return self.backbone.aggregate(q, masks[0]), self.backbone.aggregate(q, masks[1])

    def loss(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return vicreg_loss(z_a, z_b, SIM_WEIGHT, VAR_WEIGHT, COV_WEIGHT, VARIANCE_EPS)

    def features(self, batch: Batch) -> torch.Tensor:
        return self.backbone.features(batch.inputs, batch.presence)


class ReferenceEncoder(nn.Module):
    """Three blocks of Conv1d ('same') -> LayerNorm over channels -> PReLU -> Dropout, then mean over time."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        widths = (in_channels, DIM // 4, DIM // 2, DIM)
        self.convs = nn.ModuleList(
            nn.Conv1d(widths[i], widths[i + 1], k, padding="same") for i, k in enumerate(KERNEL_SIZES)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(w, eps=1e-3) for w in widths[1:])
        self.acts = nn.ModuleList(nn.PReLU(w, init=0.0) for w in widths[1:])
        self.dropout = nn.Dropout(DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # (B, C, T)
        for conv, norm, act in zip(self.convs, self.norms, self.acts, strict=True):
            h = conv(h)
            h = norm(h.transpose(1, 2)).transpose(1, 2)
            h = self.dropout(act(h))
        return h.mean(dim=2)


class ReferenceModel(BenchModel):
    """The paper's model in plain eager PyTorch; every modality is present in benchmark batches."""

    def __init__(self, channels: Mapping[str, int]) -> None:
        super().__init__()
        self.names = tuple(channels)
        self.encoders = nn.ModuleList(ReferenceEncoder(c) for c in channels.values())
        hidden, mid = AGGREGATOR_WIDTHS
        self.aggregator = nn.Sequential(
            nn.Flatten(), nn.Linear(len(self.names) * DIM, hidden), nn.ReLU(), nn.Linear(hidden, mid), nn.ReLU(),
            nn.Linear(mid, OUT_DIM), nn.LayerNorm(OUT_DIM),
        )

    def embed(self, batch: Batch) -> torch.Tensor:
        return torch.stack([enc(batch.inputs[m]) for m, enc in zip(self.names, self.encoders, strict=True)], dim=1)

    def two_views(self, q: torch.Tensor, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        masks = [reference_keep(q.shape[0], q.shape[1], generator).to(q.device, q.dtype) for _ in range(2)]
        return self.aggregator(q * masks[0]), self.aggregator(q * masks[1])

    def loss(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return reference_vicreg(z_a, z_b)

    def features(self, batch: Batch) -> torch.Tensor:
        return self.aggregator(self.embed(batch))


def reference_keep(batch: int, modalities: int, generator: torch.Generator) -> torch.Tensor:
    """Bool ``(batch, modalities, 1)``: each modality kept with probability 1 - ratio, at least one per row."""
    keep = torch.rand((batch, modalities), generator=generator) >= MASK_RATIO
    empty = ~keep.any(dim=1, keepdim=True)
    rescue = F.one_hot(torch.randint(modalities, (batch,), generator=generator), modalities).bool()
    return (keep | (rescue & empty))[:, :, None]


def reference_vicreg(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    def std_penalty(z: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - torch.sqrt(z.var(dim=0) + VARIANCE_EPS)).mean()

    def covariance_penalty(z: torch.Tensor) -> torch.Tensor:
        centered = z - z.mean(dim=0)
        cov = centered.T @ centered / (z.shape[0] - 1)
        return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / z.shape[1]

    return (SIM_WEIGHT * F.mse_loss(z_a, z_b)
            + VAR_WEIGHT * 0.5 * (std_penalty(z_a) + std_penalty(z_b))
            + COV_WEIGHT * (covariance_penalty(z_a) + covariance_penalty(z_b)))


def build_model(implementation: str, shape: Mapping[str, tuple[int, int]]) -> BenchModel:
    channels = {m: c for m, (_, c) in shape.items()}
    if implementation == "reference":
        return ReferenceModel(channels)
    model = CrosslModel(channels, "native" if implementation == "crossl-native" else "eager")
    model.backbone.encoders.set_fused(implementation == "crossl-compiled")
    return model


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PhaseClock:
    """Wall time of consecutive named phases, the device synchronised at every boundary."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        synchronize(device)
        self._last = time.perf_counter()

    def mark(self, phase: str) -> None:
        synchronize(self.device)
        now = time.perf_counter()
        self.seconds[phase] = now - self._last
        self._last = now


def timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def count_flops(fn: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def forward_backward(model: BenchModel, batch: Batch, step: int, precision: str, clock: PhaseClock) -> None:
    generator = torch.Generator().manual_seed(step)  # one seeded mask generator per step, as in training
    with autocast(clock.device, precision):
        q = model.embed(batch)
        clock.mark("encoders")
        z_a, z_b = model.two_views(q, batch, generator)
        clock.mark("mask_aggregate")
        loss = model.loss(z_a, z_b)
        clock.mark("loss")
    loss.backward()
    clock.mark("backward")


def train_step(model: BenchModel, batch: Batch, optimizer: torch.optim.Optimizer, step: int,
               precision: str) -> dict[str, float]:
    """Seconds per phase of one pretraining step."""
    clock = PhaseClock(batch.presence.device)
    forward_backward(model, batch, step, precision, clock)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    clock.mark("optimizer")
    return clock.seconds


def crossl_step_seconds(shape: str, batch_size: int, repeats: int, warmup: int, precision: str = "32") -> list[float]:
    """Seconds of each of ``repeats`` ``crossl`` pretraining steps at ``precision`` (a key of
    :data:`PRECISIONS`), after ``warmup`` untimed ones, on random windows of ``shape`` (a key of
    :data:`SHAPES`), in this process's threads."""
    torch.manual_seed(0)
    model = build_model("crossl", SHAPES[shape])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    batch = random_batch(SHAPES[shape], batch_size, torch.device("cpu"))
    steps = [sum(train_step(model, batch, optimizer, i, precision).values()) for i in range(warmup + repeats)]
    return steps[warmup:]


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


@dataclass
class Measurement:
    step_seconds: list[float]
    flops_per_step: int
    #: Fraction of the timed steps' total spent in each phase; None where phases are not split.
    time_share: dict[str, float] | None


def measure_pretrain(model: BenchModel, batch: Batch, precision: str, repeats: int, warmup: int) -> Measurement:
    device = batch.presence.device
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    steps = [train_step(model, batch, optimizer, i, precision) for i in range(warmup + repeats)][warmup:]
    # Counted after timing: a first call under the counter's dispatch mode would be the one that
    # torch.compile traces, and the compiled code would then keep the counter's slower path.
    flops = count_flops(lambda: forward_backward(model, batch, 0, precision, PhaseClock(device)))
    optimizer.zero_grad(set_to_none=True)
    totals = {p: sum(s[p] for s in steps) for p in PHASES}
    grand_total = sum(totals.values())
    return Measurement([sum(s.values()) for s in steps], flops, {p: t / grand_total for p, t in totals.items()})


def measure_embed(model: BenchModel, batch: Batch, precision: str, repeats: int, warmup: int) -> Measurement:
    device = batch.presence.device
    model.eval()
    with torch.no_grad(), autocast(device, precision):
        seconds = [timed(lambda: model.features(batch), device) for _ in range(warmup + repeats)][warmup:]
        flops = count_flops(lambda: model.features(batch))  # after timing, as in measure_pretrain
    return Measurement(seconds, flops, None)


def median_flop_rate(fn: Callable[[], object], flops: float, device: torch.device, repeats: int) -> float:
    timed(fn, device)  # warm-up
    return flops / statistics.median(timed(fn, device) for _ in range(repeats))


def matmul_peak_flops(device: torch.device, repeats: int) -> float:
    """Median fp32 FLOP/s of ``torch.mm`` on square matrices of ``PEAK_MATMUL_SIZE``."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn((PEAK_MATMUL_SIZE, PEAK_MATMUL_SIZE), generator=generator).to(device) for _ in range(2))
    return median_flop_rate(lambda: torch.mm(a, b), 2 * PEAK_MATMUL_SIZE**3, device, repeats)


def convolution_peak_flops(device: torch.device, repeats: int) -> float:
    """Median fp32 FLOP/s of a compute-bound convolution (256 -> 256 channels, kernel 8, 512 steps,
    batch 32, channels-last), the fastest dense kernel on CPUs where oneDNN outruns the BLAS matmul."""
    generator = torch.Generator().manual_seed(0)
    batch, channels, kernel, steps = 32, 256, 8, 512
    x = torch.randn((batch, channels, 1, steps + kernel - 1), generator=generator).to(device)
    x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn((channels, channels, 1, kernel), generator=generator).to(device)
    flops = 2 * batch * steps * channels * channels * kernel
    return median_flop_rate(lambda: F.conv2d(x, w), flops, device, repeats)


def machine_info(device: torch.device) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "keep_freed_memory": keep_freed_memory(),
    }


def peak_rss_mb() -> float:
    """Peak resident set of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Peaks:
    """fp32 FLOP/s measured at start-up: ``torch.mm`` and the best of all dense kernels tried."""

    matmul: float
    convolution: float

    @property
    def best(self) -> float:
        return max(self.matmul, self.convolution)


@dataclass
class Record:
    mode: str
    implementation: str
    shape: str
    batch: int
    precision: str
    windows_per_s: float
    median_step_s: float
    model_flops_per_window: float
    peak_flops: float
    mfu: float
    matmul_peak_flops: float
    mfu_vs_mm: float
    peak_rss_mb: float
    time_share: dict[str, float] | None
    speedup_vs_reference: float | None
    repeats: int
    warmup: int
    machine: dict[str, Any]


def benchmark(mode: str, implementation: str, shape: str, batch_size: int, precision: str,
              args: argparse.Namespace, peaks: Peaks, machine: dict[str, Any]) -> Record:
    torch.manual_seed(0)  # same initial weights and dropout draws for every configuration
    model = build_model(implementation, SHAPES[shape]).to(args.device)
    batch = random_batch(SHAPES[shape], batch_size, args.device)
    measure = measure_pretrain if mode == "pretrain" else measure_embed
    result = measure(model, batch, precision, args.repeats, args.warmup)
    step = statistics.median(result.step_seconds)
    windows_per_s = batch_size / step
    flops_per_window = result.flops_per_step / batch_size
    achieved = windows_per_s * flops_per_window
    return Record(mode, implementation, shape, batch_size, precision, windows_per_s, step, flops_per_window,
                  peaks.best, achieved / peaks.best, peaks.matmul, achieved / peaks.matmul, peak_rss_mb(),
                  result.time_share, None, args.repeats, args.warmup, machine)


def with_speedups(records: list[Record]) -> list[Record]:
    """Set ``speedup_vs_reference`` on the crossl records of one configuration when a reference ran."""
    reference = next((r for r in records if r.implementation == "reference"), None)
    if reference is not None:
        for r in records:
            if r.implementation != "reference":
                r.speedup_vs_reference = r.windows_per_s / reference.windows_per_s
    return records


# ------------------------------------------------------------------ mode "methods"
# crossl.methods imports Lightning (seconds): imported only where a method is built, so --help stays fast.


def trained_methods() -> list[str]:
    """Every registered method that trains, in registry order (``random-init`` does not)."""
    from crossl.methods import METHODS

    return [name for name, cls in METHODS.items() if cls.trains]


def build_method(name: str, shape: Mapping[str, tuple[int, int]], batch_size: int,
                 device: torch.device, dropout: float = DROPOUT, elementwise: str = "native"
                 ) -> tuple[PretrainMethod, torch.optim.Optimizer]:
    """``METHODS[name](backbone, PretrainConfig, options_for(name))`` in train mode, and its own optimiser;
    ``elementwise``: the encoders' kernels (``model.elementwise``)."""
    from crossl.config import PretrainConfig, options_for
    from crossl.methods import METHODS

    torch.manual_seed(0)  # the same backbone initialisation for every method
    config = ModelConfig(modality_channels={m: c for m, (_, c) in shape.items()}, dim=DIM,
                         kernel_sizes=KERNEL_SIZES, dropout=dropout, aggregator="mlp", out_dim=OUT_DIM,
                         elementwise=elementwise)  # type: ignore[arg-type]
    # A constant rate: configure_optimizers then returns the bare Adam (a schedule needs a trainer),
    # and a step costs the same at any rate.
    pretrain = PretrainConfig(batch_size=batch_size, lr=LEARNING_RATE, lr_schedule="constant", warmup_epochs=0)
    module = METHODS[name](CrossModalBackbone(config), pretrain, options_for(name)).to(device)
    module.train()
    return module, module.configure_optimizers()


def method_batch(shape: Mapping[str, tuple[int, int]], size: int, device: torch.device) -> dict[str, Any]:
    """The batch a method's ``objective`` takes: inputs, all-True presence, labels (unused by pretraining)."""
    batch = random_batch(shape, size, device)
    return {"inputs": batch.inputs, "presence": batch.presence,
            "labels": torch.zeros(size, dtype=torch.int64, device=device)}


def method_forward_backward(module: PretrainMethod, batch: dict[str, Any], index: int, precision: str,
                            clock: PhaseClock) -> None:
    with autocast(clock.device, precision):
        loss = module.objective(batch, "train", index)["loss"]
    clock.mark("objective")
    loss.backward()
    clock.mark("backward")


def method_step(module: PretrainMethod, optimizer: torch.optim.Optimizer, batch: dict[str, Any], index: int,
                precision: str) -> dict[str, float]:
    """Seconds per phase (objective forward, backward, Adam step + ``zero_grad``) of one step."""
    clock = PhaseClock(batch["presence"].device)
    method_forward_backward(module, batch, index, precision, clock)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    clock.mark("optimizer")
    return clock.seconds


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds busy on the whole machine, CPU seconds of this process) so far; None off Linux."""
    try:
        fields = Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own.ru_utime + own.ru_stime


def other_load(start: tuple[float, float] | None, wall_s: float) -> float | None:
    """Mean number of cores that other processes kept busy since ``start`` (0: the machine was ours)."""
    end = cpu_seconds()
    if start is None or end is None:
        return None
    return max(0.0, (end[0] - start[0]) - (end[1] - start[1])) / wall_s


@dataclass
class MethodRecord:
    mode: str  # always "methods"
    method: str
    shape: str
    batch: int
    precision: str
    windows_per_s: float
    median_step_s: float
    #: median step / crossl's median step of the same configuration and rounds (1.5 = 1.5x slower).
    step_vs_crossl: float
    #: every timed step, in rounds order, for the spread.
    step_s: list[float]
    model_flops_per_window: float
    peak_flops: float
    mfu: float
    peak_rss_mb: float
    #: fraction of the timed steps' total in ``objective`` (forward, loss included), ``backward``, ``optimizer``.
    time_share: dict[str, float]
    repeats: int
    warmup: int
    machine: dict[str, Any]
    #: mean number of cores other processes kept busy while this configuration ran (None off Linux)
    other_load: float | None
    #: median minor page faults of the process per timed step: memory taken fresh from the kernel (4 KiB each)
    minor_faults_per_step: float


def benchmark_methods(names: Sequence[str], shape: str, batch_size: int, precision: str, args: argparse.Namespace,
                      peaks: Peaks, machine: dict[str, Any]) -> list[MethodRecord]:
    """``warmup + repeats`` rounds of one step per method; ``names`` includes ``crossl``."""
    batch = method_batch(SHAPES[shape], batch_size, args.device)
    built = {name: build_method(name, SHAPES[shape], batch_size, args.device) for name in names}
    steps: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    faults: dict[str, list[int]] = {name: [] for name in names}
    start, started = cpu_seconds(), time.perf_counter()
    for round_index in range(args.warmup + args.repeats):
        shift = round_index % len(names)
        for name in [*names[shift:], *names[:shift]]:
            module, optimizer = built[name]
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            seconds = method_step(module, optimizer, batch, round_index, precision)
            if round_index >= args.warmup:
                steps[name].append(seconds)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
    load = other_load(start, time.perf_counter() - started)
    crossl_step = statistics.median(sum(s.values()) for s in steps["crossl"])
    records = []
    for name in names:
        module, optimizer = built[name]
        flops = count_flops(functools.partial(method_forward_backward, module, batch, 0, precision, PhaseClock(args.device)))
        optimizer.zero_grad(set_to_none=True)
        step_s = [sum(s.values()) for s in steps[name]]
        step = statistics.median(step_s)
        totals = {p: sum(s[p] for s in steps[name]) for p in METHOD_PHASES}
        windows_per_s = batch_size / step
        flops_per_window = flops / batch_size
        records.append(MethodRecord(
            "methods", name, shape, batch_size, precision, windows_per_s, step, step / crossl_step, step_s,
            flops_per_window, peaks.best, windows_per_s * flops_per_window / peaks.best, peak_rss_mb(),
            {p: t / sum(totals.values()) for p, t in totals.items()}, args.repeats, args.warmup, machine, load,
            statistics.median(faults[name])))
    return records


METHOD_COLUMNS = (("method", 10), ("shape", 8), ("batch", 5), ("precision", 10), ("win/s", 9), ("step ms", 8),
                  ("vs crossl", 9), ("MFLOP/win", 9), ("MFU%", 6), ("RSS MB", 7), ("obj", 6), ("bwd", 6), ("opt", 6),
                  ("other load", 10), ("faults/step", 11))


def format_method_record(r: MethodRecord) -> str:
    cells = [r.method, r.shape, str(r.batch), r.precision, f"{r.windows_per_s:.1f}", f"{1e3 * r.median_step_s:.1f}",
             f"{r.step_vs_crossl:.2f}x", f"{r.model_flops_per_window / 1e6:.1f}", f"{100 * r.mfu:.1f}",
             f"{r.peak_rss_mb:.0f}", *(f"{100 * r.time_share[p]:.0f}%" for p in METHOD_PHASES),
             "-" if r.other_load is None else f"{r.other_load:.2f}", f"{r.minor_faults_per_step:,.0f}"]
    return "  ".join(cell.rjust(width) for cell, (_, width) in zip(cells, METHOD_COLUMNS, strict=True))


COLUMNS = (("mode", 8), ("impl", 15), ("shape", 8), ("batch", 5), ("precision", 10), ("win/s", 9), ("MFLOP/win", 9),
           ("MFU%", 6), ("mm MFU%", 7), ("RSS MB", 7), ("vs ref", 6), *((label, 8) for label in PHASE_LABELS))


def table_row(cells: Sequence[str]) -> str:
    return "  ".join(cell.rjust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))


def format_record(r: Record) -> str:
    shares = [f"{100 * r.time_share[p]:.0f}%" if r.time_share else "-" for p in PHASES]
    speedup = f"{r.speedup_vs_reference:.2f}x" if r.speedup_vs_reference is not None else "-"
    return table_row([r.mode, r.implementation, r.shape, str(r.batch), r.precision, f"{r.windows_per_s:.1f}",
                      f"{r.model_flops_per_window / 1e6:.1f}", f"{100 * r.mfu:.1f}", f"{100 * r.mfu_vs_mm:.1f}",
                      f"{r.peak_rss_mb:.0f}", speedup, *shares])


def comma_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        unknown = [s for s in items if s not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"{text!r}: use a comma-separated subset of {list(allowed)}")
        return items

    return parse


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be comma-separated integers") from exc
    if min(sizes) < 2:
        raise argparse.ArgumentTypeError("every batch size must be at least 2 (VICReg's variance over the batch)")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=comma_list(tuple(SHAPES)), default=list(SHAPES))
    parser.add_argument("--batch", type=batch_sizes, default=[64, 256])
    parser.add_argument("--precision", type=comma_list(PRECISIONS), default=list(PRECISIONS))
    parser.add_argument("--impl", type=comma_list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS))
    parser.add_argument("--modes", type=comma_list(MODES), default=None,
                        help="default: pretrain,embed; only methods when --methods is given")
    parser.add_argument("--methods", type=comma_list(METHOD_NAMES), default=None,
                        help="registered methods that mode 'methods' times (default: every method that trains); "
                             "crossl is always timed too, as the reference of the ratio")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per configuration (median taken)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--malloc", choices=("keep", "default"), default="keep",
                        help="keep: glibc keeps freed memory for reuse, as crossl's trainer sets it "
                             "(crossl.allocator); default: glibc as configured")
    parser.add_argument("--json", type=Path, default=None, help="write the records here as a JSON list")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be at least 1 and --warmup at least 0")
    if args.modes is None:
        args.modes = ["methods"] if args.methods is not None else ["pretrain", "embed"]
    if "methods" in args.modes:
        trained = trained_methods()
        if args.methods is not None and set(args.methods) - set(trained):
            parser.error(f"--methods: {sorted(set(args.methods) - set(trained))} do not train; use a subset of {trained}")
        args.methods = ["crossl", *(m for m in (args.methods or trained) if m != "crossl")]
    elif args.methods is not None:
        parser.error("--methods is for mode 'methods': add it to --modes")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    args.device = torch.device(args.device)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # The reference's Conv1d(padding="same") pads even kernels by a copy, as crossl's ConstantPad1d does.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.malloc == "default":
        os.environ[ENV_SWITCH] = "0"
    machine = machine_info(args.device)
    peaks = Peaks(matmul_peak_flops(args.device, args.repeats), convolution_peak_flops(args.device, args.repeats))
    print(f"{machine['cpu']} | {machine['device']} | {machine['threads']} threads | torch {machine['torch']} | "
          f"fp32 peak: torch.mm {peaks.matmul / 1e9:.1f}, convolution {peaks.convolution / 1e9:.1f} GFLOP/s")
    records: list[Record | MethodRecord] = []

    def save() -> None:  # rewritten after every configuration: a run cut short keeps its rows
        if args.json is not None:
            args.json.write_text(json.dumps([asdict(r) for r in records], indent=2) + "\n", encoding="utf-8")

    implementation_modes = [m for m in args.modes if m != "methods"]
    if implementation_modes:
        print(table_row([name for name, _ in COLUMNS]))
    for shape, batch_size, precision, mode in itertools.product(args.shapes, args.batch, args.precision,
                                                                implementation_modes):
        group = with_speedups([benchmark(mode, impl, shape, batch_size, precision, args, peaks, machine)
                               for impl in args.impl])
        for r in group:
            print(format_record(r), flush=True)
        records += group
        save()
    if "methods" not in args.modes:
        return
    print("\nmethods: one pretraining step per registered method (objective, backward, Adam), round robin; "
          "vs crossl = median step / crossl's")
    print("  ".join(name.rjust(width) for name, width in METHOD_COLUMNS))
    for shape, batch_size, precision in itertools.product(args.shapes, args.batch, args.precision):
        method_records = benchmark_methods(args.methods, shape, batch_size, precision, args, peaks, machine)
        for m in method_records:
            print(format_method_record(m), flush=True)
        records += method_records
        save()


if __name__ == "__main__":
    main()
