"""Cross-modal aggregators: output shapes, LayerNorm, key-padding for masked modalities."""

from __future__ import annotations

import itertools

import pytest
import torch

from crossl.errors import CrosslError
from crossl.models.aggregators import AttentionAggregator, MLPAggregator, build_aggregator


def test_mlp_aggregator_output_shape():
    agg = MLPAggregator(num_modalities=3, dim=96)
    out = agg(torch.randn(5, 3, 96), torch.ones(5, 3, dtype=torch.bool))
    assert out.shape == (5, 32)


def test_mlp_aggregator_output_is_layer_normalised():
    torch.manual_seed(0)
    agg = MLPAggregator(num_modalities=2, dim=16)
    out = agg(torch.randn(8, 2, 16) * 5, torch.ones(8, 2, dtype=torch.bool))
    assert isinstance(agg.net[-1], torch.nn.LayerNorm)
    assert torch.allclose(out.mean(dim=1), torch.zeros(8), atol=1e-5)
    assert torch.allclose(out.var(dim=1, unbiased=False), torch.ones(8), atol=1e-2)


def test_mlp_aggregator_layer_sizes():
    agg = MLPAggregator(num_modalities=2, dim=96)
    linears = [m for m in agg.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(192, 64), (64, 32), (32, 32)]


def test_attention_aggregator_output_shape():
    agg = AttentionAggregator(num_modalities=3, dim=96).eval()
    with torch.no_grad():
        out = agg(torch.randn(4, 3, 96), torch.ones(4, 3, dtype=torch.bool))
    assert out.shape == (4, 32)


@pytest.mark.parametrize("grad", [False, True])
def test_attention_aggregator_handles_every_non_empty_subset(grad):
    m = 3
    subsets = [s for r in range(1, m + 1) for s in itertools.combinations(range(m), r)]
    kept = torch.zeros(len(subsets), m, dtype=torch.bool)
    for i, s in enumerate(subsets):
        kept[i, list(s)] = True
    agg = AttentionAggregator(num_modalities=m, dim=16).eval()
    with torch.set_grad_enabled(grad):
        out = agg(torch.randn(len(subsets), m, 16), kept)
    assert out.shape == (7, 32)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("grad", [False, True])
def test_attention_aggregator_ignores_masked_modality_values(grad):
    torch.manual_seed(1)
    agg = AttentionAggregator(num_modalities=3, dim=16).eval()
    q = torch.randn(6, 3, 16)
    kept = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    q2 = q.clone()
    noise = torch.randn(6, 3, 16) * 100
    q2[~kept] = noise[~kept]
    with torch.set_grad_enabled(grad):
        a, b = agg(q, kept), agg(q2, kept)
    assert torch.allclose(a, b, atol=1e-5)


def test_attention_aggregator_depends_on_kept_modality_values():
    torch.manual_seed(2)
    agg = AttentionAggregator(num_modalities=3, dim=16).eval()
    q = torch.randn(2, 3, 16)
    kept = torch.tensor([[True, True, False], [True, True, False]])
    q2 = q.clone()
    q2[:, 1] += 3.0
    with torch.no_grad():
        assert not torch.allclose(agg(q, kept), agg(q2, kept))


def test_attention_aggregator_rejects_dim_not_divisible_by_heads():
    with pytest.raises(CrosslError, match="not divisible by 4 heads"):
        AttentionAggregator(num_modalities=2, dim=18)


@pytest.mark.parametrize(("name", "cls"), [("mlp", MLPAggregator), ("attention", AttentionAggregator)])
def test_build_aggregator_by_name(name, cls):
    agg = build_aggregator(name, num_modalities=2, dim=16, out_dim=8)
    assert isinstance(agg, cls)
    assert agg.out_dim == 8


def test_build_aggregator_unknown_name_raises():
    with pytest.raises(CrosslError, match="unknown aggregator 'gru'"):
        build_aggregator("gru", num_modalities=2, dim=16)
