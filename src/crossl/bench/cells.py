"""Run one grid cell: its pretraining (if any), every evaluation that reads it, its embedding.

A cell is a run directory (``crossl.run``): built in ``<id>.incomplete`` and renamed to ``<id>``
when finished, so a finished cell is exactly a directory without the suffix. An interrupted cell
resumes from its checkpoints and finished records the next time it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from crossl.bench.runner import cells_dir, finished
from crossl.bench.spec import SCORE_PARTS, Cell
from crossl.config import EvalConfig
from crossl.data.batches import WindowBatches
from crossl.data.datasets import load_dataset
from crossl.data.splits import default_split
from crossl.distributed import one_device
from crossl.evaluation.features import compute_features
from crossl.evaluation.label_efficiency import evaluate_label_efficiency, head_source, label_subsets
from crossl.io import write_atomic, write_json_atomic
from crossl.pipeline import check_before_output, pretrain_stage, save_label_subsets, save_split
from crossl.reports.machine import machine_summary
from crossl.run import RunDirectory

CELL_FILE = "cell.json"
EMBEDDING_FILE = "embedding.npz"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_cell(cell: Cell, out: Path, log: Callable[[str], None] = _log) -> Path:
    """Compute ``cell`` under ``out/cells``; a finished cell is returned as it is."""
    final = cells_dir(out) / cell.id
    if finished(out, cell):
        return final
    windows = load_dataset(cell.dataset, quiet=True)
    if cell.kept is not None:
        windows = windows.only_modalities(cell.kept)
    config = cell.run_config()
    config.trainer.progress = False
    pretrains = cell.method is not None
    check_before_output(windows, config, pretrains=pretrains)
    split = default_split(windows, cell.split_seed, config.split.fold, config.split.val_subjects)
    fractions = sorted({f for e in cell.evaluations for f in e.label_fractions})
    seeds = sorted({s for e in cell.evaluations for s in e.label_seeds})
    subsets = label_subsets(windows, split, EvalConfig(label_fractions=tuple(fractions), seeds=tuple(seeds)))
    run = RunDirectory.open(final, config, resume=True)
    # The machine that (last) computed the cell: the same seed gives the same numbers on one machine,
    # not across CPUs, so a grid finished on several machines says so in its report.
    write_json_atomic(run.path(CELL_FILE), {"id": cell.id, **cell.spec(), "roles": cell.roles,
                                            "machine": machine_summary()})
    save_split(run, split, windows)
    save_label_subsets(run, subsets, windows)
    model = pretrain_stage(windows, split, config, run, resume=True) if pretrains else None
    records = run.finished_records()
    part = SCORE_PARTS[cell.score_on]
    for request in cell.evaluations:
        evaluation = replace(config.evaluation, protocols=request.protocols, label_fractions=request.label_fractions,  # type: ignore[arg-type]
                             seeds=request.label_seeds, modality_dropout=request.modality_dropout)
        records = evaluate_label_efficiency(
            windows, split, subsets, model, evaluation, one_device(config.trainer), config.model, done=records,
            on_record=lambda _, done: run.save_partial_records(done), log=log, missing=request.missing,
            score_part=part)
    if cell.embedding and model is not None and model.backbone is not None:
        rows = split.part(part)
        rows = np.sort(np.random.default_rng(0).choice(rows, size=min(cell.embedding, rows.size), replace=False))
        source = head_source(config.evaluation, model)
        features = compute_features(model.backbone, WindowBatches(windows, model.stats, rows), source).numpy()  # type: ignore[arg-type]
        coords = tsne(features)
        write_atomic(run.path(EMBEDDING_FILE), lambda tmp: _save_npz(tmp, coords=coords, labels=windows.labels[rows],
                                                                     subjects=windows.subjects[rows],
                                                                     class_names=np.array(windows.meta.class_names),
                                                                     source=np.array(source)))
    write_json_atomic(run.path("results.json"), records)
    return run.finish()


def tsne(features: np.ndarray) -> np.ndarray:
    """``(N, F)`` -> ``(N, 2)`` t-SNE coordinates (scikit-learn, PCA start, seeded: deterministic)."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    perplexity = float(min(30, max(2, (features.shape[0] - 1) // 3)))
    scaled = StandardScaler().fit_transform(features)
    return np.asarray(TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(scaled))


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
