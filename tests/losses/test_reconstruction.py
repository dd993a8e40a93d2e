"""Masked reconstruction loss against a float64 loop re-derivation, and the patch mask's guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossl.errors import CrosslError
from crossl.losses import MaskedReconstructionLoss, draw_patch_mask, masked_reconstruction_loss


def _reference(p: np.ndarray, t: np.ndarray, masked: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Weighted mean of squared errors over masked (window, step, channel) entries, one by one."""
    b, steps, c = p.shape
    w = np.ones(b) if weight is None else weight
    total = count = 0.0
    for i in range(b):
        for s in range(steps):
            if not masked[i, s]:
                continue
            for ch in range(c):
                total += w[i] * (float(p[i, s, ch]) - float(t[i, s, ch])) ** 2
                count += w[i]
    return total / count


def _problem(seed: int, b: int, steps: int, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    p, t = rng.normal(size=(b, steps, c)), rng.normal(size=(b, steps, c))
    masked = rng.random((b, steps)) < 0.4
    masked[0, 0] = True
    return torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(masked)


CASES = [(0, 2, 5, 1), (1, 4, 12, 3), (2, 8, 30, 2), (3, 1, 7, 4)]


@pytest.mark.parametrize(("seed", "b", "steps", "c"), CASES)
def test_reconstruction_matches_direct_derivation(seed, b, steps, c):
    p, t, m = _problem(seed, b, steps, c)
    got = masked_reconstruction_loss(p, t, m)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(_reference(p.numpy(), t.numpy(), m.numpy()), rel=1e-12)


@pytest.mark.parametrize(("seed", "b", "steps", "c"), CASES)
def test_reconstruction_with_weights_matches_direct_derivation(seed, b, steps, c):
    p, t, m = _problem(seed, b, steps, c)
    weight = np.linspace(2.0, 0.0, b)  # includes a zero weight when b > 1
    got = masked_reconstruction_loss(p, t, m, torch.from_numpy(weight))
    assert got.item() == pytest.approx(_reference(p.numpy(), t.numpy(), m.numpy(), weight), rel=1e-12)


def test_reconstruction_zero_weight_window_is_as_if_absent():
    p, t, m = _problem(4, 6, 10, 2)
    weight = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    keep = torch.tensor([0, 1, 3, 4, 5])
    expected = masked_reconstruction_loss(p[keep], t[keep], m[keep])
    assert masked_reconstruction_loss(p, t, m, weight).item() == pytest.approx(expected.item(), rel=1e-12)


def test_reconstruction_ignores_unmasked_steps():
    p, t, m = _problem(5, 4, 9, 3)
    changed = t.clone()
    changed[~m] += 100.0
    assert masked_reconstruction_loss(p, changed, m).item() == pytest.approx(masked_reconstruction_loss(p, t, m).item(), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_reconstruction_nothing_masked_is_a_zero_that_keeps_the_graph(weighted):
    p = torch.randn(3, 5, 2, requires_grad=True)
    t = torch.randn(3, 5, 2)
    m = torch.zeros(3, 5, dtype=torch.bool) if not weighted else torch.ones(3, 5, dtype=torch.bool)
    weight = torch.zeros(3) if weighted else None
    loss = masked_reconstruction_loss(p, t, m, weight)
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert p.grad is not None and (p.grad == 0).all()


def test_reconstruction_gradients_flow_only_to_masked_steps():
    p, t, m = _problem(6, 4, 8, 2)
    p = p.float().requires_grad_()
    MaskedReconstructionLoss(gather_distributed=True)(p, t.float(), m).backward()
    assert torch.isfinite(p.grad).all()
    assert (p.grad[m] != 0).any(dim=-1).all()
    assert (p.grad[~m] == 0).all()


def test_reconstruction_module_equals_function_without_process_group():
    assert not torch.distributed.is_initialized()
    p, t, m = _problem(7, 5, 11, 3)
    weight = torch.tensor([1.0, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    got = MaskedReconstructionLoss(gather_distributed=True)(p, t, m, weight)
    assert got.item() == pytest.approx(masked_reconstruction_loss(p, t, m, weight).item(), rel=1e-12)


def test_reconstruction_bf16_inputs_give_float32():
    p, t, m = _problem(8, 4, 10, 2)
    got = masked_reconstruction_loss(p.bfloat16(), t.bfloat16(), m)
    assert got.dtype == torch.float32
    expected = _reference(p.bfloat16().double().numpy(), t.bfloat16().double().numpy(), m.numpy())
    assert got.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("p_shape", "t_shape", "m_shape", "match"),
    [
        ((2, 5, 3), (2, 5, 2), (2, 5), "one shape"),
        ((2, 5), (2, 5), (2, 5), "one shape"),
        ((2, 5, 3), (2, 5, 3), (2, 4), "bool \\(batch, time\\)"),
        ((2, 5, 3), (2, 5, 3), (2, 5, 3), "bool \\(batch, time\\)"),
    ],
)
def test_reconstruction_bad_shapes_raise(p_shape, t_shape, m_shape, match):
    with pytest.raises(CrosslError, match=match):
        masked_reconstruction_loss(torch.randn(*p_shape), torch.randn(*t_shape), torch.ones(m_shape, dtype=torch.bool))


def test_reconstruction_non_bool_mask_or_bad_weight_raise():
    p, t = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    with pytest.raises(CrosslError, match="must be bool"):
        masked_reconstruction_loss(p, t, torch.ones(2, 5))
    with pytest.raises(CrosslError, match="weight must have shape"):
        masked_reconstruction_loss(p, t, torch.ones(2, 5, dtype=torch.bool), torch.ones(2, 1))


def _patch_mask(seed: int, *args: float) -> torch.Tensor:
    return draw_patch_mask(*args, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_patch_mask_respects_ratio_on_average(ratio):
    mask = _patch_mask(0, 4000, 100, 10, ratio)
    assert mask.shape == (4000, 100) and mask.dtype == torch.bool
    # The per-window fix-ups move the fraction by at most 0.1 * (0.75**10) here.
    assert mask.float().mean().item() == pytest.approx(ratio, abs=0.01)


@pytest.mark.parametrize(("time", "patch"), [(23, 5), (20, 4), (7, 1), (9, 8)])
def test_patch_mask_hides_whole_patches(time, patch):
    mask = _patch_mask(1, 200, time, patch, 0.5)
    for start in range(0, time, patch):
        block = mask[:, start : start + patch]
        assert (block == block[:, :1]).all()


@pytest.mark.parametrize("ratio", [0.02, 0.98])
def test_patch_mask_keeps_and_hides_at_least_one_patch_per_window(ratio):
    mask = _patch_mask(2, 3000, 10, 5, ratio)  # two patches: without the fix-up most windows would fail
    assert mask.any(dim=1).all()
    assert (~mask).any(dim=1).all()


def test_patch_mask_with_one_patch_hides_whole_windows_or_nothing():
    mask = _patch_mask(3, 500, 6, 10, 0.5)
    assert (mask.all(dim=1) | ~mask.any(dim=1)).all()
    assert 100 < mask[:, 0].sum().item() < 400


def test_patch_mask_is_deterministic_per_seed():
    assert torch.equal(_patch_mask(4, 32, 50, 5, 0.4), _patch_mask(4, 32, 50, 5, 0.4))
    assert not torch.equal(_patch_mask(4, 32, 50, 5, 0.4), _patch_mask(5, 32, 50, 5, 0.4))


def test_patch_mask_lands_on_the_requested_device():
    mask = draw_patch_mask(3, 8, 2, 0.5, torch.Generator().manual_seed(0), device="meta")
    assert mask.device.type == "meta"


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.2, 1.5])
def test_patch_mask_ratio_outside_open_unit_interval_raises(ratio):
    with pytest.raises(CrosslError, match="ratio"):
        _patch_mask(0, 2, 10, 2, ratio)


def test_patch_mask_patch_below_one_raises():
    with pytest.raises(CrosslError, match="patch length"):
        _patch_mask(0, 2, 10, 0, 0.5)
