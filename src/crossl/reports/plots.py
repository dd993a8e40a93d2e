"""PNG plots: the pretraining loss curve and macro-F1 against label fraction."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from crossl.evaluation.metrics import summarize  # noqa: E402
from crossl.io import write_atomic  # noqa: E402


def read_epoch_metrics(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(epoch, value), ...]}`` from Lightning's CSV logs under ``log_dir``.

    Logs of resumed attempts (``resumed-*/metrics.csv``) extend the first one; for an epoch
    logged twice the later attempt wins.
    """
    by_epoch: dict[str, dict[int, float]] = defaultdict(dict)
    files = [log_dir / "metrics.csv"] + sorted(log_dir.glob("resumed-*/metrics.csv"),
                                                 key=lambda p: int(p.parent.name.split("-")[1]))
    for path in files:
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                epoch = row.get("epoch")
                for key, value in row.items():
                    if key not in ("epoch", "step") and value not in ("", None) and epoch not in ("", None):
                        by_epoch[key][int(float(epoch))] = float(value)
    return {key: sorted(values.items()) for key, values in by_epoch.items()}


def _save(fig: Any, path: Path) -> None:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def plot_pretrain_loss(log_dir: Path, path: Path) -> None:
    """Training (and validation) loss of the pretraining objective per epoch."""
    series = read_epoch_metrics(log_dir)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("train/loss", "train"), ("val/loss", "validation")):
        if series.get(key):
            epochs, values = zip(*series[key])
            ax.plot([e + 1 for e in epochs], values, marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("VICReg loss")
    ax.set_title("pretraining")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_label_efficiency(records: Sequence[dict[str, Any]], path: Path, dataset: str) -> None:
    """Macro-F1 (mean and std over seeds) against label fraction, one line per protocol."""
    rows = summarize(records, keys=("protocol", "label_fraction"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for protocol in dict.fromkeys(str(r["protocol"]) for r in rows):
        pts = sorted((float(r["label_fraction"]), float(r["macro_f1_mean"]), float(r["macro_f1_std"]))  # type: ignore[arg-type]
                     for r in rows if r["protocol"] == protocol)
        x, y, err = zip(*pts)
        method = next((r["method"] for r in records if r["protocol"] == protocol and r.get("method")), None)
        name = "supervised (random init)" if method is None else f"{method} {protocol}"
        ax.errorbar([100 * v for v in x], y, yerr=err, marker="o", capsize=3, label=name,
                    linestyle="--" if protocol == "supervised" else "-")
    ax.set_xscale("log")
    ax.set_xlabel("labeled training windows (%)")
    ax.set_ylabel("macro-F1 on the test subjects")
    ax.set_title(f"Label efficiency on {dataset}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, path)
