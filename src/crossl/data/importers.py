"""The user's own recordings: files described by an import spec (:mod:`crossl.data.import_spec`);
arrays from Python go through :func:`crossl.data.recording.recording_from_arrays`.

How a file becomes a :class:`~crossl.data.recording.Recording` (nothing is resampled):

- A header row names the columns. A cell that is empty (or ``NaN``, ``NA``, ``null``, ``none``) is
  missing; every other cell of a time, modality or subject column must be a number.
- With a ``time`` column, one file can interleave modalities at different rates: modality m's
  samples are the rows where any of its columns holds a value, in file order, with strictly
  increasing times. Its rate must agree with those times: the median interval between its samples
  is ``1 / rate`` within :data:`RATE_TOLERANCE` (2 %). Samples are assumed regular; where the
  interval between two consecutive samples is ``k / rate`` (rounded, k >= 2) the ``k - 1`` missed
  samples become NaN rows, so a dropped stretch is a gap of the right length and a modality that
  starts late is NaN before its first sample. Intervals that round to less than one sample (jitter)
  keep the rows as they are: nothing is dropped, merged or moved onto a grid. Every series is padded
  with NaN to the end of the file (the last timestamp of any row), so one modality ending early
  leaves the others' windows in place; a modality with no sample in the file is all NaN (absent
  from every window). Labels work the same way at their own rate (a row whose label cell is empty
  holds no label sample; missed label samples become -1).
- Without a time column every row is one sample of every modality and of the labels, so all rates
  must be equal (the row rate); empty cells are NaN (gaps) and empty label cells unlabeled.
- Gaps are NaN here; the windowing interpolates small ones and marks a modality absent from windows
  with larger ones (``window.max_gap_share``).

Parquet files (``.parquet``) are read only where ``pyarrow`` is importable; crossl does not depend on it.

``format: edf`` and ``format: wfdb`` read EDF/EDF+ and WFDB recordings instead of CSV
(:mod:`crossl.data.signal_files`): ``columns`` name the file's signals, rates must match the file,
the subject comes from the file name, and EDF labels may come from the EDF+ annotations
(``labels: {column: annotations, ...}``).
"""

from __future__ import annotations

import csv
import importlib
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from crossl.data.container import WindowSet
from crossl.data.import_spec import ImportSpec
from crossl.data.recording import TIME_SLACK, Recording
from crossl.data.windowing import RecordingWindows, window_recording, windows_to_set
from crossl.errors import CrosslError

#: A modality's median sampling interval may differ from ``1 / rate`` by this share at most.
RATE_TOLERANCE = 0.02
#: Cells that mean "no value here" (compared in lower case, after stripping spaces).
MISSING_CELLS = frozenset({"", "nan", "na", "n/a", "null", "none"})
#: A jump between consecutive samples longer than this is a corrupt timestamp or two sessions in one
#: file, not a gap to fill: filling it would allocate hours of NaN rows.
MAX_GAP_S = 3600.0

