"""Where this process stands in a multi-process (DDP) pretraining, known before the fit starts.

Lightning's ``ddp`` launcher re-runs the command line once per extra device; ``srun`` and
``torchrun`` start every process themselves. Every process runs the same command, so each must
know before it writes anything whether it is rank 0, the one process that owns the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException

from crossl.config import TrainerConfig
from crossl.errors import CrosslError
from crossl.training import build_trainer


@dataclass(frozen=True)
class Placement:
    """This process's global rank among the ``world_size`` processes of a fit; rank 0 owns the run."""

    rank: int
    world_size: int
    #: The processes were started outside this one (srun, torchrun, or Lightning's launcher for
    #: this very process): they cannot inherit anything this process decides.
    external: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def placement(config: TrainerConfig) -> Placement:
    """This process's global rank and the number of processes of a fit with ``config``.

    Asks Lightning, which reads what the launcher put in the environment (``LOCAL_RANK`` and
    ``NODE_RANK`` from its own launcher, ``SLURM_PROCID``, torchrun's ``RANK``), exactly as the fit
    will; building a trainer is cheap and starts nothing.
    """
    try:
        trainer = build_trainer(config, None, progress=False)
    except (MisconfigurationException, ValueError, RuntimeError) as exc:
        raise CrosslError(f"cannot place pretraining with accelerator '{config.accelerator}', devices "
                          f"'{config.devices}', {config.num_nodes} node(s), strategy '{config.strategy}': {exc}") from exc
    environment = getattr(trainer.strategy, "cluster_environment", None)
    external = bool(environment is not None and environment.creates_processes_externally)
    return Placement(trainer.global_rank, trainer.world_size, external)


def per_process_batch(batch_size: int, world_size: int) -> int:
    """Rows each process takes from a global batch of ``batch_size``; it must split evenly."""
    if batch_size % world_size:
        raise CrosslError(f"batch size {batch_size} is the global batch and must split evenly across "
                          f"{world_size} processes (devices x nodes); use a multiple of {world_size}")
    return batch_size // world_size


def one_device(config: TrainerConfig) -> TrainerConfig:
    """``config`` for a single process on one device: the first of ``devices`` when it lists ids."""
    first = config.devices.split(",")[0].strip() + "," if "," in config.devices else "1"
    return replace(config, devices=first, num_nodes=1, strategy="auto")


def leave_process_group() -> None:
    """Every process leaves the process group together after the fit: rank 0 can then go on alone
    (downstream evaluation) and no process later waits on one that has exited."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
