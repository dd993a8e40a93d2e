"""The backbone's downstream features: shapes per source, absent modalities have no influence."""

from __future__ import annotations

import pytest
import torch

from crossl.config import ModelConfig
from crossl.errors import CrosslError
from crossl.models.backbone import CrossModalBackbone

CHANNELS = {"acc": 3, "ecg": 1}
LENGTHS = {"acc": 32, "ecg": 80}


def _backbone(aggregator: str = "mlp", mask_token: bool = False) -> CrossModalBackbone:
    torch.manual_seed(0)
    config = ModelConfig(modality_channels=dict(CHANNELS), dim=16, kernel_sizes=(5, 3, 3), aggregator=aggregator,
                         out_dim=8, mask_token=mask_token)
    model = CrossModalBackbone(config).eval()
    if model.mask_token is not None:
        with torch.no_grad():
            model.mask_token.normal_()  # a non-zero token, so that "token" and "zero" differ
    return model


def _inputs(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, LENGTHS[m], c, generator=g) for m, c in CHANNELS.items()}


@pytest.mark.parametrize("aggregator", ["mlp", "attention"])
@pytest.mark.parametrize(("source", "width"), [("aggregator", 8), ("concat", 2 * 16)])
def test_features_shape_per_source(aggregator, source, width):
    model = _backbone(aggregator)
    presence = torch.ones(4, 2, dtype=torch.bool)
    with torch.no_grad():
        feats = model.features(_inputs(4), presence, source)
    assert feats.shape == (4, width)
    assert model.feature_dim(source) == width


@pytest.mark.parametrize("mask_token", [False, True])
@pytest.mark.parametrize("aggregator", ["mlp", "attention"])
@pytest.mark.parametrize("source", ["aggregator", "concat"])
def test_absent_modality_values_do_not_change_features(aggregator, source, mask_token):
    model = _backbone(aggregator, mask_token)
    presence = torch.tensor([[True, False], [False, True], [True, True]])
    a, b = _inputs(3, seed=1), _inputs(3, seed=1)
    b["ecg"][0] = torch.randn(LENGTHS["ecg"], 1) * 50  # ecg absent in window 0
    b["acc"][1] = torch.randn(LENGTHS["acc"], 3) * 50  # acc absent in window 1
    with torch.no_grad():
        fa, fb = model.features(a, presence, source), model.features(b, presence, source)
    assert torch.allclose(fa[:2], fb[:2], atol=1e-5)


@pytest.mark.parametrize("aggregator", ["mlp", "attention"])
def test_present_modality_values_change_features(aggregator):
    model = _backbone(aggregator)
    presence = torch.ones(2, 2, dtype=torch.bool)
    a, b = _inputs(2, seed=1), _inputs(2, seed=1)
    b["ecg"][0] += 5.0 * torch.randn(LENGTHS["ecg"], 1)
    with torch.no_grad():
        assert not torch.allclose(model.features(a, presence)[0], model.features(b, presence)[0])


def test_concat_features_zero_absent_slot_without_token():
    model = _backbone()
    presence = torch.tensor([[True, False]])
    with torch.no_grad():
        feats = model.features(_inputs(1), presence, "concat")
    assert torch.all(feats[0, 16:] == 0.0)
    assert feats[0, :16].abs().sum() > 0


def test_concat_features_use_mask_token_for_absent_slot():
    model = _backbone(mask_token=True)
    presence = torch.tensor([[True, False]])
    with torch.no_grad():
        feats = model.features(_inputs(1), presence, "concat")
    assert torch.allclose(feats[0, 16:], model.mask_token[1])


def test_aggregate_with_all_kept_equals_features():
    model = _backbone()
    inputs = _inputs(3)
    with torch.no_grad():
        q = model.embed(inputs)
        direct = model.aggregate(q, torch.ones_like(q, dtype=torch.bool))
        feats = model.features(inputs, torch.ones(3, 2, dtype=torch.bool))
    assert q.shape == (3, 2, 16)
    assert torch.allclose(direct, feats)


def test_unknown_feature_source_raises():
    model = _backbone()
    with torch.no_grad(), pytest.raises(CrosslError):
        model.features(_inputs(2), torch.ones(2, 2, dtype=torch.bool), "concatenate")