# --- reading a file ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """The needed columns of one file: float64 ``(R,)`` arrays, except text columns (lists of stripped
    strings); ``lines``: ``(R,)`` where each row is in the file (``unit`` says line or row)."""

    numeric: dict[str, np.ndarray]
    text: dict[str, list[str]]
    lines: np.ndarray
    unit: str


def _needed_columns(spec: ImportSpec) -> dict[str, str]:
    """Column -> the spec key that names it, in the order the spec names them."""
    needed: dict[str, str] = {}
    if spec.time_column is not None:
        needed[spec.time_column] = "time.column"
    if spec.subject.column is not None:
        needed[spec.subject.column] = "subject.column"
    for m, source in spec.modalities.items():
        for column in source.columns:
            needed[column] = f"modalities.{m}.columns"
    if spec.labels is not None:
        needed[spec.labels.column] = "labels.column"
    return needed


def _missing_column(path: Path, column: str, key: str, header: Sequence[str]) -> CrosslError:
    found = ", ".join(repr(h) for h in header) or "none"
    return CrosslError(f"{path} has no column '{column}' (named in {key}); its columns are {found}: rename the column "
                       "in the file or in the import spec")


def _to_numbers(path: Path, column: str, cells: list[str], lines: np.ndarray, unit: str) -> np.ndarray:
    """Cells -> (R,) float64, missing cells NaN; CrosslError naming the first cell that is not a number."""
    cleaned = ["nan" if c.lower() in MISSING_CELLS else c for c in cells]
    try:
        return np.array(cleaned, dtype=np.float64)
    except ValueError:
        pass
    # NumPy only says that some cell is bad: find which one.
    for i, cell in enumerate(cleaned):
        try:
            float(cell)
        except ValueError:
            raise CrosslError(f"{path} {unit} {lines[i]} column '{column}' holds {cell[:30]!r}, not a number; write "
                              "numbers, and leave cells empty where nothing was sampled") from None
    raise CrosslError(f"{path} column '{column}' cannot be read as numbers; write plain decimal numbers")


def _read_csv(path: Path, spec: ImportSpec) -> _Table:
    needed = _needed_columns(spec)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=spec.delimiter)
            header: list[str] | None = None
            for row in reader:
                if any(cell.strip() for cell in row):
                    header = [cell.strip() for cell in row]
                    break
            if header is None:
                raise CrosslError(f"{path} is empty; write a header row and one row per sample")
            positions: dict[str, int] = {}
            for column, key in needed.items():
                if column not in header:
                    raise _missing_column(path, column, key, header)
                if header.count(column) > 1:
                    raise CrosslError(f"{path} has two columns named '{column}'; give each column its own name")
                positions[column] = header.index(column)
            cells: dict[str, list[str]] = {c: [] for c in needed}
            lines: list[int] = []
            # A row with the wrong field count is an error, but which one depends on whether it is
            # the last: a short last line is a file cut off while being written or copied.
            odd: tuple[int, int] | None = None
            followed = False
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if odd is not None:
                    followed = True
                    break
                if len(row) != len(header):
                    odd = (reader.line_num, len(row))
                    continue
                for column, position in positions.items():
                    cells[column].append(row[position].strip())
                lines.append(reader.line_num)
    except OSError as exc:
        raise CrosslError(f"cannot read {path} ({exc.strerror or exc}); check the file") from exc
    except UnicodeDecodeError as exc:
        raise CrosslError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from exc
    except csv.Error as exc:
        raise CrosslError(f"{path} is not valid CSV near line {reader.line_num} ({exc}); fix the file") from exc
    if odd is not None:
        number, count = odd
        if count < len(header) and not followed:
            raise CrosslError(f"{path} is truncated: its last line {number} has {count} of {len(header)} fields; "
                              "write or copy the file again")
        raise CrosslError(f"{path} line {number} has {count} fields, the header {len(header)}; give every row one "
                          "cell per column (empty where nothing was sampled)")
    if not lines:
        raise CrosslError(f"{path} has a header but no rows; write one row per sample")
    return _typed_table(path, spec, cells, np.asarray(lines, dtype=np.int64), "line")


def _read_parquet(path: Path, spec: ImportSpec) -> _Table:
    try:
        parquet: Any = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise CrosslError(f"{path} is a Parquet file, and reading Parquet needs pyarrow, which is not installed: "
                          "install it (pip install pyarrow) or save the file as CSV") from None
    try:
        table = parquet.read_table(path)
    except (OSError, ValueError) as exc:
        raise CrosslError(f"cannot read Parquet file {path} ({exc}); check the file") from exc
    needed = _needed_columns(spec)
    for column, key in needed.items():
        if column not in table.column_names:
            raise _missing_column(path, column, key, table.column_names)
    if table.num_rows == 0:
        raise CrosslError(f"{path} has no rows; write one row per sample")
    # Through text, like CSV cells: one code path for missing values and messages (slower, simpler).
    cells = {c: ["" if v is None else str(v).strip() for v in table.column(c).to_pylist()] for c in needed}
    return _typed_table(path, spec, cells, np.arange(1, table.num_rows + 1, dtype=np.int64), "row")


def _typed_table(path: Path, spec: ImportSpec, cells: dict[str, list[str]], lines: np.ndarray, unit: str) -> _Table:
    label_column = spec.labels.column if spec.labels is not None else None
    numeric = {c: _to_numbers(path, c, v, lines, unit) for c, v in cells.items() if c != label_column}
    text = {c: v for c, v in cells.items() if c == label_column}
    return _Table(numeric, text, lines, unit)


def _subject(path: Path, spec: ImportSpec, table: _Table) -> int:
    if spec.subject.pattern is not None:
        return subject_from_name(path, spec)
    assert spec.subject.column is not None
    values = table.numeric[spec.subject.column]
    given = values[~np.isnan(values)]
    if given.size == 0:
        raise CrosslError(f"{path}: subject column '{spec.subject.column}' is empty; write the subject id")
    if not (np.isfinite(given) & (given == np.round(given))).all() or (given != given[0]).any():
        raise CrosslError(f"{path}: subject column '{spec.subject.column}' holds {np.unique(given)[:4].tolist()}; "
                          "one file is one recording of one subject: give one whole-number id")
    return int(given[0])


def subject_from_name(path: Path, spec: ImportSpec) -> int:
    """The subject id that ``spec.subject.pattern`` finds in the file's name."""
    assert spec.subject.pattern is not None
    match = re.search(spec.subject.pattern, path.name)
    if match is None:
        raise CrosslError(f"cannot tell the subject of {path}: subject.pattern {spec.subject.pattern!r} does not "
                          "match its name; rename the file or change the pattern")
    found = match.group(1) if match.groups() else match.group(0)
    try:
        return int(found)
    except ValueError:
        raise CrosslError(f"{path}: subject.pattern {spec.subject.pattern!r} finds {found!r} in its name, not a "
                          "whole number; put the digits of the id in the pattern's first group") from None


