"""PAMAP2: three wireless IMUs (hand, chest, ankle) at 100 Hz and a heart-rate monitor at ~9 Hz.

Reiss and Stricker, "Introducing a new benchmarked dataset for activity monitoring", ISWC 2012;
UCI ML repository (``PAMAP2_Dataset/Protocol/subject101.dat`` .. ``subject109.dat`` and
``Optional/``). Each file is space-separated text with 54 columns per 100 Hz row (1-based):

- 1 timestamp (s), 2 activityID, 3 heart rate (bpm; NaN between the monitor's readings);
- 4-20 hand IMU, 21-37 chest IMU, 38-54 ankle IMU, each a block of 17: temperature (°C),
  acceleration ±16 g (3, m/s²), acceleration ±6 g (3, saturates), gyroscope (3, rad/s),
  magnetometer (3, µT), orientation (4, invalid in this collection).

Dropped wireless packets appear as NaN and stay NaN here. :func:`read_recording` turns one file
into a :class:`~crossl.data.recording.Recording` with modalities ``hand_acc``, ``hand_gyro``,
``chest_acc``, ``chest_gyro``, ``ankle_acc``, ``ankle_gyro`` (3 channels each, 100 Hz; the ±16 g
accelerometer, as the publisher recommends) and ``heart_rate`` (1 channel at
:data:`HEART_RATE_HZ`, see :func:`regular_heart_rate`). Labels are the raw activityIDs at 100 Hz
(0 = transient stays 0; mapping to classes is the windowing's job).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from crossl.data.recording import Recording
from crossl.errors import CrosslError

SAMPLING_RATE_HZ = 100.0
#: Rate of the regularised heart-rate series: the monitor's nominal rate, so each grid point
#: stands for about one reading (none invented, ~1% of the ~9.1 Hz readings skipped).
HEART_RATE_HZ = 9.0
#: A heart-rate grid point takes the reading nearest in time only if it is at most this far away:
#: about two reading intervals, so a gap of up to ~0.5 s between readings (a few lost readings)
#: is bridged and a longer outage of the monitor becomes NaN.
HEART_RATE_TOLERANCE_S = 0.25
#: A jump between consecutive timestamps larger than this is a corrupt timestamp, not a pause.
MAX_GAP_S = 3600.0

ACTIVITIES: dict[int, str] = {
    0: "transient",
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "nordic_walking",
    9: "watching_tv",
    10: "computer_work",
    11: "car_driving",
    12: "ascending_stairs",
    13: "descending_stairs",
    16: "vacuum_cleaning",
    17: "ironing",
    18: "folding_laundry",
    19: "house_cleaning",
    20: "playing_soccer",
    24: "rope_jumping",
}
#: The 12 activities of the protocol that the release evaluates on.
PROTOCOL_ACTIVITIES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)

NUM_COLUMNS = 54
_TIME, _ACTIVITY, _HEART_RATE = 0, 1, 2
#: 0-based first column of each IMU block, and offsets of the sensors inside a block.
_IMU_START = {"hand": 3, "chest": 20, "ankle": 37}
_SENSOR_OFFSET = {"acc": 1, "gyro": 7}
_AXES = ("x", "y", "z")
#: Rows parsed per np.loadtxt call: bounded memory for the text of a ~300 MB file.
_BLOCK_LINES = 50_000


def _modality_columns() -> dict[str, list[int]]:
    """``{"hand_acc": [4, 5, 6], ...}``: 0-based columns of each IMU modality."""
    return {
        f"{location}_{sensor}": [start + offset + axis for axis in range(3)]
        for location, start in _IMU_START.items()
        for sensor, offset in _SENSOR_OFFSET.items()
    }


MODALITY_COLUMNS = _modality_columns()
#: Columns kept from each row: timestamp, activityID, heart rate, then the IMU modalities in order.
_KEPT = [_TIME, _ACTIVITY, _HEART_RATE, *(c for cols in MODALITY_COLUMNS.values() for c in cols)]


def subject_of(path: Path) -> int:
    """The subject id in a PAMAP2 file name (``subject101.dat`` -> 101)."""
    match = re.search(r"subject(\d+)", path.stem)
    if match is None:
        raise CrosslError(f"cannot tell the subject of PAMAP2 file {path} from its name; pass subject=")
    return int(match.group(1))


def read_recording(path: Path, subject: int | None = None) -> Recording:
    """One ``subject1xx.dat`` file as a :class:`Recording`.

    Rows are placed on a 100 Hz grid by their timestamps (t = 0 at the first row); grid points
    with no row in the file (a pause in the recording) are NaN in every modality and ``-1`` in
    the labels. Returns IMU modalities ``(T, 3) float32`` at 100 Hz, ``heart_rate``
    ``(ceil(T * 9 / 100), 1) float32`` at 9 Hz and labels ``(T,) int64`` at 100 Hz.
    ``subject`` defaults to the number in the file name (``subject101`` -> 101); the session is
    ``<folder>/<stem>`` (``Protocol/subject101``), since the same stem exists in ``Optional/``.
    """
    path = Path(path)
    if subject is None:
        subject = subject_of(path)
    table, line_numbers = _read_table(path)
    index = _grid_index(path, table[:, _TIME], line_numbers)
    length = int(index[-1]) + 1

    signals: dict[str, np.ndarray] = {}
    for position, name in enumerate(MODALITY_COLUMNS):
        signal = np.full((length, 3), np.nan, dtype=np.float32)
        signal[index] = table[:, 3 + 3 * position : 6 + 3 * position]
        signals[name] = signal
    reading = ~np.isnan(table[:, _HEART_RATE])
    signals["heart_rate"] = regular_heart_rate(
        index[reading] / SAMPLING_RATE_HZ, table[reading, _HEART_RATE], length / SAMPLING_RATE_HZ
    )[:, None]

    labels = np.full(length, -1, dtype=np.int64)
    labels[index] = _activity_ids(path, table[:, _ACTIVITY], line_numbers)
    rates = {name: SAMPLING_RATE_HZ for name in MODALITY_COLUMNS} | {"heart_rate": HEART_RATE_HZ}
    channel_names = {name: tuple(f"{name.split('_')[1]}_{a}" for a in _AXES) for name in MODALITY_COLUMNS}
    channel_names["heart_rate"] = ("heart_rate",)
    session = f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem
    return Recording(signals, rates, labels, SAMPLING_RATE_HZ, subject, session, channel_names)


def regular_heart_rate(times: np.ndarray, values: np.ndarray, duration: float) -> np.ndarray:
    """Sparse heart-rate readings -> a regular ``HEART_RATE_HZ`` series, NaN where none is near.

    ``times``: (R,) increasing seconds of the readings, ``values``: (R,) bpm. Grid point ``k``
    sits at ``k / HEART_RATE_HZ`` s for ``k < ceil(duration * HEART_RATE_HZ)`` and takes the
    reading nearest in time (the earlier one on a tie) when it lies within
    :data:`HEART_RATE_TOLERANCE_S`, else NaN. Nearest rather than last-held, so the series is
    not delayed by up to a reading interval. Returns (K,) float32.
    """
    # the epsilon keeps a product that should be whole (4 s * 9 Hz) from rounding up to one more point
    grid = np.arange(int(np.ceil(duration * HEART_RATE_HZ - 1e-9))) / HEART_RATE_HZ
    out = np.full(len(grid), np.nan, dtype=np.float32)
    if len(times) == 0:
        return out
    first_after = np.searchsorted(times, grid)  # the first reading at or after each grid point
    before = np.clip(first_after - 1, 0, len(times) - 1)
    after = np.clip(first_after, 0, len(times) - 1)
    nearest = np.where(np.abs(grid - times[before]) <= np.abs(times[after] - grid), before, after)
    close = np.abs(times[nearest] - grid) <= HEART_RATE_TOLERANCE_S
    out[close] = values[nearest[close]]
    return out


def _read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The kept columns of every non-blank line, (N, 21) float64, and each row's 1-based line number."""
    parts: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    try:
        with open(path, encoding="latin-1") as fh:
            blocks = _line_blocks(fh)
            block = next(blocks, None)
            while block is not None:
                following = next(blocks, None)
                first_line, lines = block
                kept = [(first_line + i, line) for i, line in enumerate(lines) if line.strip()]
                if kept:
                    last = following is None or not any(line.strip() for line in following[1])
                    rows = _parse_block(path, kept, last_block=last)
                    parts.append(rows[:, _KEPT])
                    numbers.append(np.fromiter((n for n, _ in kept), dtype=np.int64, count=len(kept)))
                block = following
    except OSError as exc:
        raise CrosslError(f"cannot read PAMAP2 file {path} ({exc.strerror or exc}); check the path") from exc
    if not parts:
        raise CrosslError(f"PAMAP2 file {path} is empty; re-download it from the UCI repository")
    return np.concatenate(parts), np.concatenate(numbers)


