"""The authors' release's preprocessed layouts: windows already cut, read as a :class:`WindowSet`.

Three layouts, each in its own folder (``directory/sleep``, ``directory/wesad``, ``directory/pamap2``;
``directory`` itself is used where it holds the files directly):

- ``sleep/*.npz``, one file per recording, sorted by name: ``x`` ``(N, 3000, 4)`` (30-s epochs at
  100 Hz: EEG Fpz-Cz, EEG Pz-Oz, EOG, EMG) and ``y`` ``(N,)`` stages 0..4 (W, N1, N2, N3, REM). The
  layout names no subject: a file's index in sorted order stands for it, so where the release holds
  two nights of one person in two files they count as two subjects here.
- ``wesad/x_{k}train.npy``, ``y_{k}train.npy``, ``x_{k}test.npy``, ``y_{k}test.npy`` for the 15
  subjects k = 2..17 without 12: ``x`` ``(N, 1000, 3)`` (ECG, EMG, EDA of the chest device at 700 Hz),
  ``y`` one-hot ``(N, 4)`` (baseline, stress, amusement, meditation). The release split each
  subject's windows into train and test; here both files are that subject's windows and the split
  is subject-wise instead (no subject's windows on both sides).
- ``pamap2/X_{i}.npy``, ``y_{i}.npy`` for i = 0..7: ``X`` ``(N, 512, 18)`` at 100 Hz, six 3-channel
  sensors in the order hand acc, hand gyro, ankle acc, ankle gyro, chest acc, chest gyro; ``y``
  one-hot ``(N, 12)`` over the 12 protocol activities. Subject = i.

Modalities are the layout's channel groups (:data:`LAYOUTS`); a window's modality holding NaN or inf
is marked absent (zeros stored), and a window with no modality left is dropped and counted in
``meta.extra["dropped_windows"]``. ``meta.extra`` also holds ``source`` ("authors' release layout"),
``window_s``, ``note`` (what differs from the raw presets) and ``default_split`` (subject ids):

- sleepedf: in sorted file order, the first 70 % train, the next 10 % val, the last 20 % test
  (rounded, at least one each; for 20 files: 0-13 / 14-15 / 16-19, the ``sleepedf20`` preset's
  split); none with fewer than 3 files.
- wesad: the ``wesad`` preset's split (train 2-11 and 13, val 14-15, test 16-17, by subject id).
- pamap2: the ``pamap2`` preset's shape by index: train 0-4, val 5, test 6-7.

``read_release(..., release_split=True)`` (``crossl data import --release KIND --release-split``)
keeps the release's own split instead: WESAD's train and test files per subject, PAMAP2
leave-one-subject-out over the files.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from crossl.data.container import DatasetMeta, WindowSet
from crossl.data.presets import PAMAP2_CLASSES, SLEEP_CLASSES, WESAD_CLASSES, WESAD_SPLIT, WESAD_SUBJECTS
from crossl.errors import CrosslError

ReleaseKind = Literal["sleepedf", "wesad", "pamap2"]
SOURCE = "authors' release layout"
PAMAP2_FILES = tuple(range(8))

#: What np.load raises on a truncated, corrupt or pickled file (allow_pickle stays False).
_UNREADABLE = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


@dataclass(frozen=True)
class ReleaseLayout:
    """One layout: its folder, window length and channel count, and how channels form modalities.

    ``modalities``: ``(name, first channel, channel names)`` in the order of the windows' arrays.
    """

    kind: str
    folder: str
    length: int
    channels: int
    rate: float
    modalities: tuple[tuple[str, int, tuple[str, ...]], ...]
    class_names: tuple[str, ...]
    note: str


def _imu(sensor: str) -> tuple[str, ...]:
    return tuple(f"{sensor}_{axis}" for axis in "xyz")


_PAMAP2_SENSORS = ("hand_acc", "hand_gyro", "ankle_acc", "ankle_gyro", "chest_acc", "chest_gyro")

LAYOUTS: dict[str, ReleaseLayout] = {
    "sleepedf": ReleaseLayout(
        "sleepedf", "sleep", 3000, 4, 100.0,
        tuple((m, i, (m,)) for i, m in enumerate(("eeg_fpz_cz", "eeg_pz_oz", "eog", "emg"))),
        SLEEP_CLASSES,
        "the release upsampled EMG (1 Hz in Sleep-EDF) to 100 Hz: all four modalities hold 3000 samples "
        "(the sleepedf presets keep EMG at its own 1 Hz); subjects are file indices in sorted order",
    ),
    "wesad": ReleaseLayout(
        "wesad", "wesad", 1000, 3, 700.0,
        tuple((m, i, (m,)) for i, m in enumerate(("ecg", "emg", "eda"))),
        WESAD_CLASSES,
        "each subject's train and test files are both that subject's windows: the release's within-subject "
        "split is not kept, the default split is subject-wise",
    ),
    "pamap2": ReleaseLayout(
        "pamap2", "pamap2", 512, 18, 100.0,
        tuple((m, 3 * i, _imu(m.split("_")[1])) for i, m in enumerate(_PAMAP2_SENSORS)),
        tuple(name for name, _ in PAMAP2_CLASSES),
        "subjects are the file indices i of X_i.npy; modalities in the release's channel order",
    ),
}


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CrosslError(f"{path} is missing; the authors' release layout has it: copy the whole folder")
    try:
        # Memory-mapped: the float64 windows are read once, into float32 modality arrays.
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except _UNREADABLE as exc:
        raise CrosslError(f"{path} is unreadable ({type(exc).__name__}: {exc}); copy it from the release again") from exc


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise CrosslError(f"{path} holds {sorted(archive.files)}, not {missing}; the release's sleep files "
                                  "hold x (windows) and y (stages)")
            return archive["x"], archive["y"]
    except _UNREADABLE as exc:
        raise CrosslError(f"{path} is unreadable ({type(exc).__name__}: {exc}); copy it from the release again") from exc


def _check_windows(path: Path, x: np.ndarray, layout: ReleaseLayout) -> None:
    expected = (layout.length, layout.channels)
    if x.ndim != 3 or x.shape[1:] != expected or not np.issubdtype(x.dtype, np.number):
        raise CrosslError(f"{path} holds windows of shape {x.shape} ({x.dtype}); the release's {layout.kind} layout "
                          f"has (N, {expected[0]}, {expected[1]}) numbers: is this the right file?")


def _stage_labels(path: Path, y: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    """(N,) integer stages in 0..num_classes-1 -> int64."""
    if y.shape != (count,) or not np.issubdtype(y.dtype, np.number):
        raise CrosslError(f"{path} holds labels of shape {y.shape} ({y.dtype}) for {count} windows; the release's "
                          f"labels are ({count},) stage numbers")
    ok = np.isfinite(y) & (y == np.round(y)) & (y >= 0) & (y < num_classes)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise CrosslError(f"{path} row {row} has label {y[row]}, not a stage 0..{num_classes - 1}; copy the file "
                          "from the release again")
    return y.astype(np.int64)


def _one_hot_labels(path: Path, y: np.ndarray, count: int, num_classes: int) -> np.ndarray:
    """(N, K) one-hot rows -> (N,) int64 class indices; CrosslError naming the first row that is not one-hot."""
    if y.shape != (count, num_classes) or not np.issubdtype(y.dtype, np.number):
        raise CrosslError(f"{path} holds labels of shape {y.shape} ({y.dtype}) for {count} windows; the release's "
                          f"labels are one-hot ({count}, {num_classes})")
    y = np.asarray(y)
    ok = ((y == 0) | (y == 1)).all(axis=1) & (y.sum(axis=1) == 1)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise CrosslError(f"{path} row {row} is not one-hot ({np.asarray(y[row]).tolist()}): each row needs one 1 and "
                          "zeros elsewhere; copy the file from the release again")
    return np.argmax(y, axis=1).astype(np.int64)


@dataclass
class _Parts:
    """Windows collected file by file: per-modality float32 arrays, labels and subjects."""

    layout: ReleaseLayout
    signals: list[list[np.ndarray]]
    labels: list[np.ndarray]
    subjects: list[np.ndarray]
    #: The release file's part of each window ("train" / "test"; "" where the file names none).
    file_parts: list[np.ndarray]

    def add(self, x: np.ndarray, labels: np.ndarray, subject: int, file_part: str = "") -> None:
        for store, (_, first, names) in zip(self.signals, self.layout.modalities):
            store.append(np.ascontiguousarray(x[:, :, first : first + len(names)], dtype=np.float32))
        self.labels.append(labels)
        self.subjects.append(np.full(len(labels), subject, dtype=np.int64))
        self.file_parts.append(np.full(len(labels), file_part))


def _folder(directory: Path, layout: ReleaseLayout, probe: Callable[[Path], bool]) -> Path:
    if not directory.is_dir():
        raise CrosslError(f"{directory} is not a folder; pass the folder of the release's preprocessed data")
    sub = directory / layout.folder
    if sub.is_dir():
        return sub
    return directory if probe(directory) else sub


def _read_sleep(directory: Path, parts: _Parts) -> list[int]:
    layout = parts.layout
    folder = _folder(directory, layout, lambda d: any(d.glob("*.npz")))
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise CrosslError(f"no sleep/*.npz files in {directory}; pass the folder that holds the release's sleep/ folder")
    for index, path in enumerate(files):
        x, y = _load_npz(path)
        _check_windows(path, x, layout)
        parts.add(x, _stage_labels(path, y, len(x), len(layout.class_names)), index)
    return list(range(len(files)))


def _read_wesad(directory: Path, parts: _Parts) -> list[int]:
    layout = parts.layout
    folder = _folder(directory, layout, lambda d: (d / f"x_{WESAD_SUBJECTS[0]}train.npy").is_file())
    for k in WESAD_SUBJECTS:
        for part in ("train", "test"):
            x_path, y_path = folder / f"x_{k}{part}.npy", folder / f"y_{k}{part}.npy"
            x, y = _load_npy(x_path), _load_npy(y_path)
            _check_windows(x_path, x, layout)
            parts.add(x, _one_hot_labels(y_path, y, len(x), len(layout.class_names)), k, part)
    return list(WESAD_SUBJECTS)


def _read_pamap2(directory: Path, parts: _Parts) -> list[int]:
    layout = parts.layout
    folder = _folder(directory, layout, lambda d: (d / "X_0.npy").is_file())
    for i in PAMAP2_FILES:
        x_path, y_path = folder / f"X_{i}.npy", folder / f"y_{i}.npy"
        x, y = _load_npy(x_path), _load_npy(y_path)
        _check_windows(x_path, x, layout)
        parts.add(x, _one_hot_labels(y_path, y, len(x), len(layout.class_names)), i)
    return list(PAMAP2_FILES)


def sleep_split(subjects: Sequence[int]) -> dict[str, list[int]] | None:
    """First 70 % train, next 10 % val, last 20 % test of ``subjects`` in order (None under 3 subjects)."""
    n = len(subjects)
    if n < 3:
        return None
    n_test = max(1, round(0.2 * n))
    n_val = max(1, round(0.1 * n))
    n_train = n - n_test - n_val
    return {"train": list(subjects[:n_train]), "val": list(subjects[n_train : n_train + n_val]),
            "test": list(subjects[n_train + n_val :])}


def run_lengths(values: np.ndarray) -> list[list[object]]:
    """``[[value, count], ...]`` of the runs of equal ``values`` ``(N,)``, in order."""
    runs: list[list[object]] = []
    for value in values.tolist():
        if runs and runs[-1][0] == value:
            runs[-1][1] = int(runs[-1][1]) + 1  # type: ignore[call-overload]
        else:
            runs.append([value, 1])
    return runs


def read_release(kind: ReleaseKind, directory: str | Path, release_split: bool = False) -> WindowSet:
    """The release's preprocessed ``kind`` windows under ``directory`` as a :class:`WindowSet`.

    Returns per modality ``(N, L, C_m) float32`` (L = 3000, 1000 or 512), ``labels`` ``(N,)`` class
    indices (from one-hot for wesad and pamap2), ``subjects`` ``(N,)`` as the module docstring says,
    and metadata with the layout's rate (100, 700, 100 Hz), class names and ``extra`` (source, note,
    window_s, default_split, dropped_windows). Missing files, shapes that do not match the layout and
    labels that are not one-hot (or not stages) raise a one-line :class:`CrosslError` naming the file.

    ``release_split`` keeps the release's own split instead of a subject-wise one: wesad, each
    subject's ``train`` and ``test`` files (``extra["window_parts"]``; no validation part); pamap2,
    leave-one-subject-out over the eight files (``--fold K``); sleepedf's split is by file already.
    """
    if kind not in LAYOUTS:
        raise CrosslError(f"unknown release layout '{kind}'; use one of {', '.join(LAYOUTS)}")
    layout = LAYOUTS[kind]
    directory = Path(directory)
    parts = _Parts(layout, [[] for _ in layout.modalities], [], [], [])
    reader = {"sleepedf": _read_sleep, "wesad": _read_wesad, "pamap2": _read_pamap2}[kind]
    subjects = reader(directory, parts)

    names = tuple(m for m, _, _ in layout.modalities)
    signals = {m: np.concatenate(store) for m, store in zip(names, parts.signals)}
    labels = np.concatenate(parts.labels)
    subject_ids = np.concatenate(parts.subjects)
    file_parts = np.concatenate(parts.file_parts)
    # NaN or inf in a window's modality: absent there (zeros stored), as the container expects.
    presence = np.stack([np.isfinite(signals[m]).all(axis=(1, 2)) for m in names], axis=1)
    for i, m in enumerate(names):
        signals[m][~presence[:, i]] = 0.0
    keep = presence.any(axis=1)
    dropped = int((~keep).sum())
    if dropped:
        signals = {m: np.ascontiguousarray(a[keep]) for m, a in signals.items()}
        presence, labels, subject_ids, file_parts = presence[keep], labels[keep], subject_ids[keep], file_parts[keep]

    split: dict[str, list[int]] | None
    if kind == "sleepedf":
        split = sleep_split(subjects)
    elif kind == "wesad":
        split = {k: [int(s) for s in v] for k, v in WESAD_SPLIT.items()}
    else:
        split = {"train": [0, 1, 2, 3, 4], "val": [5], "test": [6, 7]}
    note = layout.note
    extra: dict[str, object] = {"source": SOURCE, "window_s": layout.length / layout.rate, "dropped_windows": dropped}
    if release_split and kind == "wesad":
        split, note = None, "the release's within-subject split: each subject's train and test files"
        extra["window_parts"] = run_lengths(file_parts)
    elif release_split and kind == "pamap2":
        split, note = None, "the release's leave-one-subject-out over the file indices 0-7 (--fold K)"
        extra["split_scheme"] = "leave-one-subject-out"
    extra["note"] = note
    if split is not None:
        extra["default_split"] = split
    meta = DatasetMeta(
        name=f"{kind}-release-split" if release_split and kind != "sleepedf" else f"{kind}-release",
        modality_names=names,
        channel_names={m: c for m, _, c in layout.modalities},
        sampling_rates={m: layout.rate for m in names},
        class_names=tuple(layout.class_names),
        extra=extra,
    )
    return WindowSet(signals, presence, labels, subject_ids, meta)
