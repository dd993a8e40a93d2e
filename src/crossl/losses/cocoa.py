"""COCOA (cross-modality contrastive) loss on per-modality embeddings (Deldari et al., IMWUT 2022).

On ``q`` of shape ``(batch, modalities, dim)``, every embedding L2-normalised over ``dim``:

- positive term: for each window, the mean over the M (M - 1) ordered modality pairs i != j of
  ``exp((1 - cos(q_i, q_j)) / tau)`` (ordered and unordered pairs give the same mean, cos being
  symmetric), then the mean over windows; it pulls a window's modalities together;
- negative term: within each modality, the mean over ordered pairs of distinct windows a != b of
  ``exp(cos(q_a, q_b) / tau)``, then the mean over modalities; it pushes windows apart.

Loss = positive + ``negative_weight`` * negative.

An optional bool ``presence`` ``(batch, modalities)`` (False where a window lacks a modality)
leaves out every pair with an absent embedding: a window's positive mean is over its present pairs
and windows with fewer than 2 present modalities drop out; a modality's negative mean is over pairs
of windows that both have it, and modalities with fewer than 2 such windows drop out.

Defaults, from the authors' COCOA release (its command-line defaults and its loss): ``tau = 0.1``.
The release sums instead of averaging, keeps the constant i == j entries (each exp(0) = 1) in the
positive mean, and weights positive by 1/32 and negative by 3.9e-3. Up to a constant and an overall
scale that is ``positive + w * negative`` with ``w = 0.1248 * M**2 / (M - 1)``
(:func:`cocoa_release_negative_weight`), 0.4992 for two modalities;
the default ``negative_weight = 0.5`` is that two-modality value.

:class:`CocoaLoss` wraps the maths and, with ``gather_distributed`` under a process group,
contrasts this process's windows against the windows of every process.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from crossl.errors import CrosslError
from crossl.losses.distributed import gather_with_grad
from crossl.losses.vicreg import _at_least_float32

DEFAULT_TEMPERATURE = 0.1
DEFAULT_NEGATIVE_WEIGHT = 0.5


class CocoaTerms(NamedTuple):
    positive: torch.Tensor
    negative: torch.Tensor


def cocoa_release_negative_weight(modalities: int) -> float:
    """The ``negative_weight`` that reproduces the authors' release balance for ``modalities`` modalities."""
    return 3.9e-3 * 32 * modalities**2 / (modalities - 1)


