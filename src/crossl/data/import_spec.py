"""The import spec of the user's own recordings: what each file holds and how it is windowed.

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

The files themselves are read by :mod:`crossl.data.importers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from crossl.data.spec import DatasetSpec
from crossl.data.splits import SPLIT_NAMES
from crossl.data.windowing import LABEL_RULES, WindowRule
from crossl.errors import CrosslError

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
