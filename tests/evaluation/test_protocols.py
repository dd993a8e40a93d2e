"""Frozen features are computed batch by batch from the windows, whatever the batch size."""

from __future__ import annotations

import numpy as np
import torch
from conftest import small_model_configs, synthetic_arrays

from crossl.config import ModelConfig
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import fit_channel_stats
from crossl.evaluation.protocols import compute_features
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