def positive_term(
    q: torch.Tensor,
    temperature: float,
    presence: torch.Tensor | None = None,
    every_presence: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over windows of the mean over present modality pairs i != j of ``exp((1 - cos) / tau)``.

    ``q`` (n, M, dim) normalised, ``presence`` (n, M) bool or None (all present). When ``q`` is one
    process's share of a global batch whose presence is ``every_presence`` (N, M), the result is scaled
    so that its mean over equal shares is the global term; by default the share is the whole batch.
    """
    n, m, _ = q.shape
    presence = _all_present(q) if presence is None else presence
    every_presence = presence if every_presence is None else every_presence
    pairs = presence[:, :, None] & presence[:, None, :] & ~torch.eye(m, dtype=torch.bool, device=q.device)
    exponent = (1.0 - q @ q.transpose(1, 2)) / temperature  # (n, M, M)
    # Fill before exp: an absent pair then has value and gradient exactly 0, never inf * 0.
    per_pair = torch.exp(exponent.masked_fill(~pairs, float("-inf")))
    per_window = per_pair.sum(dim=(1, 2)) / pairs.sum(dim=(1, 2)).clamp_min(1)
    windows = (every_presence.sum(dim=1) >= 2).sum()
    return _share_mean(per_window.sum(), windows, every_presence.shape[0] / n, q)


def negative_term(
    own: torch.Tensor,
    every: torch.Tensor,
    offset: int,
    temperature: float,
    own_presence: torch.Tensor | None = None,
    every_presence: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over modalities of the mean over pairs of distinct present windows of ``exp(cos / tau)``.

    ``own`` (n, M, dim) are rows ``offset .. offset + n`` of ``every`` (N, M, dim), both normalised,
    with presences (n, M) and (N, M) (None: all present). Own rows are the anchors, pairs of a window
    with itself are left out, and the result is scaled so that its mean over equal shares is the
    global term; without absences that is the mean over M x n x (N - 1) pairs.
    """
    n, total = own.shape[0], every.shape[0]
    if total < 2:
        raise CrosslError("COCOA needs a batch of at least 2 windows (negatives are the other windows); raise the batch size")
    own_presence = _all_present(own) if own_presence is None else own_presence
    every_presence = _all_present(every) if every_presence is None else every_presence
    same = F.one_hot(torch.arange(n, device=own.device) + offset, total).bool()  # (n, N)
    pairs = own_presence.T[:, :, None] & every_presence.T[:, None, :] & ~same  # (M, n, N)
    exponent = torch.einsum("amd,bmd->mab", own, every) / temperature
    per_modality = torch.exp(exponent.masked_fill(~pairs, float("-inf"))).sum(dim=(1, 2))  # (M,)
    present = every_presence.sum(dim=0)
    global_pairs = present * (present - 1)
    per_modality = per_modality / global_pairs.clamp_min(1)
    return _share_mean(per_modality.sum(), (global_pairs > 0).sum(), total / n, own)


def cocoa_terms(
    q: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE, presence: torch.Tensor | None = None
) -> CocoaTerms:
    """Unweighted positive and negative terms of ``q`` (batch, modalities, dim); computed in float32 at least."""
    q, presence = _checked(q, temperature, presence)
    return CocoaTerms(positive_term(q, temperature, presence), negative_term(q, q, 0, temperature, presence, presence))


def cocoa_loss(
    q: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    negative_weight: float = DEFAULT_NEGATIVE_WEIGHT,
    presence: torch.Tensor | None = None,
) -> torch.Tensor:
    """COCOA loss of ``q`` (batch, modalities, dim): positive + ``negative_weight`` * negative; a scalar."""
    terms = cocoa_terms(q, temperature, presence)
    return terms.positive + negative_weight * terms.negative


def _share_mean(total: torch.Tensor, count: torch.Tensor, shares: float, like: torch.Tensor) -> torch.Tensor:
    # torch.where rather than an ``if``: no host sync, and an empty term still carries a graph.
    return torch.where(count > 0, shares * total / count.clamp_min(1), like.sum() * 0)


def _all_present(q: torch.Tensor) -> torch.Tensor:
    return torch.ones(q.shape[:2], dtype=torch.bool, device=q.device)


def _checked(q: torch.Tensor, temperature: float, presence: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if q.ndim != 3:
        raise CrosslError(f"COCOA needs (batch, modalities, dim) embeddings, got shape {tuple(q.shape)}")
    if q.shape[1] < 2:
        raise CrosslError(f"COCOA needs at least 2 modalities to contrast, got {q.shape[1]}; use another loss for one modality")
    if not temperature > 0:
        raise CrosslError(f"COCOA temperature {temperature} must be positive; use e.g. 0.1")
    if presence is not None and presence.shape != q.shape[:2]:
        raise CrosslError(f"COCOA presence must have shape (batch, modalities) = {tuple(q.shape[:2])}, "
                          f"got {tuple(presence.shape)}")
    presence = _all_present(q) if presence is None else presence.to(device=q.device, dtype=torch.bool)
    return F.normalize(_at_least_float32(q), dim=2), presence


class CocoaLoss(nn.Module):
    """COCOA as a module; see :func:`cocoa_loss` for the terms.

    With ``gather_distributed`` under a process group, the positive term uses this process's rows
    and the negative term contrasts own rows against the gathered rows of every process; both are
    normalised by global counts, so their means over processes (what the logger reports) and the
    averaged gradients (what DDP applies) are those of the global batch.
    """

    def __init__(
        self,
        temperature: float = DEFAULT_TEMPERATURE,
        negative_weight: float = DEFAULT_NEGATIVE_WEIGHT,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.temperature = temperature
        self.negative_weight = negative_weight
        self.gather_distributed = gather_distributed

    def terms(self, q: torch.Tensor, presence: torch.Tensor | None = None) -> CocoaTerms:
        q, presence = _checked(q, self.temperature, presence)
        if not (self.gather_distributed and dist.is_available() and dist.is_initialized()):
            return CocoaTerms(
                positive_term(q, self.temperature, presence),
                negative_term(q, q, 0, self.temperature, presence, presence),
            )
        b, m, d = q.shape
        every = gather_with_grad(q.reshape(b, m * d)).reshape(-1, m, d)  # the gather takes (batch, features)
        every_presence = gather_with_grad(presence.to(q.dtype)) > 0.5
        offset = dist.get_rank() * b
        return CocoaTerms(
            positive_term(q, self.temperature, presence, every_presence),
            negative_term(q, every, offset, self.temperature, presence, every_presence),
        )

    def weighted(self, t: CocoaTerms) -> torch.Tensor:
        return t.positive + self.negative_weight * t.negative

    def forward(self, q: torch.Tensor, presence: torch.Tensor | None = None) -> torch.Tensor:
        return self.weighted(self.terms(q, presence))
