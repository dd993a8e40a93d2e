"""The encoders' LayerNorm -> PReLU -> dropout as one native CPU kernel, built on first use.

Why. Eagerly, that elementwise work is a dozen passes over each activation (the norm, the slope,
the dropout draw, its cast and scale, then as many backward), and ``torch.compile``'s fused version
still draws the dropout mask in a pass of its own and stores it. ``kernels/norm_act_dropout.c``
does the forward in one pass and the backward in one pass, with dropout decided by a counter-based
hash of (seed, element index): the backward recomputes the mask rather than reading it, and nothing
but the block's input and two floats per row are kept for it.

Building. The C file is compiled with the system's C compiler (``$CC`` or ``cc``, ``-O3
-march=native -fopenmp``) into ``$CROSSL_HOME/kernels/``, named by a hash of the source, the flags
and the CPU, written atomically; later processes load the built file. Where no compiler works,
:func:`native_kernel` raises :class:`NativeKernelUnavailable` with the compiler's first error line.

Dropout stream. The mask differs from the eager path's (a different generator); each call draws
its 64-bit seed from torch's default generator, so a seeded run gives the same numbers on the same
machine. :func:`keep_mask` states the hash with torch integer ops (slow; for tests and checks).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import torch

from crossl.data.cache import crossl_home
from crossl.errors import CrosslError
from crossl.io import write_atomic

SOURCE = Path(__file__).with_name("kernels") / "norm_act_dropout.c"
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11")
_MASK32 = 0xFFFFFFFF
#: The activations' dtypes the kernel stores, and the kernel's flag for each (1: bf16). bf16 is what
#: the convolutions return under bf16 autocast; its arithmetic is float32 all the same.
STORAGE = {torch.float32: 0, torch.bfloat16: 1}


class NativeKernelUnavailable(CrosslError):
    """The native kernel could not be built or loaded here (no C compiler, or it failed)."""


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def _compiler() -> str:
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise NativeKernelUnavailable(f"the native kernel needs a C compiler, and '{compiler}' is not on PATH; "
                                      "install gcc (or set CC), or use the eager kernels (model.elementwise: eager)")
    return compiler


def library_path() -> Path:
    """Where the kernel built for this source, these flags, this compiler and this CPU lives."""
    compiler = _compiler()
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), compiler.encode(), _cpu_identity().encode(),
                 platform.machine().encode()):
        key.update(part)
        key.update(b"\0")
    return crossl_home() / "kernels" / f"norm_act_dropout-{key.hexdigest()[:16]}.so"


def _build(path: Path) -> None:
    compiler = _compiler()

    def compile_to(tmp: Path) -> None:
        done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(tmp), "-lm"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = next((line for line in lines if "error" in line), lines[0] if lines else "no output")
            raise NativeKernelUnavailable(f"building the native kernel with {compiler} failed ({reason}); "
                                          "fix the compiler, or use the eager kernels (model.elementwise: eager)")

    write_atomic(path, compile_to)


@cache
def native_kernel() -> Any:
    """The loaded kernel library (built first if needed); raises :class:`NativeKernelUnavailable`."""
    path = library_path()
    if not path.exists():
        _build(path)
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        _build(path)  # a damaged file (the build is atomic, but disks fail): build it once more
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise NativeKernelUnavailable(f"loading the native kernel {path} failed ({exc}); "
                                          "use the eager kernels (model.elementwise: eager)") from exc
    pointer, i64, u32, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint32, ctypes.c_float, ctypes.c_int
    lib.crossl_norm_act_dropout_forward.argtypes = [pointer] * 7 + [i64, i64, f32, u32, f32, u32, u32, i32, i32]
    lib.crossl_norm_act_dropout_forward.restype = None
    lib.crossl_norm_act_dropout_backward.argtypes = [pointer] * 11 + [i64, i64, u32, f32, u32, u32, i32, i32]
    lib.crossl_norm_act_dropout_backward.restype = None
    lib.crossl_max_channels.restype = ctypes.c_int
    return lib


def native_available() -> bool:
    """Whether the native kernel builds and loads here."""
    try:
        native_kernel()
    except NativeKernelUnavailable:
        return False
    return True


def dropout_threshold(p: float) -> int:
    """The 32-bit threshold at or above which an element is kept: keep probability ``1 - p`` to 2**-32."""
    return min(round(p * (1 << 32)), _MASK32)


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """The kernel's ``mix32`` on int64 tensors holding uint32 values (products wrap; the low 32 bits are exact)."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def keep_mask(shape: tuple[int, ...], p: float, seed: int) -> torch.Tensor:
    """The kernel's dropout keep decisions for a contiguous tensor of ``shape``, as a bool tensor."""
    numel = 1
    for size in shape:
        numel *= size
    seed_lo, seed_hi = seed & _MASK32, (seed >> 32) & _MASK32
    index = torch.arange(numel, dtype=torch.int64) & _MASK32
    bits = _mix32((_mix32(index ^ seed_lo) + seed_hi) & _MASK32)
    return (bits >= dropout_threshold(p)).view(shape)


