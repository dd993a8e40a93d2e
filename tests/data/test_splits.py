"""Splits (subject-wise, within-subject, leave-one-subject-out, stored per window), nested label
fractions, and train-only channel normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from crossl.data.container import DatasetMeta, WindowSet
from crossl.data.splits import (
    Split,
    default_split,
    fit_channel_stats,
    leave_one_subject_out,
    nested_label_subsets,
    normalize_arrays,
    overlap_gap,
    random_subject_split,
    split_by_subjects,
    split_kind,
    window_parts_split,
    with_val_subjects,
    within_subject_split,
)
from crossl.errors import CrosslError

# --- subject splits --------------------------------------------------------------------------


def _subjects(num_subjects: int = 10, per_subject: int = 7) -> np.ndarray:
    return np.repeat(np.arange(1, num_subjects + 1), per_subject)


def _set(subjects: np.ndarray, labels: np.ndarray, **extra: object) -> WindowSet:
    n = len(subjects)
    meta = DatasetMeta(name="toy", modality_names=("a",), channel_names={"a": ("x",)}, sampling_rates={"a": 10.0},
                       class_names=("c0", "c1"), extra=dict(extra))
    return WindowSet({"a": np.zeros((n, 4, 1), np.float32)}, np.ones((n, 1), bool), labels, subjects, meta)


def test_within_subject_split_cuts_each_subject_and_class_in_time():
    # two subjects x two classes x 20 windows, classes in blocks as in a protocol recording
    subjects = np.repeat([3, 5], 40)
    labels = np.tile(np.repeat([0, 1], 20), 2)
    split = within_subject_split(subjects, labels)
    assert split.subjects == {"train": [3, 5], "val": [3, 5], "test": [3, 5]}
    for subject in (3, 5):
        for label in (0, 1):
            rows = np.flatnonzero((subjects == subject) & (labels == label))
            train, val, test = (np.intersect1d(rows, part) for part in (split.train, split.val, split.test))
            assert (len(train), len(val), len(test)) == (14, 2, 4)
            assert train.max() < val.min() and val.max() < test.min()  # later windows are val, then test


def test_within_subject_split_leaves_out_the_windows_that_overlap_a_cut():
    subjects, labels = np.zeros(20, np.int64), np.zeros(20, np.int64)
    split = within_subject_split(subjects, labels, gap=1)
    # 14 train, then 2 val of which the first overlaps train, then 4 test of which the first overlaps val
    assert split.train.tolist() == list(range(14))
    assert split.val.tolist() == [15] and split.test.tolist() == [17, 18, 19]


def test_overlap_gap_counts_the_windows_a_window_overlaps():
    s = np.zeros(4, np.int64)
    assert overlap_gap(_set(s, s, window_s=1000 / 700, stride_s=500 / 700)) == 1
    assert overlap_gap(_set(s, s, window_s=5.12, stride_s=1.28)) == 3
    assert overlap_gap(_set(s, s, window_s=30.0, stride_s=30.0)) == 0
    assert overlap_gap(_set(s, s)) == 0


def test_leave_one_subject_out_holds_out_the_folds_subject_and_the_next_for_validation():
    subjects = np.repeat([108, 101, 104, 102], 3)
    split = leave_one_subject_out(subjects, 3)
    assert split.subjects == {"train": [102, 104], "val": [101], "test": [108]}
    assert subjects[split.test].tolist() == [108] * 3
    with pytest.raises(CrosslError, match=r"fold 4 is out of range.*folds 0-3"):
        leave_one_subject_out(subjects, 4)


def test_window_parts_split_follows_the_stored_runs():
    subjects = np.repeat([2, 3], 3)
    split = window_parts_split(subjects, [["train", 2], ["test", 1], ["train", 1], ["test", 2]])
    assert split.train.tolist() == [0, 1, 3] and split.test.tolist() == [2, 4, 5] and split.val.size == 0
    with pytest.raises(CrosslError, match="covers 5 windows, the set has 6"):
        window_parts_split(subjects, [["train", 3], ["test", 2]])
    with pytest.raises(CrosslError, match="each entry is"):
        window_parts_split(subjects, [["training", 3], ["test", 3]])


def test_default_split_follows_the_sets_scheme_and_refuses_a_fold_elsewhere():
    subjects, labels = np.repeat([1, 2, 3], 10), np.zeros(30, np.int64)
    loso = default_split(_set(subjects, labels, split_scheme="leave-one-subject-out"), fold=1)
    assert loso.subjects["test"] == [2] and loso.data is not None
    within = default_split(_set(subjects, labels, split_scheme="within-subject"))
    assert within.subjects["test"] == [1, 2, 3]
    stored = default_split(_set(subjects, labels, window_parts=[["train", 20], ["test", 10]]))
    assert stored.test.tolist() == list(range(20, 30))
    with pytest.raises(CrosslError, match="--fold 1: toy is not split leave-one-subject-out"):
        default_split(_set(subjects, labels, default_split={"train": [1], "val": [2], "test": [3]}), fold=1)
    with pytest.raises(CrosslError, match="unknown split_scheme 'by-day'"):
        default_split(_set(subjects, labels, split_scheme="by-day"))


def test_val_subjects_move_from_train_to_val_and_the_old_val_subjects_to_train():
    subjects = _subjects(8)
    named = split_by_subjects(subjects, {"train": [1, 2, 3, 4, 5], "val": [6], "test": [7, 8]})
    moved = with_val_subjects(subjects, named, [4, 5])
    assert moved.subjects == {"train": [1, 2, 3, 6], "val": [4, 5], "test": [7, 8]}
    assert np.array_equal(moved.test, named.test)
    assert np.array_equal(np.sort(np.concatenate([moved.train, moved.val])),
                          np.sort(np.concatenate([named.train, named.val])))


def test_val_subjects_refuse_a_test_subject_an_unknown_one_and_a_repeat():
    subjects = _subjects(8)
    named = split_by_subjects(subjects, {"train": [1, 2, 3, 4, 5], "val": [6], "test": [7, 8]})
    with pytest.raises(CrosslError, match="subject 7 is a test subject"):
        with_val_subjects(subjects, named, [4, 7])
    with pytest.raises(CrosslError, match="subject 12 is not in the data"):
        with_val_subjects(subjects, named, [12])
    with pytest.raises(CrosslError, match="lists a subject twice"):
        with_val_subjects(subjects, named, [4, 4])


def test_default_split_takes_val_subjects_on_a_subject_split_only():
    subjects, labels = np.repeat([1, 2, 3, 4], 10), np.zeros(40, np.int64)
    named = _set(subjects, labels, default_split={"train": [1, 2], "val": [3], "test": [4]})
    split = default_split(named, val_subjects=[2])
    assert split.subjects == {"train": [1, 3], "val": [2], "test": [4]} and split.data is not None
    with pytest.raises(CrosslError, match="--val-subjects: toy is not split by subject"):
        default_split(_set(subjects, labels, split_scheme="within-subject"), val_subjects=[2])


def test_split_kind_says_when_parts_share_subjects():
    assert split_kind({"train": [1, 2], "val": [3], "test": [4]}) == "by subject"
    assert split_kind({"train": [1, 2], "val": [], "test": [2]}).startswith("within subjects")


def test_split_by_subjects_parts_are_disjoint_and_cover_listed_subjects():
    subjects = _subjects()
    assignment = {"train": [1, 2, 3, 4, 5], "val": [6, 7], "test": [8, 9]}  # subject 10 unlisted
    split = split_by_subjects(subjects, assignment)
    for name, subs in assignment.items():
        part = split.part(name)
        assert set(subjects[part]) == set(subs)
        assert np.array_equal(part, np.flatnonzero(np.isin(subjects, subs)))
    all_idx = np.concatenate([split.train, split.val, split.test])
    assert len(set(all_idx.tolist())) == len(all_idx)
    assert set(all_idx.tolist()) == set(np.flatnonzero(subjects <= 9).tolist())
    assert split.subjects == {"train": [1, 2, 3, 4, 5], "val": [6, 7], "test": [8, 9]}


def test_split_by_subjects_subject_in_two_parts_raises():
    with pytest.raises(CrosslError, match="subject 3 is in both"):
        split_by_subjects(_subjects(), {"train": [1, 2, 3], "val": [], "test": [3, 4]})


def test_split_by_subjects_empty_test_part_raises():
    with pytest.raises(CrosslError, match="'test' split holds no windows"):
        split_by_subjects(_subjects(), {"train": [1, 2], "test": [99]})


def test_split_json_round_trip():
    split = split_by_subjects(_subjects(), {"train": [1, 2], "val": [3], "test": [4]})
    back = Split.from_json(split.to_json())
    for name in ("train", "val", "test"):
        assert np.array_equal(back.part(name), split.part(name))
    assert back.subjects == split.subjects


@pytest.mark.parametrize("num_subjects", [3, 4, 10, 30])
def test_random_subject_split_is_subject_disjoint_and_covers_every_window(num_subjects):
    subjects = _subjects(num_subjects, 5)
    split = random_subject_split(subjects, seed=3)
    parts = [set(subjects[split.part(n)].tolist()) for n in ("train", "val", "test")]
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
    assert all(parts[i] for i in (0, 2))
    covered = np.sort(np.concatenate([split.train, split.val, split.test]))
    assert np.array_equal(covered, np.arange(len(subjects)))


def test_random_subject_split_is_seeded():
    subjects = _subjects(20, 3)
    a = random_subject_split(subjects, seed=5)
    b = random_subject_split(subjects, seed=5)
    c = random_subject_split(subjects, seed=6)
    assert a.subjects == b.subjects
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert a.subjects != c.subjects


def test_random_subject_split_proportions():
    split = random_subject_split(_subjects(20, 2), val_fraction=0.15, test_fraction=0.2, seed=0)
    assert (len(split.subjects["train"]), len(split.subjects["val"]), len(split.subjects["test"])) == (13, 3, 4)


def test_random_subject_split_needs_three_subjects():
    with pytest.raises(CrosslError, match="at least 3 subjects"):
        random_subject_split(_subjects(2, 4))


# --- nested label subsets --------------------------------------------------------------------


def _labels_and_pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2000 windows over 4 imbalanced classes plus unlabeled ones; the pool is a subset of them."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([-1, 0, 1, 2, 3], size=2000, p=[0.1, 0.4, 0.3, 0.15, 0.05])
    pool = np.sort(rng.choice(2000, size=1500, replace=False))
    return labels, pool


FRACTIONS = (0.01, 0.05, 0.1)


def test_nested_label_subsets_are_nested():
    labels, pool = _labels_and_pool()
    subsets = nested_label_subsets(labels, pool, FRACTIONS, num_classes=4, seed=0)
    assert set(subsets) == set(FRACTIONS)
    assert set(subsets[0.01]) < set(subsets[0.05]) < set(subsets[0.1])


def test_nested_label_subsets_are_stratified():
    labels, pool = _labels_and_pool()
    pool_labels = labels[pool]
    pool_props = np.bincount(pool_labels[pool_labels >= 0], minlength=4) / (pool_labels >= 0).sum()
    subsets = nested_label_subsets(labels, pool, (0.1, 0.5), num_classes=4, seed=0)
    for f, idx in subsets.items():
        props = np.bincount(labels[idx], minlength=4) / len(idx)
        assert np.allclose(props, pool_props, atol=0.02), f
        assert len(idx) == pytest.approx(f * (pool_labels >= 0).sum(), abs=4)


def test_nested_label_subsets_hold_every_class():
    labels, pool = _labels_and_pool()
    subsets = nested_label_subsets(labels, pool, (0.005,), num_classes=4, seed=0)
    assert set(labels[subsets[0.005]].tolist()) == {0, 1, 2, 3}


def test_nested_label_subsets_same_seed_same_subsets():
    labels, pool = _labels_and_pool()
    a = nested_label_subsets(labels, pool, FRACTIONS, num_classes=4, seed=7)
    b = nested_label_subsets(labels, pool, FRACTIONS, num_classes=4, seed=7)
    assert all(np.array_equal(a[f], b[f]) for f in FRACTIONS)


def test_nested_label_subsets_different_seed_different_subsets():
    labels, pool = _labels_and_pool()
    a = nested_label_subsets(labels, pool, FRACTIONS, num_classes=4, seed=7)
    b = nested_label_subsets(labels, pool, FRACTIONS, num_classes=4, seed=8)
    assert not np.array_equal(a[0.1], b[0.1])


def test_nested_label_subsets_only_labeled_pool_indices():
    labels, pool = _labels_and_pool()
    subsets = nested_label_subsets(labels, pool, (0.01, 0.5, 1.0), num_classes=4, seed=1)
    for idx in subsets.values():
        assert set(idx.tolist()) <= set(pool.tolist())
        assert (labels[idx] >= 0).all()
        assert np.array_equal(idx, np.unique(idx))  # sorted, no duplicates


def test_nested_label_subsets_fraction_one_is_every_labeled_pool_window():
    labels, pool = _labels_and_pool()
    subsets = nested_label_subsets(labels, pool, (1.0,), num_classes=4, seed=1)
    assert np.array_equal(subsets[1.0], pool[labels[pool] >= 0])


def test_nested_label_subsets_class_missing_from_pool_raises():
    labels, pool = _labels_and_pool()
    pool = pool[labels[pool] != 2]
    with pytest.raises(CrosslError, match=r"class\(es\) \[2\]"):
        nested_label_subsets(labels, pool, FRACTIONS, num_classes=4, seed=0)


def test_nested_label_subsets_fraction_too_small_for_every_class_raises():
    labels, pool = _labels_and_pool()
    with pytest.raises(CrosslError, match="fewer than the 4 classes"):
        nested_label_subsets(labels, pool, (0.001,), num_classes=4, seed=0)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_nested_label_subsets_fraction_outside_unit_interval_raises(fraction):
    labels, pool = _labels_and_pool()
    with pytest.raises(CrosslError, match="outside"):
        nested_label_subsets(labels, pool, (fraction,), num_classes=4, seed=0)


# --- channel normalisation -------------------------------------------------------------------


def _windows_for_stats() -> WindowSet:
    rng = np.random.default_rng(0)
    n = 40
    acc = (rng.normal(size=(n, 16, 3)) * [1.0, 5.0, 0.1] + [3.0, -2.0, 10.0]).astype(np.float32)
    ecg = (rng.normal(size=(n, 30, 1)) * 4.0 + 7.0).astype(np.float32)
    presence = np.ones((n, 2), dtype=bool)
    presence[[1, 5, 9], 1] = False
    ecg[~presence[:, 1]] = 0.0
    return WindowSet.from_arrays({"acc": acc, "ecg": ecg}, presence=presence, subjects=np.arange(n) // 4)


def test_normalize_arrays_gives_zero_mean_unit_std_on_training_windows():
    ws = _windows_for_stats()
    train = np.arange(0, 24)
    out = normalize_arrays(ws.modalities, ws.presence, fit_channel_stats(ws, train))
    for i, m in enumerate(ws.modality_names):
        rows = train[ws.presence[train, i]]
        values = out[m][rows].astype(np.float64).reshape(-1, out[m].shape[2])
        assert np.allclose(values.mean(axis=0), 0.0, atol=1e-5)
        assert np.allclose(values.std(axis=0), 1.0, atol=1e-5)


def test_channel_stats_use_only_training_windows():
    ws = _windows_for_stats()
    train = np.arange(0, 24)
    stats = fit_channel_stats(ws, train)
    changed = {m: a.copy() for m, a in ws.modalities.items()}
    for a in changed.values():
        a[24:] = a[24:] * 100.0 + 50.0
    stats_changed = fit_channel_stats(ws.with_modalities(changed), train)
    for m in ws.modality_names:
        assert np.array_equal(stats.mean[m], stats_changed.mean[m])
        assert np.array_equal(stats.std[m], stats_changed.std[m])


def test_channel_stats_match_direct_computation_excluding_absent_windows():
    ws = _windows_for_stats()
    train = np.arange(0, 24)
    stats = fit_channel_stats(ws, train)
    ecg_rows = [i for i in train if ws.presence[i, 1]]
    ecg = ws.modalities["ecg"][ecg_rows].astype(np.float64).reshape(-1, 1)
    assert np.allclose(stats.mean["ecg"], ecg.mean(axis=0), rtol=1e-6)
    assert np.allclose(stats.std["ecg"], ecg.std(axis=0), rtol=1e-6)
    assert stats.mean["acc"].shape == (3,) and stats.std["acc"].dtype == np.float32


def test_normalize_arrays_keeps_absent_modalities_zero():
    ws = _windows_for_stats()
    out = normalize_arrays(ws.modalities, ws.presence, fit_channel_stats(ws, np.arange(24)))
    assert np.all(out["ecg"][[1, 5, 9]] == 0.0)
    assert out["ecg"].dtype == np.float32


def test_constant_channel_keeps_unit_std():
    ws = _windows_for_stats()
    acc = ws.modalities["acc"].copy()
    acc[:, :, 2] = 4.0
    stats = fit_channel_stats(ws.with_modalities({"acc": acc, "ecg": ws.modalities["ecg"]}), np.arange(24))
    assert stats.std["acc"][2] == 1.0
    assert stats.mean["acc"][2] == pytest.approx(4.0)


def test_channel_stats_modality_absent_from_training_raises():
    ws = _windows_for_stats()
    with pytest.raises(CrosslError, match="modality 'ecg' is absent from every training window"):
        fit_channel_stats(ws, np.array([1, 5, 9]))


def test_channel_stats_streamed_in_small_chunks_match_one_pass_in_float64(monkeypatch):
    rng = np.random.default_rng(1)
    # A large offset: a naive sum-of-squares merge would lose the variance to cancellation.
    acc = (rng.normal(size=(50, 16, 3)) * [1.0, 5.0, 0.1] + 1e4).astype(np.float32)
    ws = WindowSet.from_arrays({"acc": acc})
    train = np.arange(3, 47)
    monkeypatch.setattr("crossl.data.container.CHUNK_BYTES", 3 * acc[0].nbytes)  # 1-2 windows a chunk
    stats = fit_channel_stats(ws, train)
    values = acc[train].astype(np.float64).reshape(-1, 3)
    np.testing.assert_allclose(stats.mean["acc"], values.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(stats.std["acc"], values.std(axis=0), rtol=1e-5)
