"""Public datasets, one module each, behind one registry."""

from __future__ import annotations

from collections.abc import Callable

from crossl.data.container import WindowSet
from crossl.data.datasets import hapt
from crossl.errors import CrosslError

#: name -> loader returning prepared windows (fetching and caching on first use).
DATASETS: dict[str, Callable[..., WindowSet]] = {
    "hapt": lambda quiet=False: hapt.load(num_classes=6, quiet=quiet),
    "hapt12": lambda quiet=False: hapt.load(num_classes=12, quiet=quiet),
}


def load_dataset(name: str, quiet: bool = False) -> WindowSet:
    """A built-in dataset by name (``hapt``, ``hapt12``) or a prepared dataset directory."""
    if name in DATASETS:
        return DATASETS[name](quiet=quiet)
    from pathlib import Path

    if Path(name).is_dir():
        return WindowSet.load(name)
    raise CrosslError(f"unknown dataset '{name}'; use one of {sorted(DATASETS)} or a prepared dataset directory")
