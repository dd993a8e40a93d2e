"""OpenMP's wait policy, chosen once per process before torch starts OpenMP.

Why. torch's CPU build runs its parallel regions on GNU OpenMP. Between regions an idle thread
spins for a while before it sleeps. On cores that no other process wants, that is the fastest
choice; when other work takes cores (a second training, a benchmark grid with more jobs x threads
than cores), a region's thread waits for a core while its partners spin on theirs, and the step
slows by an order of magnitude: two HAPT pretrainings at batch 64 with 2 threads each on 2 cores
ran at 40-273 windows/s each instead of about 900 alone; with ``OMP_WAIT_POLICY=PASSIVE`` (sleep at
once) at 556-609 each, in proportion to the cores taken (``docs/performance.md``,
``benchmarks/oversubscription.py``). Passive waiting costs 15-25% on an idle machine at that
shape, so it is chosen only where cores are seen busy.

The choice (:func:`choose_wait_policy`, called by the command line before anything imports torch):
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set by the user win; otherwise ``CROSSL_OMP_WAIT`` says
``passive``, ``default`` or ``auto`` (the default): passive when, during a short sample at
start-up, other processes kept so much of the cores this process may run on busy that fewer are
free than it will start threads (half a core of slack). Only the cores in this process's CPU
affinity count, so a container pinned to some cores of a busy host judges its own. A load that
starts later is not seen: set ``OMP_WAIT_POLICY=PASSIVE`` yourself for a process that will share
its cores.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Mapping, MutableMapping

#: libgomp's own settings: when the user sets one, crossl changes nothing.
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: ``auto`` (default), ``passive`` or ``default``.
CHOICE_VARIABLE = "CROSSL_OMP_WAIT"
CHOICES = ("auto", "passive", "default")
#: How much of a core other processes may keep busy beyond the cores this process leaves free.
BUSY_CORES_SLACK = 0.5
SAMPLE_SECONDS = 0.2


def choose_wait_policy(environ: MutableMapping[str, str] | None = None,
                       sample_seconds: float = SAMPLE_SECONDS) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``environ`` (default ``os.environ``) where it is chosen.

    Returns what was decided: ``"passive"``, ``"default"`` (left as libgomp starts), ``"user"`` (the
    user's own OpenMP settings stand) or ``"too late"`` (torch, and with it OpenMP, already started
    in this process, so nothing can change).
    """
    env = os.environ if environ is None else environ
    if any(v in env for v in USER_VARIABLES):
        return "user"
    if "torch" in sys.modules:
        return "too late"
    choice = env.get(CHOICE_VARIABLE, "auto")
    if choice not in CHOICES:
        from crossl.errors import CrosslError

        raise CrosslError(f"{CHOICE_VARIABLE}={choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "auto":
        cores = allowed_cores()
        busy = other_busy_cores(sample_seconds, cores)
        threads = planned_threads(env, len(cores))
        choice = "passive" if busy is not None and cores_too_busy(busy, len(cores), threads) else "default"
    if choice == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return choice


def cores_too_busy(other_busy: float, cores: int, threads: int) -> bool:
    """Whether ``threads`` OpenMP threads would share cores: other processes keep ``other_busy``
    cores' worth of the ``cores`` allowed busy, leaving fewer than ``threads`` free (with slack)."""
    return other_busy >= max(0, cores - threads) + BUSY_CORES_SLACK


def planned_threads(environ: Mapping[str, str], cores: int) -> int:
    """The threads torch will start: ``OMP_NUM_THREADS`` when it is a positive whole number, else
    one per allowed core (torch's default)."""
    text = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(text) if text.isdigit() and int(text) > 0 else cores


def allowed_cores() -> set[int]:
    """The CPUs this process may run on (its affinity; every CPU where that is not known)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def other_busy_cores(seconds: float, cores: set[int] | None = None) -> float | None:
    """Mean number of the ``cores`` (default: :func:`allowed_cores`) that other processes kept busy
    over the next ``seconds``; None where ``/proc/stat`` cannot be read (off Linux)."""
    cores = allowed_cores() if cores is None else cores
    start = _busy_seconds(cores)
    if start is None:
        return None
    time.sleep(seconds)
    end = _busy_seconds(cores)
    if end is None:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / seconds)


def _busy_seconds(cores: set[int]) -> tuple[float, float] | None:
    """(CPU seconds busy on ``cores`` so far, CPU seconds of this process so far)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    ticks = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
            ticks += user + nice + system + irq + softirq + steal
    own = resource.getrusage(resource.RUSAGE_SELF)
    return ticks / os.sysconf("SC_CLK_TCK"), own.ru_utime + own.ru_stime


def cell_wait_policy(jobs: int, threads: int, cores: int) -> str:
    """The ``CROSSL_OMP_WAIT`` for a grid's cells: passive where ``jobs x threads`` is above the cores
    (the cells will share cores), default where each thread has a core of its own (the cells would
    otherwise see each other start and wait passively for nothing)."""
    return "passive" if jobs * threads > cores else "default"
