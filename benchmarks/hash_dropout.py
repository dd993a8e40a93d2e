"""Dropout from a counter-based integer hash (fused by ``torch.compile``, or in the native C kernel) against eager dropout.

The shipped encoders draw dropout's keep decisions eagerly (16-bit draws from one 64-bit random
fill, ``crossl.models.encoders.dropout_keep_scale``) and hand the mask to the fused LayerNorm ->
PReLU -> dropout kernel. The alternative timed here makes every decision a pure function of a
per-call key and the element index, ``mix32(i ^ mix32(key)) >= p * 2**32`` in int64 tensor ops
(every product stays below 2**59: no overflow), so the compiled kernel can compute the decisions
itself instead of reading a mask, and eager code can compute the very same decisions.

Before timing, the script checks that the compiled hash decisions equal the eager ones bit for bit
and that the kept fraction is ``1 - p``; it exits with status 1 if not. Then, for one activation
``(batch, time, channels)``, the median milliseconds of:

- ``mask``: the keep multipliers alone, shipped draw against the eager hash;
- ``eager``: LayerNorm -> PReLU -> dropout forward + backward, eager, each mask;
- ``compiled``: the same compiled: the shipped eager mask fed to the compiled kernel, against the
  hash computed inside the compiled kernel;
- ``native``: the package's C kernel (``crossl.models.native``, the default ``model.elementwise``),
  which computes its own 32-bit hash decisions in one forward and one backward pass (skipped, with
  a line saying why, where no C compiler builds it).

    python benchmarks/hash_dropout.py --shape 256,128,96 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from pretrain_speed import machine_info, median_ms

from crossl.allocator import keep_freed_memory
from crossl.models.encoders import LAYER_NORM_EPS, compiled_norm_act_dropout, dropout_keep_scale
from crossl.models.encoders import _eager_norm_act_dropout as eager_norm_act_dropout
from crossl.models.native import native_available, native_norm_act_dropout

#: The odd multiplier of a well-mixing 32-bit integer hash; below 2**27, so a 32-bit value times it
#: stays below 2**59 and int64 arithmetic never overflows.
HASH_MULTIPLIER = 0x45D9F3B
LOW_32_BITS = 0xFFFFFFFF


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A bijection of int64 values in ``[0, 2**32)`` onto themselves, every output bit depending on
    every input bit (xor-shift, multiply, twice, then xor-shift); any shape."""
    x = x ^ (x >> 16)
    x = (x * HASH_MULTIPLIER) & LOW_32_BITS
    x = x ^ (x >> 16)
    x = (x * HASH_MULTIPLIER) & LOW_32_BITS
    return x ^ (x >> 16)


def hash_keep(shape: Sequence[int], p: float, key: torch.Tensor) -> torch.Tensor:
    """Bool keep decisions of ``shape``: element ``i`` (row-major) kept when ``mix32(i ^ mix32(key))``
    is at or above ``p * 2**32``. The key (0-dim int64 in ``[0, 2**32)``) is mixed first so that
    nearby keys do not give shifted copies of one mask."""
    numel = 1
    for size in shape:
        numel *= size
    index = torch.arange(numel, dtype=torch.int64, device=key.device).view(tuple(shape))
    return mix32(index ^ mix32(key)) >= round(p * (1 << 32))


def hash_keep_scale_in_place(shape: Sequence[int], p: float, key: torch.Tensor) -> torch.Tensor:
    """:func:`hash_keep` as float32 inverted-dropout multipliers, computed in place in one int64 buffer
    (eager code's cheapest form of the same decisions)."""
    numel = 1
    for size in shape:
        numel *= size
    x = torch.arange(numel, dtype=torch.int64, device=key.device).bitwise_xor_(mix32(key))
    for _ in range(2):
        x.bitwise_xor_(x >> 16).mul_(HASH_MULTIPLIER).bitwise_and_(LOW_32_BITS)
    x.bitwise_xor_(x >> 16)
    return (x >= round(p * (1 << 32))).view(tuple(shape)).to(torch.float32).mul_(1.0 / (1.0 - p))


