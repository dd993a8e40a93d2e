"""Label efficiency: every (protocol, label fraction, seed) of one pretrained model on a split.

Used by the command line (records kept in a run directory, resumable) and by the Python API
(:meth:`crossl.api.CroSSL.evaluate`). A record names the pretraining method whose weights it used
(``None`` for ``supervised``, which starts from scratch), the protocol, the features the head read,
the label subset's size and seed, and the metrics on the whole test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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
from crossl.data.subject_norm import prepared_inputs
from crossl.errors import CrosslError
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


def without_modalities(windows: WindowSet, names: Sequence[str]) -> WindowSet:
    """The same windows with the modalities ``names`` marked absent in every window (no array is copied)."""
    unknown = [n for n in names if n not in windows.modality_names]
    if unknown:
        raise CrosslError(f"cannot remove modalities {unknown}: {windows.meta.name} has {list(windows.modality_names)}")
    presence = windows.presence.copy()
    presence[:, [windows.modality_names.index(n) for n in names]] = False
    return WindowSet(windows.modalities, presence, windows.labels, windows.subjects, windows.meta)


def record_key(record: Record) -> tuple[Any, ...]:
    """What makes an evaluation record unique in a run: protocol, label subset, fine-tuning's modality
    dropout and the modalities removed from the test windows (records of older runs lack the last two)."""
    return (record["protocol"], record["label_fraction"], record["seed"], float(record.get("modality_dropout", 0.0)),
            tuple(record.get("missing", ())))


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
    missing: Sequence[Sequence[str]] = (),
    score_part: str = "test",
) -> list[Record]:
    """Every missing (protocol, fraction, seed) scored on the whole ``score_part`` of the split (``test``,
    or ``val`` while choosing between variants); returns all records.

    ``model=None`` runs ``supervised`` only, with ``model_config`` as its backbone. ``done`` holds
    records of an earlier attempt (kept, not rerun); ``on_record(record, records)`` is called after
    each new one (to save it); ``log`` gets one progress line per record. ``missing``: modality
    subsets to remove from the scored windows, each giving one more record per trained classifier
    (the record's ``missing`` lists the removed modalities; ``[]`` for the full windows).
    """
    num_classes = windows.meta.num_classes
    records = list(done or [])
    source = head_source(config, model)
    backbone = model.backbone if model is not None else None
    if model is not None:
        model_config = model.model_config
    elif not model_config.modality_channels:
        model_config = replace(model_config, modality_channels={m: c for m, (_, c) in windows.shapes.items()})
    check_fingerprint(split.data, windows, "the split")
    digest = data_fingerprint(windows)["digest"]
    windows = prepared_inputs(windows, model_config.input_norm)
    stats = model.stats if model is not None and model.stats is not None else fit_channel_stats(windows, split.train)
    conditions = [(), *(tuple(names) for names in missing if names)]
    # Windows without a class (an unlabeled pool kept in the dataset) cannot be scored.
    scored = split.part(score_part)
    scored = scored[windows.labels[scored] >= 0]
    tests = [WindowBatches(without_modalities(windows, names) if names else windows, stats, scored) for names in conditions]
    tasks = evaluation_tasks(config, model is not None)
    finished = {record_key(r) for r in records}
    dropout = config.modality_dropout

    def task_keys(task: dict[str, Any]) -> list[tuple[Any, ...]]:
        trained = task["protocol"] in ("finetune", "supervised")
        return [(task["protocol"], task["label_fraction"], task["seed"], dropout if trained else 0.0, names)
                for names in conditions]

    missing_tasks = [t for t in tasks if any(k not in finished for k in task_keys(t))]
    # A task interrupted between its records is redone whole: drop the records it had written.
    redo = {k for t in missing_tasks for k in task_keys(t)}
    records = [r for r in records if record_key(r) not in redo]
    frozen = None
    # Frozen features of the labeled subsets' windows only: at small label fractions of a large
    # set that embeds a fraction of the training split, not all of it.
    labeled_rows = np.unique(np.concatenate([rows for by_f in subsets.values() for rows in by_f.values()]))
    if backbone is not None and any(PROTOCOLS[t["protocol"]] == "frozen" for t in missing_tasks):
        frozen = (compute_features(backbone, WindowBatches(windows, stats, labeled_rows), source),
                  [compute_features(backbone, test, source) for test in tests])
    for number, task in enumerate(missing_tasks, start=len(tasks) - len(missing_tasks) + 1):
        proto, fraction, seed = task["protocol"], task["label_fraction"], task["seed"]
        rows = subsets[seed][fraction]
        started = time.perf_counter()
        predictions = run_protocol(
            proto, pretrained=backbone, model_config=model_config, labeled=WindowBatches(windows, stats, rows),
            tests=tests, frozen_features=None if frozen is None else (
                frozen[0][np.searchsorted(labeled_rows, rows)], frozen[1]),
            num_classes=num_classes, source=source, config=config, trainer_config=trainer, seed=seed)
        seconds = round(time.perf_counter() - started, 2)
        new = []
        for key, test, predicted in zip(task_keys(task), tests, predictions):
            metrics = classification_metrics(test.labels, predicted, num_classes)
            new.append({"method": model.method if model is not None and uses_pretrained(proto) else None,
                        "protocol": proto, "dataset": windows.meta.name, "label_fraction": fraction, "seed": seed,
                        "n_labeled": int(rows.size), "head_input": source, "data_digest": digest,
                        "scored_on": "validation" if score_part == "val" else score_part,
                        "modality_dropout": key[3], "missing": list(key[4]), **metrics, "seconds": seconds})
        records += new
        if on_record is not None:
            for record in new:
                on_record(record, records)
        if log is not None:
            full = new[0]
            extra = "".join(f"; without {'+'.join(r['missing'])} {r['macro_f1']:.3f}" for r in new[1:])
            log(f"[{number}/{len(tasks)}] {proto:<10} {fraction:>6.0%} labels ({rows.size:>5} windows) seed {seed}: "
                f"macro-F1 {full['macro_f1']:.3f}  accuracy {full['accuracy']:.3f}{extra}  ({seconds:.0f} s)")
    return records
