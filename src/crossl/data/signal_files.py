"""The user's recordings in the formats physiological recorders write: EDF/EDF+ and PhysioNet WFDB.

Both are read through an import spec (:mod:`crossl.data.importers`, ``format: edf`` or
``format: wfdb``): a modality's ``columns`` name the file's signals (EDF: the signal labels; WFDB:
the signal descriptions of the header), its ``rate`` must be the rate the file records (within
:data:`~crossl.data.importers.RATE_TOLERANCE`), and the subject comes from the file name.

- EDF through edfio (the maintained EDF reader this project uses for Sleep-EDF), after checking
  that the file is as long as its header says. Labels may come from the file's EDF+ annotations
  (``labels: {column: annotations, rate: HZ, classes: {annotation text: index}}``): each
  annotation labels the samples from its onset for its duration.
- WFDB: the ``.hea`` header and its signal files in formats 16 (16-bit), 212 (two 12-bit samples
  in three bytes) and 80 (8-bit offset), one sample per frame; samples the header marks invalid
  become NaN (gaps). Annotation files are not read: WFDB records import unlabeled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crossl.data.recording import Recording
from crossl.errors import CrosslError

if TYPE_CHECKING:
    import edfio

    from crossl.data.import_spec import ImportSpec


def _check_rate(path: Path, what: str, found: float, spec: ImportSpec, modality: str) -> None:
    from crossl.data.importers import RATE_TOLERANCE

    wanted = spec.modalities[modality].rate
    if abs(found - wanted) > RATE_TOLERANCE * wanted:
        raise CrosslError(f"{path}: {what} is recorded at {found:g} Hz, modalities.{modality}.rate says {wanted:g}; "
                          "give the file's rate")


def _missing_signal(path: Path, column: str, modality: str, found: list[str]) -> CrosslError:
    listed = ", ".join(repr(f) for f in found)
    return CrosslError(f"{path} has no signal '{column}' (modalities.{modality}.columns); its signals: {listed}")


def _stack(path: Path, modality: str, channels: list[np.ndarray]) -> np.ndarray:
    lengths = {len(c) for c in channels}
    if len(lengths) > 1:
        raise CrosslError(f"{path}: the signals of modality '{modality}' have {sorted(lengths)} samples; a modality's "
                          "signals must share one rate")
    return np.stack(channels, axis=1).astype(np.float32)


# ---------------------------------------------------------------- EDF
def read_edf_recording(path: Path, spec: ImportSpec, subject: int) -> Recording:
    """One EDF/EDF+ file: ``{modality: (T_m, C_m) float32}`` in physical units at the file's rates,
    labels from its annotations (or unlabeled), t = 0 at the file's start."""
    from crossl.data.edf import open_edf, signals_by_label

    edf = open_edf(path)
    if not edf.is_continuous:
        raise CrosslError(f"{path} is a discontinuous EDF+D file; export it as continuous EDF(+C)")
    by_label = signals_by_label(edf)
    found = [s.label.strip() for s in edf.signals]
    signals: dict[str, np.ndarray] = {}
    for modality, source in spec.modalities.items():
        channels = []
        for column in source.columns:
            matches = by_label.get(column.casefold(), [])
            if not matches:
                raise _missing_signal(path, column, modality, found)
            if len(matches) > 1:
                raise CrosslError(f"{path} has {len(matches)} signals labelled '{column}'; rename them in the file")
            signal = matches[0]
            _check_rate(path, f"signal '{column}'", float(signal.sampling_frequency), spec, modality)
            try:
                channels.append(np.asarray(signal.data, dtype=np.float64))
            except (ValueError, OSError) as exc:
                raise CrosslError(f"{path} is unreadable ({exc}); check the file") from exc
        signals[modality] = _stack(path, modality, channels)
    seconds = float(edf.num_data_records * edf.data_record_duration)
    labels, label_rate = _annotation_labels(path, edf, spec, seconds)
    return Recording(signals, {m: float(s.rate) for m, s in spec.modalities.items()}, labels, label_rate, subject,
                     path.stem, {m: s.columns for m, s in spec.modalities.items()})


