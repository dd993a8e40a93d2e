"""The pipeline's pretraining pool: the training split, or every window of the training subjects."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic_arrays

from crossl import pipeline
from crossl.data import datasets
from crossl.data.container import WindowSet
from crossl.data.splits import split_by_subjects
from crossl.errors import CrosslError

SUBJECTS = {"train": [0, 1, 2, 3], "val": [4], "test": [5]}


def _with_pool(n: int = 60) -> WindowSet:
    """Every third window without a class, the others labeled 0..2; subjects 0..5 in turn."""
    labels = np.arange(n) % 3
    labels[::3] = -1
    return WindowSet.from_arrays(synthetic_arrays(n=n), labels=labels, subjects=np.arange(n) % 6,
                                 class_names=["a", "b", "c"], name="pooled")


def test_without_the_option_pretraining_reads_the_training_split(tiny_windows: WindowSet) -> None:
    split = split_by_subjects(tiny_windows.subjects, SUBJECTS)
    pool, train = pipeline.pretraining_pool(tiny_windows, split, unlabeled=False)
    assert pool is tiny_windows and np.array_equal(train, split.train)


def test_the_unlabeled_pool_adds_only_training_subjects_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    every = _with_pool()
    labeled = every.subset(np.flatnonzero(every.labels >= 0))
    monkeypatch.setitem(datasets.WITH_UNLABELED, "pooled", lambda quiet=False: every)
    split = split_by_subjects(labeled.subjects, SUBJECTS)
    pool, train = pipeline.pretraining_pool(labeled, split, unlabeled=True)
    assert pool is every
    assert set(pool.subjects[train].tolist()) == set(SUBJECTS["train"])
    assert train.size == int(np.isin(every.subjects, SUBJECTS["train"]).sum()) > split.train.size
    assert (pool.labels[train] < 0).sum() == train.size - split.train.size


def test_a_dataset_without_an_unlabeled_pool_is_refused(tiny_windows: WindowSet) -> None:
    split = split_by_subjects(tiny_windows.subjects, SUBJECTS)
    with pytest.raises(CrosslError, match="no separate unlabeled pool"):
        pipeline.pretraining_pool(tiny_windows, split, unlabeled=True)
