"""EDF(+) files read with edfio, lazily, after checking that the file is as long as its header says."""

from __future__ import annotations

import warnings
from pathlib import Path

import edfio

from crossl.errors import CrosslError


def open_edf(path: Path) -> edfio.Edf:
    """Open an EDF(+) file lazily: signals are read when asked for (a Sleep-EDF night is ~150 MB)."""
    check_complete(path)
    try:
        with warnings.catch_warnings():
            # check_complete already rejected what edfio would only warn about (truncation).
            warnings.simplefilter("ignore")
            return edfio.read_edf(path, lazy_load_data=True)
    except (ValueError, OSError, UnicodeDecodeError, IndexError, KeyError) as exc:
        raise CrosslError(f"{path} is not a readable EDF file ({type(exc).__name__}: {exc}); re-download it") from exc


def check_complete(path: Path) -> None:
    """Raise unless the file is exactly as long as its header says.

    edfio reads a truncated file silently (a warning, then fewer data records), which would
    shorten a night without notice; the sizes are checked here from the fixed EDF header fields.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(256)
            num_signals = int(head[252:256].decode("ascii"))
            header_bytes = int(head[184:192].decode("ascii"))
            num_records = int(head[236:244].decode("ascii"))
            signal_headers = fh.read(216 * num_signals + 8 * num_signals)
            per_record = signal_headers[216 * num_signals :]
            samples = [int(per_record[8 * i : 8 * i + 8].decode("ascii")) for i in range(num_signals)]
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise CrosslError(f"{path} does not exist") from exc
    except OSError as exc:
        raise CrosslError(f"{path} cannot be read ({exc})") from exc
    except ValueError as exc:
        raise CrosslError(f"{path} is not an EDF file or its header is truncated/corrupt; re-download it") from exc
    if num_signals < 1 or header_bytes != 256 * (num_signals + 1) or len(samples) != num_signals:
        raise CrosslError(f"{path} has a corrupt EDF header ({num_signals} signals, {header_bytes} header bytes); re-download it")
    if num_records == -1:
        return  # "unknown" is allowed by the EDF spec (recording not closed); edfio counts the records
    expected = header_bytes + 2 * num_records * sum(samples)
    if size < expected:
        raise CrosslError(f"{path} is truncated: {size} bytes, its header declares {num_records} data records "
                          f"({expected} bytes); re-download it")
    if size > expected:
        raise CrosslError(f"{path} is corrupt: {size - expected} bytes after the {num_records} data records its header "
                          "declares; re-download it")


def signals_by_label(edf: edfio.Edf) -> dict[str, list[edfio.EdfSignal]]:
    """The file's signals grouped by label, stripped and case-folded (a label may repeat)."""
    by_label: dict[str, list[edfio.EdfSignal]] = {}
    for signal in edf.signals:
        by_label.setdefault(signal.label.strip().casefold(), []).append(signal)
    return by_label
