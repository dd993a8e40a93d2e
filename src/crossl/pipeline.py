"""The one place that wires data, pretraining, evaluation and reports into runs."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from crossl.api import CroSSL
from crossl.config import RunConfig
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.datasets import load_dataset
from crossl.data.splits import Split, default_split, fit_channel_stats, nested_label_subsets
from crossl.distributed import one_device, per_process_batch, placement
from crossl.errors import CrosslError
from crossl.evaluation.metrics import classification_metrics
from crossl.evaluation.protocols import PROTOCOLS, compute_features, run_protocol
from crossl.io import write_json_atomic
from crossl.reports.plots import plot_label_efficiency, plot_pretrain_loss
from crossl.reports.report import write_report
from crossl.run import RunDirectory, iter_missing

SPLIT_FILE = "split.json"
SUBSETS_FILE = "label_subsets.json"
MODEL_DIR = "model"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_split(run_dir: Path) -> Split:
    path = run_dir / SPLIT_FILE
    try:
        return Split.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise CrosslError(f"cannot read the split {path} ({type(exc).__name__}); is this a crossl run directory?") from exc


def save_split(run: RunDirectory, split: Split) -> None:
    write_json_atomic(run.path(SPLIT_FILE), split.to_json(), indent=None)


def pretraining_finished(work: Path, resume: bool) -> bool:
    """An earlier attempt of the run in ``work`` exported its model: resuming skips the fit."""
    return resume and (work / MODEL_DIR / "model.json").is_file()


def fit_on_split(windows: WindowSet, split: Split, config: RunConfig, work: Path, resume: bool) -> CroSSL:
    """Pretrain on the training split (validation split for the ``best`` checkpoint), checkpoints in ``work``."""
    model = CroSSL(replace(config.model), config.pretrain, config.trainer)
    # Indices, not subsets: a memory-mapped dataset is read batch by batch, never copied whole.
    return model.fit(windows, indices=split.train, val=windows, val_indices=split.val, run_dir=work, resume=resume)


def pretrain_stage(windows: WindowSet, split: Split, config: RunConfig, run: RunDirectory, resume: bool) -> CroSSL:
    """Pretrain (rank 0 of a multi-process fit); export the model."""
    model_dir = run.path(MODEL_DIR)
    if pretraining_finished(run.work, resume):
        log(f"pretraining already finished in {run.work}; reusing its model")
        return CroSSL.load(model_dir)
    p = config.pretrain
    log(f"pretraining CroSSL on {len(split.train)} windows ({config.model.aggregator} aggregator, "
        f"{p.mask_strategy} masking at ratio {p.mask_ratio}, {p.epochs} epochs, batch {p.batch_size})")
    started = time.perf_counter()
    model = fit_on_split(windows, split, config, run.work, resume)
    model.save(model_dir)
    plot_pretrain_loss(run.work / "logs", run.path("plots", "pretrain_loss.png"))
    log(f"pretraining took {time.perf_counter() - started:.0f} s")
    return model


def evaluation_tasks(config: RunConfig, has_model: bool) -> list[dict[str, Any]]:
    protocols = [p for p in config.evaluation.protocols if has_model or PROTOCOLS[p] == "supervised"]
    return [{"protocol": proto, "label_fraction": f, "seed": s}
            for s in config.evaluation.seeds for f in config.evaluation.label_fractions for proto in protocols]


LabelSubsets = dict[int, dict[float, np.ndarray]]


def label_subsets(windows: WindowSet, split: Split, config: RunConfig) -> LabelSubsets:
    """``{seed: {fraction: window indices}}``: nested, stratified subsets of the training split."""
    ev = config.evaluation
    return {s: nested_label_subsets(windows.labels, split.train, ev.label_fractions, windows.meta.num_classes, s)
            for s in ev.seeds}


def save_label_subsets(run: RunDirectory, subsets: LabelSubsets) -> None:
    write_json_atomic(run.path(SUBSETS_FILE), {
        "pool": "train", "note": "window indices into the dataset, per seed and label fraction",
        "subsets": {str(s): {str(f): idx.tolist() for f, idx in by_f.items()} for s, by_f in subsets.items()},
    }, indent=None)


def evaluate_stage(windows: WindowSet, split: Split, subsets: LabelSubsets, model: CroSSL | None,
                   config: RunConfig, run: RunDirectory) -> list[dict[str, Any]]:
    """Every (protocol, label fraction, seed) on the whole test split; finished records are kept."""
    ev = config.evaluation
    num_classes = windows.meta.num_classes
    stats = model.stats if model is not None and model.stats is not None else fit_channel_stats(windows, split.train)
    test = WindowBatches(windows, stats, split.test)
    model_config = model.model_config if model is not None else replace(
        config.model, modality_channels={m: c for m, (_, c) in windows.shapes.items()})
    backbone = model.backbone if model is not None else None
    frozen = None
    # Frozen features of the labeled subsets' windows only: at small label fractions of a large
    # set that embeds a fraction of the training split, not all of it.
    labeled_rows = np.unique(np.concatenate([rows for by_f in subsets.values() for rows in by_f.values()]))
    if backbone is not None and {"linear", "mlp"} & set(ev.protocols):
        frozen = (compute_features(backbone, WindowBatches(windows, stats, labeled_rows), ev.head_input),
                  compute_features(backbone, test, ev.head_input))
    records = run.finished_records()
    tasks = evaluation_tasks(config, model is not None)
    for task in iter_missing(tasks, records, ("protocol", "label_fraction", "seed")):
        proto, fraction, seed = task["protocol"], task["label_fraction"], task["seed"]
        rows = subsets[seed][fraction]
        labeled = WindowBatches(windows, stats, rows)
        started = time.perf_counter()
        predictions = run_protocol(
            proto, pretrained=backbone, model_config=model_config, labeled=labeled, test=test,
            frozen_features=None if frozen is None else (frozen[0][np.searchsorted(labeled_rows, rows)], frozen[1]),
            num_classes=num_classes, config=ev, trainer_config=one_device(config.trainer), seed=seed)
        metrics = classification_metrics(test.labels, predictions, num_classes)
        record = {"method": PROTOCOLS[proto], "protocol": proto, "dataset": windows.meta.name,
                  "label_fraction": fraction, "seed": seed, "n_labeled": int(rows.size),
                  "head_input": ev.head_input if proto != "linear" or backbone is not None else None,
                  **metrics, "seconds": round(time.perf_counter() - started, 2)}
        run.append_record(record, records)
        done = sum(1 for t in tasks if any(r["protocol"] == t["protocol"] and r["label_fraction"] == t["label_fraction"]
                                            and r["seed"] == t["seed"] for r in records))
        log(f"[{done}/{len(tasks)}] {proto:<10} {fraction:>6.0%} labels ({rows.size:>5} windows) seed {seed}: "
            f"macro-F1 {metrics['macro_f1']:.3f}  accuracy {metrics['accuracy']:.3f}  ({record['seconds']:.0f} s)")
    return records


def finish_evaluation(run: RunDirectory, records: list[dict[str, Any]], config: RunConfig, windows: WindowSet,
                      split: Split, command: str) -> Path:
    write_json_atomic(run.path("results.json"), records)
    plot_label_efficiency(records, run.path("plots", "label_efficiency.png"), windows.meta.name)
    write_report(run.path("report.md"), records, config, windows, split, command,
                 has_loss_plot=run.path("plots", "pretrain_loss.png").is_file())
    return run.finish()


def join_pretraining(windows: WindowSet, split: Split, config: RunConfig, out: str | Path, resume: bool) -> None:
    """A process of rank > 0: train alongside rank 0 and write nothing (rank 0 owns the run directory
    and writes checkpoints and logs; this process only reads ``last.ckpt`` there to resume)."""
    work = RunDirectory(Path(out)).work
    if not pretraining_finished(work, resume):
        fit_on_split(windows, split, config, work, resume)


def run_pretrain(dataset: str, out: str | Path, config: RunConfig, resume: bool = False) -> Path | None:
    """``crossl pretrain``: split, pretrain, export the model; then a quick ``linear`` readout
    (frozen features, logistic regression) at the configured label fractions and seeds.

    Under DDP only rank 0 writes the run and evaluates; other ranks return None after the fit.
    """
    config.evaluation.protocols = ("linear",)
    config.validate()
    place = placement(config.trainer)
    per_process_batch(config.pretrain.batch_size, place.world_size)
    windows = load_dataset(dataset)
    split = default_split(windows, config.pretrain.seed)
    if not place.is_main:
        join_pretraining(windows, split, config, out, resume)
        return None
    subsets = label_subsets(windows, split, config)
    run = RunDirectory.open(out, config, resume)
    save_split(run, split)
    save_label_subsets(run, subsets)
    model = pretrain_stage(windows, split, config, run, resume)
    records = evaluate_stage(windows, split, subsets, model, config, run)
    return finish_evaluation(run, records, config, windows, split, f"crossl pretrain --data {dataset}")


def run_evaluate(pretrained_run: str | Path | None, dataset: str, out: str | Path, config: RunConfig,
                 resume: bool = False) -> Path | None:
    """``crossl evaluate``: label efficiency of a pretrained run (same split), or supervised only.

    Evaluation runs in one process on one device; started as several processes (srun, torchrun),
    ranks other than 0 return None at once.
    """
    config.validate()
    place = placement(config.trainer)
    if not place.is_main:
        return None
    if place.world_size > 1:
        log("evaluation runs in one process on one device; --devices, --num-nodes and --strategy place pretraining")
    windows = load_dataset(dataset)
    model = None
    if pretrained_run is not None:
        pretrained_run = Path(pretrained_run)
        model = CroSSL.load(pretrained_run / MODEL_DIR)
        split = load_split(pretrained_run)
        config = replace(config, model=model.model_config)
    else:
        split = default_split(windows, config.pretrain.seed)
    subsets = label_subsets(windows, split, config)
    run = RunDirectory.open(out, config, resume)
    save_split(run, split)
    save_label_subsets(run, subsets)
    records = evaluate_stage(windows, split, subsets, model, config, run)
    return finish_evaluation(run, records, config, windows, split, f"crossl evaluate --data {dataset}")


def demo_config(quick: bool) -> RunConfig:
    """The demo's settings: the defaults, or a smoke run with ``quick``."""
    config = RunConfig(dataset="hapt")
    if quick:
        config.pretrain.epochs = 2
        config.evaluation.steps = 20
        config.evaluation.epochs = 0
        config.evaluation.seeds = (0,)
    return config


