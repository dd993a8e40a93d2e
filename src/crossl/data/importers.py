"""The user's own recordings: CSV files described by a YAML import spec, or arrays from Python.

One file holds one recording (one session of one subject). An import spec (:func:`load_import_spec`)
names the columns of each modality, their rates, the labels and the windowing::

    name: my-study                  # dataset name (required)
    files: "*.csv"                  # glob inside the folder, one recording per file (default "*.csv")
    delimiter: ","                  # one character (default ","); "\\t" for TSV
    subject: {from: filename, pattern: "subject(\\\\d+)"}   # or {column: subject_id} (required)
    time: {column: t}               # seconds (optional; omit it and every column is at the row rate)
    modalities:                     # required, at least one; in this order in the windows
      acc: {columns: [ax, ay, az], rate: 50}
      ecg: {columns: [ecg], rate: 250}
    labels: {column: activity, rate: 50, classes: {walk: 0, sit: 1}}   # optional
    window: {seconds: 2.56, stride: 1.28, label_rule: pure, max_gap_share: 0.1}   # required
    split: {train: [1, 2, 3], val: [4], test: [5]}    # optional; else a seeded subject-wise split

Keys, all checked (an unknown key is an error, so a misspelt one is never silently ignored):

- ``subject``: ``{from: filename, pattern: REGEX}`` searches REGEX in the file name and takes its
  first group (or the whole match) as the integer id; ``pattern`` defaults to ``(\\d+)``, the first
  number. ``{column: NAME}``: the column holds the id; it must be one integer in the whole file.
- ``modalities.NAME``: ``columns`` (a list of column names, or one name) and ``rate`` (Hz, required).
- ``labels``: ``column``, ``rate`` (Hz, required) and ``classes``: ``{value as written: class index}``
  (several values may share an index; the first one names the class) or a list of values (index =
  position). Values are matched as text after stripping spaces; any other value means unlabeled.
- ``window``: ``seconds`` (required), ``stride`` (default ``seconds``), ``label_rule``
  (pure/majority/share, default pure), ``min_label_share`` (0.5), ``max_gap_share`` (0.1),
  ``keep_unlabeled`` (default false, true when there are no labels): see
  :class:`~crossl.data.windowing.WindowRule`.
- ``split``: ``train``/``val``/``test`` lists of subject ids (``val`` may be left out).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from crossl.data.container import WindowSet
from crossl.data.recording import Recording
from crossl.data.spec import DatasetSpec
from crossl.data.splits import SPLIT_NAMES
from crossl.data.windowing import LABEL_RULES, RecordingWindows, WindowRule, window_recording, windows_to_set
from crossl.errors import CrosslError

#: A modality's median sampling interval may differ from ``1 / rate`` by this share at most.
RATE_TOLERANCE = 0.02
#: Cells that mean "no value here" (compared in lower case, after stripping spaces).
MISSING_CELLS = frozenset({"", "nan", "na", "n/a", "null", "none"})
#: A jump between consecutive samples longer than this is a corrupt timestamp or two sessions in one
#: file, not a gap to fill: filling it would allocate hours of NaN rows.
MAX_GAP_S = 3600.0
#: Slack for float products of seconds and rates (11.996 s x 250 Hz may land a hair under 2999).
_EPS = 1e-6

_TOP_KEYS = ("name", "format", "files", "delimiter", "subject", "time", "modalities", "labels", "window", "split")
#: file format -> the glob its files get by default
FORMATS = {"csv": "*.csv", "edf": "*.edf", "wfdb": "*.hea"}
_REQUIRED_TOP = ("name", "subject", "modalities", "window")


@dataclass(frozen=True)
class SubjectSource:
    """Where a file's subject id comes from: a ``column`` or a regex ``pattern`` on the file name."""

    column: str | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class ModalitySource:
    """A modality's columns (one channel each, in this order) and its rate in Hz."""

    columns: tuple[str, ...]
    rate: float


@dataclass(frozen=True)
class LabelSource:
    """The label column (for EDF: ``annotations``, the file's EDF+ annotation texts), its rate in Hz,
    and ``classes``: label value as written -> class index."""

    column: str
    rate: float
    classes: Mapping[str, int]

    @property
    def class_names(self) -> tuple[str, ...]:
        """One name per class index: the first value (in the spec's order) that maps to it."""
        names: dict[int, str] = {}
        for value, index in self.classes.items():
            names.setdefault(index, value)
        return tuple(names[i] for i in range(len(names)))


