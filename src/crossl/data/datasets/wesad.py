"""WESAD: wearable stress and affect detection, chest (RespiBAN) and wrist (Empatica E4) devices.

Schmidt et al., "Introducing WESAD, a multimodal dataset for wearable stress and affect
detection", ICMI 2018; from the University of Siegen's ubicomp site. Subjects S2..S17 (no S1, no
S12). Each ``S{k}/S{k}.pkl`` is a Python-2 pickle (read with ``encoding="latin1"``) of::

    {"signal": {"chest": {"ACC": (N, 3), "ECG": (N, 1), "EMG": (N, 1), "EDA": (N, 1),
                          "Temp": (N, 1), "Resp": (N, 1)},            # all 700 Hz
                "wrist": {"ACC": (n, 3) 32 Hz, "BVP": (n, 1) 64 Hz,
                          "EDA": (n, 1) 4 Hz, "TEMP": (n, 1) 4 Hz}},
     "label": (N,) at 700 Hz, "subject": "S{k}"}

It is read through :func:`crossl.data.unpickle.lean_load` (the restricted unpickler, keeping no decoded
array data longer than needed), so a file that names any global
other than NumPy's array reconstruction is refused before anything runs. Values keep the
publisher's units. Labels are the raw codes at 700 Hz for both devices: :data:`LABELS` are the
four conditions; :data:`IGNORED_LABELS` (0 undefined/transient, 5-7 "should be ignored" per the
publisher) are kept as they are, for the windowing's label map to drop.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crossl.data.recording import Recording
from crossl.data.unpickle import lean_load
from crossl.errors import CrosslError

LABEL_RATE_HZ = 700.0
LABELS: dict[int, str] = {1: "baseline", 2: "stress", 3: "amusement", 4: "meditation"}
#: 0 = undefined / transient between conditions; 5, 6, 7 = "should be ignored" in the publisher's readme.
IGNORED_LABELS: tuple[int, ...] = (0, 5, 6, 7)

#: device -> modality -> (key in the pickle, channels, rate in Hz)
DEVICE_MODALITIES: dict[str, dict[str, tuple[str, int, float]]] = {
    "chest": {
        "acc": ("ACC", 3, 700.0),
        "ecg": ("ECG", 1, 700.0),
        "emg": ("EMG", 1, 700.0),
        "eda": ("EDA", 1, 700.0),
        "temp": ("Temp", 1, 700.0),
        "resp": ("Resp", 1, 700.0),
    },
    "wrist": {
        "acc": ("ACC", 3, 32.0),
        "bvp": ("BVP", 1, 64.0),
        "eda": ("EDA", 1, 4.0),
        "temp": ("TEMP", 1, 4.0),
    },
}

#: What a truncated, corrupt or hostile pickle makes the unpickler raise.
_UNREADABLE = (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
               MemoryError, ImportError, OverflowError, RecursionError)


def read_recording(
    path: Path, device: Literal["chest", "wrist"] = "chest", modalities: Sequence[str] | None = None
) -> Recording:
    """One ``S{k}.pkl`` as a :class:`Recording` of one device.

    ``modalities``: a subset of the device's (chest: ``acc ecg emg eda temp resp``, all 700 Hz;
    wrist: ``acc`` 32 Hz, ``bvp`` 64 Hz, ``eda`` 4 Hz, ``temp`` 4 Hz), in the order given; all of
    them when ``None``. Signals are ``(T_m, C_m) float32`` at the native rates; labels ``(N,)
    int64`` raw codes at 700 Hz; subject ``k`` from the ``subject`` field; session ``S{k}-{device}``.
    """
    path = Path(path)
    if device not in DEVICE_MODALITIES:
        raise CrosslError(f"WESAD has devices {sorted(DEVICE_MODALITIES)}, not '{device}'; pick one of them")
    spec = DEVICE_MODALITIES[device]
    chosen = _choose(spec, device, modalities)
    try:
        with open(path, "rb") as fh:
            data = lean_load(fh)
    except OSError as exc:
        raise CrosslError(f"cannot read WESAD file {path} ({exc.strerror or exc}); check the path") from exc
    except _UNREADABLE as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise CrosslError(
            f"WESAD file {path} is not a readable WESAD pickle ({detail}); re-download S{{k}}.zip from the publisher"
        ) from exc

    where = f"WESAD file {path}"
    signals_by_device = _mapping(_field(data, "signal", where), f"{where} 'signal'")
    arrays = _mapping(_field(signals_by_device, device, f"{where} 'signal'"), f"{where} '{device}'")
    labels = _labels(_field(data, "label", where), where)
    subject = _subject(_field(data, "subject", where), where)

    signals: dict[str, np.ndarray] = {}
    for name in chosen:
        key, channels, rate = spec[name]
        signal = _signal(_field(arrays, key, f"{where} '{device}'"), channels, f"{where} '{device}' '{key}'")
        if rate == LABEL_RATE_HZ and len(signal) != len(labels):
            raise CrosslError(
                f"{where}: '{device}' '{key}' has {len(signal)} samples but 'label' has {len(labels)}; "
                "re-download the file"
            )
        signals[name] = signal
    rates = {name: spec[name][2] for name in chosen}
    channel_names = {name: _channel_names(name, spec[name][1]) for name in chosen}
    return Recording(signals, rates, labels, LABEL_RATE_HZ, subject, f"{path.stem}-{device}", channel_names)


def _choose(spec: Mapping[str, Any], device: str, modalities: Sequence[str] | None) -> list[str]:
    """The requested modalities in order, without repeats; CrosslError naming the choices."""
    if modalities is None:
        return list(spec)
    if isinstance(modalities, str):
        modalities = [modalities]
    unknown = [m for m in modalities if m not in spec]
    if unknown or not modalities:
        problem = f"has no modality {unknown[0]!r}" if unknown else "needs at least one modality"
        raise CrosslError(f"WESAD {device} {problem}; choose from {', '.join(spec)}")
    return list(dict.fromkeys(modalities))


def _field(container: Any, key: str, where: str) -> Any:
    """``container[key]``, also under the bytes key a pickle read with another encoding would have."""
    if isinstance(container, Mapping):
        for candidate in (key, key.encode("latin1")):
            if candidate in container:
                return container[candidate]
    raise CrosslError(f"{where} has no '{key}' entry; is this an S{{k}}.pkl from WESAD? re-download it")


def _mapping(value: Any, where: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise CrosslError(f"{where} is a {type(value).__name__}, expected a dict; re-download the file")
    return value


def _signal(value: Any, channels: int, where: str) -> np.ndarray:
    """A (T, channels) float32 copy; (T,) is accepted for one channel."""
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.number):
        raise CrosslError(f"{where} is a {type(value).__name__}, expected a numeric array; re-download the file")
    if value.ndim == 1 and channels == 1:
        value = value[:, None]
    if value.ndim != 2 or value.shape[1] != channels or len(value) == 0:
        raise CrosslError(f"{where} has shape {value.shape}, expected (time, {channels}); re-download the file")
    return value.astype(np.float32)


def _labels(value: Any, where: str) -> np.ndarray:
    """The (N,) label codes as int64, refusing non-integer values."""
    if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if not isinstance(value, np.ndarray) or value.ndim != 1 or not np.issubdtype(value.dtype, np.number):
        shape = getattr(value, "shape", type(value).__name__)
        raise CrosslError(f"{where} 'label' is {shape}, expected a (time,) array of codes; re-download the file")
    if not np.issubdtype(value.dtype, np.integer) and not (np.isfinite(value) & (value == np.round(value))).all():
        raise CrosslError(f"{where} 'label' holds non-integer codes; re-download the file")
    return value.astype(np.int64)


def _subject(value: Any, where: str) -> int:
    """``"S5"`` (str, or bytes from another encoding) -> 5."""
    text = value.decode("latin1") if isinstance(value, bytes) else value
    match = re.fullmatch(r"S(\d+)", text) if isinstance(text, str) else None
    if match is None:
        raise CrosslError(f"{where} 'subject' is {value!r}, expected 'S<number>'; re-download the file")
    return int(match.group(1))


def _channel_names(name: str, channels: int) -> tuple[str, ...]:
    return tuple(f"{name}_{axis}" for axis in "xyz") if channels == 3 else (name,)
