"""The data container: a set of multimodal windows.

A :class:`WindowSet` holds, for N windows and M modalities,

- one float32 array per modality of shape ``(N, T_m, C_m)``: every modality keeps its own length
  ``T_m`` (its own sampling rate) and channel count ``C_m``;
- ``presence``: bool ``(N, M)``, False where a modality is missing for a window (its values are
  then ignored; they are stored as zeros);
- ``labels``: int64 ``(N,)`` class indices, ``-1`` for unlabeled windows;
- ``subjects``: int64 ``(N,)`` subject ids, used for subject-wise splits;
- ``meta``: names of modalities, channels and classes, sampling rates.

On disk it is a directory of ``.npy`` files (memory-mappable) plus ``meta.json``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from mmap import MADV_RANDOM, MADV_SEQUENTIAL, PAGESIZE
from pathlib import Path
from typing import Literal

import numpy as np

from crossl.errors import CrosslError
from crossl.io import write_json_atomic

FORMAT_VERSION = 1

#: Passes over whole arrays (value checks, channel statistics) read this many bytes at a time, so
#: that a memory-mapped set larger than RAM is never copied into memory at once.
CHUNK_BYTES = 32 << 20


def row_chunks(num_rows: int, row_bytes: int) -> Iterator[slice]:
    """Consecutive slices over ``num_rows`` rows of ``row_bytes`` each, about :data:`CHUNK_BYTES` per slice."""
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    for start in range(0, num_rows, step):
        yield slice(start, min(num_rows, start + step))


def advise(arr: np.ndarray, advice: int) -> None:
    """``madvise`` the pages of ``arr`` if it is memory-mapped (``np.load(mmap_mode=...)``), else nothing."""
    mapping = getattr(arr, "_mmap", None)
    if mapping is None or arr.size == 0:
        return
    begin = arr.ctypes.data - np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    aligned = begin - begin % PAGESIZE
    mapping.madvise(advice, aligned, begin - aligned + arr.nbytes)


@contextmanager
def sequential_pass(arrays: Iterable[np.ndarray]) -> Iterator[None]:
    """Read memory-mapped ``arrays`` in stored order inside this block, at random after it.

    Batches read windows at random: with the kernel's default readahead around each page fault
    (``read_ahead_kb``, 8 MiB on some disks) every window would pull in megabytes and thrash a page
    cache smaller than the set, so random access (``MADV_RANDOM``) is the state a pass leaves behind.
    A pass in stored order (value checks, channel statistics) wants the opposite: ``MADV_SEQUENTIAL``.
    """
    arrays = list(arrays)
    for arr in arrays:
        advise(arr, MADV_SEQUENTIAL)
    try:
        yield
    finally:
        for arr in arrays:
            advise(arr, MADV_RANDOM)


@dataclass(frozen=True)
class DatasetMeta:
    """What the arrays mean."""

    name: str
    modality_names: tuple[str, ...]
    channel_names: dict[str, tuple[str, ...]]
    sampling_rates: dict[str, float]
    class_names: tuple[str, ...]
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> DatasetMeta:
        try:
            channel_names = {k: tuple(v) for k, v in dict(obj["channel_names"]).items()}  # type: ignore[call-overload]
            return cls(
                name=str(obj["name"]),
                modality_names=tuple(obj["modality_names"]),  # type: ignore[arg-type]
                channel_names=channel_names,
                sampling_rates={k: float(v) for k, v in dict(obj["sampling_rates"]).items()},  # type: ignore[call-overload]
                class_names=tuple(obj["class_names"]),  # type: ignore[arg-type]
                extra=dict(obj.get("extra", {})),  # type: ignore[call-overload]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CrosslError(f"dataset metadata is malformed ({exc!r}); re-create the dataset directory") from exc


def is_dataset_directory(directory: Path) -> bool:
    """True for a directory :meth:`WindowSet.save` wrote: its ``meta.json`` and only its own files."""
    meta = directory / "meta.json"
    try:
        header = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(header, dict) or "format_version" not in header or "meta" not in header:
        return False
    own = {"meta.json", "presence.npy", "labels.npy", "subjects.npy"}
    return all(p.name in own or (p.name.startswith("modality_") and p.suffix == ".npy") for p in directory.iterdir())


def _integer_array(values: object, what: str) -> np.ndarray:
    """``values`` as int64, refusing (not truncating) anything that is not a whole number."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise CrosslError(f"{what} have dtype {arr.dtype}; pass integers")
    if not np.issubdtype(arr.dtype, np.integer):
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            bad = arr[~whole].ravel()[0]
            raise CrosslError(f"{what} must be whole numbers; found {float(bad):g}: pass integer class indices or ids")
    return arr.astype(np.int64)