@dataclass(frozen=True)
class ImportSpec:
    """A parsed import spec (see the module docstring for the YAML); ``source`` names it in messages.

    Mappings are copied on construction; cross-field rules (distinct columns, one rate per row
    without a time column, a valid split and window) are checked here, so specs built in Python
    are held to the same rules as YAML ones.
    """

    name: str
    modalities: Mapping[str, ModalitySource]
    subject: SubjectSource
    rule: WindowRule
    files: str = "*.csv"
    time_column: str | None = None
    labels: LabelSource | None = None
    split: Mapping[str, tuple[int, ...]] | None = None
    delimiter: str = ","
    source: str = "import spec"
    #: ``csv`` (and ``.parquet`` files), ``edf`` (EDF/EDF+: columns are signal labels) or ``wfdb``
    #: (PhysioNet WFDB records, ``*.hea`` + signal files: columns are signal descriptions)
    format: str = "csv"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "modalities", dict(self.modalities))
        where = self.source
        if self.format not in FORMATS:
            raise CrosslError(f"{where}: 'format' is {self.format!r}; use one of {', '.join(FORMATS)}")
        if self.format != "csv":
            if self.time_column is not None or self.subject.column is not None:
                raise CrosslError(f"{where}: {self.format} files carry their own time base and have no columns of ids: "
                                  "drop 'time' and take the subject from the file name (subject: {from: filename})")
            if self.labels is not None and (self.format == "wfdb" or self.labels.column != "annotations"):
                raise CrosslError(f"{where}: {self.format} labels: " + (
                    "WFDB annotation files are not read; import the records unlabeled (drop 'labels')"
                    if self.format == "wfdb" else "EDF labels come from the file's EDF+ annotations: "
                    "labels: {column: annotations, rate: HZ, classes: {annotation text: index}}"))
        if self.split is not None:
            set_(self, "split", {k: tuple(v) for k, v in self.split.items()})
        where = self.source
        if not self.name:
            raise CrosslError(f"{where}: 'name' is empty; name the dataset")
        if not self.modalities:
            raise CrosslError(f"{where}: 'modalities' lists none; name at least one with its columns and rate")
        if (self.subject.column is None) == (self.subject.pattern is None):
            raise CrosslError(f"{where}: 'subject' needs either a column or a file-name pattern, not both or neither")
        if len(self.delimiter) != 1:
            raise CrosslError(f"{where}: 'delimiter' is {self.delimiter!r}; give one character")
        owner: dict[str, str] = {}
        roles = [("time.column", self.time_column), ("subject.column", self.subject.column),
                 ("labels.column", self.labels.column if self.labels else None)]
        for role, column in roles:
            if column is not None:
                owner.setdefault(column, role)
        for m, source in self.modalities.items():
            for column in source.columns:
                if column in owner:
                    raise CrosslError(f"{where}: column '{column}' is in modalities.{m}.columns and in {owner[column]}; "
                                      "give each column one role")
                owner[column] = f"modalities.{m}.columns"
        if self.time_column is None and self.format == "csv":
            rates = {f"modalities.{m}.rate": s.rate for m, s in self.modalities.items()}
            if self.labels is not None:
                rates["labels.rate"] = self.labels.rate
            if len(set(rates.values())) > 1:
                listed = ", ".join(f"{k}={v:g}" for k, v in rates.items())
                raise CrosslError(f"{where}: rates differ ({listed}) but there is no 'time' column, so every column is "
                                  "at the row rate; add time: {column: NAME} or give one rate")
        try:
            self.dataset_spec()
        except CrosslError as exc:
            raise CrosslError(f"{where}: {exc}") from exc

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.labels.class_names if self.labels is not None else ()

    def dataset_spec(self) -> DatasetSpec:
        """The :class:`DatasetSpec` of the imported windows (label codes are already class indices)."""
        return DatasetSpec(
            name=self.name,
            modalities=tuple(self.modalities),
            rates={m: float(s.rate) for m, s in self.modalities.items()},
            channel_names={m: s.columns for m, s in self.modalities.items()},
            class_names=self.class_names,
            label_map={i: i for i in range(len(self.class_names))},
            rule=self.rule,
            default_split=self.split,
            description=f"imported with {self.source}",
        )


