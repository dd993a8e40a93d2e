"""Label efficiency: every (protocol, label fraction, seed) of one pretrained model on a split.

Used by the command line (records kept in a run directory, resumable) and by the Python API
(:meth:`crossl.api.CroSSL.evaluate`). A record names the pretraining method whose weights it used
(``None`` for ``supervised``, which starts from scratch), the protocol, the features the head read,
the label subset's size and seed, and the metrics on the whole test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from crossl.config import EvalConfig, ModelConfig, TrainerConfig
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import (
    ChannelStats,
    Split,
    check_fingerprint,
    data_fingerprint,
    fit_channel_stats,
    nested_label_subsets,
)
from crossl.evaluation.features import compute_features
from crossl.evaluation.metrics import classification_metrics
from crossl.evaluation.protocols import PROTOCOLS, run_protocol, uses_pretrained
from crossl.methods import resolve_head_input
from crossl.models.backbone import CrossModalBackbone

#: ``{seed: {fraction: window indices}}``
LabelSubsets = dict[int, dict[float, np.ndarray]]
Record = dict[str, Any]


class PretrainedModel(Protocol):
    """What evaluation reads of a fitted model (a :class:`crossl.api.CroSSL`)."""

    method: str
    model_config: ModelConfig
    backbone: CrossModalBackbone | None
    stats: ChannelStats | None


def label_subsets(windows: WindowSet, split: Split, config: EvalConfig) -> LabelSubsets:
    """Nested, stratified subsets of the training split per seed and fraction."""
    return {s: nested_label_subsets(windows.labels, split.train, config.label_fractions, windows.meta.num_classes, s)
            for s in config.seeds}


def evaluation_tasks(config: EvalConfig, has_model: bool) -> list[dict[str, Any]]:
    """The (protocol, fraction, seed) cells to run; without a model only ``supervised`` ones."""
    protocols = [p for p in config.protocols if has_model or not uses_pretrained(p)]
    return [{"protocol": proto, "label_fraction": f, "seed": s}
            for s in config.seeds for f in config.label_fractions for proto in protocols]


def head_source(config: EvalConfig, model: PretrainedModel | None) -> str:
    return resolve_head_input(config.head_input, model.method if model is not None else None)


def evaluate_label_efficiency(
    windows: WindowSet,
    split: Split,
    subsets: LabelSubsets,
    model: PretrainedModel | None,
    config: EvalConfig,
    trainer: TrainerConfig,
    model_config: ModelConfig,
    done: list[Record] | None = None,
    on_record: Callable[[Record, list[Record]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Record]:
    """Every missing (protocol, fraction, seed) on the whole test split; returns all records.

    ``model=None`` runs ``supervised`` only, with ``model_config`` as its backbone. ``done`` holds
    records of an earlier attempt (kept, not rerun); ``on_record(record, records)`` is called after
    each new one (to save it); ``log`` gets one progress line per record.
    """
    num_classes = windows.meta.num_classes
    records = list(done or [])
    source = head_source(config, model)
    backbone = model.backbone if model is not None else None
    stats = model.stats if model is not None and model.stats is not None else fit_channel_stats(windows, split.train)
    if model is not None:
        model_config = model.model_config
    elif not model_config.modality_channels:
        model_config = replace(model_config, modality_channels={m: c for m, (_, c) in windows.shapes.items()})
    test = WindowBatches(windows, stats, split.test)
    check_fingerprint(split.data, windows, "the split")
    digest = data_fingerprint(windows)["digest"]
    tasks = evaluation_tasks(config, model is not None)
    keys = ("protocol", "label_fraction", "seed")
    finished = {tuple(r[k] for k in keys) for r in records}
    missing = [t for t in tasks if tuple(t[k] for k in keys) not in finished]
    frozen = None
    # Frozen features of the labeled subsets' windows only: at small label fractions of a large
    # set that embeds a fraction of the training split, not all of it.
    labeled_rows = np.unique(np.concatenate([rows for by_f in subsets.values() for rows in by_f.values()]))
    if backbone is not None and any(PROTOCOLS[t["protocol"]] == "frozen" for t in missing):
        frozen = (compute_features(backbone, WindowBatches(windows, stats, labeled_rows), source),
                  compute_features(backbone, test, source))
    for task in missing:
        proto, fraction, seed = task["protocol"], task["label_fraction"], task["seed"]
        rows = subsets[seed][fraction]
        started = time.perf_counter()
        predictions = run_protocol(
            proto, pretrained=backbone, model_config=model_config, labeled=WindowBatches(windows, stats, rows),
            test=test, frozen_features=None if frozen is None else (
                frozen[0][np.searchsorted(labeled_rows, rows)], frozen[1]),
            num_classes=num_classes, source=source, config=config, trainer_config=trainer, seed=seed)
        metrics = classification_metrics(test.labels, predictions, num_classes)
        record = {"method": model.method if model is not None and uses_pretrained(proto) else None,
                  "protocol": proto, "dataset": windows.meta.name, "label_fraction": fraction, "seed": seed,
                  "n_labeled": int(rows.size), "head_input": source, "data_digest": digest,
                  **metrics, "seconds": round(time.perf_counter() - started, 2)}
        records.append(record)
        if on_record is not None:
            on_record(record, records)
        if log is not None:
            done_count = len(tasks) - len(missing) + missing.index(task) + 1
            log(f"[{done_count}/{len(tasks)}] {proto:<10} {fraction:>6.0%} labels ({rows.size:>5} windows) seed {seed}: "
                f"macro-F1 {metrics['macro_f1']:.3f}  accuracy {metrics['accuracy']:.3f}  ({record['seconds']:.0f} s)")
    return records
