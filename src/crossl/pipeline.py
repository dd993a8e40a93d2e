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
from crossl.config import RunConfig, demo_config
from crossl.config_fields import plain_config
from crossl.data.container import WindowSet
from crossl.data.datasets import load_dataset, load_with_unlabeled
from crossl.data.splits import Split, check_fingerprint, data_fingerprint, default_split
from crossl.distributed import one_device, per_process_batch, placement
from crossl.errors import CrosslError
from crossl.evaluation.label_efficiency import LabelSubsets, evaluate_label_efficiency, head_source, label_subsets
from crossl.io import write_json_atomic
from crossl.methods import check_method_data, method_class, resolve_head_input
from crossl.reports.plots import plot_label_efficiency, plot_pretrain_diagnostics, plot_pretrain_loss
from crossl.reports.report import write_report
from crossl.run import RunDirectory

SPLIT_FILE = "split.json"
SUBSETS_FILE = "label_subsets.json"
MODEL_DIR = "model"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_split(run_dir: Path, windows: WindowSet) -> Split:
    """The split saved in ``run_dir``, refused unless it was made on ``windows``."""
    path = run_dir / SPLIT_FILE
    try:
        split = Split.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CrosslError(f"cannot read the split {path} ({type(exc).__name__}); is this a crossl run directory?") from exc
    check_fingerprint(split.data, windows, f"the split in {run_dir}")
    largest = max((int(part.max()) for part in (split.train, split.val, split.test) if part.size), default=-1)
    if largest >= len(windows):
        raise CrosslError(f"the split in {run_dir} points to window {largest}, but this data has {len(windows)} windows; "
                          "use the data the run was made on")
    return split


def save_split(run: RunDirectory, split: Split, windows: WindowSet) -> None:
    """Write the run's split; a resumed run's saved split must have been made on the same data."""
    if (run.work / SPLIT_FILE).is_file():
        load_split(run.work, windows)
    write_json_atomic(run.path(SPLIT_FILE), split.to_json(), indent=None)


def pretraining_finished(work: Path, resume: bool) -> bool:
    """An earlier attempt of the run in ``work`` exported its model: resuming skips the fit."""
    return resume and (work / MODEL_DIR / "model.json").is_file()


def fit_on_split(windows: WindowSet, split: Split, config: RunConfig, work: Path, resume: bool) -> CroSSL:
    """Pretrain on the training split (validation split for the ``best`` checkpoint), checkpoints in ``work``."""
    model = CroSSL(replace(config.model), config.pretrain, config.trainer, method=config.method, options=config.options)
    pool, train = pretraining_pool(windows, split, config.pretrain.unlabeled_windows)
    # Indices, not subsets: a memory-mapped dataset is read batch by batch, never copied whole.
    return model.fit(pool, indices=train, val=windows, val_indices=split.val, run_dir=work, resume=resume)


def pretraining_pool(windows: WindowSet, split: Split, unlabeled: bool) -> tuple[WindowSet, np.ndarray]:
    """The windows pretraining reads and their indices: the training split, or with ``unlabeled``
    every window of the training subjects in the dataset's unlabeled pool (labeled ones included)."""
    if not unlabeled:
        return windows, split.train
    pool = load_with_unlabeled(windows.meta.name, quiet=True)
    if pool.modality_names != windows.modality_names or pool.shapes != windows.shapes:
        raise CrosslError(f"the unlabeled pool of {windows.meta.name} has modalities {pool.shapes}, the dataset "
                          f"{windows.shapes}; delete both prepared sets under $CROSSL_HOME/datasets and run again")
    train = np.flatnonzero(np.isin(pool.subjects, split.subjects["train"]))
    log(f"pretraining on every window of the training subjects: {train.size} "
        f"({int((pool.labels[train] < 0).sum())} without a class)")
    return pool, train


def pretrain_stage(windows: WindowSet, split: Split, config: RunConfig, run: RunDirectory, resume: bool) -> CroSSL:
    """Pretrain (rank 0 of a multi-process fit); export the model."""
    model_dir = run.path(MODEL_DIR)
    if pretraining_finished(run.work, resume):
        log(f"pretraining already finished in {run.work}; reusing its model")
        return CroSSL.load(model_dir)
    p = config.pretrain
    options = ", ".join(f"{k} {v}" for k, v in plain_config(config.options).items())
    log(f"pretraining {config.method} on {len(split.train)} windows ({config.model.aggregator} aggregator"
        f"{', ' + options if options else ''}; {p.epochs} epochs, batch {p.batch_size})")
    started = time.perf_counter()
    model = fit_on_split(windows, split, config, run.work, resume)
    model.save(model_dir)
    if method_class(config.method).trains:
        plot_pretrain_loss(run.work / "logs", run.path("plots", "pretrain_loss.png"))
        plot_pretrain_diagnostics(run.work / "logs", run.path("plots", "pretrain_diagnostics.png"))
    log(f"pretraining took {time.perf_counter() - started:.0f} s")
    return model


