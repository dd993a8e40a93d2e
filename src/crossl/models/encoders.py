"""Per-modality encoders: a window ``(batch, time, channels)`` -> an embedding ``(batch, dim)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of every time step of a ``(batch, channels, time)`` tensor."""

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Sequential):
    """Conv1d ('same' padding, stride 1) -> LayerNorm over channels -> PReLU -> Dropout."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__(
            # 'same' padding as Keras does it: the extra sample of an even kernel goes on the right.
            nn.ConstantPad1d(((kernel_size - 1) // 2, kernel_size // 2), 0.0),
            nn.Conv1d(in_channels, out_channels, kernel_size),
            ChannelLayerNorm(out_channels),
            nn.PReLU(out_channels, init=0.0),
            nn.Dropout(dropout),
        )


class TCNEncoder(nn.Module):
    """The paper's encoder: three conv blocks (D/4, D/2, D filters), then global average pooling.

    No striding or dilation: cost grows linearly with the window length, and any length works.
    Input ``(batch, time, channels)``; output ``(batch, dim)``.
    """

    def __init__(
        self,
        in_channels: int,
        dim: int = 96,
        kernel_sizes: Sequence[int] = (24, 16, 8),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        widths = [in_channels, dim // 4, dim // 2, dim]
        self.blocks = nn.Sequential(
            *(ConvBlock(widths[i], widths[i + 1], k, dropout) for i, k in enumerate(kernel_sizes))
        )
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.transpose(1, 2))  # (B, D, T)
        return h.mean(dim=2)


class ModalityEncoders(nn.Module):
    """One encoder per modality (no weight sharing); stacks their outputs.

    ``forward`` takes ``{modality: (batch, T_m, C_m)}`` and returns ``(batch, modalities, dim)``
    in the order of ``modality_channels``.
    """

    def __init__(self, modality_channels: Mapping[str, int], dim: int = 96, dropout: float = 0.1,
                 kernel_sizes: Sequence[int] = (24, 16, 8)) -> None:
        super().__init__()
        self.names = tuple(modality_channels)
        self.encoders = nn.ModuleDict(
            {m: TCNEncoder(c, dim, kernel_sizes, dropout) for m, c in modality_channels.items()}
        )
        self.dim = dim

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.encoders[m](inputs[m]) for m in self.names], dim=1)