def _sample_index(path: Path, what: str, key: str, times: np.ndarray, start: float, rate: float,
                  lines: np.ndarray, unit: str) -> np.ndarray:
    """Where each sample (at ``times``, (S,) seconds) lies in a ``rate`` Hz series that starts at ``start``.

    Consecutive samples are 1 slot apart, or ``round(interval * rate)`` where that is more (missed
    samples); the first is ``round((times[0] - start) * rate)`` slots in. Returns (S,) int64.
    """
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.diff(times)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise CrosslError(f"{path} {unit} {lines[i]}: {what} has time {times[i]:g} s after {times[i - 1]:g} s "
                          f"({unit} {lines[i - 1]}); sort the rows by time, one row per sample time")
    if steps.size:
        median = float(np.median(steps))
        if abs(median * rate - 1.0) > RATE_TOLERANCE + 1e-9:
            raise CrosslError(f"{what}: rate {rate:g} contradicts the timestamps (median interval {median:.6g} s) in "
                              f"{path}; set {key} to {1 / median:.4g} or fix the time column")
    jumps = np.flatnonzero(np.concatenate([[times[0] - start], steps]) > MAX_GAP_S)
    if jumps.size:
        i = int(jumps[0])
        raise CrosslError(f"{path} {unit} {lines[i]}: {what} jumps to {times[i]:g} s, more than {MAX_GAP_S:g} s after "
                          "the previous sample; split the recording into one file per session or fix the time column")
    gaps = np.maximum(1, np.rint(steps * rate)).astype(np.int64)
    first = int(np.rint((times[0] - start) * rate))
    return first + np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(gaps)])


def read_csv_recording(path: str | Path, spec: ImportSpec) -> Recording:
    """One CSV (or Parquet, with pyarrow) file as a :class:`Recording` (rules in the module docstring).

    Returns, per modality, ``(T_m, C_m) float32`` with ``C_m = len(columns)`` at the spec's rate
    (NaN = gap or not sampled), labels ``(T_l,) int64`` class indices (-1 = unlabeled) at the label
    rate, the subject id, ``session`` = the file's stem and the column names as channel names.
    """
    path = Path(path)
    table = _read_parquet(path, spec) if path.suffix.lower() == ".parquet" else _read_csv(path, spec)
    subject = _subject(path, spec, table)
    lines, unit = table.lines, table.unit
    labels_src = spec.labels
    codes: np.ndarray | None = None
    labelled = np.zeros(len(lines), dtype=bool)
    if labels_src is not None:
        cells = table.text[labels_src.column]
        codes = np.array([labels_src.classes.get(c, -1) for c in cells], dtype=np.int64)
        labelled = np.array([c.lower() not in MISSING_CELLS for c in cells], dtype=bool)

    signals: dict[str, np.ndarray] = {}
    if spec.time_column is None:
        # Every row is one sample of everything: empty cells are gaps (NaN) or unlabeled (-1).
        for m, source in spec.modalities.items():
            signals[m] = np.stack([table.numeric[c] for c in source.columns], axis=1).astype(np.float32)
        labels = np.where(labelled, codes, -1) if codes is not None else np.full(len(lines), -1, dtype=np.int64)
        label_rate = labels_src.rate if labels_src is not None else next(iter(spec.modalities.values())).rate
    else:
        times = table.numeric[spec.time_column]
        if not np.isfinite(times).all():
            row = int(np.flatnonzero(~np.isfinite(times))[0])
            raise CrosslError(f"{path} {unit} {lines[row]} has no time in column '{spec.time_column}'; give every row "
                              "its time in seconds")
        start, span = float(times.min()), float(times.max() - times.min())

        def series_length(index: np.ndarray, rate: float) -> int:
            # To the end of the file, so that a modality ending early does not cut the others' windows.
            return max(int(index[-1]) + 1 if index.size else 0, int(math.floor(span * rate + TIME_SLACK)) + 1)

        for m, source in spec.modalities.items():
            values = np.stack([table.numeric[c] for c in source.columns], axis=1)
            sampled = ~np.isnan(values).all(axis=1)
            index = _sample_index(path, f"modality '{m}'", f"modalities.{m}.rate", times[sampled], start,
                                  source.rate, lines[sampled], unit)
            signal = np.full((series_length(index, source.rate), values.shape[1]), np.nan, dtype=np.float32)
            signal[index] = values[sampled]
            signals[m] = signal
        if labels_src is not None and codes is not None:
            label_rate = labels_src.rate
            index = _sample_index(path, "the labels", "labels.rate", times[labelled], start, label_rate,
                                  lines[labelled], unit)
            labels = np.full(series_length(index, label_rate), -1, dtype=np.int64)
            labels[index] = codes[labelled]
        else:
            label_rate = max(s.rate for s in spec.modalities.values())
            labels = np.full(int(math.floor(span * label_rate + TIME_SLACK)) + 1, -1, dtype=np.int64)
    return Recording(signals, {m: float(s.rate) for m, s in spec.modalities.items()}, labels, float(label_rate),
                     subject, path.stem, {m: s.columns for m, s in spec.modalities.items()})


