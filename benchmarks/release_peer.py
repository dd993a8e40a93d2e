"""crossl's pretraining step beside the Keras statement of the authors' release, alternating on one machine.

For each shape and batch size, one round times one step of every configuration, one after the
other (the order rotates each round), so that crossl and Keras meet the same machine state:

- ``crossl`` (dropout 0.1, as specified) and ``crossl-no-dropout`` (dropout 0: the release's
  encoders run without it in pretraining), CroSSL through the package's method module;
- ``keras-xla`` / ``keras`` (``tf.function`` with and without ``jit_compile``), each with dropout
  (``-dropout``) and without: ``benchmarks/keras_release.py``, run as a worker process by the
  Python of an environment with TensorFlow (``--keras-python``; see that file).

Windows/s = batch / median step; ``vs best keras`` = the fastest Keras configuration's median step
over this one's (above 1: faster than the release's best path). Both frameworks get ``--threads``
compute threads. Example (HAPT and PAMAP2 shapes, batch 64 and 256, 2 threads):

    python benchmarks/release_peer.py --keras-python .venv-tf/bin/python --shapes hapt,pamap2 \\
        --batch 64,256 --threads 2 --repeats 10 --json benchmarks/results/DATE-peer.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import torch
from pretrain_speed import SHAPES, build_method, comma_list, machine_info, method_batch, method_step

KERAS = {"keras-xla-dropout": (True, True), "keras-xla": (True, False), "keras-dropout": (False, True),
         "keras": (False, False)}
CROSSL = {"crossl": 0.1, "crossl-no-dropout": 0.0}


@dataclass
class PeerRecord:
    implementation: str
    shape: str
    batch: int
    dropout: bool
    windows_per_s: float
    median_step_s: float
    #: the fastest Keras configuration's median step / this one's
    vs_best_keras: float
    step_s: list[float]
    repeats: int
    warmup: int
    threads: int
    machine: dict[str, Any]


class KerasWorker:
    """``keras_release.py --worker`` in its own process; JSON lines over its stdin and stdout."""

    def __init__(self, python: str) -> None:
        script = Path(__file__).with_name("keras_release.py")
        self.process = subprocess.Popen([python, str(script), "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            sys.exit(f"the Keras worker exited (status {self.process.wait()}); run keras_release.py alone to see why")
        return dict(json.loads(line))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def benchmark_shape(worker: KerasWorker, shape: str, batch_size: int, args: argparse.Namespace,
                    machine: dict[str, Any]) -> list[PeerRecord]:
    modalities = [list(v) for v in SHAPES[shape].values()]
    keras_names = []
    for name, (jit, dropout) in KERAS.items():
        key = f"{shape}-{batch_size}-{name}"
        worker.ask({"build": {"name": key, "modalities": modalities, "batch": batch_size, "jit": jit,
                              "dropout": dropout, "threads": args.threads, "warmup": args.warmup}})
        keras_names.append(name)
    built = {name: build_method("crossl", SHAPES[shape], batch_size, torch.device("cpu"), dropout=p)
             for name, p in CROSSL.items()}
    batch = method_batch(SHAPES[shape], batch_size, torch.device("cpu"))
    names = [*CROSSL, *keras_names]
    steps: dict[str, list[float]] = {n: [] for n in names}
    for round_index in range(args.warmup + args.repeats):
        shift = round_index % len(names)
        for name in [*names[shift:], *names[:shift]]:
            if name in CROSSL:
                module, optimizer = built[name]
                seconds = sum(method_step(module, optimizer, batch, round_index, "32").values())
            else:
                seconds = float(worker.ask({"step": f"{shape}-{batch_size}-{name}"})["seconds"])
            if round_index >= args.warmup:
                steps[name].append(seconds)
    medians = {n: statistics.median(s) for n, s in steps.items()}
    best_keras = min(medians[n] for n in keras_names)
    return [PeerRecord(n, shape, batch_size, n.endswith("dropout") if n in KERAS else CROSSL[n] > 0,
                       batch_size / medians[n], medians[n], best_keras / medians[n], steps[n], args.repeats,
                       args.warmup, args.threads, machine) for n in names]


def batch_sizes(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keras-python", required=True, help="the Python of an environment with TensorFlow")
    parser.add_argument("--shapes", type=comma_list(tuple(SHAPES)), default=["hapt", "pamap2"])
    parser.add_argument("--batch", type=batch_sizes, default=[64, 256])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.device("cpu"))
    print(f"{machine['cpu']} | {args.threads} threads | torch {machine['torch']} | alternating rounds")
    print(f"{'implementation':<18} {'shape':<7} {'batch':>5} {'win/s':>8} {'step ms':>8} {'vs best keras':>13}")
    worker = KerasWorker(args.keras_python)
    records: list[PeerRecord] = []
    started = time.perf_counter()
    try:
        for shape in args.shapes:
            for batch_size in args.batch:
                for r in benchmark_shape(worker, shape, batch_size, args, machine):
                    records.append(r)
                    print(f"{r.implementation:<18} {r.shape:<7} {r.batch:>5} {r.windows_per_s:>8.1f} "
                          f"{1e3 * r.median_step_s:>8.1f} {r.vs_best_keras:>12.2f}x", flush=True)
                if args.json is not None:
                    args.json.write_text(json.dumps([asdict(r) for r in records], indent=2) + "\n", encoding="utf-8")
    finally:
        worker.close()
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
