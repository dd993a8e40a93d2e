"""Cutting continuous recordings into fixed-length windows."""

from __future__ import annotations

import numpy as np


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start indices of every full window of ``window`` samples, ``stride`` apart."""
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, stride, dtype=np.int64)


def window_labels(sample_labels: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """The label of each window when all its samples share one label, else -1.

    ``sample_labels``: (T,) ints; returns (len(starts),) ints.
    """
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    idx = starts[:, None] + np.arange(window)[None, :]
    labs = sample_labels[idx]
    uniform = (labs == labs[:, :1]).all(axis=1)
    return np.where(uniform, labs[:, 0], -1).astype(np.int64)


def cut_windows(signal: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(T, C) signal -> (len(starts), window, C) float32 windows."""
    idx = starts[:, None] + np.arange(window)[None, :]
    return signal[idx].astype(np.float32)
