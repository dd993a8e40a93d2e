"""Cutting recordings into windows: starts, per-window labels, and the windows themselves."""

from __future__ import annotations

import numpy as np
import pytest

from crossl.data.windowing import cut_windows, window_labels, window_starts


@pytest.mark.parametrize(
    ("length", "window", "stride", "expected"),
    [
        (10, 4, 2, [0, 2, 4, 6]),
        (10, 4, 3, [0, 3, 6]),
        (10, 4, 4, [0, 4]),
        (8, 4, 4, [0, 4]),
        (4, 4, 1, [0]),
        (10, 10, 5, [0]),
        (7, 3, 1, [0, 1, 2, 3, 4]),
    ],
)
def test_window_starts_are_full_windows_stride_apart(length, window, stride, expected):
    starts = window_starts(length, window, stride)
    assert starts.tolist() == expected
    assert starts.dtype == np.int64


def test_window_starts_of_recording_shorter_than_window_is_empty():
    starts = window_starts(3, 4, 1)
    assert starts.shape == (0,) and starts.dtype == np.int64


def test_window_labels_uniform_windows_keep_label_mixed_give_minus_one():
    labels = np.array([1, 1, 1, 1, 2, 2, 2, 2, -1, -1])
    starts = np.array([0, 2, 4, 6])
    assert window_labels(labels, starts, 4).tolist() == [1, -1, 2, -1]


def test_window_labels_all_unlabeled_window_is_minus_one():
    labels = np.array([-1, -1, -1, 3, 3, 3])
    assert window_labels(labels, np.array([0, 3]), 3).tolist() == [-1, 3]


def test_window_labels_of_no_windows_is_empty_int64():
    out = window_labels(np.array([1, 2, 3]), np.zeros(0, dtype=np.int64), 4)
    assert out.shape == (0,) and out.dtype == np.int64


def test_cut_windows_copies_the_right_samples():
    signal = np.arange(20, dtype=np.float64).reshape(10, 2)  # row t = [2t, 2t+1]
    windows = cut_windows(signal, np.array([0, 3, 6]), 4)
    assert windows.shape == (3, 4, 2)
    assert windows.dtype == np.float32
    assert windows[0].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert windows[1].tolist() == [[6, 7], [8, 9], [10, 11], [12, 13]]
    assert windows[2, -1].tolist() == [18, 19]


def test_cut_windows_with_no_starts_is_empty():
    windows = cut_windows(np.ones((5, 3)), np.zeros(0, dtype=np.int64), 4)
    assert windows.shape == (0, 4, 3)


def test_cut_windows_matches_window_starts_end_to_end():
    signal = np.random.default_rng(0).normal(size=(50, 3))
    starts = window_starts(len(signal), 16, 8)
    windows = cut_windows(signal, starts, 16)
    for k, s in enumerate(starts):
        assert np.array_equal(windows[k], signal[s : s + 16].astype(np.float32))
