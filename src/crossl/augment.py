"""Input-space augmentations of ``(batch, time, channels)`` windows, for contrastive baselines.

Pure functions with an explicit ``torch.Generator``: each returns a new tensor of the input's
shape, dtype and device and never modifies its input. Draws are made on the generator's device
and then moved to the data's device, so the same generator state gives the same result on any
device. Everything is batched over windows (no Python loop per window).

Default strengths follow Um et al., "Data augmentation of wearable sensor data for Parkinson's
disease monitoring using convolutional neural networks" (ICMI 2017), on per-channel normalised
inputs: jitter sigma 0.05, scaling sigma 0.1, permutation into 4 segments, time warping with
4 interior knots and sigma 0.2, and uniformly random 3-D rotations. Tang et al. (2020, SimCLR for
human activity recognition) use the same family of transforms for contrastive views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor

from crossl.errors import CrosslError

Augmentation = Literal["jitter", "scaling", "rotation", "permutation", "time_warp", "channel_dropout"]


def _check_windows(x: Tensor, name: str) -> None:
    if x.ndim != 3 or not x.is_floating_point():
        raise CrosslError(
            f"{name} needs a float (batch, time, channels) tensor, got {x.dtype} of shape {tuple(x.shape)}; "
            "reshape the windows to 3-D float"
        )


def _check_sigma(sigma: float, name: str) -> None:
    if sigma < 0:
        raise CrosslError(f"{name} sigma {sigma} is negative; use a standard deviation >= 0")


def _randn(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    # Draw on the generator's device, then move: keeps draws identical across devices.
    return torch.randn(shape, generator=generator, device=generator.device).to(device=like.device, dtype=like.dtype)


def _rand(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def jitter(x: Tensor, generator: torch.Generator, sigma: float = 0.05) -> Tensor:
    """Add Gaussian noise N(0, sigma^2) to every sample. Default sigma 0.05 (Um et al., 2017).

    ``x``: ``(B, T, C)``; returns ``(B, T, C)``.
    """
    _check_windows(x, "jitter")
    _check_sigma(sigma, "jitter")
    return x + sigma * _randn(tuple(x.shape), generator, x)


def scaling(x: Tensor, generator: torch.Generator, sigma: float = 0.1) -> Tensor:
    """Multiply each (window, channel) by one factor drawn from N(1, sigma^2). Default sigma 0.1 (Um et al., 2017).

    ``x``: ``(B, T, C)``; returns ``(B, T, C)``.
    """
    _check_windows(x, "scaling")
    _check_sigma(sigma, "scaling")
    b, _, c = x.shape
    return x * (1.0 + sigma * _randn((b, 1, c), generator, x))


def rotation(x: Tensor, generator: torch.Generator) -> Tensor:
    """Rotate each window by one uniformly random proper 3-D rotation (det +1), as in Um et al. (2017).

    ``x``: ``(B, T, C)`` with ``C`` a multiple of 3 (e.g. x/y/z of one or more tri-axial sensors);
    the same matrix rotates every time step and every consecutive channel triple of a window.
    Returns ``(B, T, C)``.
    """
    _check_windows(x, "rotation")
    b, t, c = x.shape
    if c == 0 or c % 3 != 0:
        raise CrosslError(f"rotation needs channels in groups of 3 (x, y, z), got {c}; drop rotation for this modality")
    # A normalised Gaussian 4-vector is a uniform unit quaternion, hence a uniform rotation.
    q = torch.randn((b, 4), generator=generator, device=generator.device, dtype=torch.float64)
    w, i, j, k = (q / q.norm(dim=1, keepdim=True)).unbind(dim=1)
    rot = torch.stack(
        [
            torch.stack([1 - 2 * (j * j + k * k), 2 * (i * j - k * w), 2 * (i * k + j * w)], dim=1),
            torch.stack([2 * (i * j + k * w), 1 - 2 * (i * i + k * k), 2 * (j * k - i * w)], dim=1),
            torch.stack([2 * (i * k - j * w), 2 * (j * k + i * w), 1 - 2 * (i * i + j * j)], dim=1),
        ],
        dim=1,
    ).to(device=x.device, dtype=x.dtype)  # (B, 3, 3)
    groups = x.reshape(b, t, c // 3, 3)
    return torch.einsum("bij,btgj->btgi", rot, groups).reshape(b, t, c)


def permutation(x: Tensor, generator: torch.Generator, segments: int = 4) -> Tensor:
    """Cut time into ``segments`` pieces and shuffle their order per window. Default 4 (Um et al., 2017).

    Pieces have length ``T // segments``, the last one also takes the remainder; windows shorter
    than ``segments`` are cut into ``T`` single steps. ``x``: ``(B, T, C)``; returns ``(B, T, C)``.
    """
    _check_windows(x, "permutation")
    if segments < 1:
        raise CrosslError(f"permutation needs at least 1 segment, got {segments}; use segments >= 1")
    b, t, c = x.shape
    s = min(segments, t)
    if s <= 1:
        return x.clone()
    seg_len = t // s
    lengths = torch.full((s,), seg_len, dtype=torch.long, device=x.device)
    lengths[-1] = t - seg_len * (s - 1)
    starts = torch.cumsum(lengths, 0) - lengths  # (S,) where each input piece begins
    # A random permutation per window: argsort of i.i.d. uniform keys.
    order = torch.argsort(_rand((b, s), generator, x.device), dim=1)  # (B, S) input piece at output slot
    out_len = lengths[order]  # (B, S)
    out_end = torch.cumsum(out_len, dim=1)
    out_start = out_end - out_len
    steps = torch.arange(t, device=x.device).expand(b, t).contiguous()
    slot = torch.searchsorted(out_end, steps, right=True)  # (B, T) output slot of each step
    source = starts[order.gather(1, slot)] + steps - out_start.gather(1, slot)  # (B, T) input step
    return x.gather(1, source[:, :, None].expand(b, t, c))


def time_warp(x: Tensor, generator: torch.Generator, sigma: float = 0.2, knots: int = 4) -> Tensor:
    """Smoothly speed up and slow down time per window. Defaults sigma 0.2, 4 knots (Um et al., 2017).

    A speed curve through ``knots + 2`` evenly spaced values ~ N(1, sigma^2) (clamped positive) is
    linearly interpolated to ``T`` steps and cumulatively summed into warped positions, rescaled to
    run from 0 to ``T - 1``; the signal is resampled there by linear interpolation. All channels of
    a window share the warp so the axes stay aligned. Sigma 0 is the identity.
    ``x``: ``(B, T, C)``; returns ``(B, T, C)``.
    """
    _check_windows(x, "time_warp")
    _check_sigma(sigma, "time_warp")
    if knots < 0:
        raise CrosslError(f"time_warp needs knots >= 0, got {knots}; use a small count such as 4")
    b, t, c = x.shape
    speed = 1.0 + sigma * torch.randn((b, 1, knots + 2), generator=generator, device=generator.device)
    if t < 2:
        return x.clone()  # nothing to warp; the draw above still runs so later draws do not shift
    # float64 for the cumulative sum, so sigma 0 gives positions that are integers to rounding.
    speed = speed.to(device=x.device, dtype=torch.float64).clamp_min(1e-2)
    speed = torch.nn.functional.interpolate(speed, size=t, mode="linear", align_corners=True)[:, 0]  # (B, T)
    cum = torch.cumsum(speed, dim=1)
    pos = (cum - cum[:, :1]) / (cum[:, -1:] - cum[:, :1]) * (t - 1)  # (B, T) from 0 to T-1
    left = pos.floor().long().clamp(0, t - 2)
    frac = (pos - left).to(x.dtype)[:, :, None]
    lo = x.gather(1, left[:, :, None].expand(b, t, c))
    hi = x.gather(1, (left + 1)[:, :, None].expand(b, t, c))
    return lo + frac * (hi - lo)


def channel_dropout(x: Tensor, generator: torch.Generator, p: float = 0.1) -> Tensor:
    """Zero each (window, channel) with probability ``p``, whole along time.

    Default p 0.1: Um et al. (2017) have no such transform; a light rate keeps most of the signal.
    ``x``: ``(B, T, C)``; returns ``(B, T, C)``.
    """
    _check_windows(x, "channel_dropout")
    if not 0.0 <= p < 1.0:
        raise CrosslError(f"channel_dropout p {p} must lie in [0, 1): it is the probability a channel is zeroed")
    b, _, c = x.shape
    keep = _rand((b, 1, c), generator, x.device) >= p
    return x * keep.to(x.dtype)


AUGMENTATIONS: dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "jitter": jitter,
    "scaling": scaling,
    "rotation": rotation,
    "permutation": permutation,
    "time_warp": time_warp,
    "channel_dropout": channel_dropout,
}
assert set(AUGMENTATIONS) == set(get_args(Augmentation))


def check_augmentations(names: Sequence[str], modality_channels: Mapping[str, int]) -> None:
    """Raise CrosslError unless ``names`` is a non-empty list of known transforms that apply to the data.

    ``modality_channels``: ``{modality: channel count}``; rotation needs one with a multiple of 3.
    """
    if isinstance(names, str):
        raise CrosslError(f"augmentations must be a list of names, got the string '{names}'; write ['{names}']")
    if len(names) == 0:
        raise CrosslError(f"no augmentations given; name at least one of {list(AUGMENTATIONS)}")
    for name in names:
        if name not in AUGMENTATIONS:
            raise CrosslError(f"unknown augmentation '{name}'; use one of {list(AUGMENTATIONS)}")
    if "rotation" in names and not any(ch > 0 and ch % 3 == 0 for ch in modality_channels.values()):
        counts = ", ".join(f"{m}: {ch}" for m, ch in modality_channels.items())
        raise CrosslError(
            f"rotation needs a modality with a multiple of 3 channels, but the channels are {{{counts}}}; drop rotation"
        )


def augment_batch(inputs: Mapping[str, Tensor], names: Sequence[str], generator: torch.Generator) -> dict[str, Tensor]:
    """Apply the named transforms, in order, to every modality with default strengths.

    ``inputs``: ``{modality: (B, T_m, C_m)}``; lengths and channel counts may differ per modality.
    Returns a new dict of the same shapes. Rotation skips (returns unchanged) modalities whose
    channel count is not a multiple of 3. Transforms run in ``names`` order, modalities in
    ``inputs`` order, every draw from ``generator``: the draws depend only on the generator state,
    the names and the shapes, so the same seed gives the same views on any device.
    """
    check_augmentations(names, {m: x.shape[-1] for m, x in inputs.items()})
    out = dict(inputs)
    for name in names:
        fn = AUGMENTATIONS[name]
        for modality in list(out):
            if name == "rotation" and out[modality].shape[-1] % 3 != 0:
                continue  # e.g. a single-lead ECG has no axes to rotate
            out[modality] = fn(out[modality], generator)
    return {m: (x.clone() if x is inputs[m] else x) for m, x in out.items()}


def augment_views(
    inputs: Mapping[str, Tensor], names: Sequence[str], generator: torch.Generator
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Two independently augmented views of the batch (two successive ``augment_batch`` calls)."""
    return augment_batch(inputs, names, generator), augment_batch(inputs, names, generator)
