"""Splits (subject-wise, within-subject, leave-one-subject-out), per-channel normalisation and
nested label fractions.

A prepared set names its split in ``meta.extra``: ``default_split`` (subject ids per part), or
``split_scheme`` ``"within-subject"`` (each subject's windows of each class cut in time) or
``"leave-one-subject-out"`` (one fold per subject), or ``window_parts`` (a part for every window, as
run lengths over the stored order: the authors' release's own train/test files). Without any of
these, whole subjects are drawn at random (seeded).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from crossl.data.container import WindowSet, row_chunks, sequential_pass
from crossl.errors import CrosslError

SPLIT_NAMES = ("train", "val", "test")
#: How a set is split: whole subjects per part; each subject's windows cut in time; one subject per fold.
SplitScheme = Literal["subjects", "within-subject", "leave-one-subject-out"]
SPLIT_SCHEMES: tuple[str, ...] = ("subjects", "within-subject", "leave-one-subject-out")
#: The within-subject cut: the last 20% of each subject's windows of a class are test, the 10% before val.
WITHIN_SUBJECT_SHARES = {"val": 0.1, "test": 0.2}


@dataclass(frozen=True)
class Split:
    """Window indices of each part. ``subjects``: the subject ids of each part; they are disjoint
    except under the within-subject scheme (and the release's own files), where every subject has
    windows in several parts."""

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


def split_kind(subjects: Mapping[str, Sequence[int]]) -> str:
    """How a split with these subject ids per part reads in a report: "by subject", or "within
    subjects" where parts share a subject (their scores are not about new people)."""
    seen: set[int] = set()
    for part in SPLIT_NAMES:
        found = {int(s) for s in subjects.get(part, ())}
        if found & seen:
            return "within subjects (parts share subjects: scores are not about new people)"
        seen |= found
    return "by subject"


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


def within_subject_split(subjects: np.ndarray, labels: np.ndarray, gap: int = 0,
                         val_share: float = WITHIN_SUBJECT_SHARES["val"],
                         test_share: float = WITHIN_SUBJECT_SHARES["test"]) -> Split:
    """Each subject's windows of each class, in stored (time) order: the first ``1 - val_share -
    test_share`` train, the next ``val_share`` val, the last ``test_share`` test (rounded, test at
    least one window where a run has two or more). ``gap`` windows after each cut belong to no part:
    with overlapping windows (``gap = ceil(window / stride) - 1``) no sample is on both sides.
    Windows without a class (label -1) are cut like a class of their own.

    ``subjects``, ``labels``: ``(N,)``. Returns a split whose parts share subjects.
    """
    if not (0.0 < test_share < 1.0 and 0.0 <= val_share < 1.0 and val_share + test_share < 1.0):
        raise CrosslError(f"within-subject shares val={val_share}, test={test_share} must be in [0, 1) and sum below 1")
    subjects = np.asarray(subjects, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLIT_NAMES}
    for subject in np.unique(subjects):
        for label in np.unique(labels[subjects == subject]):
            rows = np.flatnonzero((subjects == subject) & (labels == label))
            n_test = min(rows.size - 1, max(1, round(test_share * rows.size))) if rows.size > 1 else 0
            n_val = min(rows.size - n_test - 1, round(val_share * rows.size)) if rows.size > 2 else 0
            n_train = rows.size - n_test - n_val
            parts["train"].append(rows[:n_train])
            parts["val"].append(rows[n_train + gap : n_train + n_val])
            parts["test"].append(rows[n_train + n_val + gap :])
    indices = {name: np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)
               for name, found in parts.items()}
    for name in ("train", "test"):
        if indices[name].size == 0:
            raise CrosslError(f"the within-subject '{name}' part holds no windows; each subject needs more windows per class")
    groups = {name: sorted(int(s) for s in np.unique(subjects[indices[name]])) for name in SPLIT_NAMES}
    return Split(indices["train"], indices["val"], indices["test"], groups)


def leave_one_subject_out(subjects: np.ndarray, fold: int) -> Split:
    """Fold ``fold`` of leave-one-subject-out over the sorted subject ids: that subject is test, the
    next one (cyclically) val, every other subject train."""
    unique = [int(s) for s in np.unique(subjects)]
    if len(unique) < 3:
        raise CrosslError(f"leave-one-subject-out needs at least 3 subjects, the data has {len(unique)}; "
                          "use a subject split")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < len(unique):
        raise CrosslError(f"fold {fold!r} is out of range: leave-one-subject-out over {len(unique)} subjects "
                          f"{unique} has folds 0-{len(unique) - 1}; pass --fold K in that range")
    test, val = unique[fold], unique[(fold + 1) % len(unique)]
    return split_by_subjects(subjects, {"train": [s for s in unique if s not in (test, val)], "val": [val],
                                        "test": [test]})


