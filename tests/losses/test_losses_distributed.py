"""VICReg across processes: 2 CPU processes (gloo) equal one process on the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from crossl.losses import VICRegLoss

GLOBAL_BATCH = 16
WORLD = 2


def make_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small embedding network and two views of one global batch."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 8))
    x_a, x_b = torch.randn(GLOBAL_BATCH, 6), torch.randn(GLOBAL_BATCH, 6)
    return net, x_a, x_b


def loss_and_grads(net: nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, gather: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    net.zero_grad()
    loss = VICRegLoss(gather_distributed=gather)(net(x_a), net(x_b))
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in net.parameters()]


def worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        net, x_a, x_b = make_problem()
        local = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
        loss, grads = loss_and_grads(net, x_a[local], x_b[local], gather=True)
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


def test_two_process_vicreg_equals_single_process(tmp_path: Path) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    net, x_a, x_b = make_problem()
    loss, grads = loss_and_grads(net, x_a, x_b, gather=False)
    torch.testing.assert_close(ddp["loss"], loss, rtol=1e-5, atol=1e-6)
    for got, expected in zip(ddp["grads"], grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_without_gathering_two_processes_differ_from_one() -> None:
    """The check above can fail: per-process statistics alone give another loss."""
    net, x_a, x_b = make_problem()
    whole, _ = loss_and_grads(net, x_a, x_b, gather=False)
    halves = [loss_and_grads(net, x_a[s], x_b[s], gather=False)[0] for s in (slice(0, 8), slice(8, 16))]
    assert not torch.allclose(torch.stack(halves).mean(), whole, rtol=1e-3)
