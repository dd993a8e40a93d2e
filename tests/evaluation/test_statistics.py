"""Bootstrap intervals and paired comparisons: checked against closed forms and their own definitions."""

from __future__ import annotations

import numpy as np
import pytest

from crossl.evaluation.statistics import bootstrap_means, paired_comparison, summarize_scores


def test_one_pretraining_is_the_ordinary_bootstrap_whose_spread_matches_the_standard_error() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.8, 0.05, size=40)
    means = bootstrap_means({0: values}, resamples=20_000)
    # The bootstrap distribution of the mean has the plug-in standard error std / sqrt(n).
    assert means.std() == pytest.approx(values.std() / np.sqrt(values.size), rel=0.05)
    assert means.mean() == pytest.approx(values.mean(), abs=1e-3)


def test_the_interval_covers_the_mean_and_narrows_with_more_seeds() -> None:
    rng = np.random.default_rng(1)
    few = summarize_scores({0: [0.7, 0.8, 0.9]})
    many = summarize_scores({0: rng.normal(0.8, 0.08, 300)})
    assert few.ci_low <= few.mean <= few.ci_high
    assert many.ci_high - many.ci_low < (few.ci_high - few.ci_low) / 3


def test_pretraining_draws_widen_the_interval_beyond_label_seeds_alone() -> None:
    """Scores that move with the pretraining: resampling pretrainings shows that spread, while
    treating all 9 scores as independent would understate it."""
    groups = {0: [0.70, 0.71, 0.70], 1: [0.80, 0.81, 0.80], 2: [0.90, 0.91, 0.90]}
    nested = summarize_scores(groups)
    flat = summarize_scores({0: [v for vs in groups.values() for v in vs]})
    assert nested.pretrainings == 3 and nested.n == 9
    assert nested.mean == pytest.approx(flat.mean)
    assert (nested.ci_high - nested.ci_low) > 1.3 * (flat.ci_high - flat.ci_low)


def test_identical_scores_give_a_point_interval() -> None:
    s = summarize_scores({0: [0.5, 0.5], 1: [0.5]})
    assert (s.mean, s.std, s.ci_low, s.ci_high) == (0.5, 0.0, 0.5, 0.5)


def test_resampling_is_seeded() -> None:
    groups = {0: [0.1, 0.5, 0.9], 1: [0.3, 0.4]}
    assert np.array_equal(bootstrap_means(groups, 500, seed=3), bootstrap_means(groups, 500, seed=3))
    assert not np.array_equal(bootstrap_means(groups, 500, seed=3), bootstrap_means(groups, 500, seed=4))


def test_paired_comparison_uses_only_shared_pairs_and_counts_wins() -> None:
    a = {(0, 0): 0.9, (0, 1): 0.8, (1, 0): 0.7, (2, 0): 0.5}
    b = {(0, 0): 0.85, (0, 1): 0.8, (1, 0): 0.75, (3, 0): 0.1}
    c = paired_comparison(a, b)
    assert c is not None
    assert (c.pairs, c.wins, c.losses, c.ties) == (3, 1, 1, 1)
    assert c.mean_diff == pytest.approx((0.05 + 0.0 - 0.05) / 3)
    assert paired_comparison(a, {(9, 9): 0.0}) is None


def test_a_consistent_gain_has_an_interval_above_zero_and_noise_one_around_it() -> None:
    rng = np.random.default_rng(2)
    keys = [(p, s) for p in range(3) for s in range(3)]
    base = {k: float(rng.normal(0.8, 0.05)) for k in keys}
    better = paired_comparison({k: v + 0.03 + float(rng.normal(0, 0.005)) for k, v in base.items()}, base)
    noise = paired_comparison({k: v + float(rng.normal(0, 0.02)) for k, v in base.items()}, base)
    assert better is not None and noise is not None
    assert better.ci_low > 0 and better.wins == 9
    assert noise.ci_low < 0 < noise.ci_high


def test_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        summarize_scores({0: [0.5, float("nan")]})
