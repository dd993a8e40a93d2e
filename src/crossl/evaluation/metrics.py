"""Classification metrics and their summary over seeds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

METRICS = ("macro_f1", "accuracy", "kappa")


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """Macro-F1 (over all ``num_classes``, absent predictions count as 0), accuracy, Cohen's kappa."""
    labels = list(range(num_classes))
    return {
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "kappa": float(cohen_kappa_score(y_true, y_pred, labels=labels)),
    }


def summarize(records: Iterable[Mapping[str, object]], keys: Sequence[str] = ("method", "protocol", "label_fraction"),
              ) -> list[dict[str, object]]:
    """Group records by ``keys``; mean and std (population, over seeds) of every metric."""
    groups: dict[tuple, list[Mapping[str, object]]] = defaultdict(list)
    for r in records:
        groups[tuple(r[k] for k in keys)].append(r)
    rows = []
    for key, group in groups.items():
        row: dict[str, object] = dict(zip(keys, key))
        row["seeds"] = len(group)
        for m in METRICS:
            values = np.array([float(g[m]) for g in group])  # type: ignore[arg-type]
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_std"] = float(values.std())
        rows.append(row)
    return rows
