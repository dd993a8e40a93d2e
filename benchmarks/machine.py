"""Machine facts and page-cache control shared by the benchmark scripts (no torch import)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown"


def drop_from_page_cache(directory: Path) -> None:
    """Write every file under ``directory`` out and evict it from the page cache, so that the next
    read comes from disk (and, in a cgroup, is charged to the process that reads it)."""
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description="Print the CPU model the benchmark records name.").parse_args()
    print(cpu_model())