def draw_seed() -> int:
    """A 64-bit dropout seed from torch's default generator (so ``seed_everything`` fixes it)."""
    return int(torch.randint(0, 1 << 62, (1,), dtype=torch.int64).item())


def _pointer(t: torch.Tensor) -> int:
    return t.data_ptr()


def _check(h: torch.Tensor) -> None:
    if h.device.type != "cpu" or h.dtype not in STORAGE:
        raise CrosslError(f"the native kernel runs float32 or bfloat16 on the CPU, got {h.dtype} on {h.device}; "
                          "use the eager kernels (model.elementwise: eager) for other precisions or devices")


class _NormActDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, slope: torch.Tensor,
                p: float, eps: float, seed: int) -> torch.Tensor:
        lib = native_kernel()
        h = h.contiguous()
        channels = h.shape[-1]
        rows = h.numel() // channels
        out = torch.empty_like(h)
        mean = torch.empty(rows, dtype=torch.float32)
        rstd = torch.empty(rows, dtype=torch.float32)
        # The kernel reads float32 parameters (they are, under autocast); other dtypes are cast and
        # their gradients cast back.
        ctx.param_dtype = weight.dtype
        weight, bias, slope = (t.to(torch.float32).contiguous() for t in (weight, bias, slope))
        threshold = dropout_threshold(p) if p > 0 else 0
        scale = 1.0 / (1.0 - p) if p > 0 else 1.0
        lib.crossl_norm_act_dropout_forward(
            _pointer(h), _pointer(weight), _pointer(bias), _pointer(slope), _pointer(out), _pointer(mean),
            _pointer(rstd), rows, channels, eps, threshold, scale, seed & _MASK32, (seed >> 32) & _MASK32,
            torch.get_num_threads(), STORAGE[h.dtype])
        ctx.save_for_backward(h, mean, rstd, weight, bias, slope)
        ctx.dropout = (threshold, scale, seed)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        lib = native_kernel()
        h, mean, rstd, weight, bias, slope = ctx.saved_tensors
        threshold, scale, seed = ctx.dropout
        grad = grad.to(h.dtype).contiguous()
        channels = h.shape[-1]
        rows = h.numel() // channels
        grad_h = torch.empty_like(h)
        grad_weight, grad_bias, grad_slope = (torch.empty(channels, dtype=torch.float32) for _ in range(3))
        lib.crossl_norm_act_dropout_backward(
            _pointer(grad), _pointer(h), _pointer(mean), _pointer(rstd), _pointer(weight), _pointer(bias),
            _pointer(slope), _pointer(grad_h), _pointer(grad_weight), _pointer(grad_bias), _pointer(grad_slope),
            rows, channels, threshold, scale, seed & _MASK32, (seed >> 32) & _MASK32, torch.get_num_threads(),
            STORAGE[h.dtype])
        dtype = ctx.param_dtype
        return grad_h, grad_weight.to(dtype), grad_bias.to(dtype), grad_slope.to(dtype), None, None, None


def native_norm_act_dropout(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, slope: torch.Tensor,
                            p: float, eps: float, seed: int | None = None) -> torch.Tensor:
    """LayerNorm (``eps``) over the last dim -> PReLU -> dropout ``p`` of ``(batch, time, channels)``
    float32 or bfloat16 on CPU (the output and the input gradient in ``h``'s dtype; the parameters
    and their gradients float32; the arithmetic float32 for both).

    Without autograd (no input needs a gradient) nothing is stored for backward. ``seed`` fixes the
    dropout mask (see :func:`keep_mask`); None draws one from torch's generator.
    """
    _check(h)
    if h.shape[-1] > native_kernel().crossl_max_channels():
        raise CrosslError(f"the native kernel takes at most {native_kernel().crossl_max_channels()} channels, "
                          f"got {h.shape[-1]}; use the eager kernels (model.elementwise: eager)")
    if p > 0 and h.numel() > _MASK32:
        raise CrosslError(f"the native kernel's dropout indexes at most 2**32 elements, got {h.numel()}; "
                          "use a smaller batch or the eager kernels (model.elementwise: eager)")
    return _NormActDropout.apply(h, weight, bias, slope, p, eps, draw_seed() if seed is None and p > 0 else (seed or 0))