def window_parts_split(subjects: np.ndarray, runs: Sequence[Sequence[Any]]) -> Split:
    """The split a set stores window by window: ``runs`` ``[[part, count], ...]`` over the stored order."""
    names: list[str] = []
    for run in runs:
        part, count = run
        if part not in SPLIT_NAMES or isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise CrosslError(f"window_parts holds {list(run)}; each entry is [train|val|test, count]")
        names.extend([part] * count)
    if len(names) != len(subjects):
        raise CrosslError(f"window_parts covers {len(names)} windows, the set has {len(subjects)}; "
                          "import the set again")
    parts = np.asarray(names)
    indices = {name: np.flatnonzero(parts == name) for name in SPLIT_NAMES}
    for name in ("train", "test"):
        if indices[name].size == 0:
            raise CrosslError(f"window_parts puts no window in '{name}'; import the set again")
    groups = {name: sorted(int(s) for s in np.unique(np.asarray(subjects)[indices[name]])) for name in SPLIT_NAMES}
    return Split(indices["train"], indices["val"], indices["test"], groups)


def overlap_gap(windows: WindowSet) -> int:
    """How many following windows overlap a window in time: ``ceil(window_s / stride_s) - 1`` (0
    where the metadata gives no window and stride)."""
    window_s, stride_s = windows.meta.extra.get("window_s"), windows.meta.extra.get("stride_s")
    if not isinstance(window_s, (int, float)) or not isinstance(stride_s, (int, float)) or stride_s <= 0:
        return 0
    return max(0, math.ceil(window_s / stride_s - 1e-9) - 1)


def split_scheme(windows: WindowSet) -> str:
    """The set's split scheme: ``"windows"`` (stored parts), or one of :data:`SPLIT_SCHEMES`."""
    if "window_parts" in windows.meta.extra:
        return "windows"
    scheme = windows.meta.extra.get("split_scheme", "subjects")
    if scheme not in SPLIT_SCHEMES:
        raise CrosslError(f"{windows.meta.name}: unknown split_scheme {scheme!r}; use one of {', '.join(SPLIT_SCHEMES)}")
    return str(scheme)


def split_description(windows: WindowSet) -> str:
    """One line on how ``windows`` are split (``crossl data info``)."""
    scheme = split_scheme(windows)
    if scheme == "leave-one-subject-out":
        return f"leave-one-subject-out over {np.unique(windows.subjects).size} subjects (--fold K picks the test subject)"
    if scheme == "windows":
        return "stored per window (the release's own train/test files)"
    if scheme == "within-subject":
        shares = WITHIN_SUBJECT_SHARES
        return (f"within subjects: each subject's windows of a class in time order, the last {shares['test']:.0%} "
                f"test, the {shares['val']:.0%} before them val")
    named = windows.meta.extra.get("default_split")
    if isinstance(named, Mapping):
        return "by subject: " + ", ".join(f"{part} {list(named.get(part, []))}" for part in SPLIT_NAMES)
    return "by subject, drawn at random (seeded)"


def with_val_subjects(subjects: np.ndarray, split: Split, val_subjects: Sequence[int]) -> Split:
    """``split`` with ``val_subjects`` as its validation part: they leave train, the split's own
    validation subjects join train, and test is unchanged.

    A study chooses on validation subjects only; a second validation fold out of the training
    subjects gives it more (and other) subjects to choose on without reading a test subject.
    """
    wanted = [int(s) for s in val_subjects]
    present = {int(s) for s in np.unique(subjects)}
    if len(set(wanted)) != len(wanted):
        raise CrosslError(f"split.val_subjects {wanted} lists a subject twice; list each subject once")
    for s in wanted:
        if s not in present:
            raise CrosslError(f"split.val_subjects: subject {s} is not in the data (its subjects: "
                              f"{sorted(present)}); list subjects of the training or validation part")
        if s in split.subjects["test"]:
            raise CrosslError(f"split.val_subjects: subject {s} is a test subject; validate on subjects of the "
                              f"training or validation part ({split.subjects['train'] + split.subjects['val']})")
    train = [s for s in split.subjects["train"] + split.subjects["val"] if s not in wanted]
    return split_by_subjects(subjects, {"train": train, "val": wanted, "test": split.subjects["test"]})


def default_split(windows: WindowSet, seed: int = 0, fold: int = 0, val_subjects: Sequence[int] = ()) -> Split:
    """The split the set's metadata names (module docstring), else a seeded subject split.

    ``fold`` picks the held-out subject under leave-one-subject-out; elsewhere it must be 0.
    ``val_subjects`` (subject-wise splits only): validate on these subjects instead
    (:func:`with_val_subjects`).
    """
    scheme = split_scheme(windows)
    if fold != 0 and scheme != "leave-one-subject-out":
        raise CrosslError(f"--fold {fold}: {windows.meta.name} is not split leave-one-subject-out (its split: "
                          f"{scheme}); drop --fold, or use a leave-one-subject-out preset such as pamap2-loso")
    if val_subjects:
        if scheme != "subjects":
            raise CrosslError(f"--val-subjects: {windows.meta.name} is not split by subject (its split: {scheme}); "
                              "drop --val-subjects")
        split = default_split(windows, seed)
        return with_val_subjects(windows.subjects, split, val_subjects).bound_to(windows)
    if scheme == "windows":
        runs: Any = windows.meta.extra["window_parts"]
        return window_parts_split(windows.subjects, runs).bound_to(windows)
    if scheme == "within-subject":
        return within_subject_split(windows.subjects, windows.labels, overlap_gap(windows)).bound_to(windows)
    if scheme == "leave-one-subject-out":
        return leave_one_subject_out(windows.subjects, fold).bound_to(windows)
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
