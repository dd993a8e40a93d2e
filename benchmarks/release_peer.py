"""crossl's pretraining step beside the Keras statement of the authors' release, alternating on one machine.

For each shape and batch size, one round times one step of every configuration, one after the
other (the order rotates each round), so that crossl and Keras meet the same machine state:

- ``crossl`` (dropout 0.1, as specified) and ``crossl-no-dropout`` (dropout 0: the release's
  encoders run without it in pretraining), CroSSL through the package's method module with the
  eager elementwise kernels; ``crossl-native`` and ``crossl-native-no-dropout``, the same with the
  native kernel (``model.elementwise: native``, the default since 2026-12-06);
- ``keras-xla`` / ``keras`` (``tf.function`` with and without ``jit_compile``), each with dropout
  (``-dropout``) and without: ``benchmarks/keras_release.py``, run as a worker process by the
  Python of an environment with TensorFlow (``--keras-python``; see that file);
- ``reference`` / ``reference-no-dropout``: the same model in straightforward eager PyTorch
  (``pretrain_speed.py``'s ``reference``), the yardstick of the 2.5x target.

Windows/s = batch / median step; ``vs best keras`` = the median step of the fastest Keras
configuration with the same dropout over this one's (above 1: faster than the release's best path,
like for like); ``vs reference`` = the reference's median step with the same dropout over this
one's. Both frameworks get ``--threads`` compute threads. The PyTorch rows share one process, with
the allocator set as training sets it (``crossl.allocator``). Example (HAPT and PAMAP2 shapes, batch 64 and 256, 2 threads):

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
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import torch
from pretrain_speed import (
    SHAPES,
    BenchModel,
    build_method,
    build_model,
    comma_list,
    machine_info,
    method_batch,
    method_step,
    random_batch,
    train_step,
)

KERAS = {"keras-xla-dropout": (True, True), "keras-xla": (True, False), "keras-dropout": (False, True),
         "keras": (False, False)}
#: name -> (dropout, model.elementwise)
CROSSL = {"crossl": (0.1, "eager"), "crossl-no-dropout": (0.0, "eager"),
          "crossl-native": (0.1, "native"), "crossl-native-no-dropout": (0.0, "native")}
REFERENCE = {"reference": 0.1, "reference-no-dropout": 0.0}


@dataclass
class PeerRecord:
    implementation: str
    shape: str
    batch: int
    dropout: bool
    windows_per_s: float
    median_step_s: float
    #: the fastest Keras configuration's median step with the same dropout / this one's
    vs_best_keras: float
    #: the reference's median step with the same dropout / this one's
    vs_reference: float
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
    built = {name: build_method("crossl", SHAPES[shape], batch_size, torch.device("cpu"), dropout=p, elementwise=kind)
             for name, (p, kind) in CROSSL.items()}
    references = {name: reference_model(shape, p) for name, p in REFERENCE.items()}
    batch = method_batch(SHAPES[shape], batch_size, torch.device("cpu"))
    reference_batch = random_batch(SHAPES[shape], batch_size, torch.device("cpu"))
    names = [*CROSSL, *REFERENCE, *keras_names]
    steps: dict[str, list[float]] = {n: [] for n in names}
    for round_index in range(args.warmup + args.repeats):
        shift = round_index % len(names)
        for name in [*names[shift:], *names[:shift]]:
            if name in CROSSL:
                module, optimizer = built[name]
                seconds = sum(method_step(module, optimizer, batch, round_index, "32").values())
            elif name in REFERENCE:
                model, optimizer = references[name]
                seconds = sum(train_step(model, reference_batch, optimizer, round_index, "32").values())
            else:
                seconds = float(worker.ask({"step": f"{shape}-{batch_size}-{name}"})["seconds"])
            if round_index >= args.warmup:
                steps[name].append(seconds)
    medians = {n: statistics.median(s) for n, s in steps.items()}
    return [PeerRecord(n, shape, batch_size, has_dropout(n), batch_size / medians[n], medians[n],
                       *peer_ratios(n, medians), steps[n], args.repeats, args.warmup, args.threads, machine)
            for n in names]


def has_dropout(name: str) -> bool:
    if name in KERAS:
        return KERAS[name][1]
    return (CROSSL[name][0] if name in CROSSL else REFERENCE[name]) > 0


def peer_ratios(name: str, medians: dict[str, float]) -> tuple[float, float]:
    """(the fastest Keras step, the reference's step), each with ``name``'s dropout, over ``name``'s step.

    Like for like: a configuration with dropout meets the Keras paths and the reference with dropout,
    one without meets those without.
    """
    dropout = has_dropout(name)
    best_keras = min(m for n, m in medians.items() if n in KERAS and has_dropout(n) == dropout)
    reference = medians["reference" if dropout else "reference-no-dropout"]
    return best_keras / medians[name], reference / medians[name]


def reference_model(shape: str, dropout: float) -> tuple[BenchModel, torch.optim.Optimizer]:
    """The straightforward PyTorch model in train mode with dropout ``dropout``, and its Adam."""
    torch.manual_seed(0)
    model = build_model("reference", SHAPES[shape])
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = dropout
    model.train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


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
    # The reference's Conv1d(padding="same") pads even kernels by a copy, as crossl's ConstantPad1d does.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")
    torch.set_num_threads(args.threads)
    machine = machine_info(torch.device("cpu"))
    print(f"{machine['cpu']} | {args.threads} threads | torch {machine['torch']} | alternating rounds")
    print(f"{'implementation':<20} {'shape':<7} {'batch':>5} {'win/s':>8} {'step ms':>8} {'vs best keras':>13} "
          f"{'vs reference':>12}")
    worker = KerasWorker(args.keras_python)
    records: list[PeerRecord] = []
    started = time.perf_counter()
    try:
        for shape in args.shapes:
            for batch_size in args.batch:
                for r in benchmark_shape(worker, shape, batch_size, args, machine):
                    records.append(r)
                    print(f"{r.implementation:<20} {r.shape:<7} {r.batch:>5} {r.windows_per_s:>8.1f} "
                          f"{1e3 * r.median_step_s:>8.1f} {r.vs_best_keras:>12.2f}x {r.vs_reference:>11.2f}x",
                          flush=True)
                if args.json is not None:
                    args.json.write_text(json.dumps([asdict(r) for r in records], indent=2) + "\n", encoding="utf-8")
    finally:
        worker.close()
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
