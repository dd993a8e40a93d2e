"""Latent masks: ratios, guarantees (absent masked, never all masked), determinism, apply_mask."""

from __future__ import annotations

import pytest
import torch

from crossl.errors import CrosslError
from crossl.masking import apply_mask, draw_keep_mask, drop_modalities, modality_kept


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _expected_masked_fraction(strategy: str, ratio: float, m: int, d: int) -> float:
    """Masked fraction including the rule that restores one whole modality row of an all-masked sample."""
    draws_per_sample = {"modality": m, "random": m * d, "feature": d}[strategy]
    return ratio - ratio**draws_per_sample / m


@pytest.mark.parametrize("strategy", ["modality", "random", "feature"])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_masked_fraction_is_close_to_ratio(strategy, ratio):
    b, m, d = 2000, 8, 16
    keep = draw_keep_mask((b, m, d), strategy, ratio, _gen(0))
    masked = 1.0 - keep.float().mean().item()
    assert masked == pytest.approx(_expected_masked_fraction(strategy, ratio, m, d), abs=0.02)
    assert masked == pytest.approx(ratio, abs=0.03)


@pytest.mark.parametrize(("strategy", "ratio"), [("none", 0.0), ("none", 0.9), ("modality", 0.0), ("random", 0.0), ("feature", 0.0)])
def test_none_strategy_or_zero_ratio_keeps_everything(strategy, ratio):
    keep = draw_keep_mask((16, 3, 8), strategy, ratio, _gen(1))
    assert keep.dtype == torch.bool
    assert keep.shape == (16, 3, 8)
    assert keep.all()


@pytest.mark.parametrize("strategy", ["modality", "random", "feature"])
@pytest.mark.parametrize("m", [2, 3])
def test_a_view_never_has_every_modality_masked(strategy, m):
    for seed in range(5):
        keep = draw_keep_mask((2000, m, 4), strategy, 0.9, _gen(seed))
        assert modality_kept(keep).any(dim=1).all()


@pytest.mark.parametrize("strategy", ["modality", "random", "feature"])
def test_never_all_masked_holds_with_absent_modalities(strategy):
    g = torch.Generator().manual_seed(3)
    presence = torch.rand((2000, 3), generator=g) < 0.5
    presence[~presence.any(dim=1), 0] = True  # every window has one modality
    keep = draw_keep_mask((2000, 3, 4), strategy, 0.9, _gen(4), presence=presence)
    kept = modality_kept(keep)
    assert kept.any(dim=1).all()
    assert not (kept & ~presence).any()


@pytest.mark.parametrize("strategy", ["modality", "random", "feature", "none"])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.9])
def test_absent_modalities_are_always_masked(strategy, ratio):
    g = torch.Generator().manual_seed(5)
    presence = torch.rand((500, 4), generator=g) < 0.6
    presence[~presence.any(dim=1), 2] = True
    keep = draw_keep_mask((500, 4, 6), strategy, ratio, _gen(6), presence=presence)
    assert not keep[~presence].any()


def test_feature_strategy_masks_same_latent_index_across_modalities():
    # ratio 0.5 and 32 dims: an all-masked sample (which would be restored) has probability 2**-32.
    keep = draw_keep_mask((500, 4, 32), "feature", 0.5, _gen(7))
    assert (keep == keep[:, :1, :]).all()
    assert not keep.all()


def test_modality_strategy_masks_whole_rows():
    keep = draw_keep_mask((500, 4, 32), "modality", 0.5, _gen(8))
    assert (keep == keep[:, :, :1]).all()
    assert not keep.all()


def test_random_strategy_masks_individual_entries():
    keep = draw_keep_mask((200, 4, 32), "random", 0.5, _gen(8))
    partial_rows = keep.any(dim=2) & ~keep.all(dim=2)
    assert partial_rows.any()


@pytest.mark.parametrize("strategy", ["modality", "random", "feature"])
def test_same_seed_gives_same_mask(strategy):
    presence = torch.ones((64, 3), dtype=torch.bool)
    presence[::3, 1] = False
    a = draw_keep_mask((64, 3, 8), strategy, 0.5, _gen(42), presence=presence)
    b = draw_keep_mask((64, 3, 8), strategy, 0.5, _gen(42), presence=presence)
    assert torch.equal(a, b)


@pytest.mark.parametrize("strategy", ["modality", "random", "feature"])
def test_different_seeds_give_different_masks(strategy):
    a = draw_keep_mask((64, 3, 8), strategy, 0.5, _gen(1))
    b = draw_keep_mask((64, 3, 8), strategy, 0.5, _gen(2))
    assert not torch.equal(a, b)


def test_unknown_strategy_raises():
    with pytest.raises(CrosslError, match="unknown masking strategy 'spatial'"):
        draw_keep_mask((2, 2, 2), "spatial", 0.5, _gen(0))


@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1])
def test_ratio_outside_unit_interval_raises(ratio):
    with pytest.raises(CrosslError, match="masking ratio"):
        draw_keep_mask((2, 2, 2), "modality", ratio, _gen(0))


def test_apply_mask_zeros_masked_entries():
    q = torch.arange(1.0, 13.0).reshape(1, 3, 4)
    keep = torch.tensor([[[True, False, True, False], [False] * 4, [True] * 4]])
    out = apply_mask(q, keep)
    assert torch.equal(out, torch.where(keep, q, torch.zeros_like(q)))
    assert out.dtype == q.dtype


def test_apply_mask_uses_token_for_masked_entries():
    q = torch.arange(1.0, 25.0).reshape(2, 3, 4)
    keep = torch.zeros((2, 3, 4), dtype=torch.bool)
    keep[0, 0] = True
    keep[1, :, 2] = True
    token = -torch.arange(1.0, 13.0).reshape(3, 4)
    out = apply_mask(q, keep, token)
    for b in range(2):
        for m in range(3):
            for d in range(4):
                expected = q[b, m, d] if keep[b, m, d] else token[m, d]
                assert out[b, m, d] == expected


def test_modality_kept_is_true_where_any_entry_kept():
    keep = torch.tensor([[[False, True], [False, False]]])
    assert torch.equal(modality_kept(keep), torch.tensor([[True, False]]))


def test_modality_dropout_hides_present_modalities_at_its_rate_and_keeps_one() -> None:
    presence = torch.tensor([[True, True, True], [True, False, True], [False, False, False]])
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([drop_modalities(presence, 0.5, generator) for _ in range(2000)])
    assert not (draws & ~presence).any()  # an absent modality never comes back
    assert (draws[:, :2].sum(dim=2) >= 1).all()  # windows with something present keep at least one
    kept = draws[:, 0].float().mean(dim=0)
    # 3 present: kept with 0.5, plus the restore when all three were hidden (1/8 of draws, 1/3 each)
    assert kept[0].item() == pytest.approx(0.5 + 0.125 / 3, abs=0.04)
