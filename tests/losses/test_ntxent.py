"""NT-Xent against an independent float64 re-derivation with plain loops, and its closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossl.errors import CrosslError
from crossl.losses import NTXentLoss, nt_xent_against, nt_xent_loss


def _reference(a: np.ndarray, b: np.ndarray, temperature: float) -> float:
    """Cross-entropy of each of the 2N anchors, one by one, in float64."""
    views = [np.asarray(row, dtype=np.float64) for row in (*a, *b)]
    views = [row / math.sqrt(sum(x * x for x in row)) for row in views]
    n = len(a)
    total = 0.0
    for k, anchor in enumerate(views):
        positive = k + n if k < n else k - n
        scores = {j: sum(x * y for x, y in zip(anchor, other)) / temperature for j, other in enumerate(views) if j != k}
        denominator = sum(math.exp(s) for s in scores.values())
        total += -(scores[positive] - math.log(denominator))
    return total / (2 * n)


def _random_views(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    return a, a + 0.5 * rng.normal(size=(n, d))


CASES = [(0, 2, 3, 0.1), (1, 5, 4, 0.5), (2, 16, 8, 0.1), (3, 7, 2, 1.0), (4, 9, 16, 0.05)]


@pytest.mark.parametrize(("seed", "n", "d", "temperature"), CASES)
def test_nt_xent_matches_direct_derivation(seed, n, d, temperature):
    a, b = _random_views(seed, n, d)
    got = nt_xent_loss(torch.from_numpy(a), torch.from_numpy(b), temperature)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(_reference(a, b, temperature), rel=1e-10)


@pytest.mark.parametrize(("n", "temperature"), [(2, 0.1), (4, 0.5), (8, 1.0)])
def test_nt_xent_identical_orthogonal_views_have_closed_form(n, temperature):
    # Positive cosine 1, every one of the 2N - 2 negatives cosine 0.
    z = torch.eye(n, 2 * n, dtype=torch.float64) * 3.0
    expected = math.log(1.0 + (2 * n - 2) * math.exp(-1.0 / temperature))
    assert nt_xent_loss(z, z.clone(), temperature).item() == pytest.approx(expected, rel=1e-12)


def test_nt_xent_collapsed_embeddings_give_log_of_candidates():
    z = torch.ones(6, 4, dtype=torch.float64)
    assert nt_xent_loss(z, z, 0.2).item() == pytest.approx(math.log(11), rel=1e-12)


def test_nt_xent_is_invariant_to_embedding_scale():
    a, b = _random_views(5, 6, 4)
    za, zb = torch.from_numpy(a), torch.from_numpy(b)
    assert nt_xent_loss(7.0 * za, 0.1 * zb).item() == pytest.approx(nt_xent_loss(za, zb).item(), rel=1e-12)


def test_nt_xent_shares_against_whole_batch_average_to_the_whole():
    """The arithmetic NTXentLoss uses under DDP, without processes: each share's anchors against all rows."""
    a, b = _random_views(6, 12, 5)
    za = torch.nn.functional.normalize(torch.from_numpy(a), dim=1)
    zb = torch.nn.functional.normalize(torch.from_numpy(b), dim=1)
    shares = [nt_xent_against(za[s : s + 4], zb[s : s + 4], za, zb, offset=s, temperature=0.3) for s in (0, 4, 8)]
    assert torch.stack(shares).mean().item() == pytest.approx(nt_xent_loss(za, zb, 0.3).item(), rel=1e-12)


def test_nt_xent_module_with_gather_equals_function_without_process_group():
    assert not torch.distributed.is_initialized()
    a, b = _random_views(3, 10, 6)
    za, zb = torch.from_numpy(a), torch.from_numpy(b)
    got = NTXentLoss(temperature=0.2, gather_distributed=True)(za, zb)
    assert got.item() == pytest.approx(nt_xent_loss(za, zb, 0.2).item(), rel=1e-12)
    assert NTXentLoss()(za, zb).item() == pytest.approx(nt_xent_loss(za, zb).item(), rel=1e-12)


def test_nt_xent_bf16_inputs_give_float32():
    a, b = _random_views(8, 8, 4)
    za, zb = torch.from_numpy(a).bfloat16(), torch.from_numpy(b).bfloat16()
    got = NTXentLoss()(za, zb)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(_reference(za.double().numpy(), zb.double().numpy(), 0.1), rel=1e-5)


def test_nt_xent_gradients_flow_and_are_finite():
    torch.manual_seed(0)
    za = torch.randn(8, 5, requires_grad=True)
    zb = torch.randn(8, 5, requires_grad=True)
    NTXentLoss(gather_distributed=True)(za, zb).backward()
    for g in (za.grad, zb.grad):
        assert g is not None
        assert torch.isfinite(g).all()
        assert g.abs().sum() > 0


@pytest.mark.parametrize(("shape_a", "shape_b"), [((4, 3), (4, 5)), ((4, 3), (5, 3)), ((4,), (4,)), ((2, 4, 3), (2, 4, 3))])
def test_nt_xent_mismatched_or_non_2d_shapes_raise(shape_a, shape_b):
    with pytest.raises(CrosslError, match="one shape"):
        nt_xent_loss(torch.randn(*shape_a), torch.randn(*shape_b))


def test_nt_xent_batch_of_one_raises():
    z = torch.randn(1, 4)
    with pytest.raises(CrosslError, match="at least 2 windows"):
        NTXentLoss()(z, z)


@pytest.mark.parametrize("temperature", [0.0, -0.1])
def test_nt_xent_non_positive_temperature_raises(temperature):
    with pytest.raises(CrosslError, match="temperature"):
        nt_xent_loss(torch.randn(4, 3), torch.randn(4, 3), temperature)
