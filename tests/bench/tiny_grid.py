"""A small prepared dataset and a tiny grid on it: every bench test runs real cells in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import synthetic_arrays

from crossl.data.container import WindowSet

TINY_CONFIG = """\
config:
  model: {dim: 16, kernel_sizes: [5, 3, 3], out_dim: 8}
  pretrain: {epochs: 1, batch_size: 16}
  evaluation: {steps: 3, epochs: 0, batch_size: 16}
"""


def make_data(tmp_path: Path) -> Path:
    """120 windows of two modalities (acc 40x3, ecg 80x1), 3 classes, 10 subjects."""
    arrays = synthetic_arrays(n=120)
    windows = WindowSet.from_arrays(arrays, labels=np.arange(120) % 3, subjects=np.arange(120) % 10,
                                    class_names=["a", "b", "c"], name="tiny")
    return windows.save(tmp_path / "data")


def write_grid(directory: Path, body: str, name: str = "grid.yaml") -> Path:
    path = directory / name
    path.write_text(f"name: tiny\ndatasets: [{directory / 'data'}]\n{TINY_CONFIG}{body}", encoding="utf-8")
    return path
