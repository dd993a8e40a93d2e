"""Does bf16-mixed pretraining follow fp32's loss trajectory, and how much faster is it?

Pretrains CroSSL on the HAPT training subjects (the published split) twice with the same seed and
config, once per precision, through the package's API (real Lightning training, validation on the
validation subjects), and compares the per-epoch mean training and validation VICReg losses:

    python benchmarks/precision_trajectory.py --epochs 5 --json benchmarks/results/precision.json

Prints one row per epoch with both losses and their relative difference, the largest difference,
and each fit's wall time; ``--json`` writes the same as one record. ``--accelerator gpu`` runs it
on a GPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from crossl.api import CroSSL
from crossl.config import ModelConfig, PretrainConfig, TrainerConfig
from crossl.data.datasets import load_dataset
from crossl.data.splits import default_split

PRECISIONS = ("32-true", "bf16-mixed")


def epoch_losses(run_dir: Path, key: str) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv", newline="", encoding="utf-8") as fh:
        return [float(row[key]) for row in csv.DictReader(fh) if row.get(key)]


def pretrain(precision: str, args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    windows = load_dataset("hapt", quiet=True)
    split = default_split(windows)
    model = CroSSL(ModelConfig(), PretrainConfig(epochs=args.epochs, seed=args.seed),
                   TrainerConfig(accelerator=args.accelerator, precision=precision, compile=args.compile,
                                 progress=False))
    start = time.perf_counter()
    model.fit(windows, val=windows, indices=split.part("train"), val_indices=split.part("val"), run_dir=run_dir)
    seconds = time.perf_counter() - start
    return {"precision": precision, "fit_seconds": seconds,
            "train_loss": epoch_losses(run_dir, "train/loss"), "val_loss": epoch_losses(run_dir, "val/loss")}


def relative_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [abs(y - x) / abs(x) for x, y in zip(a, b, strict=True)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--compile", action="store_true", help="fused elementwise encoders (torch.compile)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [pretrain(p, args, Path(tmp) / p) for p in PRECISIONS]
    fp32, bf16 = runs
    train_diff = relative_differences(fp32["train_loss"], bf16["train_loss"])
    val_diff = relative_differences(fp32["val_loss"], bf16["val_loss"])
    print(f"{'epoch':>5}  {'train fp32':>10}  {'train bf16':>10}  {'rel diff':>8}  "
          f"{'val fp32':>9}  {'val bf16':>9}  {'rel diff':>8}")
    for epoch, row in enumerate(zip(fp32["train_loss"], bf16["train_loss"], train_diff,
                                    fp32["val_loss"], bf16["val_loss"], val_diff, strict=True)):
        print(f"{epoch:>5}  {row[0]:>10.4f}  {row[1]:>10.4f}  {100 * row[2]:>7.2f}%  "
              f"{row[3]:>9.4f}  {row[4]:>9.4f}  {100 * row[5]:>7.2f}%")
    print(f"largest relative difference: train {100 * max(train_diff):.2f}%, val {100 * max(val_diff):.2f}%; "
          f"fit time fp32 {fp32['fit_seconds']:.1f} s, bf16 {bf16['fit_seconds']:.1f} s "
          f"({fp32['fit_seconds'] / bf16['fit_seconds']:.2f}x)")
    if args.json is not None:
        record = {"runs": runs, "max_train_rel_diff": max(train_diff), "max_val_rel_diff": max(val_diff),
                  "epochs": args.epochs, "seed": args.seed, "accelerator": args.accelerator,
                  "compile": args.compile, "torch": torch.__version__, "threads": torch.get_num_threads()}
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
