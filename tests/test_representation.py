"""Spread and effective rank: known values on constructed embeddings."""

from __future__ import annotations

import pytest
import torch

from crossl.representation import effective_rank, embedding_spread, representation_stats


def test_effective_rank_counts_equally_used_directions() -> None:
    # 4 orthogonal directions used equally (centred): rank 4 of a 16-d space
    basis = torch.eye(16)[:4] * 3.0
    z = torch.cat([basis, -basis])
    assert effective_rank(z).item() == pytest.approx(4.0, rel=1e-5)


def test_effective_rank_is_one_on_a_line_and_zero_without_spread() -> None:
    line = torch.linspace(-1, 1, 50)[:, None] * torch.randn(1, 8)
    assert effective_rank(line).item() == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(torch.ones(10, 8)).item() == 0.0


def test_effective_rank_falls_when_one_direction_dominates() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(256, 8, generator=g)
    squashed = z * torch.tensor([10.0] + [0.1] * 7)
    assert effective_rank(squashed) < 2.0 < effective_rank(z)


def test_stats_report_the_representation_and_encoder_spread() -> None:
    g = torch.Generator().manual_seed(1)
    z, q = torch.randn(64, 32, generator=g) * 0.5, torch.randn(64, 3, 16, generator=g) * 2.0
    stats = representation_stats(z, q)
    assert stats["z_std"].item() == pytest.approx(0.5, rel=0.1)
    assert stats["q_std"].item() == pytest.approx(2.0, rel=0.1)
    assert embedding_spread(z) == stats["z_std"] and set(stats) == {"z_std", "z_rank", "q_std"}
