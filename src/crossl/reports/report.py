"""report.md: what was run, on which split, and the results table."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from crossl.config import RunConfig
from crossl.config_fields import plain_config
from crossl.data.container import WindowSet
from crossl.data.splits import Split, split_kind
from crossl.evaluation.metrics import summarize
from crossl.io import write_text_atomic
from crossl.reports.machine import cpu_model
from crossl.training import resolve_precision

#: The authors' release on HAPT, same split and windows, macro-F1 mean ± std over 4 seeds, as
#: measured by this project on 2026-11-25 (see the README); protocol -> fraction -> (mean, std).
RELEASE_HAPT: dict[str, dict[float, tuple[float, float]]] = {
    "mlp": {1.0: (0.933, 0.005), 0.1: (0.917, 0.009), 0.01: (0.674, 0.053)},
    "finetune": {1.0: (0.951, 0.006), 0.1: (0.947, 0.009), 0.01: (0.863, 0.035)},
    "supervised": {1.0: (0.946, 0.006), 0.1: (0.945, 0.009), 0.01: (0.860, 0.049)},
}
RELEASE_LABELS = {"mlp": "release frozen + MLP probe", "finetune": "release fine-tune", "supervised": "release supervised"}


def precision_line(config: RunConfig) -> str:
    """The precision a run trained in; ``auto`` also says what it chose on this machine."""
    chosen = resolve_precision(config.trainer)
    return chosen if chosen == config.trainer.precision else f"{chosen} ({config.trainer.precision})"


def machine_line() -> str:
    return f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def results_table(records: Sequence[dict[str, Any]], compare_release: bool) -> str:
    """Markdown table: one row per label fraction, one column per protocol, macro-F1 mean ± std."""
    rows = summarize(records, keys=("protocol", "label_fraction"))
    protocols = list(dict.fromkeys(str(r["protocol"]) for r in rows))
    fractions = sorted({float(r["label_fraction"]) for r in rows}, reverse=True)  # type: ignore[arg-type]
    cell = {(str(r["protocol"]), float(r["label_fraction"])): r for r in rows}  # type: ignore[arg-type]
    release_cols = [p for p in RELEASE_HAPT if compare_release]
    header = ["label fraction"] + [f"{p}" for p in protocols] + [RELEASE_LABELS[p] for p in release_cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for f in fractions:
        values = []
        for p in protocols:
            r = cell.get((p, f))
            values.append("" if r is None else
                          f"{r['macro_f1_mean']:.3f} ± {r['macro_f1_std']:.3f} (acc {r['accuracy_mean']:.3f}, n={r['seeds']})")
        values += [f"{RELEASE_HAPT[p][f][0]:.3f} ± {RELEASE_HAPT[p][f][1]:.3f}" if f in RELEASE_HAPT[p] else ""
                   for p in release_cols]
        lines.append(f"| {f:.0%} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def pretraining_line(config: RunConfig) -> str:
    """The method, its options and its optimisation, in one line."""
    p = config.pretrain
    options = ", ".join(f"{k} {v}" for k, v in plain_config(config.options).items())
    return (f"- pretraining: method `{config.method}`" + (f" ({options})" if options else "")
            + f"; {p.epochs} epochs, batch {p.batch_size}, Adam lr {p.lr}, seed {p.seed}")


def write_report(path: Path, records: Sequence[dict[str, Any]], config: RunConfig, windows: WindowSet,
                 split: Split, command: str, has_loss_plot: bool, pretrained: bool = True) -> None:
    ev, m = config.evaluation, config.model
    head_inputs = sorted({str(r["head_input"]) for r in records if r.get("head_input")}) or [ev.head_input]
    parts = [
        f"# crossl run: {windows.meta.name}",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine_line()}; precision {precision_line(config)}",
        f"- data: {len(windows)} windows, modalities "
        + ", ".join(f"{n} {t}x{c}" for n, (t, c) in windows.shapes.items())
        + f", {windows.meta.num_classes} classes",
        f"- split {split_kind(split.subjects)}: train {len(split.train)} windows (subjects {split.subjects['train']}), "
        f"validation {len(split.val)} ({split.subjects['val']}), test {len(split.test)} ({split.subjects['test']})",
        f"- model: TCN encoders D={m.dim}, kernels {list(m.kernel_sizes)}, dropout {m.dropout}; "
        f"{m.aggregator} aggregator to {m.out_dim}-d",
        pretraining_line(config) if pretrained else "- pretraining: none (supervised baseline only)",
    ]
    if records:
        parts += [
            f"- downstream: head on the {' / '.join(head_inputs)} features; trainable protocols max({ev.steps}, "
            f"{ev.epochs} epochs) Adam steps (lr {ev.lr} with cosine decay, batch {ev.batch_size}), "
            "scored at the last step on the whole test split; "
            f"linear = logistic regression on frozen features; seeds {list(ev.seeds)} (label subset, head "
            f"initialisation, batch order; one pretrained model)",
            "",
            "## Macro-F1 on the test subjects (mean ± std over seeds)",
            "",
            results_table(records, compare_release=windows.meta.name == "hapt"),
            "",
        ]
        if windows.meta.name == "hapt":
            parts += ["The release columns are the authors' TensorFlow release on the same windows and split "
                      "(4 seeds, its own defaults), measured by this project on 2026-11-25.", ""]
        parts += ["![label efficiency](plots/label_efficiency.png)", ""]
    if has_loss_plot:
        parts += ["## Pretraining loss", "", "![pretraining loss](plots/pretrain_loss.png)", ""]
    if (path.parent / "plots" / "pretrain_diagnostics.png").is_file():
        parts += ["## Inside pretraining", "",
                  "Each term of the objective, the per-dimension std of the representation and of the encoder "
                  "outputs (falling towards 0: collapse), and the representation's effective rank (exp of the "
                  "entropy of its normalised singular values; 1: every embedding on a line), per epoch on the "
                  "training and validation windows (`logs/metrics.csv` has them per step too, as `step/...`).", "",
                  "![inside pretraining](plots/pretrain_diagnostics.png)", ""]
    parts += ["Files: `config.yaml` (resolved config), `split.json` (window indices per split), "
              "`label_subsets.json`, `results.json`, `checkpoints/`, `model/`, `logs/metrics.csv`.", ""]
    write_text_atomic(path, "\n".join(parts))
