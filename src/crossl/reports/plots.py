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


#: panel title -> the logged metrics it shows (each for train and validation)
DIAGNOSTIC_PANELS = {
    "loss": ("loss",), "invariance": ("invariance",), "variance hinge": ("variance",),
    "covariance": ("covariance",), "per-dimension std": ("z_std", "q_std"), "effective rank": ("z_rank",),
}
SERIES_LABELS = {"z_std": "representation", "q_std": "encoder outputs"}


def plot_pretrain_diagnostics(log_dir: Path, path: Path) -> bool:
    """Per epoch, train and validation: the objective and each of its terms, the representation's and
    the encoders' per-dimension std and the representation's effective rank (what a method logs).
    Returns False (and writes nothing) when the logs hold none of them beyond the loss."""
    series = read_epoch_metrics(log_dir)
    panels = {title: keys for title, keys in DIAGNOSTIC_PANELS.items()
              if any(series.get(f"{stage}/{k}") for k in keys for stage in ("train", "val"))}
    if set(panels) <= {"loss"}:
        return False
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, (title, keys) in zip(axes.flat, panels.items()):
        for key in keys:
            for stage, style in (("train", "-"), ("val", "--")):
                points = series.get(f"{stage}/{key}")
                if points:
                    epochs, values = zip(*points)
                    name = SERIES_LABELS.get(key, "") + (" " if key in SERIES_LABELS else "")
                    ax.plot([e + 1 for e in epochs], values, style, marker="o", markersize=2,
                            label=f"{name}{'train' if stage == 'train' else 'validation'}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    _save(fig, path)
    return True


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


def plot_curves(curves: dict[str, list[tuple[float, float, float, float]]], path: Path, xlabel: str, ylabel: str,
                title: str, log_x: bool = False) -> None:
    """One line per name: points ``(x, mean, ci_low, ci_high)``, the interval as error bars."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colours = plt.get_cmap("tab10")(range(10))
    # One colour per method (the text before the protocol), one line style per protocol.
    methods = list(dict.fromkeys(name.split(" ")[0] for name in curves))
    for name, points in curves.items():
        x, mean, low, high = (list(v) for v in zip(*sorted(points)))
        err = [[m - lo for m, lo in zip(mean, low)], [hi - m for m, hi in zip(mean, high)]]
        style = "--" if name.startswith("supervised") else ":" if name.endswith("linear") else "-"
        colour = "black" if name.startswith("supervised") else colours[methods.index(name.split(" ")[0]) % len(colours)]
        ax.errorbar(x, mean, yerr=err, marker="o", markersize=4, capsize=3, label=name, linestyle=style, color=colour)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)


def plot_heatmap(values: Any, rows: Sequence[str], columns: Sequence[str], path: Path, title: str) -> None:
    """A (rows, columns) table of scores as colours, each cell labelled with its value (NaN: blank)."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(columns), 1.0 + 0.5 * len(rows)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                light = values[i, j] > np.nanmin(values) + 0.6 * (np.nanmax(values) - np.nanmin(values))
                ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", color="black" if light else "white",
                        fontsize=8)
    fig.colorbar(image, ax=ax, label="macro-F1")
    ax.set_title(title)
    _save(fig, path)


def plot_embedding(coords: Any, labels: Any, subjects: Any, class_names: Sequence[str], path: Path, title: str) -> None:
    """2-D embedding, two panels: coloured by class (legend) and by subject."""
    import numpy as np

    fig, (by_class, by_subject) = plt.subplots(1, 2, figsize=(11, 4.8))
    for c, name in enumerate(class_names):
        rows = np.asarray(labels) == c
        if rows.any():
            by_class.scatter(coords[rows, 0], coords[rows, 1], s=4, label=name)
    by_class.legend(fontsize=7, markerscale=3)
    by_class.set_title(f"{title}: by class")
    ids = np.unique(subjects)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(ids), 1)))
    for colour, subject in zip(colours, ids):
        rows = np.asarray(subjects) == subject
        by_subject.scatter(coords[rows, 0], coords[rows, 1], s=4, color=colour, label=str(subject))
    by_subject.legend(fontsize=6, markerscale=3, ncol=2, title="subject")
    by_subject.set_title(f"{title}: by subject")
    for ax in (by_class, by_subject):
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)
