"""crossl's pretraining step when other work takes cores, under each OpenMP wait policy.

torch's CPU build runs its parallel regions on GNU OpenMP (libgomp). Between regions an idle
thread spins before it sleeps (``GOMP_SPINCOUNT``, ``OMP_WAIT_POLICY``); when another process takes
a core, the thread that holds a region's work waits for the core while its partner spins. This
script measures a step's windows/s in a fresh process per (policy, competing load): ``--load N``
starts N competitors for the measured process's lifetime, each either a busy loop keeping one core
busy (``--competitor busy``) or another crossl pretraining process with the same threads and the
same policy (``--competitor crossl``: two trainings, or benchmark cells, on one machine).
Policies: ``default`` (libgomp as torch starts it), ``passive`` (``OMP_WAIT_POLICY=PASSIVE``:
sleep at once), ``spin-K`` (``GOMP_SPINCOUNT=K``). The environment must be set before the process
starts OpenMP, so each measurement is a process of its own; policies alternate within a round.

    python benchmarks/oversubscription.py --shape hapt --batch 64 --threads 2 --load 0,1 \\
        --competitor crossl --policies default,passive,spin-10000 --rounds 2 --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
BUSY_LOOP = "while True:\n    pass\n"


@dataclass
class OversubscriptionRecord:
    policy: str
    load: int
    competitor: str
    round: int
    shape: str
    batch: int
    threads: int
    windows_per_s: float
    median_step_s: float
    step_s: list[float]


def policy_environment(policy: str) -> dict[str, str]:
    """The process environment for ``policy``: the current one without OpenMP wait settings, plus the policy's."""
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARIABLES}
    if policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif policy.startswith("spin-"):
        env["GOMP_SPINCOUNT"] = str(int(policy.removeprefix("spin-")))
    elif policy != "default":
        raise ValueError(f"unknown policy {policy!r}: use default, passive or spin-K")
    return env


def child(shape: str, batch_size: int, threads: int, repeats: int, warmup: int) -> dict[str, Any]:
    """Time ``repeats`` crossl pretraining steps in this process (its OpenMP already configured)."""
    import torch
    from pretrain_speed import crossl_step_seconds

    from crossl.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(threads)
    return {"step_s": crossl_step_seconds(shape, batch_size, repeats, warmup)}


def child_command(args: argparse.Namespace, repeats: int) -> list[str]:
    return [sys.executable, str(Path(__file__)), "--child", "--shape", args.shape, "--batch", str(args.batch),
            "--threads", str(args.threads), "--repeats", str(repeats), "--warmup", str(args.warmup)]


def measure(policy: str, load: int, args: argparse.Namespace) -> list[float]:
    env = policy_environment(policy)
    competitor = ([sys.executable, "-c", BUSY_LOOP] if args.competitor == "busy"
                  else child_command(args, repeats=10**9))  # steps until it is killed
    busy = [subprocess.Popen(competitor, env=env, stdout=subprocess.DEVNULL) for _ in range(load)]
    try:
        # the competitors are running (a crossl competitor past its start-up) before the step starts
        time.sleep(0.0 if not busy else 0.5 if args.competitor == "busy" else 8.0)
        result = subprocess.run(child_command(args, args.repeats), env=env, capture_output=True, text=True,
                                timeout=args.timeout, check=False)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    if result.returncode != 0:
        sys.exit(f"the measured process failed under policy {policy}: {result.stderr.strip().splitlines()[-1:]}")
    return list(json.loads(result.stdout.strip().splitlines()[-1])["step_s"])


def comma_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="hapt", help="a shape of pretrain_speed.py (hapt, pamap2, ...)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--load", type=lambda t: [int(v) for v in comma_list(t)], default=[0, 1],
                        help="numbers of busy-looping competitor processes, comma-separated")
    parser.add_argument("--competitor", choices=("busy", "crossl"), default="crossl",
                        help="what each unit of --load runs: a busy loop, or crossl's step with the same settings")
    parser.add_argument("--policies", type=comma_list, default=["default", "passive", "spin-10000"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed for one measured process")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.shape, args.batch, args.threads, args.repeats, args.warmup)))
        return
    for policy in args.policies:
        policy_environment(policy)  # an unknown policy fails before anything runs
    print(f"{args.shape} batch {args.batch}, {args.threads} threads, {os.cpu_count()} cores, "
          f"competitor: {args.competitor}")
    print(f"{'policy':<12} {'load':>4} {'round':>5} {'win/s':>8} {'step ms':>9}")
    records: list[OversubscriptionRecord] = []
    for round_index in range(args.rounds):
        for load in args.load:
            shift = round_index % len(args.policies)
            for policy in [*args.policies[shift:], *args.policies[:shift]]:
                steps = measure(policy, load, args)
                median = statistics.median(steps)
                records.append(OversubscriptionRecord(policy, load, args.competitor, round_index, args.shape, args.batch,
                                                      args.threads, args.batch / median, median, steps))
                print(f"{policy:<12} {load:>4} {round_index:>5} {args.batch / median:>8.1f} {1e3 * median:>9.1f}",
                      flush=True)
                if args.json is not None:  # after every measurement, atomically: a stopped run keeps its rows
                    partial = args.json.with_name(args.json.name + ".partial")
                    partial.write_text(json.dumps([asdict(r) for r in records], indent=2) + "\n", encoding="utf-8")
                    partial.replace(args.json)


if __name__ == "__main__":
    main()