def run_demo(out: str | Path, quick: bool = False, resume: bool = False, config: RunConfig | None = None
             ) -> Path | None:
    """``crossl demo``: HAPT -> CroSSL pretraining -> label efficiency vs supervised -> report.

    Under DDP only rank 0 writes the run and evaluates; other ranks return None after the fit.
    """
    config = config or demo_config(quick)
    config.validate()
    place = placement(config.trainer)
    per_process_batch(config.pretrain.batch_size, place.world_size)
    started = time.perf_counter()
    if place.is_main:
        log("loading UCI HAPT (fetched and prepared on first use)")
    windows = load_dataset(config.dataset)
    split = default_split(windows, config.pretrain.seed)
    if not place.is_main:
        join_pretraining(windows, split, config, out, resume)
        return None
    subsets = label_subsets(windows, split, config)  # before any output: a bad fraction fails here
    run = RunDirectory.open(out, config, resume)
    save_split(run, split)
    save_label_subsets(run, subsets)
    model = pretrain_stage(windows, split, config, run, resume)
    records = evaluate_stage(windows, split, subsets, model, config, run)
    final = finish_evaluation(run, records, config, windows, split, "crossl demo" + (" --quick" if quick else ""))
    log(f"demo finished in {time.perf_counter() - started:.0f} s; report: {final / 'report.md'}")
    return final