# --- parsing the YAML -------------------------------------------------------------------------------


def _mapping(value: object, key: str, where: str, known: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
    """``value`` as a mapping with keys among ``known``, holding every key of ``required``; ``key`` is
    its dotted path in the spec ("" for the top level)."""
    if not isinstance(value, Mapping):
        what = f"'{key}' is {value!r}" if key else "the spec is not a mapping"
        raise CrosslError(f"{where}: {what}; give a mapping of {', '.join(known)}")
    prefix = f"{key}." if key else ""
    for k in value:
        if k not in known:
            raise CrosslError(f"{where}: unknown key '{prefix}{k}'; use {', '.join(known)}")
    for k in required:
        if k not in value:
            missing = f"'{key}' has no '{k}'" if key else f"no '{k}'"
            raise CrosslError(f"{where}: {missing}; give {prefix}{k}")
    return dict(value)


def _text(value: object, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CrosslError(f"{where}: '{key}' is {value!r}; give a non-empty string")
    return value.strip()


def _number(value: object, key: str, where: str, what: str) -> float:
    """A finite positive number (not a bool: YAML's ``yes`` is True)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise CrosslError(f"{where}: '{key}' is {value!r}; give a positive number of {what}")
    return float(value)


def _share(value: object, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise CrosslError(f"{where}: '{key}' is {value!r}; give a share between 0 and 1")
    return float(value)


def _integer(value: object, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CrosslError(f"{where}: '{key}' holds {value!r}; give whole numbers")
    return int(value)


def _label_value(value: object, key: str, where: str) -> str:
    """A label value as the files write it: YAML may have read ``1`` as an int, ``yes`` as a bool."""
    if isinstance(value, bool):
        raise CrosslError(f"{where}: '{key}' has the value {value!r}: YAML reads yes/no/on/off/true/false as "
                          "booleans; quote it ('yes')")
    if isinstance(value, (int, float, str)) and str(value).strip():
        return str(value).strip()
    raise CrosslError(f"{where}: '{key}' has the value {value!r}; give label values as text or numbers")


def _parse_subject(value: object, where: str) -> SubjectSource:
    subject = _mapping(value, "subject", where, ("from", "pattern", "column"))
    if "column" in subject:
        if "from" in subject or "pattern" in subject:
            raise CrosslError(f"{where}: 'subject' gives a column and a file-name pattern; keep one")
        return SubjectSource(column=_text(subject["column"], "subject.column", where))
    if subject.get("from") != "filename":
        raise CrosslError(f"{where}: 'subject.from' is {subject.get('from')!r}; use {{from: filename, pattern: REGEX}} "
                          "or {column: NAME}")
    pattern = _text(subject.get("pattern", r"(\d+)"), "subject.pattern", where)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise CrosslError(f"{where}: 'subject.pattern' '{pattern}' is not a regular expression ({exc}); fix it") from exc
    return SubjectSource(pattern=pattern)


def _parse_modalities(value: object, where: str) -> dict[str, ModalitySource]:
    if not isinstance(value, Mapping) or not value:
        raise CrosslError(f"{where}: 'modalities' is {value!r}; give a mapping NAME: {{columns: [...], rate: HZ}}")
    out: dict[str, ModalitySource] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not name.strip():
            raise CrosslError(f"{where}: modality name {name!r} in 'modalities'; give names as text")
        key = f"modalities.{name}"
        fields = _mapping(entry, key, where, ("columns", "rate"), ("columns", "rate"))
        columns = fields["columns"]
        columns = [columns] if isinstance(columns, str) else columns
        if not isinstance(columns, list) or not columns:
            raise CrosslError(f"{where}: '{key}.columns' is {fields['columns']!r}; give a list of column names")
        names = tuple(_text(c, f"{key}.columns", where) for c in columns)
        if len(set(names)) != len(names):
            raise CrosslError(f"{where}: '{key}.columns' lists a column twice in {list(names)}; list each once")
        out[name] = ModalitySource(names, _number(fields["rate"], f"{key}.rate", where, "Hz"))
    return out


def _parse_labels(value: object, where: str) -> LabelSource:
    fields = _mapping(value, "labels", where, ("column", "rate", "classes"), ("column", "rate", "classes"))
    column = _text(fields["column"], "labels.column", where)
    rate = _number(fields["rate"], "labels.rate", where, "Hz")
    raw = fields["classes"]
    if isinstance(raw, list):
        raw = {v: i for i, v in enumerate(raw)}
    if not isinstance(raw, Mapping) or not raw:
        raise CrosslError(f"{where}: 'labels.classes' is {fields['classes']!r}; give {{value: class index}} or a list "
                          "of values")
    classes: dict[str, int] = {}
    for v, index in raw.items():
        text = _label_value(v, "labels.classes", where)
        if text in classes:
            raise CrosslError(f"{where}: 'labels.classes' lists the value '{text}' twice; list each once")
        classes[text] = _integer(index, f"labels.classes.{text}", where)
    indices = set(classes.values())
    if indices != set(range(len(indices))):
        raise CrosslError(f"{where}: 'labels.classes' uses class indices {sorted(indices)}; number the classes "
                          f"0..{len(indices) - 1}, each used")
    return LabelSource(column, rate, classes)


def _parse_window(value: object, where: str, labelled: bool) -> WindowRule:
    known = ("seconds", "stride", "label_rule", "min_label_share", "max_gap_share", "keep_unlabeled")
    fields = _mapping(value, "window", where, known, ("seconds",))
    seconds = _number(fields["seconds"], "window.seconds", where, "seconds")
    stride = _number(fields.get("stride", seconds), "window.stride", where, "seconds")
    label_rule = fields.get("label_rule", "pure")
    if label_rule not in LABEL_RULES:
        raise CrosslError(f"{where}: 'window.label_rule' is {label_rule!r}; use one of {', '.join(LABEL_RULES)}")
    # Without labels every window is unlabeled: dropping those would leave nothing.
    keep = fields.get("keep_unlabeled", not labelled)
    if not isinstance(keep, bool):
        raise CrosslError(f"{where}: 'window.keep_unlabeled' is {keep!r}; give true or false")
    return WindowRule(
        window_s=seconds,
        stride_s=stride,
        label_rule=label_rule,
        min_label_share=_share(fields.get("min_label_share", 0.5), "window.min_label_share", where),
        max_gap_share=_share(fields.get("max_gap_share", 0.1), "window.max_gap_share", where),
        keep_unlabeled=keep,
    )


def _parse_split(value: object, where: str) -> dict[str, tuple[int, ...]]:
    fields = _mapping(value, "split", where, SPLIT_NAMES)
    out: dict[str, tuple[int, ...]] = {}
    for part, subjects in fields.items():
        if not isinstance(subjects, list):
            raise CrosslError(f"{where}: 'split.{part}' is {subjects!r}; give a list of subject ids")
        out[part] = tuple(_integer(s, f"split.{part}", where) for s in subjects)
    return out


def import_spec_from_dict(obj: object, source: str = "import spec") -> ImportSpec:
    """Parse the YAML's mapping (see the module docstring); ``source`` names it in messages."""
    where = source
    top = _mapping(obj, "", where, _TOP_KEYS, _REQUIRED_TOP)
    name = _text(top["name"], "name", where)
    file_format = top.get("format", "csv")
    if file_format not in FORMATS:
        raise CrosslError(f"{where}: 'format' is {file_format!r}; use one of {', '.join(FORMATS)}")
    files = _text(top.get("files", FORMATS[file_format]), "files", where)
    delimiter = top.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise CrosslError(f"{where}: 'delimiter' is {delimiter!r}; give one character, such as ',' or ';'")
    time_column = None
    if top.get("time") is not None:
        time_column = _text(_mapping(top["time"], "time", where, ("column",), ("column",))["column"], "time.column", where)
    labels = _parse_labels(top["labels"], where) if top.get("labels") is not None else None
    split = _parse_split(top["split"], where) if top.get("split") is not None else None
    return ImportSpec(
        name=name,
        modalities=_parse_modalities(top["modalities"], where),
        subject=_parse_subject(top["subject"], where),
        rule=_parse_window(top["window"], where, labelled=labels is not None),
        files=files,
        time_column=time_column,
        labels=labels,
        split=split,
        delimiter=delimiter,
        source=source,
        format=file_format,
    )


def load_import_spec(path: str | Path) -> ImportSpec:
    """Read and check the YAML import spec at ``path``."""
    path = Path(path)
    where = f"import spec {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CrosslError(f"cannot read {where} ({exc.strerror or exc}); check the path") from exc
    except UnicodeDecodeError as exc:
        raise CrosslError(f"{where} is not UTF-8 text; save it as UTF-8") from exc
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise CrosslError(f"{where} is not valid YAML ({problem}); fix the syntax") from exc
    if obj is None:
        raise CrosslError(f"{where} is empty; write the spec (name, subject, modalities, window)")
    return import_spec_from_dict(obj, where)


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
            return max(int(index[-1]) + 1 if index.size else 0, int(math.floor(span * rate + _EPS)) + 1)

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
            labels = np.full(int(math.floor(span * label_rate + _EPS)) + 1, -1, dtype=np.int64)
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


# --- arrays from Python -----------------------------------------------------------------------------


def recording_from_arrays(
    signals: Mapping[str, np.ndarray],
    rates: Mapping[str, float],
    labels: np.ndarray | None,
    label_rate: float | None,
    subject: int,
    session: str = "",
) -> Recording:
    """A :class:`Recording` from arrays, checked: ``signals`` ``{modality: (T_m, C_m)}`` (or ``(T_m,)``,
    one channel) of real numbers at ``rates[modality]`` Hz, NaN = gap; ``labels`` ``(T_l,)`` whole
    numbers at ``label_rate`` Hz (raw codes for the windowing's label map; -1 = unlabeled), or None
    for unlabeled (then ``label_rate`` may be None too). Arrays are copied as float32 / int64;
    channels are named ``{modality}{index}``.
    """
    where = f"recording_from_arrays(subject={subject!r}, session={session!r})"
    if not signals:
        raise CrosslError(f"{where}: no signals; pass {{modality: array of shape (time, channels)}}")
    if set(rates) != set(signals):
        raise CrosslError(f"{where}: rates given for {sorted(rates)}, signals for {sorted(signals)}; give one rate "
                          "per modality")
    if isinstance(subject, (bool, np.bool_)) or not isinstance(subject, (int, np.integer)):
        raise CrosslError(f"{where}: subject must be an integer id")
    arrays: dict[str, np.ndarray] = {}
    checked_rates: dict[str, float] = {}
    for m, values in signals.items():
        arr = np.asarray(values)
        arr = arr[:, None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] < 1:
            raise CrosslError(f"{where}: modality '{m}' has shape {arr.shape}; pass (time, channels)")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise CrosslError(f"{where}: modality '{m}' has dtype {arr.dtype}; pass real numbers")
        arrays[str(m)] = np.array(arr, dtype=np.float32, copy=True)
        rate = rates[m]
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
                or not 0 < float(rate) < math.inf:
            raise CrosslError(f"{where}: modality '{m}' has rate {rate!r}; give a positive number of Hz")
        checked_rates[str(m)] = float(rate)
    if labels is None:
        # Unlabeled throughout, on a time base that covers the longest modality (never the shortest limit).
        label_rate = float(label_rate) if label_rate is not None else max(checked_rates.values())
        longest = max(len(a) / checked_rates[m] for m, a in arrays.items())
        label_arr = np.full(int(math.ceil(longest * label_rate - _EPS)), -1, dtype=np.int64)
    else:
        raw = np.asarray(labels)
        if raw.ndim != 1:
            raise CrosslError(f"{where}: labels have shape {raw.shape}; pass (time,)")
        if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.number):
            raise CrosslError(f"{where}: labels have dtype {raw.dtype}; pass integer codes (-1 = unlabeled)")
        if not np.issubdtype(raw.dtype, np.integer) and not (np.isfinite(raw) & (raw == np.round(raw))).all():
            raise CrosslError(f"{where}: labels hold values that are not whole numbers (NaN included); pass integer "
                              "codes, -1 where unlabeled")
        if label_rate is None:
            raise CrosslError(f"{where}: labels are given without label_rate; pass their rate in Hz")
        label_arr = raw.astype(np.int64)
    if isinstance(label_rate, bool) or not 0 < float(label_rate) < math.inf:
        raise CrosslError(f"{where}: label_rate {label_rate!r}; give a positive number of Hz")
    names = {m: tuple(f"{m}{c}" for c in range(a.shape[1])) for m, a in arrays.items()}
    return Recording(arrays, checked_rates, label_arr, float(label_rate), int(subject), session, names)
