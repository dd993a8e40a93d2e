"""Latent masks over the ``(batch, modalities, dim)`` stack of modality embeddings.

Pure functions with an explicit ``torch.Generator``: the same generator state gives the same mask.
A mask is a bool tensor, True where an entry is KEPT. Strategies:

- ``modality``: whole modality rows (the paper's "spatial" masking), Bernoulli per (sample, modality);
- ``random``: element-wise over (sample, modality, dim);
- ``feature``: one latent index across all modalities, Bernoulli per (sample, dim);
- ``none``: keep everything.

The masking ratio is the probability that an entry is masked. Modalities absent in the data are
always masked, and a view never has every modality masked: where that happens, one of the
sample's present modalities is restored, chosen at random.
"""

from __future__ import annotations

import torch

from crossl.errors import CrosslError
from crossl.method_options import MASK_STRATEGIES, MaskStrategy

__all__ = ["MASK_STRATEGIES", "MaskStrategy", "apply_mask", "check_mask_args", "draw_keep_mask", "drop_modalities",
           "modality_kept"]


def check_mask_args(strategy: str, ratio: float) -> None:
    if strategy not in MASK_STRATEGIES:
        raise CrosslError(f"unknown masking strategy '{strategy}'; use one of {list(MASK_STRATEGIES)}")
    if not 0.0 <= ratio < 1.0:
        raise CrosslError(f"masking ratio {ratio} must lie in [0, 1): it is the fraction of entries masked")


def draw_keep_mask(
    shape: tuple[int, int, int],
    strategy: str,
    ratio: float,
    generator: torch.Generator,
    presence: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A random keep-mask of ``shape = (batch, modalities, dim)``.

    ``presence``: optional bool ``(batch, modalities)``, False for modalities missing in the data.
    Returns bool ``(batch, modalities, dim)``, True where kept.
    """
    check_mask_args(strategy, ratio)
    b, m, d = shape
    # Draw on the generator's device, then move: keeps draws identical across devices.
    gen_device = generator.device
    if strategy == "none" or ratio == 0.0:
        keep = torch.ones(shape, dtype=torch.bool, device=gen_device)
    elif strategy == "modality":
        keep = (torch.rand((b, m, 1), generator=generator, device=gen_device) >= ratio).expand(b, m, d)
    elif strategy == "random":
        keep = torch.rand(shape, generator=generator, device=gen_device) >= ratio
    else:  # feature
        keep = (torch.rand((b, 1, d), generator=generator, device=gen_device) >= ratio).expand(b, m, d)
    present = (
        torch.ones((b, m), dtype=torch.bool, device=gen_device)
        if presence is None
        else presence.to(device=gen_device, dtype=torch.bool)
    )
    keep = keep & present[:, :, None]
    keep = _restore_one_modality(keep, present, generator)
    return keep.to(device)


def _restore_one_modality(keep: torch.Tensor, present: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Where a sample has every modality fully masked, keep one random present modality whole."""
    all_masked = ~keep.any(dim=2).any(dim=1)  # (B,)
    # A random score per (sample, modality); absent modalities can never win.
    scores = torch.rand(present.shape, generator=generator, device=present.device)
    scores = scores.masked_fill(~present, -1.0)
    chosen = torch.nn.functional.one_hot(scores.argmax(dim=1), present.shape[1]).bool()  # (B, M)
    restore = chosen & all_masked[:, None]
    return keep | restore[:, :, None]


def modality_kept(keep: torch.Tensor) -> torch.Tensor:
    """(batch, modalities, dim) keep-mask -> (batch, modalities): True where any entry is kept."""
    return keep.any(dim=2)


def apply_mask(q: torch.Tensor, keep: torch.Tensor, token: torch.Tensor | None = None) -> torch.Tensor:
    """Replace masked entries of ``q`` (batch, modalities, dim) by zero, or by ``token`` (modalities, dim)."""
    if token is None:
        return q * keep.to(q.dtype)
    return torch.where(keep, q, token.to(q.dtype).expand_as(q))


def drop_modalities(presence: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Input-level modality dropout: bool ``(batch, modalities)`` presence -> a copy where each present
    modality is hidden with probability ``p``; a window keeps at least one of its present modalities."""
    b, m = presence.shape
    keep = draw_keep_mask((b, m, 1), "modality", p, generator, presence=presence, device=presence.device)
    # `& presence`: a window with nothing present stays so (the restore step would pick a row).
    return modality_kept(keep) & presence
