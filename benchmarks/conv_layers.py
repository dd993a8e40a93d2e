"""Each encoder convolution's forward, input gradient and weight gradient: time, FLOP rate, share.

A crossl pretraining step spends most of its time in the three convolutions of each modality's
TCN encoder and their gradients. This script times those pieces one by one, as the package runs
them (``ConvBlock.convolve``: a 2-D convolution on a channels-last view of ``(batch, time,
channels)``), for one modality of a shape at a batch size, and sets them beside the whole step
(``pretrain_speed.py``'s ``crossl`` step, measured in the same process):

- ``forward``: the convolution;
- ``grad input``: the gradient with respect to its input (not needed for the first layer in
  training, whose input is the data: autograd skips it there);
- ``grad weight``: the gradients of weight and bias.

Each piece's FLOP rate is set against the machine's fastest fp32 kernel measured in the same run
(``pretrain_speed.convolution_peak_flops``); ``share`` is (piece time x modalities) / step time.
With ``--precision bf16-mixed`` the pieces and the step run under bf16 autocast, as training with
``--precision bf16-mixed`` runs them; the peak stays the fp32 one, so on a CPU with bf16 matrix
units (AMX) a piece can run above 100% of it.

    python benchmarks/conv_layers.py --shape hapt --batch 256 --threads 2 --repeats 20 [--precision bf16-mixed] --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from pretrain_speed import (
    DIM,
    KERNEL_SIZES,
    PRECISIONS,
    SHAPES,
    autocast,
    convolution_peak_flops,
    crossl_step_seconds,
    machine_info,
    median_ms,
)

from crossl.allocator import keep_freed_memory
from crossl.models.encoders import ConvBlock


@dataclass
class PieceRecord:
    layer: int
    in_channels: int
    out_channels: int
    kernel: int
    piece: str
    median_ms: float
    gflop_per_s: float
    share_of_peak: float
    share_of_step: float


def step_ms(shape: str, batch_size: int, repeats: int, warmup: int, precision: str) -> float:
    """Median milliseconds of the whole crossl pretraining step at ``precision`` on this shape and batch."""
    return 1e3 * statistics.median(crossl_step_seconds(shape, batch_size, repeats, warmup, precision))


def time_pieces(block: ConvBlock, x: torch.Tensor, grad: torch.Tensor, repeats: int, warmup: int,
                precision: str) -> dict[str, float]:
    """Median milliseconds of ``block``'s convolution forward, input gradient and weight gradient on ``x``."""
    cpu = torch.device("cpu")

    def forward() -> object:
        with torch.no_grad(), autocast(cpu, precision):
            return block.convolve(x)

    def grad_input() -> object:
        with autocast(cpu, precision):
            out = block.convolve(x)
        return torch.autograd.grad(out, [x], grad.to(out.dtype))

    def grad_weight() -> object:
        with autocast(cpu, precision):
            out = block.convolve(x.detach())
        return torch.autograd.grad(out, [block.conv.weight, block.conv.bias], grad.to(out.dtype))

    forward_ms = median_ms(forward, repeats, warmup)
    # autograd's backward for one input includes the forward it differentiates: subtract it
    return {"forward": forward_ms,
            "grad input": max(0.0, median_ms(grad_input, repeats, warmup) - forward_ms),
            "grad weight": max(0.0, median_ms(grad_weight, repeats, warmup) - forward_ms)}


def layer_pieces(shape: str, batch_size: int, repeats: int, warmup: int, peak: float, step: float,
                 precision: str = "32") -> list[PieceRecord]:
    time_steps, channels = next(iter(SHAPES[shape].values()))
    modalities = len(SHAPES[shape])
    widths = [channels, DIM // 4, DIM // 2, DIM]
    generator = torch.Generator().manual_seed(0)
    records = []
    for layer, kernel in enumerate(KERNEL_SIZES):
        block = ConvBlock(widths[layer], widths[layer + 1], kernel, dropout=0.0)
        x = torch.randn((batch_size, time_steps, widths[layer]), generator=generator, requires_grad=True)
        out = block.convolve(x)
        grad = torch.randn(out.shape, generator=generator).contiguous()
        flops = 2 * batch_size * time_steps * widths[layer] * widths[layer + 1] * kernel
        pieces = time_pieces(block, x, grad, repeats, warmup, precision)
        for piece, ms in pieces.items():
            rate = flops / (ms / 1e3) if ms > 0 else float("nan")
            records.append(PieceRecord(layer + 1, widths[layer], widths[layer + 1], kernel, piece, ms, rate / 1e9,
                                       rate / peak, ms * modalities / step))
    return records


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=tuple(SHAPES), default="hapt")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=PRECISIONS, default="32")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = convolution_peak_flops(torch.device("cpu"), args.repeats)
    step = step_ms(args.shape, args.batch, args.repeats, args.warmup, args.precision)
    records = layer_pieces(args.shape, args.batch, args.repeats, args.warmup, peak, step, args.precision)
    print(f"{args.shape} batch {args.batch} {args.precision}: step {step:.1f} ms; "
          f"fp32 convolution peak {peak / 1e9:.1f} GFLOP/s; "
          f"{len(SHAPES[args.shape])} modalities")
    print(f"{'layer':>5} {'in->out':>8} {'k':>3} {'piece':<12} {'ms':>7} {'GFLOP/s':>8} {'of peak':>8} {'of step':>8}")
    for r in records:
        print(f"{r.layer:>5} {f'{r.in_channels}->{r.out_channels}':>8} {r.kernel:>3} {r.piece:<12} {r.median_ms:>7.2f} "
              f"{r.gflop_per_s:>8.1f} {100 * r.share_of_peak:>7.1f}% {100 * r.share_of_step:>7.1f}%")
    trained = [r for r in records if not (r.layer == 1 and r.piece == "grad input")]
    print(f"convolutions as trained (layer 1 without its input gradient): "
          f"{100 * sum(r.share_of_step for r in trained):.1f}% of the step")
    if args.json is not None:
        payload = {"shape": args.shape, "batch": args.batch, "precision": args.precision, "step_ms": step, "peak_flops": peak,
                   "machine": machine_info(torch.device("cpu")), "pieces": [asdict(r) for r in records]}
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        partial.replace(args.json)


if __name__ == "__main__":
    main()