def read_recording(path: str | Path, spec: ImportSpec) -> Recording:
    """One file of ``spec.format`` as a :class:`Recording`."""
    if spec.format == "csv":
        return read_csv_recording(path, spec)
    from crossl.data import signal_files

    path = Path(path)
    subject = subject_from_name(path, spec)
    if spec.format == "edf":
        return signal_files.read_edf_recording(path, spec, subject)
    return signal_files.read_wfdb_recording(path, spec, subject)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def import_folder(folder: str | Path, spec: ImportSpec, strict: bool = False,
                  log: Callable[[str], None] | None = None) -> WindowSet:
    """Window every file in ``folder`` matching ``spec.files`` into one :class:`WindowSet`.

    Files are read in sorted order, one at a time, windowed with ``spec.rule`` (labels are class
    indices already). A file that cannot be read or windowed is reported through ``log`` (default:
    standard error) and skipped, or with ``strict`` raised. The set's metadata is that of
    :meth:`ImportSpec.dataset_spec`, plus ``extra``: ``source`` ("import"), ``spec``, ``folder``,
    ``files`` (how many matched) and ``skipped`` (``[file, reason]`` pairs). Without ``split`` in the
    spec the metadata names no default split, so :func:`crossl.data.splits.default_split` draws a
    seeded subject-wise one.
    """
    log = log or _stderr
    folder = Path(folder)
    if not folder.is_dir():
        raise CrosslError(f"{folder} is not a folder; pass the folder that holds the recordings")
    files = sorted(p for p in folder.glob(spec.files) if p.is_file())
    if not files:
        raise CrosslError(f"no file in {folder} matches '{spec.files}' (files in {spec.source}); fix the pattern or "
                          "the folder")
    dataset = spec.dataset_spec()
    parts: list[RecordingWindows] = []
    skipped: list[list[str]] = []
    for path in files:
        name = str(path.relative_to(folder))
        try:
            # The relative path, not the stem: a "**/*.csv" glob can find one stem in two folders.
            recording = replace(read_recording(path, spec), session=str(Path(name).with_suffix("")))
            windows = window_recording(recording, dataset.rule, dataset.label_map)
        except CrosslError as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            if strict:
                raise CrosslError(message) from exc
            log(f"skipped {name}: {message}")
            skipped.append([name, message])
            continue
        if len(windows) == 0:
            log(f"{name}: no window (shorter than {dataset.rule.window_s:g} s, or none labeled under the "
                f"'{dataset.rule.label_rule}' rule)")
            continue
        log(f"{name}: {len(windows)} windows (subject {recording.subject})")
        parts.append(windows)
    if not parts:
        raise CrosslError(f"no windows could be made from the files in {folder}; see the lines above")
    meta = dataset.meta()
    extra = {**meta.extra, "source": "import", "spec": spec.source, "folder": str(folder.resolve()),
             "files": len(files), "skipped": skipped}
    return windows_to_set(parts, replace(meta, extra=extra))