def _annotation_labels(path: Path, edf: edfio.Edf, spec: ImportSpec, seconds: float) -> tuple[np.ndarray, float]:
    source = spec.labels
    if source is None:
        rate = max(s.rate for s in spec.modalities.values())
        return np.full(int(math.floor(seconds * rate + 1e-6)), -1, dtype=np.int64), rate
    rate = source.rate
    labels = np.full(int(math.floor(seconds * rate + 1e-6)), -1, dtype=np.int64)
    for annotation in edf.annotations:
        code = source.classes.get(str(annotation.text).strip())
        if code is None:
            continue
        duration = annotation.duration if annotation.duration is not None else 1.0 / rate
        start = int(round(float(annotation.onset) * rate))
        stop = int(round((float(annotation.onset) + float(duration)) * rate))
        labels[max(start, 0) : max(min(stop, labels.size), 0)] = code
    return labels, rate


# ---------------------------------------------------------------- WFDB
#: format -> the digital value that marks an invalid sample
WFDB_FORMATS = {16: -32768, 212: -2048, 80: -128}


def read_wfdb_recording(path: Path, spec: ImportSpec, subject: int) -> Recording:
    """One WFDB record (``path`` is its ``.hea`` header) as an unlabeled :class:`Recording`."""
    header = parse_wfdb_header(path)
    by_name = {s.description.casefold(): s for s in header.signals}
    found = [s.description for s in header.signals]
    files: dict[str, np.ndarray] = {}
    signals: dict[str, np.ndarray] = {}
    for modality, source in spec.modalities.items():
        _check_rate(path, "the record", header.rate, spec, modality)
        channels = []
        for column in source.columns:
            signal = by_name.get(column.casefold())
            if signal is None:
                raise _missing_signal(path, column, modality, found)
            if signal.file not in files:
                files[signal.file] = _read_wfdb_file(path, header, signal.file)
            digital = files[signal.file][:, signal.index_in_file]
            physical = (digital.astype(np.float64) - signal.baseline) / signal.gain
            physical[digital == WFDB_FORMATS[signal.format]] = np.nan
            channels.append(physical)
        signals[modality] = _stack(path, modality, channels)
    length = min(len(s) for s in signals.values())
    labels = np.full(length, -1, dtype=np.int64)
    return Recording(signals, {m: header.rate for m in spec.modalities}, labels, header.rate, subject, path.stem,
                     {m: s.columns for m, s in spec.modalities.items()})


@dataclass(frozen=True)
class WfdbSignal:
    """One signal line of a header: its file, format, ADC gain and baseline, description (its name)."""

    file: str
    format: int
    gain: float
    baseline: int
    description: str
    #: position among the signals stored in the same file (frames interleave them)
    index_in_file: int
    #: bytes to skip at the start of the file
    offset: int


@dataclass(frozen=True)
class WfdbHeader:
    record: str
    rate: float
    #: samples per signal the header declares (None: the file's length)
    samples: int | None
    signals: list[WfdbSignal]

    def in_file(self, file: str) -> list[WfdbSignal]:
        return [s for s in self.signals if s.file == file]


