"""VICReg loss against an independent float64 re-derivation with plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossl.errors import CrosslError
from crossl.losses import VICRegLoss, vicreg_loss, vicreg_terms


def _reference_terms(a: np.ndarray, b: np.ndarray, eps: float = 1e-4) -> tuple[float, float, float]:
    """Invariance, variance and covariance terms computed element by element in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    n, d = a.shape

    invariance = 0.0
    for i in range(n):
        for j in range(d):
            invariance += (a[i, j] - b[i, j]) ** 2
    invariance /= n * d

    def variance(z: np.ndarray) -> float:
        total = 0.0
        for j in range(d):
            mean = sum(z[i, j] for i in range(n)) / n
            var = sum((z[i, j] - mean) ** 2 for i in range(n)) / (n - 1)
            total += max(0.0, 1.0 - math.sqrt(var + eps))
        return total / d

    def covariance(z: np.ndarray) -> float:
        means = [sum(z[i, j] for i in range(n)) / n for j in range(d)]
        total = 0.0
        for p in range(d):
            for q in range(d):
                if p == q:
                    continue
                c = sum((z[i, p] - means[p]) * (z[i, q] - means[q]) for i in range(n)) / (n - 1)
                total += c * c
        return total / d

    return (
        invariance,
        0.5 * (variance(a) + variance(b)),
        covariance(a) + covariance(b),
    )


def _random_views(seed: int, n: int, d: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)) * scale
    b = a + 0.3 * rng.normal(size=(n, d)) * scale
    return a, b


CASES = [(0, 2, 3, 1.0), (1, 5, 4, 0.3), (2, 16, 8, 2.0), (3, 9, 1, 0.5), (4, 32, 6, 0.05)]


@pytest.mark.parametrize(("seed", "n", "d", "scale"), CASES)
def test_vicreg_loss_matches_direct_derivation_with_default_weights(seed, n, d, scale):
    a, b = _random_views(seed, n, d, scale)
    inv, var, cov = _reference_terms(a, b)
    expected = 10.0 * inv + 10.0 * var + 100.0 * cov
    got = vicreg_loss(torch.from_numpy(a), torch.from_numpy(b))
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("seed", "n", "d", "scale"), CASES)
def test_vicreg_terms_match_direct_derivation(seed, n, d, scale):
    a, b = _random_views(seed, n, d, scale)
    expected = _reference_terms(a, b)
    terms = vicreg_terms(torch.from_numpy(a), torch.from_numpy(b))
    got = (terms.invariance.item(), terms.variance.item(), terms.covariance.item())
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_vicreg_loss_float32_inputs_close_to_float64_reference():
    a, b = _random_views(7, 12, 5, 1.0)
    inv, var, cov = _reference_terms(a, b)
    expected = 10.0 * inv + 10.0 * var + 100.0 * cov
    got = vicreg_loss(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_vicreg_loss_custom_weights_and_eps():
    a, b = _random_views(11, 6, 4, 0.2)
    inv, var, cov = _reference_terms(a, b, eps=1e-2)
    expected = 2.5 * inv + 0.5 * var + 7.0 * cov
    got = vicreg_loss(torch.from_numpy(a), torch.from_numpy(b), sim_weight=2.5, var_weight=0.5, cov_weight=7.0, eps=1e-2)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_vicreg_identical_views_have_zero_invariance():
    a, _ = _random_views(5, 8, 4, 1.0)
    t = torch.from_numpy(a)
    terms = vicreg_terms(t, t.clone())
    assert terms.invariance.item() == 0.0


def test_vicreg_batch_of_one_raises():
    z = torch.randn(1, 4)
    with pytest.raises(CrosslError, match="batch of at least 2"):
        vicreg_loss(z, z)


@pytest.mark.parametrize(("shape_a", "shape_b"), [((4, 3), (4, 5)), ((4, 3), (5, 3)), ((4,), (4,)), ((2, 4, 3), (2, 4, 3))])
def test_vicreg_mismatched_or_non_2d_shapes_raise(shape_a, shape_b):
    with pytest.raises(CrosslError, match="one shape"):
        vicreg_loss(torch.randn(*shape_a), torch.randn(*shape_b))


def test_vicreg_module_with_gather_equals_function_without_process_group():
    assert not torch.distributed.is_initialized()
    a, b = _random_views(3, 10, 6, 1.0)
    za, zb = torch.from_numpy(a), torch.from_numpy(b)
    module = VICRegLoss(sim_weight=3.0, var_weight=4.0, cov_weight=5.0, gather_distributed=True)
    expected = vicreg_loss(za, zb, sim_weight=3.0, var_weight=4.0, cov_weight=5.0)
    assert module(za, zb).item() == pytest.approx(expected.item(), rel=1e-12)


def test_vicreg_module_default_weights_equal_function():
    a, b = _random_views(4, 7, 3, 1.0)
    za, zb = torch.from_numpy(a), torch.from_numpy(b)
    assert VICRegLoss()(za, zb).item() == pytest.approx(vicreg_loss(za, zb).item(), rel=1e-12)


def test_vicreg_gradients_flow_and_are_finite():
    torch.manual_seed(0)
    za = torch.randn(8, 5, requires_grad=True)
    zb = torch.randn(8, 5, requires_grad=True)
    loss = VICRegLoss(gather_distributed=True)(za, zb)
    loss.backward()
    for g in (za.grad, zb.grad):
        assert g is not None
        assert torch.isfinite(g).all()
        assert g.abs().sum() > 0
