"""Pair one variant's scores across two finished grids, cell by cell, and print the differences.

Two grids that share a dataset, a split and their seeds but differ in one setting (e.g. the
encoders' `model.elementwise`) give the same variant's score twice for every (protocol, label
fraction, pretraining seed, label seed). This prints, per protocol and label fraction, the mean
of A minus B with its 95% bootstrap interval (grouped by pretraining seed, as the grid reports
do), read from each grid directory's `results.csv`:

    python scripts/pair_grids.py runs/bench-hapt-native-val-17-20 docs/results/hapt-recipe-val-17-20 \\
        --variant crossl --variant supervised
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

from crossl.evaluation.statistics import paired_comparison

Key = tuple[int, int]


def variant_scores(grid_dir: Path, variant: str) -> dict[tuple[str, float], dict[Key, float]]:
    """``(protocol, label fraction) -> {(pretraining seed, label seed): macro-F1}`` of ``variant``'s
    main evaluations (all modalities present, nothing kept out)."""
    path = grid_dir / "results.csv"
    if not path.is_file():
        sys.exit(f"pair_grids: {path} not found; give a grid directory that `crossl bench --report` has written")
    scores: dict[tuple[str, float], dict[Key, float]] = defaultdict(dict)
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if variant not in json.loads(row["variants"]) or row["kept"] or json.loads(row["missing"]):
                continue
            pretrain_seed = int(row["pretrain_seed"]) if row["pretrain_seed"] else -1
            scores[(row["protocol"], float(row["label_fraction"]))][(pretrain_seed, int(row["seed"]))] = \
                float(row["macro_f1"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="grid directory A (the differences are A minus B)")
    parser.add_argument("b", type=Path, help="grid directory B")
    parser.add_argument("--variant", action="append", required=True, help="a variant name both grids hold")
    args = parser.parse_args()
    lines = ["| variant | protocol | labels | pairs | A - B [95% CI] | A wins / losses / ties |", "|---|---|---|---|---|---|"]
    for variant in args.variant:
        a, b = variant_scores(args.a, variant), variant_scores(args.b, variant)
        if not set(a) & set(b):
            sys.exit(f"pair_grids: no protocol and label fraction of '{variant}' is in both grids")
        for protocol, fraction in sorted(set(a) & set(b)):
            c = paired_comparison(a[(protocol, fraction)], b[(protocol, fraction)])
            if c is None:
                continue
            lines.append(f"| {variant} | {protocol} | {100 * fraction:g}% | {c.pairs} | {c.mean_diff:+.3f} "
                         f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}] | {c.wins} / {c.losses} / {c.ties} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
