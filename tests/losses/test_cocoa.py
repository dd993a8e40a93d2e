"""COCOA against an independent float64 re-derivation with plain loops, and its special cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossl.errors import CrosslError
from crossl.losses import (
    CocoaLoss,
    cocoa_loss,
    cocoa_release_negative_weight,
    cocoa_terms,
    negative_term,
    positive_term,
)


def _unit(v: np.ndarray) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def _dot(u: list[float], v: list[float]) -> float:
    return sum(x * y for x, y in zip(u, v))


def _reference_terms(q: np.ndarray, temperature: float, presence: np.ndarray | None = None) -> tuple[float, float]:
    """Positive and negative terms pair by pair in float64, skipping absent embeddings."""
    b, m, _ = q.shape
    here = np.ones((b, m), dtype=bool) if presence is None else presence
    unit = [[_unit(np.asarray(q[w, i], dtype=np.float64)) for i in range(m)] for w in range(b)]
    window_means = []
    for w in range(b):
        pairs = [
            math.exp((1.0 - _dot(unit[w][i], unit[w][j])) / temperature)
            for i in range(m) for j in range(m) if i != j and here[w, i] and here[w, j]
        ]
        if pairs:
            window_means.append(sum(pairs) / len(pairs))
    modality_means = []
    for i in range(m):
        pairs = [
            math.exp(_dot(unit[x][i], unit[y][i]) / temperature)
            for x in range(b) for y in range(b) if x != y and here[x, i] and here[y, i]
        ]
        if pairs:
            modality_means.append(sum(pairs) / len(pairs))
    return sum(window_means) / len(window_means), sum(modality_means) / len(modality_means)


def _random_q(seed: int, b: int, m: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(b, 1, d))
    return shared + 0.7 * rng.normal(size=(b, m, d))


CASES = [(0, 2, 2, 3, 0.1), (1, 5, 3, 4, 0.5), (2, 8, 4, 8, 0.1), (3, 6, 2, 1, 1.0), (4, 3, 5, 6, 0.2)]


@pytest.mark.parametrize(("seed", "b", "m", "d", "temperature"), CASES)
def test_cocoa_terms_match_direct_derivation(seed, b, m, d, temperature):
    q = _random_q(seed, b, m, d)
    terms = cocoa_terms(torch.from_numpy(q), temperature)
    assert terms.positive.dtype == torch.float64
    got = (terms.positive.item(), terms.negative.item())
    assert got == pytest.approx(_reference_terms(q, temperature), rel=1e-10)


@pytest.mark.parametrize(("seed", "b", "m", "d", "temperature"), CASES)
def test_cocoa_loss_matches_direct_derivation(seed, b, m, d, temperature):
    q = _random_q(seed, b, m, d)
    positive, negative = _reference_terms(q, temperature)
    got = cocoa_loss(torch.from_numpy(q), temperature, negative_weight=0.3)
    assert got.item() == pytest.approx(positive + 0.3 * negative, rel=1e-10)


def test_cocoa_default_loss_uses_tau_one_tenth_and_half_negative_weight():
    q = _random_q(9, 6, 2, 4)
    positive, negative = _reference_terms(q, 0.1)
    assert cocoa_loss(torch.from_numpy(q)).item() == pytest.approx(positive + 0.5 * negative, rel=1e-10)


def test_cocoa_all_modalities_equal_give_positive_exactly_one():
    q = torch.randn(5, 1, 7, dtype=torch.float64).expand(5, 3, 7) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)[None, :, None]
    assert cocoa_terms(q).positive.item() == pytest.approx(1.0, abs=1e-12)


def test_cocoa_orthogonal_windows_give_negative_exactly_one():
    q = torch.eye(4, dtype=torch.float64)[:, None, :].expand(4, 2, 4)
    assert cocoa_terms(q, 0.3).negative.item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("b", "m", "d"), [(4, 2, 3), (5, 3, 2), (3, 4, 5)])
def test_cocoa_release_weight_reproduces_the_authors_sum_form(b, m, d):
    """The release's sum form (positive mean keeps i == j; weights 1/32 and 3.9e-3) is an affine map of ours."""
    q = _random_q(b * m, b, m, d)
    tau, scale, lambd = 0.1, 1 / 32, 3.9e-3
    unit = [[_unit(q[w, i]) for i in range(m)] for w in range(b)]
    release_positive = sum(
        sum(math.exp((1.0 - _dot(unit[w][i], unit[w][j])) / tau) for i in range(m) for j in range(m)) / m**2 for w in range(b)
    )
    release_negative = sum(
        sum(math.exp(_dot(unit[x][i], unit[y][i]) / tau) for y in range(b) if y != x) / (b - 1) for i in range(m) for x in range(b)
    )
    release = scale * release_positive + lambd * release_negative
    ours = cocoa_loss(torch.from_numpy(q), tau, cocoa_release_negative_weight(m)).item()
    assert release == pytest.approx(scale * b / m + scale * b * (m - 1) / m * ours, rel=1e-10)
    assert cocoa_release_negative_weight(2) == pytest.approx(0.4992)


def test_cocoa_shares_against_whole_batch_average_to_the_whole():
    """The arithmetic CocoaLoss uses under DDP, without processes: each share's windows against all windows."""
    q = torch.nn.functional.normalize(torch.from_numpy(_random_q(7, 12, 3, 4)), dim=2)
    shares = [negative_term(q[s : s + 3], q, offset=s, temperature=0.2) for s in (0, 3, 6, 9)]
    whole = cocoa_terms(q, 0.2).negative
    assert torch.stack(shares).mean().item() == pytest.approx(whole.item(), rel=1e-12)


