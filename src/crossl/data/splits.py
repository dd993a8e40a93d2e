"""Subject-wise splits, per-channel normalisation and nested label fractions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from crossl.data.container import WindowSet, row_chunks, sequential_pass
from crossl.errors import CrosslError

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Window indices of each part; no subject appears in two parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    subjects: dict[str, list[int]]
    #: :func:`data_fingerprint` of the windows the indices point into (None: not bound).
    data: dict[str, object] | None = None

    def bound_to(self, windows: WindowSet) -> Split:
        """This split, bound to ``windows`` (checked there before any later use)."""
        return replace(self, data=data_fingerprint(windows))

    def part(self, name: str) -> np.ndarray:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def to_json(self) -> dict[str, object]:
        return {
            "data": self.data,
            "subjects": self.subjects,
            "indices": {name: self.part(name).tolist() for name in SPLIT_NAMES},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Split:
        idx: Any = obj["indices"]
        subjects: Any = obj["subjects"]
        train, val, test = (np.asarray(idx[name], dtype=np.int64) for name in SPLIT_NAMES)
        data: Any = obj.get("data")
        return cls(train, val, test, subjects={k: list(v) for k, v in dict(subjects).items()},
                   data=dict(data) if data is not None else None)


def data_fingerprint(windows: WindowSet) -> dict[str, object]:
    """What a split, a label subset or a model is bound to: the data's name, its window count and
    a digest of its subjects, labels and window shapes (cheap: no signal is read)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(windows.subjects, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(windows.labels, dtype=np.int64).tobytes())
    digest.update(json.dumps({m: list(shape) for m, shape in windows.shapes.items()}).encode())
    return {"dataset": windows.meta.name, "windows": len(windows), "digest": digest.hexdigest()[:16]}


def check_fingerprint(expected: Mapping[str, object] | None, windows: WindowSet, what: str) -> None:
    """Refuse to use ``what`` (made on the data ``expected`` describes) on other ``windows``."""
    if expected is None:
        return
    actual = data_fingerprint(windows)
    if dict(expected) != actual:
        raise CrosslError(
            f"{what} was made on {expected.get('dataset')} ({expected.get('windows')} windows, digest "
            f"{expected.get('digest')}), not on this data, {actual['dataset']} ({actual['windows']} windows, digest "
            f"{actual['digest']}); use it with the data it was made on, or start a new run on this data")


def split_by_subjects(subjects: np.ndarray, assignment: Mapping[str, Sequence[int]]) -> Split:
    """Indices of the windows whose subject is listed for train, val and test."""
    groups = {name: sorted(int(s) for s in assignment.get(name, ())) for name in SPLIT_NAMES}
    seen: dict[int, str] = {}
    for name, subs in groups.items():
        if len(set(subs)) != len(subs):
            raise CrosslError(f"the '{name}' split lists a subject twice; list each subject once")
        for s in subs:
            if s in seen:
                raise CrosslError(f"subject {s} is in both '{seen[s]}' and '{name}'; a subject belongs to one split")
            seen[s] = name
    parts = {name: np.flatnonzero(np.isin(subjects, subs)) for name, subs in groups.items()}
    for name in ("train", "test"):
        if parts[name].size == 0:
            raise CrosslError(f"the '{name}' split holds no windows; assign it subjects present in the data")
    return Split(parts["train"], parts["val"], parts["test"], groups)


