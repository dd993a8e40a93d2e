"""Losses across processes: 2 CPU processes (gloo) equal one process on the same global batch."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from crossl.losses import CocoaLoss, MaskedReconstructionLoss, NTXentLoss, VICRegLoss, draw_patch_mask

GLOBAL_BATCH = 16
WORLD = 2


def make_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small embedding network and two views of one global batch."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 8))
    x_a, x_b = torch.randn(GLOBAL_BATCH, 6), torch.randn(GLOBAL_BATCH, 6)
    return net, x_a, x_b


def reconstruction_targets() -> tuple[torch.Tensor, torch.Tensor]:
    """Targets (batch, time 4, channels 2) and a patch mask whose masked count differs between the halves."""
    g = torch.Generator().manual_seed(1)
    target = torch.randn(GLOBAL_BATCH, 4, 2, generator=g)
    return target, draw_patch_mask(GLOBAL_BATCH, 4, 1, 0.5, g)


def cocoa_presence() -> torch.Tensor:
    """(batch, 2) with a few absent modalities, more in the second half: global counts are needed."""
    presence = torch.ones(GLOBAL_BATCH, 2, dtype=torch.bool)
    presence[[1, 9, 10, 12], 1] = False
    presence[5, 0] = False
    return presence


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, slice, bool], torch.Tensor]


def _vicreg(net: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, rows: slice, gather: bool) -> torch.Tensor:
    return VICRegLoss(gather_distributed=gather)(net(x_a[rows]), net(x_b[rows]))


def _ntxent(net: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, rows: slice, gather: bool) -> torch.Tensor:
    return NTXentLoss(temperature=0.5, gather_distributed=gather)(net(x_a[rows]), net(x_b[rows]))


def _cocoa(net: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, rows: slice, gather: bool) -> torch.Tensor:
    # The 8 outputs as 2 modalities x 4 dims; tau 0.5 keeps exp() small enough for float32 tolerances.
    q = net(x_a[rows]).reshape(-1, 2, 4)
    return CocoaLoss(temperature=0.5, gather_distributed=gather)(q, cocoa_presence()[rows])


def _reconstruction(net: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, rows: slice, gather: bool) -> torch.Tensor:
    target, masked = reconstruction_targets()
    return MaskedReconstructionLoss(gather_distributed=gather)(net(x_a[rows]).reshape(-1, 4, 2), target[rows], masked[rows])


LOSSES: dict[str, LossFn] = {"vicreg": _vicreg, "ntxent": _ntxent, "cocoa": _cocoa, "reconstruction": _reconstruction}
HALVES = (slice(0, GLOBAL_BATCH // 2), slice(GLOBAL_BATCH // 2, GLOBAL_BATCH))


def loss_and_grads(
    name: str, net: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, rows: slice, gather: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    net.zero_grad()
    loss = LOSSES[name](net, x_a, x_b, rows, gather)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in net.parameters()]


def worker(rank: int, port: int, out_dir: str, name: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        net, x_a, x_b = make_problem()
        loss, grads = loss_and_grads(name, net, x_a, x_b, HALVES[rank], gather=True)
        # What DDP does with gradients and what the logger does with the loss: average over ranks.
        for tensor in [loss, *grads]:
            dist.all_reduce(tensor)
            tensor /= WORLD
        if rank == 0:
            torch.save({"loss": loss, "grads": grads}, Path(out_dir) / "ddp.pt")
        dist.barrier()  # no rank tears gloo down while another still uses it
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("name", list(LOSSES))
def test_two_process_loss_equals_single_process(name: str, tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(worker, args=(free_port(), str(tmp_path), name), nprocs=WORLD, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    net, x_a, x_b = make_problem()
    loss, grads = loss_and_grads(name, net, x_a, x_b, slice(None), gather=False)
    torch.testing.assert_close(ddp["loss"], loss, rtol=1e-5, atol=1e-6)
    for got, expected in zip(ddp["grads"], grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["vicreg", "ntxent", "cocoa", "reconstruction"])
def test_without_gathering_two_processes_differ_from_one(name: str) -> None:
    """The check above can fail: per-process batches alone (statistics, negatives, masked counts) give another loss."""
    net, x_a, x_b = make_problem()
    whole, _ = loss_and_grads(name, net, x_a, x_b, slice(None), gather=False)
    halves = [loss_and_grads(name, net, x_a, x_b, rows, gather=False)[0] for rows in HALVES]
    assert not torch.allclose(torch.stack(halves).mean(), whole, rtol=1e-3)


def test_halves_have_different_counts() -> None:
    """Without this, the reconstruction and COCOA equivalences above would hold even with local counts."""
    _, masked = reconstruction_targets()
    assert masked[HALVES[0]].sum() != masked[HALVES[1]].sum()
    presence = cocoa_presence()
    assert presence[HALVES[0]].sum() != presence[HALVES[1]].sum()
