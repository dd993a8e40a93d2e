"""Where one pretraining step of a registered method spends its time: phase timings and a torch.profiler table.

    python benchmarks/method_profile.py --methods crossl,simclr --shape pamap2 --batch 256 --threads 2 \\
        [--steps 3] [--warmup 1] [--top 15] [--precision 32|bf16-mixed] [--json PATH]

The step is the one ``pretrain_speed.py --modes methods`` times (``module.objective(batch, "train",
step)``, backward, Adam), on the same random batch and model. For the phase split, this process
wraps two package entry points with timers (the source is not changed): the encoders' forward
(``TCNEncoder.sequence`` of every modality, all calls of a step summed: the augmented-view methods
run it once per view; the pooling after it is left out) and ``augment_batch`` as
``crossl.methods.augmented`` calls it. ``objective_other`` is the rest of the objective's forward
(masks, aggregator, projector, decoders, loss). Phases are medians of ``--steps`` timed steps; then
a ``torch.profiler`` run of ``--steps`` more steps gives the operators with the most self CPU time.
Minor page faults per step (``ru_minflt``) count the memory the allocator had to take fresh from
the kernel during the step: 4 KiB each, zeroed by the kernel before the first write.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from pretrain_speed import PRECISIONS, SHAPES, autocast, build_method, comma_list, machine_info, method_batch, trained_methods

from crossl.allocator import keep_freed_memory

if TYPE_CHECKING:
    from crossl.methods import PretrainMethod
    from crossl.models.encoders import TCNEncoder

PHASES = ("augment", "encoders", "objective_other", "backward", "optimizer")


class RegionTimer:
    """Wall seconds per named region of the current step, each region also a profiler range."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            with torch.profiler.record_function(name):
                out = fn(*args, **kwargs)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            return out

        return timed_call


@contextmanager
def instrumented(module: PretrainMethod, timer: RegionTimer) -> Iterator[None]:
    """Time the encoders' forward of ``module`` and ``augment_batch`` as the augmented methods call it."""
    import crossl.methods.augmented as augmented

    encoders = [cast("TCNEncoder", e) for e in module.backbone.encoders.encoders.values()]
    original_augment = augmented.augment_batch
    for encoder in encoders:  # an instance attribute shadows the method: forward and mae's direct calls use it
        vars(encoder)["sequence"] = timer.wrap("encoders", encoder.sequence)
    augmented.augment_batch = timer.wrap("augment", original_augment)
    try:
        yield
    finally:
        for encoder in encoders:
            del vars(encoder)["sequence"]
        augmented.augment_batch = original_augment


def one_step(module: PretrainMethod, optimizer: torch.optim.Optimizer, batch: dict[str, Any], index: int,
             precision: str, timer: RegionTimer) -> dict[str, float]:
    """Seconds per phase of one step (see ``PHASES``), and the process's minor page faults during it."""
    timer.seconds = {}
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    with autocast(batch["presence"].device, precision):
        loss = module.objective(batch, "train", index)["loss"]
    objective = time.perf_counter() - start
    start = time.perf_counter()
    with torch.profiler.record_function("backward"):
        loss.backward()
    backward = time.perf_counter() - start
    start = time.perf_counter()
    with torch.profiler.record_function("optimizer"):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    optimizer_s = time.perf_counter() - start
    augment, encoders = timer.seconds.get("augment", 0.0), timer.seconds.get("encoders", 0.0)
    return {"augment": augment, "encoders": encoders, "objective_other": objective - augment - encoders,
            "backward": backward, "optimizer": optimizer_s,
            "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults}


@dataclass
class Profile:
    method: str
    shape: str
    batch: int
    precision: str
    median_step_s: float
    #: median seconds per phase over the timed steps
    phase_s: dict[str, float]
    #: median minor page faults per timed step (memory the allocator got fresh from the kernel, 4 KiB a fault)
    minor_faults_per_step: float
    #: the profiler's top operators: name, self CPU seconds per step, share of the profiled steps' self CPU time, calls per step
    top_ops: list[dict[str, Any]]
    steps: int
    machine: dict[str, Any]


def profile_method(name: str, args: argparse.Namespace) -> Profile:
    shape = SHAPES[args.shape]
    device = torch.device("cpu")
    batch = method_batch(shape, args.batch, device)
    module, optimizer = build_method(name, shape, args.batch, device)
    timer = RegionTimer()
    with instrumented(module, timer):
        for i in range(args.warmup):
            one_step(module, optimizer, batch, i, args.precision, timer)
        steps = [one_step(module, optimizer, batch, args.warmup + i, args.precision, timer) for i in range(args.steps)]
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for i in range(args.steps):
                one_step(module, optimizer, batch, args.warmup + args.steps + i, args.precision, timer)
    events = [e for e in prof.key_averages() if e.key not in (*PHASES, "augment", "encoders")
              and not e.key.startswith("ProfilerStep")]
    total_self = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    top = [{"op": e.key, "self_s_per_step": e.self_cpu_time_total / 1e6 / args.steps,
            "share": e.self_cpu_time_total / total_self, "calls_per_step": e.count / args.steps}
           for e in events[:args.top]]
    phase_s = {p: statistics.median(s[p] for s in steps) for p in PHASES}
    step_s = statistics.median(sum(s[p] for p in PHASES) for s in steps)
    faults = statistics.median(s["minor_faults"] for s in steps)
    return Profile(name, args.shape, args.batch, args.precision, step_s, phase_s, faults, top, args.steps,
                   machine_info(device))


def print_profile(p: Profile) -> None:
    print(f"\n{p.method} | {p.shape} | batch {p.batch} | {p.precision} | median step {1e3 * p.median_step_s:.0f} ms | "
          f"{p.minor_faults_per_step:,.0f} minor page faults per step")
    print("  phases (median ms, share of their sum):")
    total = sum(p.phase_s.values())
    for phase, seconds in p.phase_s.items():
        print(f"    {phase:<16} {1e3 * seconds:9.1f}  {100 * seconds / total:5.1f}%")
    print("  top operators by self CPU time (ms per step, share of all self time, calls per step):")
    for op in p.top_ops:
        print(f"    {op['op']:<48} {1e3 * op['self_s_per_step']:9.1f}  {100 * op['share']:5.1f}%  "
              f"{op['calls_per_step']:6.0f}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", type=str, default="crossl,simclr",
                        help="comma-separated registered methods that train (default: crossl,simclr)")
    parser.add_argument("--shape", choices=tuple(SHAPES), default="hapt")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--precision", choices=PRECISIONS, default="32")
    parser.add_argument("--steps", type=int, default=3, help="timed steps, then as many profiled ones")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--top", type=int, default=15, help="operators listed per method")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 2:
        parser.error("--steps must be at least 1, --warmup at least 0, --batch at least 2")
    try:
        args.methods = comma_list(trained_methods())(args.methods)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--methods: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # As the trainer sets it, before the first step: freed memory stays in the heap for reuse. (Until
    # 2026-12-07 only ``machine_info``, after the first method's steps, applied it, so that method's
    # profile and page faults were those of glibc's defaults.)
    keep_freed_memory()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    profiles = []
    for name in args.methods:
        profiles.append(profile_method(name, args))
        print_profile(profiles[-1])
        if args.json is not None:
            args.json.write_text(json.dumps([asdict(p) for p in profiles], indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