@dataclass
class WindowSet:
    """N windows of M modalities; see the module docstring for shapes."""

    modalities: dict[str, np.ndarray]
    presence: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    meta: DatasetMeta

    def __post_init__(self) -> None:
        self.validate()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def modality_names(self) -> tuple[str, ...]:
        return self.meta.modality_names

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """Per-modality ``(T_m, C_m)``."""
        return {m: (int(a.shape[1]), int(a.shape[2])) for m, a in self.modalities.items()}

    def validate(self, check_values: bool = True) -> None:
        """Raise :class:`CrosslError` naming the first inconsistency found."""
        names = self.meta.modality_names
        if tuple(self.modalities) != names:
            raise CrosslError(
                f"modality arrays {list(self.modalities)} do not match metadata {list(names)}; "
                "pass one array per modality, in the metadata's order"
            )
        n = self.labels.shape[0] if self.labels.ndim == 1 else -1
        if n < 0:
            raise CrosslError(f"labels must have shape (N,), got {self.labels.shape}")
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise CrosslError(f"labels have dtype {self.labels.dtype}; pass integer class indices (-1 = unlabeled)")
        for m, arr in self.modalities.items():
            if arr.ndim != 3 or arr.shape[0] != n:
                raise CrosslError(
                    f"modality '{m}' has shape {arr.shape}; expected (N={n}, time, channels)"
                )
            if arr.dtype != np.float32:
                raise CrosslError(f"modality '{m}' has dtype {arr.dtype}; convert it to float32")
            if arr.shape[1] == 0 or arr.shape[2] == 0:
                raise CrosslError(f"modality '{m}' has shape {arr.shape}: a window needs at least one time step and "
                                  "one channel; drop that modality or fix its arrays")
            n_ch = len(self.meta.channel_names.get(m, ()))
            if n_ch != arr.shape[2]:
                raise CrosslError(
                    f"modality '{m}' has {arr.shape[2]} channels but metadata names {n_ch}"
                )
        if self.presence.shape != (n, len(names)) or self.presence.dtype != np.bool_:
            raise CrosslError(
                f"presence mask must be bool of shape (N={n}, M={len(names)}), "
                f"got {self.presence.dtype} {self.presence.shape}"
            )
        if self.subjects.shape != (n,):
            raise CrosslError(f"subjects must have shape (N={n},), got {self.subjects.shape}")
        if n and not bool(self.presence.any(axis=1).all()):
            empty = int(np.flatnonzero(~self.presence.any(axis=1))[0])
            raise CrosslError(f"window {empty} has no modality present; drop it before building the set")
        num_classes = self.meta.num_classes
        if n and (self.labels.min() < -1 or self.labels.max() >= num_classes):
            raise CrosslError(
                f"labels must lie in -1..{num_classes - 1} (-1 = unlabeled); "
                f"found {int(self.labels.min())}..{int(self.labels.max())}"
            )
        if check_values:
            for i, (m, arr) in enumerate(self.modalities.items()):
                with sequential_pass([arr]):
                    bad = [
                        part.start + np.flatnonzero(self.presence[part, i] & ~np.isfinite(arr[part]).all(axis=(1, 2)))
                        for part in row_chunks(n, arr[0].nbytes if n else 0)
                    ]
                num_bad = sum(b.size for b in bad)
                if num_bad:
                    first = int(next(b[0] for b in bad if b.size))
                    raise CrosslError(
                        f"modality '{m}' has NaN or inf values in {num_bad} window(s) "
                        f"(first: {first}); fill or drop them, or mark them absent in the presence mask"
                    )

    @classmethod
    def from_arrays(
        cls,
        modalities: Mapping[str, np.ndarray],
        labels: np.ndarray | Sequence[int] | None = None,
        subjects: np.ndarray | Sequence[int] | None = None,
        presence: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        sampling_rates: Mapping[str, float] | None = None,
        name: str = "arrays",
    ) -> WindowSet:
        """Build a set from plain arrays ``{modality: (N, T_m, C_m)}``.

        NaN anywhere in a window's modality marks that modality absent for the window (unless a
        presence mask is given). Missing labels mean unlabeled; missing subjects mean one subject.
        """
        if not modalities:
            raise CrosslError("no modalities given; pass a dict {name: array of shape (N, time, channels)}")
        arrays: dict[str, np.ndarray] = {}
        for m, a in modalities.items():
            arr = np.asarray(a)
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if arr.ndim != 3:
                raise CrosslError(f"modality '{m}' has shape {arr.shape}; expected (N, time, channels)")
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
                raise CrosslError(f"modality '{m}' has dtype {arr.dtype}; pass real numbers (float32 is used)")
            # A copy: absent modalities are zero-filled below, never in the caller's array.
            arrays[str(m)] = np.array(arr, dtype=np.float32, order="C", copy=True)
        counts = {m: a.shape[0] for m, a in arrays.items()}
        if len(set(counts.values())) > 1:
            raise CrosslError(f"modalities hold different numbers of windows {counts}; every modality needs one row per window")
        n = next(iter(arrays.values())).shape[0]
        if presence is None:
            presence = np.stack([~np.isnan(a).any(axis=(1, 2)) for a in arrays.values()], axis=1)
        presence = np.asarray(presence, dtype=bool)
        for i, arr in enumerate(arrays.values()):
            if arr.shape[0] == n and presence.shape == (n, len(arrays)):
                arr[~presence[:, i]] = 0.0
        label_arr = np.full(n, -1, np.int64) if labels is None else _integer_array(labels, "labels")
        subject_arr = np.zeros(n, np.int64) if subjects is None else _integer_array(subjects, "subjects")
        if class_names is None:
            num_classes = int(label_arr.max()) + 1 if label_arr.size and label_arr.max() >= 0 else 0
            class_names = [str(c) for c in range(num_classes)]
        meta = DatasetMeta(
            name=name,
            modality_names=tuple(arrays),
            channel_names={m: tuple(f"{m}{c}" for c in range(a.shape[2])) for m, a in arrays.items()},
            sampling_rates={m: float((sampling_rates or {}).get(m, 1.0)) for m in arrays},
            class_names=tuple(class_names),
        )
        return cls(arrays, presence, label_arr, subject_arr, meta)

    def subset(self, indices: np.ndarray) -> WindowSet:
        """The windows at ``indices`` (a copy in memory)."""
        idx = np.asarray(indices, dtype=np.int64)
        return WindowSet(
            {m: np.ascontiguousarray(a[idx]) for m, a in self.modalities.items()},
            self.presence[idx],
            self.labels[idx],
            self.subjects[idx],
            self.meta,
        )

    def with_meta(self, meta: DatasetMeta) -> WindowSet:
        """The same windows described by ``meta`` (same modalities and classes, other ``extra``)."""
        return WindowSet(self.modalities, self.presence, self.labels, self.subjects, meta)

    def with_modalities(self, modalities: dict[str, np.ndarray]) -> WindowSet:
        """The same windows with replaced modality arrays (e.g. after normalisation)."""
        return WindowSet(modalities, self.presence, self.labels, self.subjects, self.meta)

    def only_modalities(self, names: Sequence[str]) -> WindowSet:
        """The same windows with only the modalities ``names`` (in this set's order; arrays shared)."""
        unknown = [n for n in names if n not in self.modality_names]
        if unknown or not names:
            raise CrosslError(f"cannot keep modalities {list(names)}: {self.meta.name} has {list(self.modality_names)}; "
                              "name at least one of them")
        kept = tuple(m for m in self.modality_names if m in names)
        columns = [self.modality_names.index(m) for m in kept]
        meta = replace(self.meta, modality_names=kept,
                       channel_names={m: self.meta.channel_names[m] for m in kept if m in self.meta.channel_names},
                       sampling_rates={m: self.meta.sampling_rates[m] for m in kept if m in self.meta.sampling_rates})
        return WindowSet({m: self.modalities[m] for m in kept}, self.presence[:, columns], self.labels, self.subjects, meta)

    def save(self, directory: str | Path) -> Path:
        """Write the set to ``directory`` atomically (built aside, then renamed into place)."""
        return WindowSet.save_chunks(directory, [self], len(self))

    @staticmethod
    def save_chunks(directory: str | Path, chunks: Iterable[WindowSet], num_windows: int) -> Path:
        """Write consecutive ``chunks`` (same metadata) as one set of ``num_windows`` windows, atomically.

        Modality files are filled through memory maps, so memory holds one chunk at a time: this
        prepares sets larger than RAM. The files are those :meth:`save` writes.
        """
        directory = Path(directory)
        if directory.exists() and not is_dataset_directory(directory):
            if not directory.is_dir():
                raise CrosslError(f"{directory} is a file; choose a directory path for the dataset")
            if any(directory.iterdir()):
                raise CrosslError(f"{directory} exists and is not a crossl dataset directory; crossl never replaces "
                                  "what it did not write: choose a new or empty directory")
        tmp = directory.with_name(f".{directory.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        meta: DatasetMeta | None = None
        files: list[np.memmap] = []
        small: dict[str, list[np.ndarray]] = {"presence": [], "labels": [], "subjects": []}
        filled = 0
        for chunk in chunks:
            if meta is None:
                meta = chunk.meta
                files = [
                    np.lib.format.open_memmap(tmp / f"modality_{i}.npy", mode="w+", dtype=np.float32,
                                              shape=(num_windows, *arr.shape[1:]))
                    for i, arr in enumerate(chunk.modalities.values())
                ]
            if chunk.meta != meta or any(f.shape[1:] != a.shape[1:] for f, a in zip(files, chunk.modalities.values())):
                raise CrosslError("chunks differ in metadata or window shapes; "
                                  "write one dataset's windows per directory")
            if filled + len(chunk) > num_windows:
                raise CrosslError(f"chunks hold more than num_windows={num_windows} windows; pass their total count")
            for f, arr in zip(files, chunk.modalities.values()):
                f[filled : filled + len(chunk)] = arr
            small["presence"].append(chunk.presence)
            small["labels"].append(chunk.labels)
            small["subjects"].append(chunk.subjects)
            filled += len(chunk)
        if meta is None or filled != num_windows:
            raise CrosslError(f"chunks hold {filled} windows, not num_windows={num_windows}; pass their total count")
        for f in files:
            f.flush()
        del files
        for name, parts in small.items():
            np.save(tmp / f"{name}.npy", np.concatenate(parts))
        write_json_atomic(
            tmp / "meta.json",
            {"format_version": FORMAT_VERSION, "num_windows": num_windows, "meta": meta.to_json()},
        )
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> WindowSet:
        """Read a set written by :meth:`save`; arrays are memory-mapped unless ``mmap=False``."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise CrosslError(f"{directory} is not a crossl dataset directory (no meta.json)")
        try:
            header = json.loads(meta_path.read_text(encoding="utf-8"))
            meta = DatasetMeta.from_json(header["meta"])
            mode: Literal["r"] | None = "r" if mmap else None
            arrays = {
                m: np.load(directory / f"modality_{i}.npy", mmap_mode=mode)
                for i, m in enumerate(meta.modality_names)
            }
            presence = np.load(directory / "presence.npy")
            labels = np.load(directory / "labels.npy")
            subjects = np.load(directory / "subjects.npy")
        except CrosslError:
            raise
        except (OSError, ValueError, KeyError, EOFError, TypeError) as exc:
            raise CrosslError(
                f"dataset directory {directory} is unreadable or corrupt ({type(exc).__name__}: {exc}); "
                "delete it and prepare the dataset again"
            ) from exc
        if header.get("num_windows") != int(labels.shape[0]):
            raise CrosslError(f"dataset directory {directory} is truncated; delete it and prepare it again")
        return cls(arrays, presence, labels, subjects, meta)
