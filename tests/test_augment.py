"""Input-space augmentations: each transform's defining property, purity, determinism, batch helpers."""

from __future__ import annotations

import pytest
import torch

from crossl.augment import (
    AUGMENTATIONS,
    augment_batch,
    augment_views,
    channel_dropout,
    check_augmentations,
    jitter,
    permutation,
    rotation,
    scaling,
    time_warp,
)
from crossl.errors import CrosslError

ALL = list(AUGMENTATIONS)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _windows(shape: tuple[int, int, int], seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=_gen(1000 + seed), dtype=dtype)


def _recover_matrices(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares R per window from y[b, t] = R_b x[b, t]; returns (R (B, 3, 3), max residual)."""
    rt = torch.linalg.lstsq(x.double(), y.double()).solution  # (B, 3, 3) = R^T
    residual = (x.double() @ rt - y.double()).abs().max()
    return rt.transpose(1, 2), residual


def test_jitter_noise_has_requested_std_and_zero_mean():
    x = _windows((64, 256, 4))
    for sigma in (0.05, 0.3):
        noise = jitter(x, _gen(0), sigma=sigma) - x
        assert noise.std().item() == pytest.approx(sigma, rel=0.02)
        assert abs(noise.mean().item()) < 0.02 * sigma  # the mean's std is sigma / 256 here


def test_scaling_ratio_is_constant_along_time_per_window_channel():
    x = torch.rand((32, 50, 3), generator=_gen(1)) + 1.0  # away from zero so ratios are well defined
    ratio = scaling(x, _gen(0)) / x
    assert torch.allclose(ratio, ratio[:, :1, :].expand_as(ratio), atol=1e-5)
    # Different (window, channel) pairs get different factors.
    assert ratio[:, 0, :].unique().numel() == 32 * 3


def test_scaling_factors_have_mean_one_and_requested_std():
    x = torch.ones((4000, 2, 3))
    factors = scaling(x, _gen(0), sigma=0.2)[:, 0, :]
    assert factors.mean().item() == pytest.approx(1.0, abs=0.01)
    assert factors.std().item() == pytest.approx(0.2, rel=0.03)


def test_rotation_preserves_norms_and_is_one_proper_rotation_per_window():
    x = _windows((16, 30, 3))
    y = rotation(x, _gen(0))
    assert torch.allclose(y.norm(dim=2), x.norm(dim=2), atol=1e-5)
    rot, residual = _recover_matrices(x, y)
    assert residual < 1e-4  # one matrix explains every time step of the window
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(16, dtype=torch.float64), atol=1e-5)
    # Windows get different rotations.
    assert (rot[1:] - rot[:1]).abs().amax(dim=(1, 2)).min() > 1e-2


def test_rotation_uses_the_same_matrix_for_every_channel_triple():
    x = _windows((8, 20, 6))
    y = rotation(x, _gen(0))
    rot_a, res_a = _recover_matrices(x[..., :3], y[..., :3])
    rot_b, res_b = _recover_matrices(x[..., 3:], y[..., 3:])
    assert res_a < 1e-4 and res_b < 1e-4
    assert torch.allclose(rot_a, rot_b, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_rotation_rejects_channels_not_in_triples(channels):
    with pytest.raises(CrosslError, match="groups of 3"):
        rotation(_windows((4, 10, channels)), _gen(0))


def test_permutation_reorders_whole_segments():
    b, t, s = 32, 40, 4
    x = _windows((b, t, 2))
    y = permutation(x, _gen(0), segments=s)
    xs, ys = x.reshape(b, s, t // s, 2), y.reshape(b, s, t // s, 2)
    # match[b, i, j]: output segment i equals input segment j.
    match = (ys[:, :, None] == xs[:, None, :]).all(dim=-1).all(dim=-1)
    assert (match.sum(dim=2) == 1).all()  # every output segment is exactly one input segment
    assert (match.sum(dim=1) == 1).all()  # and every input segment is used once
    identity = torch.eye(s, dtype=torch.bool).expand(b, s, s)
    assert (match != identity).any(dim=(1, 2)).sum() > b // 2


def test_permutation_with_remainder_moves_contiguous_runs_of_the_original_steps():
    b, t, s = 64, 42, 4  # pieces of 10, 10, 10 and 12
    steps = torch.arange(t, dtype=torch.float32).expand(b, t)[:, :, None].contiguous()
    y = permutation(steps, _gen(0), segments=s)[:, :, 0]
    assert (y.sort(dim=1).values == steps[:, :, 0]).all()  # every step exactly once
    breaks = (y.diff(dim=1) != 1).sum(dim=1)
    assert (breaks <= s - 1).all()  # at most s contiguous runs
    assert (breaks > 0).any()


def test_time_warp_with_sigma_zero_is_identity():
    x = _windows((8, 64, 3))
    assert torch.allclose(time_warp(x, _gen(0), sigma=0.0), x, atol=1e-5)


def test_time_warp_keeps_endpoints_and_changes_the_signal():
    t = torch.linspace(0, 4 * torch.pi, 100)
    x = torch.stack([torch.sin(t), torch.cos(t)], dim=1).expand(16, 100, 2).contiguous()
    y = time_warp(x, _gen(0))
    assert torch.allclose(y[:, 0], x[:, 0], atol=1e-5)
    assert torch.allclose(y[:, -1], x[:, -1], atol=1e-5)
    assert ((y - x).abs().amax(dim=(1, 2)) > 0.05).all()  # every window is warped
    assert (y - y[:1]).abs().amax() > 0.05  # and not all in the same way


def test_channel_dropout_zeroes_whole_channels_at_rate_p():
    x = _windows((2000, 10, 4)) + 5.0  # no exact zeros in the input
    p = 0.3
    y = channel_dropout(x, _gen(0), p=p)
    dropped = (y == 0).all(dim=1)  # (B, C)
    kept = (y == x).all(dim=1)
    assert (dropped ^ kept).all()  # each (window, channel) is either zeroed whole or untouched
    assert dropped.float().mean().item() == pytest.approx(p, abs=0.02)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ALL)
def test_transform_preserves_shape_dtype_and_input(name, dtype):
    x = _windows((6, 33, 6), dtype=dtype)
    before = x.clone()
    y = AUGMENTATIONS[name](x, _gen(0))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(x, before)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_output_different_seed_different_output(name):
    x = _windows((16, 40, 3))
    kwargs = {"p": 0.5} if name == "channel_dropout" else {}  # enough drops that two seeds surely differ
    a = AUGMENTATIONS[name](x, _gen(7), **kwargs)
    assert torch.equal(a, AUGMENTATIONS[name](x, _gen(7), **kwargs))
    assert not torch.equal(a, AUGMENTATIONS[name](x, _gen(8), **kwargs))


def test_augment_batch_handles_modalities_of_different_shapes():
    inputs = {"acc": _windows((8, 40, 3), seed=1), "ecg": _windows((8, 80, 1), seed=2)}
    out = augment_batch(inputs, ALL, _gen(0))
    assert set(out) == {"acc", "ecg"}
    assert out["acc"].shape == (8, 40, 3) and out["ecg"].shape == (8, 80, 1)
    assert not torch.equal(out["acc"], inputs["acc"]) and not torch.equal(out["ecg"], inputs["ecg"])
    assert torch.equal(out["acc"], augment_batch(inputs, ALL, _gen(0))["acc"])


def test_augment_batch_rotation_leaves_single_channel_modality_unchanged():
    inputs = {"acc": _windows((8, 40, 3), seed=1), "ecg": _windows((8, 80, 1), seed=2)}
    out = augment_batch(inputs, ["rotation"], _gen(0))
    assert torch.equal(out["ecg"], inputs["ecg"]) and out["ecg"] is not inputs["ecg"]
    assert not torch.allclose(out["acc"], inputs["acc"])
    assert torch.allclose(out["acc"].norm(dim=2), inputs["acc"].norm(dim=2), atol=1e-5)


def test_augment_views_are_two_different_views():
    inputs = {"acc": _windows((8, 40, 3))}
    a, b = augment_views(inputs, ["jitter", "scaling"], _gen(0))
    assert a["acc"].shape == b["acc"].shape == (8, 40, 3)
    assert not torch.equal(a["acc"], b["acc"])


def test_check_augmentations_rejects_unknown_name_and_lists_choices():
    with pytest.raises(CrosslError, match=r"unknown augmentation 'flip'.*time_warp"):
        check_augmentations(["jitter", "flip"], {"acc": 3})


def test_check_augmentations_rejects_empty_list():
    with pytest.raises(CrosslError, match="no augmentations"):
        check_augmentations([], {"acc": 3})


def test_check_augmentations_rejects_rotation_without_triaxial_modality():
    with pytest.raises(CrosslError, match=r"ecg: 1.*eda: 1.*drop rotation"):
        check_augmentations(["jitter", "rotation"], {"ecg": 1, "eda": 1})
    check_augmentations(["rotation"], {"ecg": 1, "acc": 6})  # one tri-axial modality is enough


@pytest.mark.parametrize("length", [1, 2, 3])
def test_windows_shorter_than_the_segment_or_knot_count_keep_their_shape(length):
    x = _windows((4, length, 3))
    out = augment_batch({"acc": x}, ALL, _gen(0))["acc"]
    assert out.shape == (4, length, 3)
    assert torch.isfinite(out).all()
    assert torch.equal(permutation(x[:, :1], _gen(0)), x[:, :1])  # a single step has nothing to shuffle


def test_large_batch_runs_through_all_transforms_batched():
    x = _windows((256, 512, 3))
    out = augment_batch({"acc": x}, ALL, _gen(0))["acc"]
    assert out.shape == (256, 512, 3)
    assert torch.isfinite(out).all()