def random_subject_split(
    subjects: np.ndarray, val_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0
) -> Split:
    """Assign whole subjects at random (seeded) to train/val/test in the given proportions."""
    unique = np.unique(subjects)
    if unique.size < 3:
        raise CrosslError(
            f"a subject-wise split needs at least 3 subjects, the data has {unique.size}; "
            "pass subject ids, or an explicit split"
        )
    order = np.random.default_rng(seed).permutation(unique)
    if not (0.0 < test_fraction < 1.0 and 0.0 <= val_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise CrosslError(f"split fractions val={val_fraction}, test={test_fraction} must be in [0, 1) and sum below 1")
    n_test = min(max(1, round(test_fraction * unique.size)), unique.size - 1)
    n_val = max(1, round(val_fraction * unique.size)) if val_fraction > 0 else 0
    n_val = max(0, min(n_val, unique.size - n_test - 1))
    assignment = {
        "test": order[:n_test].tolist(),
        "val": order[n_test : n_test + n_val].tolist(),
        "train": order[n_test + n_val :].tolist(),
    }
    return split_by_subjects(subjects, assignment)


def default_split(windows: WindowSet, seed: int = 0) -> Split:
    """The dataset's published split if its metadata names one, else a seeded subject split."""
    named = windows.meta.extra.get("default_split")
    if isinstance(named, Mapping):
        return split_by_subjects(windows.subjects, named).bound_to(windows)
    return random_subject_split(windows.subjects, seed=seed).bound_to(windows)


@dataclass(frozen=True)
class ChannelStats:
    """Per-modality channel means and standard deviations, each ``(C_m,)``."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]


def fit_channel_stats(windows: WindowSet, indices: np.ndarray) -> ChannelStats:
    """Mean and std of every channel over the windows at ``indices`` where the modality is present.

    Reads the windows in chunks (in stored order) and merges the chunks' float64 means and summed
    squared deviations (Chan et al.), so memory-mapped sets larger than RAM need one bounded pass.
    """
    mean: dict[str, np.ndarray] = {}
    std: dict[str, np.ndarray] = {}
    for i, (m, arr) in enumerate(windows.modalities.items()):
        rows = np.sort(indices[windows.presence[indices, i]])
        if rows.size == 0:
            raise CrosslError(f"modality '{m}' is absent from every training window; drop it or change the split")
        channels = arr.shape[2]
        count, mu, m2 = 0, np.zeros(channels), np.zeros(channels)
        # float64 values take twice the stored bytes per row.
        with sequential_pass([arr]):
            for part in row_chunks(rows.size, 2 * arr[0].nbytes):
                values = np.asarray(arr[rows[part]], dtype=np.float64).reshape(-1, channels)
                n_part, mu_part = values.shape[0], values.mean(axis=0)
                values -= mu_part  # in place: a chunk costs one float64 copy, not three
                m2_part = np.square(values, out=values).sum(axis=0)
                total = count + n_part
                delta = mu_part - mu
                mu = mu + delta * (n_part / total)
                m2 = m2 + m2_part + np.square(delta) * (count * n_part / total)
                count = total
        mean[m] = mu.astype(np.float32)
        # A constant channel keeps std 1 so that it maps to zeros rather than to inf.
        sd = np.sqrt(m2 / count)
        std[m] = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
    return ChannelStats(mean, std)


def normalize_arrays(modalities: Mapping[str, np.ndarray], presence: np.ndarray, stats: ChannelStats
                     ) -> dict[str, np.ndarray]:
    """Standardise every channel of ``{m: (B, T_m, C_m)}`` with ``stats``; absent modalities (``presence``
    ``(B, M)`` False) are zero. Returns new float32 arrays."""
    out = {}
    for i, (m, arr) in enumerate(modalities.items()):
        z = (np.asarray(arr, dtype=np.float32) - stats.mean[m]) / stats.std[m]
        z[~presence[:, i]] = 0.0
        out[m] = z
    return out


def nested_label_subsets(
    labels: np.ndarray,
    pool: np.ndarray,
    fractions: Sequence[float],
    num_classes: int,
    seed: int,
) -> dict[float, np.ndarray]:
    """Stratified, seeded, nested labeled subsets of ``pool``.

    For each class, the pool's windows of that class are put in one seeded random order; the
    subset for fraction f takes the first ``max(1, round(f * n_class))`` of them. The same order
    serves every fraction, so a smaller subset is always inside a larger one.

    Returns ``{fraction: sorted window indices}``.
    """
    pool = np.asarray(pool, dtype=np.int64)
    pool_labels = labels[pool]
    counts = np.bincount(pool_labels[pool_labels >= 0], minlength=num_classes)
    missing = [c for c in range(num_classes) if counts[c] == 0]
    if missing:
        raise CrosslError(
            f"class(es) {missing} have no labeled window in the training split; "
            "choose a split whose training subjects cover every class"
        )
    n_labeled = int(counts.sum())
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(pool[pool_labels == c]) for c in range(num_classes)]
    subsets: dict[float, np.ndarray] = {}
    for f in sorted(fractions):
        if not 0.0 < f <= 1.0:
            raise CrosslError(f"label fraction {f} is outside (0, 1]; use e.g. 0.01 for 1%")
        if f * n_labeled < num_classes:
            raise CrosslError(
                f"label fraction {f} keeps {f * n_labeled:.1f} of {n_labeled} labeled windows, fewer than the "
                f"{num_classes} classes; use a fraction of at least {num_classes / n_labeled:.4f}"
            )
        take = [order[: max(1, round(f * len(order)))] for order in orders]
        subsets[f] = np.sort(np.concatenate(take))
    return subsets
