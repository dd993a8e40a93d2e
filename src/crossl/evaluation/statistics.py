"""Summaries over seeds with honest uncertainty: bootstrap confidence intervals and paired comparisons.

A grid's scores come in two nested levels: several pretrainings (pretraining seeds), and for each
several label subsets (label seeds). Scores of one pretraining share its draw, so they are not
independent samples; the bootstrap here resamples at both levels (pretraining seeds with
replacement, then label seeds within each drawn pretraining), which is the resampling that matches
how the numbers were made. With one pretraining it is the ordinary bootstrap over label seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Scores grouped by pretraining seed: ``{pretrain_seed: [score per label seed, ...]}``.
Grouped = Mapping[int, Sequence[float]]

RESAMPLES = 10_000
LEVEL = 0.95


def _check(groups: Grouped) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=np.float64) for v in groups.values() if len(v)]
    if not arrays:
        raise ValueError("no scores to summarise")
    if any(not np.isfinite(a).all() for a in arrays):
        raise ValueError("scores must be finite")
    return arrays


def bootstrap_means(groups: Grouped, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """``(resamples,)`` means of two-level bootstrap resamples of ``groups`` (see the module docstring).

    Every resample draws as many pretrainings as there are (with replacement), and within each drawn
    pretraining as many of its scores as it has (with replacement); its statistic is the mean of all
    drawn scores. Seeded: the same scores give the same resamples.
    """
    arrays = _check(groups)
    rng = np.random.default_rng(seed)
    outer = rng.integers(0, len(arrays), size=(resamples, len(arrays)))
    sums = np.zeros(resamples)
    counts = np.zeros(resamples)
    for g, values in enumerate(arrays):
        times = (outer == g).sum(axis=1)  # (resamples,) how often pretraining g was drawn
        most = int(times.max())
        if most == 0:
            continue
        # Each draw of g resamples its scores afresh: (resamples, most, len) indices, masked to `times`.
        inner = rng.integers(0, values.size, size=(resamples, most, values.size))
        drawn = values[inner].sum(axis=2)  # (resamples, most)
        used = np.arange(most)[None, :] < times[:, None]
        sums += (drawn * used).sum(axis=1)
        counts += times * values.size
    return sums / counts


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Summary:
    """Scores of one grid cell (one method, protocol and label fraction) over all its seeds."""

    n: int
    pretrainings: int
    mean: float
    #: population standard deviation over all scores
    std: float
    ci_low: float
    ci_high: float


def summarize_scores(groups: Grouped, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0) -> Summary:
    """Mean, std and a ``level`` bootstrap confidence interval of the mean (two-level, percentile)."""
    arrays = _check(groups)
    values = np.concatenate(arrays)
    low, high = percentile_interval(bootstrap_means(groups, resamples, seed), level)
    return Summary(int(values.size), len(arrays), float(values.mean()), float(values.std()), low, high)


@dataclass(frozen=True)
class Comparison:
    """``a - b`` over the pairs that share a pretraining seed and a label subset."""

    pairs: int
    mean_diff: float
    ci_low: float
    ci_high: float
    #: pairs where ``a`` scored higher, lower, equal
    wins: int
    losses: int
    ties: int


def paired_comparison(a: Mapping[tuple[int, int], float], b: Mapping[tuple[int, int], float],
                      level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0) -> Comparison | None:
    """Paired differences of scores keyed ``(pretrain_seed, label_seed)``; None if no key is shared.

    The differences are grouped by pretraining seed and bootstrapped like :func:`summarize_scores`:
    a pair is one label subset under one pretraining of both methods.
    """
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    diffs = {k: a[k] - b[k] for k in shared}
    groups: dict[int, list[float]] = {}
    for (pretrain_seed, _), d in diffs.items():
        groups.setdefault(pretrain_seed, []).append(d)
    low, high = percentile_interval(bootstrap_means(groups, resamples, seed), level)
    values = np.array(list(diffs.values()))
    return Comparison(len(shared), float(values.mean()), low, high, int((values > 0).sum()), int((values < 0).sum()),
                      int((values == 0).sum()))