def _presence(seed: int, b: int, m: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    here = rng.random((b, m)) < 0.7
    here[0, :] = False  # a window with nothing, one with a single modality: both leave the positive term
    here[1, :] = [True] + [False] * (m - 1)
    here[2:4, :] = True
    return here


@pytest.mark.parametrize(("seed", "b", "m", "d", "temperature"), CASES[1:])
def test_cocoa_terms_with_absent_modalities_match_direct_derivation(seed, b, m, d, temperature):
    q, here = _random_q(seed, b, m, d), _presence(seed, b, m)
    terms = cocoa_terms(torch.from_numpy(q), temperature, torch.from_numpy(here))
    got = (terms.positive.item(), terms.negative.item())
    assert got == pytest.approx(_reference_terms(q, temperature, here), rel=1e-10)


def test_cocoa_all_present_equals_no_presence():
    q = torch.from_numpy(_random_q(10, 6, 3, 4))
    here = torch.ones(6, 3, dtype=torch.bool)
    assert cocoa_loss(q, presence=here).item() == pytest.approx(cocoa_loss(q).item(), rel=1e-12)


def test_cocoa_absent_embeddings_neither_count_nor_get_gradients():
    here = torch.from_numpy(_presence(11, 6, 3))
    q = torch.from_numpy(_random_q(11, 6, 3, 4)).requires_grad_()
    loss = CocoaLoss(temperature=0.05)(q, here)
    changed = q.detach().clone()
    changed[~here] = 1e6 * torch.randn(int((~here).sum()), 4, dtype=torch.float64)
    assert CocoaLoss(temperature=0.05)(changed, here).item() == pytest.approx(loss.item(), rel=1e-12)
    loss.backward()
    assert torch.isfinite(q.grad).all()
    assert (q.grad[~here] == 0).all()
    assert (q.grad[here].abs().sum(dim=1) > 0).all()


def test_cocoa_nothing_to_contrast_is_a_zero_that_keeps_the_graph():
    q = torch.randn(4, 2, 3, requires_grad=True)
    here = torch.tensor([[True, False], [False, False], [False, False], [False, True]])
    terms = cocoa_terms(q, presence=here)
    assert terms.positive.item() == 0.0 and terms.negative.item() == 0.0
    (terms.positive + terms.negative).backward()
    assert (q.grad == 0).all()


def test_cocoa_shares_with_absences_average_to_the_whole():
    q = torch.nn.functional.normalize(torch.from_numpy(_random_q(12, 12, 3, 4)), dim=2)
    here = torch.from_numpy(_presence(12, 12, 3))
    whole = cocoa_terms(q, 0.2, here)
    rows = [slice(s, s + 4) for s in (0, 4, 8)]
    positive = torch.stack([positive_term(q[r], 0.2, here[r], here) for r in rows]).mean()
    negative = torch.stack([negative_term(q[r], q, r.start, 0.2, here[r], here) for r in rows]).mean()
    assert positive.item() == pytest.approx(whole.positive.item(), rel=1e-12)
    assert negative.item() == pytest.approx(whole.negative.item(), rel=1e-12)


def test_cocoa_presence_of_wrong_shape_raises():
    with pytest.raises(CrosslError, match="presence must have shape"):
        cocoa_loss(torch.randn(4, 2, 3), presence=torch.ones(4, 3, dtype=torch.bool))


def test_cocoa_module_terms_and_weighted_equal_functions_without_process_group():
    assert not torch.distributed.is_initialized()
    q = torch.from_numpy(_random_q(3, 6, 3, 5))
    module = CocoaLoss(temperature=0.4, negative_weight=2.0, gather_distributed=True)
    expected = cocoa_terms(q, 0.4)
    got = module.terms(q)
    assert (got.positive.item(), got.negative.item()) == pytest.approx((expected.positive.item(), expected.negative.item()), rel=1e-12)
    assert module(q).item() == pytest.approx(cocoa_loss(q, 0.4, 2.0).item(), rel=1e-12)
    assert module.weighted(got).item() == pytest.approx(module(q).item(), rel=1e-12)
    assert CocoaLoss()(q).item() == pytest.approx(cocoa_loss(q).item(), rel=1e-12)


def test_cocoa_bf16_inputs_give_float32():
    q = torch.from_numpy(_random_q(8, 6, 2, 4)).bfloat16()
    terms = CocoaLoss().terms(q)
    assert terms.positive.dtype == terms.negative.dtype == torch.float32
    assert (terms.positive.item(), terms.negative.item()) == pytest.approx(_reference_terms(q.double().numpy(), 0.1), rel=1e-4)


def test_cocoa_gradients_flow_and_are_finite():
    torch.manual_seed(0)
    q = torch.randn(8, 3, 5, requires_grad=True)
    CocoaLoss(gather_distributed=True)(q).backward()
    assert q.grad is not None
    assert torch.isfinite(q.grad).all()
    assert q.grad.abs().sum() > 0


def test_cocoa_one_modality_raises():
    with pytest.raises(CrosslError, match="COCOA needs at least 2 modalities"):
        cocoa_loss(torch.randn(4, 1, 3))


def test_cocoa_batch_of_one_raises():
    with pytest.raises(CrosslError, match="at least 2 windows"):
        CocoaLoss()(torch.randn(1, 2, 3))


@pytest.mark.parametrize("shape", [(4, 3), (4,), (2, 3, 4, 5)])
def test_cocoa_non_3d_shapes_raise(shape):
    with pytest.raises(CrosslError, match="batch, modalities, dim"):
        cocoa_terms(torch.randn(*shape))


def test_cocoa_non_positive_temperature_raises():
    with pytest.raises(CrosslError, match="temperature"):
        cocoa_loss(torch.randn(4, 2, 3), temperature=0.0)
