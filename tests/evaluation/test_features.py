"""Frozen features are computed batch by batch from the windows, whatever the batch size."""

from __future__ import annotations

import numpy as np
import torch
from conftest import small_model_configs, synthetic_arrays

from crossl.config import ModelConfig
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import fit_channel_stats
from crossl.evaluation.features import EMBED_TIME_STEPS, compute_features, embedding_batch_size
from crossl.models.backbone import CrossModalBackbone


def test_features_in_small_batches_equal_features_in_one_batch() -> None:
    windows = WindowSet.from_arrays(synthetic_arrays(n=23))
    model_config: ModelConfig = small_model_configs()[0]
    model_config.modality_channels = {"acc": 3, "ecg": 1}
    torch.manual_seed(0)
    backbone = CrossModalBackbone(model_config)
    batches = WindowBatches(windows, fit_channel_stats(windows, np.arange(23)), np.arange(2, 21))
    small = compute_features(backbone, batches, "aggregator", batch_size=4)
    whole = compute_features(backbone, batches, "aggregator", batch_size=1024)
    assert small.shape == (19, model_config.out_dim)
    torch.testing.assert_close(small, whole, rtol=1e-5, atol=1e-6)


def _batches_of_length(time_steps: int) -> WindowBatches:
    arrays = {"acc": np.zeros((4, 8, 3), np.float32), "eeg": np.ones((4, time_steps, 1), np.float32)}
    windows = WindowSet.from_arrays(arrays)
    return WindowBatches(windows, fit_channel_stats(windows, np.arange(4)))


def test_embedding_batch_shrinks_with_the_longest_modality() -> None:
    assert embedding_batch_size(_batches_of_length(16)) == 1024  # capped
    assert embedding_batch_size(_batches_of_length(128)) == EMBED_TIME_STEPS // 128
    assert embedding_batch_size(_batches_of_length(1000)) == EMBED_TIME_STEPS // 1000
    assert embedding_batch_size(_batches_of_length(100_000)) == 16  # floored
