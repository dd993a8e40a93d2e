"""Masked-autoencoder objective: reconstruct the hidden time steps of a ``(batch, time, channels)`` window.

:func:`draw_patch_mask` hides whole patches of time steps; :func:`masked_reconstruction_loss` is the
mean squared error over the hidden steps only. :class:`MaskedReconstructionLoss` wraps it and, with
``gather_distributed`` under a process group, divides by the masked count of all processes, so that
the mean over processes is the global-batch loss even when processes hide different numbers of steps.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from crossl.errors import CrosslError
from crossl.losses.vicreg import _at_least_float32


def masked_reconstruction_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    masked: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error over the masked time steps and all channels; a scalar.

    ``prediction``, ``target``: ``(batch, time, channels)``; ``masked``: bool ``(batch, time)``, True
    where the input was hidden. ``weight``: optional non-negative ``(batch,)`` per window, e.g. 0 for a
    window whose modality is missing; the loss is then the weighted mean over masked steps (weights
    also in the denominator, so zero-weight windows neither count nor dilute). Where nothing (of
    non-zero weight) is masked the result is a zero that keeps the graph. Computed in float32 at least.
    """
    total, count = _sums(prediction, target, masked, weight)
    return _ratio(total, count, prediction)


def draw_patch_mask(
    batch: int,
    time: int,
    patch: int,
    ratio: float,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A random bool mask ``(batch, time)``, True where masked, hiding whole patches.

    Time is split into ``ceil(time / patch)`` patches of ``patch`` samples (the last may be shorter),
    each masked independently with probability ``ratio``. With at least 2 patches, a window with every
    patch masked gets one back and a window with none masked loses one, the patch chosen at random
    from the same generator (drawn every call, so a seed always consumes the same stream). With one
    patch a window is either wholly masked or not at all.
    """
    if not 0.0 < ratio < 1.0:
        raise CrosslError(f"patch masking ratio {ratio} must lie in (0, 1): it is the fraction of patches masked")
    if patch < 1:
        raise CrosslError(f"patch length {patch} must be at least 1 time step; use a positive patch size")
    patches = -(-time // patch)
    # Draw on the generator's device, then move: keeps draws identical across devices.
    gen_device = generator.device
    hidden = torch.rand((batch, patches), generator=generator, device=gen_device) < ratio
    pick = torch.nn.functional.one_hot(
        torch.rand((batch, patches), generator=generator, device=gen_device).argmax(dim=1), patches
    ).bool()
    if patches >= 2:
        all_hidden = hidden.all(dim=1, keepdim=True)
        none_hidden = ~hidden.any(dim=1, keepdim=True)
        hidden = torch.where(pick & all_hidden, False, hidden)
        hidden = torch.where(pick & none_hidden, True, hidden)
    step_patch = torch.arange(time, device=gen_device) // patch
    return hidden[:, step_patch].to(device)


def _sums(
    prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor, weight: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted sum of per-step squared errors (mean over channels) and the weighted masked count."""
    _check(prediction, target, masked, weight)
    prediction, target = _at_least_float32(prediction), _at_least_float32(target)
    step_error = (prediction - target).pow(2).mean(dim=2)  # (batch, time)
    w = masked.to(step_error.dtype)
    if weight is not None:
        w = w * weight.to(step_error.dtype)[:, None]
    return (step_error * w).sum(), w.sum()


def _ratio(total: torch.Tensor, count: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    # torch.where rather than an ``if``: no host sync, and the empty case still carries a graph.
    return torch.where(count > 0, total / count.clamp_min(torch.finfo(total.dtype).tiny), prediction.sum() * 0)


def _check(prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor, weight: torch.Tensor | None) -> None:
    if prediction.shape != target.shape or prediction.ndim != 3:
        raise CrosslError(
            f"reconstruction needs prediction and target (batch, time, channels) of one shape, "
            f"got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    if masked.dtype != torch.bool or masked.shape != prediction.shape[:2]:
        raise CrosslError(
            f"reconstruction mask must be bool (batch, time) = {tuple(prediction.shape[:2])}, "
            f"got {masked.dtype} {tuple(masked.shape)}; pass draw_patch_mask's output"
        )
    if weight is not None and weight.shape != prediction.shape[:1]:
        raise CrosslError(f"reconstruction weight must have shape (batch,) = {tuple(prediction.shape[:1])}, "
                          f"got {tuple(weight.shape)}")


class MaskedReconstructionLoss(nn.Module):
    """:func:`masked_reconstruction_loss` as a module.

    With ``gather_distributed`` under a process group, the masked count is summed over processes
    (no gradient flows through a count) and this process's error sum is divided by its average, so the
    mean over processes (what the logger reports) and the averaged gradients (what DDP applies) are
    those of the global batch exactly, whatever each process hides.
    """

    def __init__(self, gather_distributed: bool = False) -> None:
        super().__init__()
        self.gather_distributed = gather_distributed

    def forward(
        self,
        prediction: torch.Tensor,
        target: torch.Tensor,
        masked: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        total, count = _sums(prediction, target, masked, weight)
        if self.gather_distributed and dist.is_available() and dist.is_initialized():
            count = count.detach().clone()
            dist.all_reduce(count)
            count = count / dist.get_world_size()
        return _ratio(total, count, prediction)
