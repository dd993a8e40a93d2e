"""WindowBatches: batches read from (memory-mapped) arrays equal those of the whole set normalised in memory."""

from __future__ import annotations

import numpy as np
import torch
from conftest import synthetic_arrays

from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import fit_channel_stats, normalize_arrays
from crossl.training import TensorBatches, batch_loader


def _saved_and_loaded(tmp_path) -> WindowSet:
    arrays = synthetic_arrays(n=60, seed=5)
    presence = np.ones((60, 2), dtype=bool)
    presence[[3, 17, 40], 1] = False
    windows = WindowSet.from_arrays(arrays, labels=np.arange(60) % 3, subjects=np.arange(60) // 6, presence=presence)
    windows.save(tmp_path / "set")
    return WindowSet.load(tmp_path / "set", mmap=True)


def test_memory_mapped_batches_equal_in_memory_batches_in_the_same_order(tmp_path) -> None:
    windows = _saved_and_loaded(tmp_path)
    assert isinstance(windows.modalities["acc"], np.memmap)
    rows = np.arange(5, 55, dtype=np.int64)
    stats = fit_channel_stats(windows, rows)
    # The in-memory path: normalise the whole subset at once, then index tensors per batch.
    subset = windows.subset(rows)
    whole = normalize_arrays(subset.modalities, subset.presence, stats)
    in_memory = TensorBatches({"inputs": {m: torch.from_numpy(a) for m, a in whole.items()},
                               "presence": torch.from_numpy(subset.presence),
                               "labels": torch.from_numpy(subset.labels)})
    streamed = WindowBatches(windows, stats, rows)
    pairs = zip(batch_loader(in_memory, 16, shuffle=True, seed=3, num_batches=7),
                batch_loader(streamed, 16, shuffle=True, seed=3, num_batches=7), strict=True)
    for expected, got in pairs:
        for m in windows.modality_names:
            assert torch.equal(expected["inputs"][m], got["inputs"][m])
        assert torch.equal(expected["presence"], got["presence"])
        assert torch.equal(expected["labels"], got["labels"])


def test_batch_rows_follow_the_requested_order_not_the_stored_one(tmp_path) -> None:
    windows = _saved_and_loaded(tmp_path)
    stats = fit_channel_stats(windows, np.arange(60))
    batches = WindowBatches(windows, stats)
    backwards = batches[torch.tensor([9, 2, 7])]
    one_by_one = np.concatenate([batches[torch.tensor([i])]["inputs"]["acc"].numpy() for i in (9, 2, 7)])
    assert np.array_equal(backwards["inputs"]["acc"].numpy(), one_by_one)
    assert backwards["labels"].tolist() == [0, 2, 1]
