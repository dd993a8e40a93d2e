"""Named random streams: every random draw of a run comes from one of these, seeded from the run's seed.

A stream's seed depends only on (run seed, stream name, index, process rank), where the index is
the optimiser step (masks, augmentations, dropout), the validation batch or the epoch (batch
order). Draws are therefore identical after a resume and on any device, and two streams never
share a seed by accident of their indices growing. Rank 0 gets the single-process stream, so a
one-process run is a special case of a multi-process one.
"""

from __future__ import annotations

import torch

SEED_STRIDE = 1_000_003
RANK_STRIDE = 15_485_863

#: stream -> offset added to ``seed * SEED_STRIDE``. "batches" and "mask" share offset 0 (they
#: were set before this table existed and changing them would change every published number);
#: they feed different draws (a permutation per epoch, Bernoulli masks per step).
STREAM_OFFSETS: dict[str, int] = {
    "batches": 0,
    "mask": 0,
    "mask-val": 7_919,
    "dropout": 104_729,
    "augment": 32_452_843,
    "augment-val": 49_979_687,
    "input-mask": 67_867_967,
    "input-mask-val": 86_028_121,
    "modality-dropout": 122_949_829,
}


def stream_seed(seed: int, stream: str, index: int = 0, rank: int = 0) -> int:
    """The seed of draw ``index`` of ``stream`` on process ``rank`` for a run seeded with ``seed``."""
    if stream not in STREAM_OFFSETS:
        raise KeyError(f"unknown random stream '{stream}'; known: {sorted(STREAM_OFFSETS)}")
    return seed * SEED_STRIDE + STREAM_OFFSETS[stream] + index + RANK_STRIDE * rank


def stream_generator(seed: int, stream: str, index: int = 0, rank: int = 0) -> torch.Generator:
    """A CPU generator for :func:`stream_seed` (draw on CPU, then move: the same on every device)."""
    return torch.Generator().manual_seed(stream_seed(seed, stream, index, rank))
