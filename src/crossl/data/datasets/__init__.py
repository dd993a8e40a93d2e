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

#: name -> loader of every window of that dataset, the ones without a class (label -1) included:
#: the unlabeled pool that ``pretrain.unlabeled_windows`` adds to pretraining.
WITH_UNLABELED: dict[str, Callable[..., WindowSet]] = {
    "hapt": lambda quiet=False: hapt.load(num_classes=6, quiet=quiet, keep_unlabeled=True),
    "hapt12": lambda quiet=False: hapt.load(num_classes=12, quiet=quiet, keep_unlabeled=True),
}


def load_with_unlabeled(name: str, quiet: bool = False) -> WindowSet:
    """Every window of the built-in dataset ``name``, unlabeled ones (label -1) included."""
    if name not in WITH_UNLABELED:
        raise CrosslError(f"dataset '{name}' has no separate unlabeled pool (built-in: {sorted(WITH_UNLABELED)}); "
                          "for your own recordings set 'window.keep_unlabeled: true' in the import spec, which keeps "
                          "the unlabeled windows in the dataset itself, and drop pretrain.unlabeled_windows")
    return WITH_UNLABELED[name](quiet=quiet)


def load_dataset(name: str, quiet: bool = False) -> WindowSet:
    """A built-in dataset (``hapt``, ``hapt12``), a prepared preset (``crossl data prepare``: ``pamap2``,
    ``wesad``, ``sleepedf20``, ...) or a prepared dataset directory."""
    from crossl.data.presets import PRESETS, load_prepared

    if name in DATASETS:
        return DATASETS[name](quiet=quiet)
    if name in PRESETS:
        return load_prepared(name)
    from pathlib import Path

    if Path(name).is_dir():
        return WindowSet.load(name)
    raise CrosslError(f"unknown dataset '{name}'; use one of {sorted(DATASETS)}, a preset of {sorted(PRESETS)} "
                      "(after `crossl data prepare`), or a prepared dataset directory")


def dataset_modalities(name: str) -> tuple[str, ...]:
    """The modality names of what :func:`load_dataset` would load, read without loading any signal."""
    from pathlib import Path

    from crossl.data.container import DatasetMeta
    from crossl.data.presets import PRESETS

    if name in DATASETS:
        return ("acc", "gyro")
    if name in PRESETS:
        return tuple(PRESETS[name].spec.modalities)
    meta = Path(name) / "meta.json"
    if meta.is_file():
        import json

        try:
            return DatasetMeta.from_json(json.loads(meta.read_text(encoding="utf-8"))["meta"]).modality_names
        except (ValueError, KeyError, TypeError, CrosslError) as exc:
            raise CrosslError(f"cannot read {meta} ({type(exc).__name__}); re-create the dataset directory") from exc
    raise CrosslError(f"unknown dataset '{name}'; use one of {sorted(DATASETS)}, a preset of {sorted(PRESETS)}, "
                      "or a prepared dataset directory")