def parse_wfdb_header(path: Path) -> WfdbHeader:
    """A single-segment WFDB header (record line, then one line per signal; ``#`` lines are comments)."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="ascii", errors="replace").splitlines()]
    except OSError as exc:
        raise CrosslError(f"cannot read {path} ({exc.strerror or exc})") from exc
    lines = [line for line in lines if line and not line.startswith("#")]
    bad = CrosslError(f"{path} is not a WFDB header (record line: NAME N_SIGNALS RATE [N_SAMPLES]); check the file")
    if not lines:
        raise bad
    record = lines[0].split()
    if "/" in record[0]:
        raise CrosslError(f"{path} is a multi-segment WFDB record; import each segment's header instead")
    try:
        count = int(record[1])
        rate = float(record[2].split("/")[0]) if len(record) > 2 else 250.0
        samples = int(record[3]) if len(record) > 3 else None
    except (IndexError, ValueError):
        raise bad from None
    if len(lines) < 1 + count:
        raise CrosslError(f"{path} declares {count} signals but describes {len(lines) - 1}; the header is truncated")
    signals: list[WfdbSignal] = []
    per_file: dict[str, int] = {}
    for number, line in enumerate(lines[1 : 1 + count], start=1):
        fields = line.split(maxsplit=8)
        try:
            spec_field = fields[1]
            fmt_text, _, offset_text = spec_field.partition("+")
            fmt_text, _, skew = fmt_text.partition(":")
            fmt_text, _, per_frame = fmt_text.partition("x")
            fmt = int(fmt_text)
            gain_field = fields[2] if len(fields) > 2 else "200"
            gain_text = gain_field.split("/")[0]
            baseline_text = gain_text.partition("(")[2].rstrip(")")
            gain = float(gain_text.partition("(")[0]) or 200.0
            adc_zero = int(fields[4]) if len(fields) > 4 else 0
            baseline = int(baseline_text) if baseline_text else adc_zero
            description = fields[8].strip() if len(fields) > 8 else f"signal {number}"
        except (IndexError, ValueError):
            raise CrosslError(f"{path}: signal line {number} ({line!r}) is not a WFDB signal specification") from None
        if fmt not in WFDB_FORMATS:
            raise CrosslError(f"{path}: signal '{description}' is in WFDB format {fmt}; crossl reads formats "
                              f"{sorted(WFDB_FORMATS)}: convert the record (e.g. with the wfdb tools' xform)")
        if (per_frame and int(per_frame) != 1) or (skew and int(skew) != 0):
            raise CrosslError(f"{path}: signal '{description}' has several samples per frame or a skew; crossl reads "
                              "records with one sample per frame and no skew")
        file = fields[0]
        signals.append(WfdbSignal(file, fmt, gain, baseline, description, per_file.get(file, 0),
                                  int(offset_text) if offset_text else 0))
        per_file[file] = per_file.get(file, 0) + 1
    names = [s.description.casefold() for s in signals]
    if len(set(names)) != len(names):
        raise CrosslError(f"{path}: two signals share a description; give each signal its own in the header")
    return WfdbHeader(record[0], rate, samples, signals)


def _read_wfdb_file(path: Path, header: WfdbHeader, file: str) -> np.ndarray:
    """The digital samples of ``file`` (next to the header): ``(frames, signals in the file) int32``."""
    members = header.in_file(file)
    formats = {s.format for s in members}
    if len(formats) > 1:
        raise CrosslError(f"{path}: the signals of {file} mix formats {sorted(formats)}; one format per file is read")
    fmt = formats.pop()
    data_path = path.parent / file
    try:
        raw = np.fromfile(data_path, dtype=np.uint8, offset=members[0].offset)
    except OSError as exc:
        raise CrosslError(f"cannot read {data_path}, the signal file {path.name} names ({exc.strerror or exc}); "
                          "keep it beside the header") from exc
    n = len(members)
    if fmt == 16:
        values = raw[: raw.size - raw.size % 2].view("<i2").astype(np.int32)
    elif fmt == 80:
        values = raw.astype(np.int32) - 128
    else:  # 212: two 12-bit samples in three bytes
        groups = raw[: raw.size - raw.size % 3].reshape(-1, 3).astype(np.int32)
        first = groups[:, 0] | ((groups[:, 1] & 0x0F) << 8)
        second = groups[:, 2] | ((groups[:, 1] & 0xF0) << 4)
        values = np.stack([first, second], axis=1).reshape(-1)
        values = np.where(values >= 2048, values - 4096, values)
    frames = values.size // n
    if header.samples is not None:
        if frames < header.samples:
            raise CrosslError(f"{data_path} holds {frames} samples per signal, its header {header.samples}: the file is "
                              "truncated; copy it again")
        frames = header.samples
    return values[: frames * n].reshape(frames, n)