def save_label_subsets(run: RunDirectory, subsets: LabelSubsets, windows: WindowSet) -> None:
    write_json_atomic(run.path(SUBSETS_FILE), {
        "data": data_fingerprint(windows),
        "pool": "train", "note": "window indices into the dataset, per seed and label fraction",
        "subsets": {str(s): {str(f): idx.tolist() for f, idx in by_f.items()} for s, by_f in subsets.items()},
    }, indent=None)


def evaluate_stage(windows: WindowSet, split: Split, subsets: LabelSubsets, model: CroSSL | None,
                   config: RunConfig, run: RunDirectory) -> list[dict[str, Any]]:
    """Every (protocol, label fraction, seed) on the whole test split; finished records are kept."""
    return evaluate_label_efficiency(
        windows, split, subsets, model, config.evaluation, one_device(config.trainer), config.model,
        done=run.finished_records(), on_record=lambda _, records: run.save_partial_records(records), log=log)


def check_before_output(windows: WindowSet, config: RunConfig, pretrains: bool) -> None:
    """Refuse what cannot run on this data in one line, before a run directory exists."""
    labeled = np.unique(windows.labels[windows.labels >= 0])
    if labeled.size < 2:
        raise CrosslError(f"{windows.meta.name} has labels of {labeled.size} class(es); the downstream evaluation needs "
                          "at least 2 classes: label the windows, or pretrain through the Python API (CroSSL.fit), "
                          "which needs no labels")
    if pretrains:
        check_method_data(config.method, config.options, {m: c for m, (_, c) in windows.shapes.items()})
        resolve_head_input(config.evaluation.head_input, config.method)


def finish_evaluation(run: RunDirectory, records: list[dict[str, Any]], config: RunConfig, windows: WindowSet,
                      split: Split, command: str, pretrained: bool = True) -> Path:
    write_json_atomic(run.path("results.json"), records)
    plot_label_efficiency(records, run.path("plots", "label_efficiency.png"), windows.meta.name)
    write_report(run.path("report.md"), records, config, windows, split, command,
                 has_loss_plot=run.path("plots", "pretrain_loss.png").is_file(), pretrained=pretrained)
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
    check_before_output(windows, config, pretrains=True)
    split = default_split(windows, config.pretrain.seed, config.split.fold, config.split.val_subjects)
    if not place.is_main:
        join_pretraining(windows, split, config, out, resume)
        return None
    subsets = label_subsets(windows, split, config.evaluation)
    run = RunDirectory.open(out, config, resume)
    save_split(run, split, windows)
    save_label_subsets(run, subsets, windows)
    model = pretrain_stage(windows, split, config, run, resume)
    records = evaluate_stage(windows, split, subsets, model, config, run)
    return finish_evaluation(run, records, config, windows, split, f"crossl pretrain --data {dataset} --method {config.method}")


def run_evaluate(pretrained_run: str | Path | None, dataset: str, out: str | Path, config: RunConfig,
                 resume: bool = False, method: str | None = None) -> Path | None:
    """``crossl evaluate``: label efficiency of a pretrained run (same split), or supervised only.

    The pretrained run's method, options, model and pretraining settings replace the config's (the
    report and ``config.yaml`` describe the model evaluated); ``method``, when given, must match it.

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
        if method is not None and method != model.method:
            raise CrosslError(f"--method {method} does not match the pretrained run, whose method is "
                              f"{model.method}; drop --method or point --pretrained to a {method} run")
        split = load_split(pretrained_run, windows)
        config = replace(config, model=model.model_config, pretrain=model.pretrain_config,
                         method=model.method, options=model.options)  # type: ignore[arg-type]
        head_source(config.evaluation, model)
    else:
        split = default_split(windows, config.pretrain.seed, config.split.fold, config.split.val_subjects)
    check_before_output(windows, config, pretrains=False)
    subsets = label_subsets(windows, split, config.evaluation)
    run = RunDirectory.open(out, config, resume)
    save_split(run, split, windows)
    save_label_subsets(run, subsets, windows)
    records = evaluate_stage(windows, split, subsets, model, config, run)
    command = f"crossl evaluate --data {dataset}" + (f" --pretrained {pretrained_run}" if pretrained_run else "")
    return finish_evaluation(run, records, config, windows, split, command, pretrained=model is not None)


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
    check_before_output(windows, config, pretrains=True)
    split = default_split(windows, config.pretrain.seed, config.split.fold, config.split.val_subjects)
    if not place.is_main:
        join_pretraining(windows, split, config, out, resume)
        return None
    subsets = label_subsets(windows, split, config.evaluation)  # before any output: a bad fraction fails here
    run = RunDirectory.open(out, config, resume)
    save_split(run, split, windows)
    save_label_subsets(run, subsets, windows)
    model = pretrain_stage(windows, split, config, run, resume)
    records = evaluate_stage(windows, split, subsets, model, config, run)
    final = finish_evaluation(run, records, config, windows, split, "crossl demo" + (" --quick" if quick else ""))
    log(f"demo finished in {time.perf_counter() - started:.0f} s; report: {final / 'report.md'}")
    return final