def norm_act_hash_dropout(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, slope: torch.Tensor, p: float,
                          key: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dim -> PReLU -> dropout with :func:`hash_keep`'s decisions, ``(B, T, C)``."""
    z = F.layer_norm(h, (h.shape[-1],), weight, bias, LAYER_NORM_EPS)
    a = torch.where(z > 0, z, z * slope)
    return a * hash_keep(a.shape, p, key).to(a.dtype) * (1.0 / (1.0 - p))


def check(shape: Sequence[int], p: float) -> list[str]:
    """What is wrong with the hash decisions (compiled against eager, kept fraction); empty when right."""
    problems = []
    compiled = torch.compile(hash_keep, dynamic=True)
    for key_value in (0, 1, 2**32 - 1):
        key = torch.tensor(key_value, dtype=torch.int64)
        eager = hash_keep(shape, p, key)
        if not torch.equal(compiled(shape, p, key), eager):
            problems.append(f"key {key_value}: the compiled decisions differ from the eager ones")
        if not torch.equal(hash_keep_scale_in_place(shape, p, key) > 0, eager):
            problems.append(f"key {key_value}: the in-place decisions differ from the pure function's")
        kept = eager.float().mean().item()
        if abs(kept - (1 - p)) > 5 * ((p * (1 - p)) / eager.numel()) ** 0.5 + 1e-9:
            problems.append(f"key {key_value}: kept fraction {kept:.4f}, expected {1 - p}")
    return problems


def measure(shape: Sequence[int], p: float, repeats: int, warmup: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    channels = shape[-1]
    h = torch.randn(tuple(shape), generator=generator, requires_grad=True)
    weight = (torch.rand(channels, generator=generator) + 0.5).requires_grad_()
    bias = torch.randn(channels, generator=generator).requires_grad_()
    slope = torch.full((channels,), 0.25, requires_grad=True)
    grad = torch.randn(tuple(shape), generator=generator)
    key = torch.tensor(12345, dtype=torch.int64)
    shipped_compiled = compiled_norm_act_dropout()
    hash_compiled = torch.compile(norm_act_hash_dropout, dynamic=True)
    cpu = torch.device("cpu")

    def shipped_mask() -> torch.Tensor:
        return dropout_keep_scale(tuple(shape), p, torch.float32, cpu)

    def eager_shipped() -> None:
        eager_norm_act_dropout(h, weight, bias, slope, shipped_mask()).backward(grad)

    def eager_hash() -> None:
        eager_norm_act_dropout(h, weight, bias, slope, hash_keep_scale_in_place(shape, p, key)).backward(grad)

    def compiled_shipped() -> None:
        shipped_compiled(h, weight, bias, slope, shipped_mask()).backward(grad)

    def compiled_hash() -> None:
        hash_compiled(h, weight, bias, slope, p, key).backward(grad)

    def native() -> None:
        native_norm_act_dropout(h, weight, bias, slope, p, LAYER_NORM_EPS).backward(grad)

    result = {
        "mask_shipped_ms": median_ms(shipped_mask, repeats, warmup),
        "mask_hash_ms": median_ms(lambda: hash_keep_scale_in_place(shape, p, key), repeats, warmup),
        "eager_shipped_ms": median_ms(eager_shipped, repeats, warmup),
        "eager_hash_ms": median_ms(eager_hash, repeats, warmup),
        "compiled_shipped_ms": median_ms(compiled_shipped, repeats, warmup),
        "compiled_hash_ms": median_ms(compiled_hash, repeats, warmup),
    }
    if native_available():
        result["native_ms"] = median_ms(native, repeats, warmup)
    return result


def shape_argument(text: str) -> list[int]:
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give batch,time,channels as integers") from exc
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give three positive sizes, batch,time,channels")
    return shape


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=shape_argument, default=[256, 128, 96], help="batch,time,channels")
    parser.add_argument("--p", type=float, default=0.1, help="dropout probability")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--check-only", action="store_true", help="check the decisions, time nothing")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer sets it: large buffers reused, not mapped afresh each call
    problems = check(args.shape, args.p)
    if problems:
        sys.exit("hash dropout: " + "; ".join(problems))
    print(f"hash decisions: compiled == eager bit for bit, kept fraction 1 - {args.p} (shape {args.shape})")
    if args.check_only:
        return
    result = measure(args.shape, args.p, args.repeats, args.warmup)
    machine = machine_info(torch.device("cpu"))
    print(f"{machine['cpu']} | {machine['threads']} threads | torch {machine['torch']} | shape {args.shape}, "
          f"median ms of {args.repeats}")
    for what in ("mask", "eager", "compiled"):
        shipped, hashed = result[f"{what}_shipped_ms"], result[f"{what}_hash_ms"]
        print(f"{what:<9} shipped {shipped:8.2f}  hash {hashed:8.2f}  hash/shipped {hashed / shipped:5.2f}")
    if "native_ms" in result:
        native = result["native_ms"]
        print(f"native   {native:8.2f}  eager shipped/native {result['eager_shipped_ms'] / native:5.2f}  "
              f"compiled shipped/native {result['compiled_shipped_ms'] / native:5.2f}")
    else:
        print("native   skipped: the C kernel did not build here (a C compiler with OpenMP is needed)")
    if args.json is not None:
        record = {"shape": args.shape, "p": args.p, "repeats": args.repeats, "machine": machine, **result}
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
