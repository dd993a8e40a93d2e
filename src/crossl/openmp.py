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
``passive``, ``default`` or ``auto`` (the default): passive when other processes kept at least half
a core busy during a short sample at start-up. A load that starts later is not seen: set
``OMP_WAIT_POLICY=PASSIVE`` yourself for a process that will share its cores.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import MutableMapping

#: libgomp's own settings: when the user sets one, crossl changes nothing.
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: ``auto`` (default), ``passive`` or ``default``.
CHOICE_VARIABLE = "CROSSL_OMP_WAIT"
CHOICES = ("auto", "passive", "default")
#: Other processes' mean busy cores at or above which ``auto`` waits passively.
BUSY_CORES_THRESHOLD = 0.5
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
        busy = other_busy_cores(sample_seconds)
        choice = "passive" if busy is not None and busy >= BUSY_CORES_THRESHOLD else "default"
    if choice == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return choice


def other_busy_cores(seconds: float) -> float | None:
    """Mean number of cores that other processes kept busy over the next ``seconds``; None off Linux."""
    start = _busy_seconds()
    if start is None:
        return None
    time.sleep(seconds)
    end = _busy_seconds()
    if end is None:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / seconds)


def _busy_seconds() -> tuple[float, float] | None:
    """(CPU seconds busy on the whole machine, CPU seconds of this process) so far."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    own = resource.getrusage(resource.RUSAGE_SELF)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own.ru_utime + own.ru_stime


def cell_wait_policy(jobs: int, threads: int, cores: int) -> str:
    """The ``CROSSL_OMP_WAIT`` for a grid's cells: passive where ``jobs x threads`` is above the cores
    (the cells will share cores), default where each thread has a core of its own (the cells would
    otherwise see each other start and wait passively for nothing)."""
    return "passive" if jobs * threads > cores else "default"
