"""Per-modality encoders: a window ``(batch, time, channels)`` -> an embedding ``(batch, dim)``.

Layout. Activations stay time-major, ``(batch, time, channels)``, from the input window to the
pooled embedding: the convolution runs as a 2-D convolution on a channels-last view of that memory
(oneDNN's fastest layout for these shapes on CPU, measured in ``docs/performance.md``), and the
LayerNorm over channels then reads contiguous rows, so no transposed copy is ever made.

Elementwise work. LayerNorm -> PReLU -> dropout after each convolution is one pure function,
:func:`norm_act_dropout`. It runs in one of three ways:

- ``native`` (the default, float32 or bf16 on CPU): one C kernel each way (:mod:`crossl.models.native`),
  one pass over memory forward and one backward, dropout from a counter-based hash recomputed in
  backward; under bf16 autocast it stores bf16 and computes in float32; where the kernel cannot
  be built the block warns once and runs eagerly;
- ``eager``: torch ops, with dropout's keep decisions drawn as 16-bit integers from one 64-bit
  random fill (several times cheaper on CPU than ``torch.bernoulli``; keep probability exact to
  2**-16); also the path for other dtypes and devices;
- compiled (``fused=True``, ``--compile``): the eager maths fused by ``torch.compile``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crossl.errors import CrosslError
from crossl.models.native import STORAGE, NativeKernelUnavailable, native_kernel, native_norm_act_dropout

LAYER_NORM_EPS = 1e-3  # the Keras default the release used
_INT16_VALUES = 1 << 16


def dropout_keep_scale(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype,
                       device: torch.device) -> torch.Tensor:
    """Inverted-dropout multipliers of ``shape``: ``1 / (1 - p)`` where kept, 0 where dropped.

    Each element draws 16 random bits (four per 64-bit word of one random fill) and is kept when
    they are at or above the threshold: keep probability ``1 - p`` to within 2**-16.
    """
    numel = 1
    for size in shape:
        numel *= size
    words = torch.empty(((numel + 3) // 4,), dtype=torch.int64, device=device).random_(-(1 << 63), None)
    bits = words.view(torch.int16)[:numel].view(shape)
    threshold = -(1 << 15) + round(p * _INT16_VALUES)
    # compare -> cast -> scale in place: three light passes (a scalar torch.where is ~4x slower on CPU)
    return (bits >= threshold).to(dtype).mul_(1.0 / (1.0 - p))


def norm_act_dropout(h: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor, slope: torch.Tensor,
                     keep_scale: torch.Tensor | None) -> torch.Tensor:
    """LayerNorm over the last dim -> PReLU (one slope per channel) -> dropout by ``keep_scale``.

    ``h`` is ``(batch, time, channels)``; ``keep_scale`` has its shape (see :func:`dropout_keep_scale`),
    or is None for no dropout.
    """
    z = F.layer_norm(h, (h.shape[-1],), norm_weight, norm_bias, LAYER_NORM_EPS)
    a = torch.where(z > 0, z, z * slope)
    return a if keep_scale is None else a * keep_scale


def _eager_norm_act_dropout(h: torch.Tensor, norm_weight: torch.Tensor, norm_bias: torch.Tensor, slope: torch.Tensor,
                            keep_scale: torch.Tensor | None) -> torch.Tensor:
    """:func:`norm_act_dropout` with the eager kernels that are fastest unfused (``F.prelu``, not ``where``)."""
    z = F.layer_norm(h, (h.shape[-1],), norm_weight, norm_bias, LAYER_NORM_EPS)
    a = F.prelu(z.transpose(1, 2), slope).transpose(1, 2)
    return a if keep_scale is None else a * keep_scale


_compiled: Callable[..., torch.Tensor] | None = None


def compiled_norm_act_dropout() -> Callable[..., torch.Tensor]:
    """:func:`norm_act_dropout` compiled once per process (shapes dynamic, so batch sizes share it)."""
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(norm_act_dropout, dynamic=True)
    return _compiled


_native_failure: str | None = None


def native_usable(h: torch.Tensor) -> bool:
    """Whether the native kernel runs ``h`` (float32 or bf16 on CPU, and it builds here; warns once if not)."""
    global _native_failure
    if h.device.type != "cpu" or h.dtype not in STORAGE:
        return False
    if _native_failure is None:
        try:
            native_kernel()
            _native_failure = ""
        except NativeKernelUnavailable as exc:
            _native_failure = str(exc)
            warnings.warn(f"{exc}; the encoders run their eager kernels, whose dropout masks differ", stacklevel=2)
    return not _native_failure


class _TimeMean(torch.autograd.Function):
    """Mean over time of ``(batch, time, channels)`` whose gradient comes back contiguous.

    Autograd's own ``mean`` backward hands on an expanded (stride 0) gradient, which the compiled
    elementwise backward then makes contiguous with a slow strided copy (about 20x slower than
    broadcasting into a fresh tensor, measured); this writes the gradient once, contiguously.
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor) -> torch.Tensor:
        ctx.time_steps = h.shape[1]
        return h.mean(dim=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        b, c = grad.shape
        out = torch.empty((b, ctx.time_steps, c), dtype=grad.dtype, device=grad.device)
        return out.copy_((grad / ctx.time_steps).unsqueeze(1))


def time_mean(h: torch.Tensor) -> torch.Tensor:
    """``(batch, time, channels)`` -> ``(batch, channels)``, the global average pool."""
    return _TimeMean.apply(h)


class ConvBlock(nn.Module):
    """Conv1d (Keras 'same' padding, stride 1) -> LayerNorm over channels -> PReLU -> Dropout.

    Input and output ``(batch, time, channels)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dropout: float,
                 elementwise: str = "native") -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size)
        self.norm = nn.LayerNorm(out_channels, eps=LAYER_NORM_EPS)
        self.act = nn.PReLU(out_channels, init=0.0)
        self.dropout = dropout
        # 'same' padding as Keras does it: the extra sample of an even kernel goes on the right.
        self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.fused = False
        self.elementwise = elementwise

    def convolve(self, h: torch.Tensor) -> torch.Tensor:
        """``(batch, time, in)`` -> ``(batch, time, out)``, the convolution on a channels-last view."""
        padded = F.pad(h, (0, 0, *self.padding))  # (B, T + k - 1, C_in), contiguous
        out = F.conv2d(padded.transpose(1, 2).unsqueeze(2), self.conv.weight.unsqueeze(2), self.conv.bias)
        return out.squeeze(2).transpose(1, 2)  # (B, C_out, 1, T) channels-last -> (B, T, C_out), no copy

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.convolve(h)
        if self.elementwise == "native" and not self.fused and native_usable(y):
            return native_norm_act_dropout(y, self.norm.weight, self.norm.bias, self.act.weight,
                                           self.dropout if self.training else 0.0, LAYER_NORM_EPS)
        fn = compiled_norm_act_dropout() if self.fused else _eager_norm_act_dropout
        dropout = self.training and self.dropout > 0
        if dropout and y.device.type != "cpu":
            # On accelerators torch's own dropout is one fast kernel; the 16-bit draw pays on CPU only.
            out = fn(y, self.norm.weight, self.norm.bias, self.act.weight, None)
            return F.dropout(out, self.dropout, training=True)
        keep_scale = dropout_keep_scale(y.shape, self.dropout, y.dtype, y.device) if dropout else None
        try:
            return fn(y, self.norm.weight, self.norm.bias, self.act.weight, keep_scale)
        except Exception as exc:
            if self.fused and isinstance(exc, torch._dynamo.exc.BackendCompilerFailed):
                reason = str(exc).strip().splitlines()[0]
                raise CrosslError(f"--compile: torch.compile could not build the fused kernels ({reason}); "
                                  "run without --compile, or install a C++ compiler for it") from exc
            raise


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
        elementwise: str = "native",
    ) -> None:
        super().__init__()
        widths = [in_channels, dim // 4, dim // 2, dim]
        self.blocks = nn.Sequential(
            *(ConvBlock(widths[i], widths[i + 1], k, dropout, elementwise) for i, k in enumerate(kernel_sizes))
        )
        self.dim = dim

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, time, channels)`` -> ``(batch, time, dim)``: the last block's output, before pooling."""
        return self.blocks(x.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return time_mean(self.sequence(x))


class ModalityEncoders(nn.Module):
    """One encoder per modality (no weight sharing); stacks their outputs.

    ``forward`` takes ``{modality: (batch, T_m, C_m)}`` and returns ``(batch, modalities, dim)``
    in the order of ``modality_channels``. The encoders run one after another: a grouped
    convolution over same-shaped modalities was measured slower with oneDNN on CPU.
    """

    def __init__(self, modality_channels: Mapping[str, int], dim: int = 96, dropout: float = 0.1,
                 kernel_sizes: Sequence[int] = (24, 16, 8), elementwise: str = "native") -> None:
        super().__init__()
        self.names = tuple(modality_channels)
        self.encoders = nn.ModuleDict(
            {m: TCNEncoder(c, dim, kernel_sizes, dropout, elementwise) for m, c in modality_channels.items()}
        )
        self.dim = dim

    def set_fused(self, fused: bool) -> None:
        """Run the elementwise work compiled (``torch.compile``) or eagerly; outputs agree to float tolerance."""
        for module in self.modules():
            if isinstance(module, ConvBlock):
                module.fused = fused

    def set_elementwise(self, elementwise: str) -> None:
        """Run the elementwise work with the ``native`` kernel or ``eager`` torch ops (see the module doc)."""
        for module in self.modules():
            if isinstance(module, ConvBlock):
                module.elementwise = elementwise

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.encoders[m](inputs[m]) for m in self.names], dim=1)

    def sequence(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """One modality's ``(batch, time, channels)`` -> ``(batch, time, dim)``, before pooling."""
        encoder = self.encoders[modality]
        assert isinstance(encoder, TCNEncoder)
        return encoder.sequence(x)
