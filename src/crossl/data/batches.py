"""Batches read from a window set's arrays, in memory or memory-mapped, normalised per batch.

Nothing here copies a whole set: each batch gathers its rows from the (possibly memory-mapped)
arrays, so pretraining and feature extraction run on prepared sets larger than RAM, with memory
bounded by a batch. Sets already in memory take the same path; gathering and normalising a batch
costs well under 1% of a training step (docs/performance.md, "Larger than memory").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from crossl.data.container import WindowSet
from crossl.data.splits import ChannelStats, normalize_arrays


class WindowBatches(Dataset):
    """The windows at ``indices`` of ``windows`` (all if None), normalised with ``stats``.

    An item is a whole batch: ``self[idx]`` with ``idx`` a ``(B,)`` tensor of positions into
    ``indices`` gives ``{"inputs": {m: (B, T_m, C_m) float32}, "presence": (B, M) bool,
    "labels": (B,) int64}``, rows in the order of ``idx``.
    """

    def __init__(self, windows: WindowSet, stats: ChannelStats, indices: np.ndarray | None = None) -> None:
        self.windows = windows
        self.stats = stats
        self.indices = np.arange(len(windows)) if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.indices.size)

    @property
    def labels(self) -> np.ndarray:
        """``(len(self),)`` labels of the selected windows."""
        return self.windows.labels[self.indices]

    def __getitem__(self, idx: torch.Tensor) -> dict[str, Any]:
        rows = self.indices[np.asarray(idx, dtype=np.int64)]
        # Reading a memory-mapped file in stored order faults its pages in forward order; the
        # batch is put back in the sampler's order afterwards, so batches do not depend on it.
        order = np.argsort(rows, kind="stable")
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        stored = rows[order]
        presence = self.windows.presence[rows]
        raw = {m: arr[stored][back] for m, arr in self.windows.modalities.items()}
        inputs = normalize_arrays(raw, presence, self.stats)
        return {
            "inputs": {m: torch.from_numpy(a) for m, a in inputs.items()},
            "presence": torch.from_numpy(presence),
            "labels": torch.from_numpy(self.windows.labels[rows]),
        }
