"""How spread out a batch of embeddings is: the numbers that make a collapsing representation visible.

Pure functions over ``(batch, dim)`` tensors, computed on detached values (they are logged, never
trained on). A representation that collapses shows a per-dimension std falling towards 0 and an
effective rank falling towards 1; a healthy one keeps both up.
"""

from __future__ import annotations

import torch


def embedding_spread(z: torch.Tensor) -> torch.Tensor:
    """Mean over dimensions of the batch std of ``z`` ``(batch, dim)``: near 0 means collapse."""
    return z.detach().float().std(dim=0).mean()


def effective_rank(z: torch.Tensor) -> torch.Tensor:
    """``exp`` of the entropy of the normalised singular values of the centred ``z`` ``(batch, dim)``.

    Between 1 (every embedding on one line) and ``min(batch - 1, dim)`` (spread evenly over every
    direction); 0 for a batch without spread.
    """
    centred = z.detach().float() - z.detach().float().mean(dim=0)
    singular = torch.linalg.svdvals(centred)
    total = singular.sum()
    if total <= 0:
        return torch.zeros((), device=z.device)
    p = singular / total
    p = p[p > 0]
    return torch.exp(-(p * p.log()).sum())


def representation_stats(z: torch.Tensor, q: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``z_std`` and ``z_rank`` of the trained representation ``z`` ``(batch, dim)``; with the encoder
    outputs ``q`` ``(batch, modalities, dim)``, also ``q_std``: the mean per-(modality, dim) std."""
    stats = {"z_std": embedding_spread(z), "z_rank": effective_rank(z)}
    if q is not None:
        stats["q_std"] = embedding_spread(q.flatten(1))
    return stats