def _line_blocks(fh: Iterator[str]) -> Iterator[tuple[int, list[str]]]:
    """``(first 1-based line number, lines)`` for successive blocks of :data:`_BLOCK_LINES` lines."""
    first = 1
    while lines := list(islice(fh, _BLOCK_LINES)):
        yield first, lines
        first += len(lines)


def _parse_block(path: Path, kept: list[tuple[int, str]], last_block: bool) -> np.ndarray:
    """(n, 54) float64 from ``(line number, text)`` pairs; CrosslError naming the first bad line."""
    try:
        rows = np.loadtxt([line for _, line in kept], dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        rows = None
    if rows is not None and rows.shape[1] == NUM_COLUMNS:
        return rows
    # The C parser only says that something is wrong: find which line, and how, in Python.
    for position, (number, line) in enumerate(kept):
        fields = line.split()
        if len(fields) != NUM_COLUMNS:
            if last_block and position == len(kept) - 1 and len(fields) < NUM_COLUMNS:
                raise CrosslError(
                    f"PAMAP2 file {path} is truncated: its last line {number} has {len(fields)} of {NUM_COLUMNS} "
                    "columns; re-download it from the UCI repository"
                )
            raise CrosslError(
                f"PAMAP2 file {path} line {number} has {len(fields)} columns, expected {NUM_COLUMNS}; "
                "is this a PAMAP2 Protocol/Optional .dat file?"
            )
        for column, field in enumerate(fields, start=1):
            try:
                float(field)
            except ValueError:
                raise CrosslError(
                    f"PAMAP2 file {path} line {number} column {column} is not a number ({field[:20]!r}); "
                    "re-download the file"
                ) from None
    raise CrosslError(f"PAMAP2 file {path} cannot be parsed as numbers; re-download it from the UCI repository")


def _grid_index(path: Path, timestamps: np.ndarray, line_numbers: np.ndarray) -> np.ndarray:
    """Each row's index on the 100 Hz grid that starts at the first timestamp: (N,) int64."""
    if not np.isfinite(timestamps).all():
        line = line_numbers[np.flatnonzero(~np.isfinite(timestamps))[0]]
        raise CrosslError(f"PAMAP2 file {path} line {line} has no timestamp; re-download the file")
    index = np.rint((timestamps - timestamps[0]) * SAMPLING_RATE_HZ).astype(np.int64)
    steps = np.diff(index)
    bad = np.flatnonzero((steps < 1) | (steps > MAX_GAP_S * SAMPLING_RATE_HZ))
    if bad.size:
        row = int(bad[0]) + 1
        raise CrosslError(
            f"PAMAP2 file {path} line {line_numbers[row]}: timestamp {timestamps[row]:.3f} s after "
            f"{timestamps[row - 1]:.3f} s is not a later 100 Hz sample; re-download the file"
        )
    return index


def _activity_ids(path: Path, column: np.ndarray, line_numbers: np.ndarray) -> np.ndarray:
    """The activityID column as (N,) int64, refusing NaN or fractional IDs."""
    valid = np.isfinite(column) & (column == np.round(column))
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise CrosslError(
            f"PAMAP2 file {path} line {line_numbers[row]} has activityID {column[row]}, not an integer; "
            "re-download the file"
        )
    return column.astype(np.int64)
