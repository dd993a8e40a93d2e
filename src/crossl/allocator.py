"""The C allocator's handling of freed memory, set once per training process.

Why. A training step allocates and frees the same large activation tensors every step. glibc's
malloc serves a block above its mmap threshold (which adapts, but never above 32 MiB on 64-bit)
with its own ``mmap`` and unmaps it on ``free``, and gives memory freed at the top of the heap back
to the kernel once more than the trim threshold is free. The next step then faults every page in
again: at the PAMAP2 shape, batch 256, about half a million minor page faults a step, measured in
``docs/performance.md``. With mmap turned off and trimming set out of reach, freed blocks stay in
the heap and the next step reuses them: after the first steps, no faults at all.

Cost. The process keeps the memory of its largest step for its lifetime instead of returning it
between steps; its peak is unchanged, since that memory was needed at the peak anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: ``mallopt`` parameters from glibc's ``<malloc.h>``.
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: ``mallopt`` takes an ``int``: the largest trim threshold it can hold.
NEVER_TRIM = 2**31 - 1
#: Set to ``0`` to leave the allocator as the C library configured it.
ENV_SWITCH = "CROSSL_KEEP_FREED_MEMORY"

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the heap for reuse (no mmap for large blocks, no trimming).

    Applied once per process; later calls return the first answer. Returns True when applied,
    False where the C library is not glibc (musl, macOS, Windows) or ``CROSSL_KEEP_FREED_MEMORY=0``.
    ``MALLOC_MMAP_MAX_`` or ``MALLOC_TRIM_THRESHOLD_`` in the environment are glibc's own settings
    and win: then nothing is changed here either.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    if "MALLOC_MMAP_MAX_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or None when the C library is another one."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 -- glibc only: raises AttributeError elsewhere
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc
