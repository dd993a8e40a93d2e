"""Cutting continuous recordings into windows that cover the same seconds in every modality.

Time-based and multi-rate (:class:`WindowRule`, :func:`window_recording`, :func:`windows_to_set`):
each modality keeps its own sampling rate, so a window has ``round(seconds x rate)`` samples per
modality; every dataset (HAPT included) is windowed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from crossl.data.container import DatasetMeta, WindowSet
from crossl.data.recording import Recording
from crossl.errors import CrosslError

LABEL_RULES = ("pure", "majority", "share")

#: Slack for float products of seconds and rates: ``2.0 * 64.0`` may land a hair under 128.
_EPS = 1e-9


@dataclass(frozen=True)
class WindowRule:
    """How a recording is cut into windows: their length and stride in seconds, the label rule, gaps.

    - ``label_rule``: ``"pure"``: every label sample of the window maps to one class; ``"majority"``:
      the most common class holds more than half of them; ``"share"``: it holds at least
      ``min_label_share`` of them (and no other class holds as many). Otherwise the window has no class.
    - ``max_gap_share``: a modality whose window has more than this share of gap samples (NaN in any
      channel) is absent for that window; smaller gaps are filled by linear interpolation.
    - ``keep_unlabeled``: keep windows without a class (label ``-1``): the unlabeled pool for pretraining.
    """

    window_s: float
    stride_s: float
    label_rule: Literal["pure", "majority", "share"] = "pure"
    min_label_share: float = 0.5
    max_gap_share: float = 0.1
    keep_unlabeled: bool = False

    def __post_init__(self) -> None:
        for name in ("window_s", "stride_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
                raise CrosslError(f"window rule {name}={value!r}; give a positive number of seconds")
        if self.label_rule not in LABEL_RULES:
            raise CrosslError(f"window rule label_rule={self.label_rule!r} is unknown; use one of {', '.join(LABEL_RULES)}")
        for name in ("min_label_share", "max_gap_share"):
            value = getattr(self, name)
            # `not 0 <= value <= 1` also refuses NaN.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise CrosslError(f"window rule {name}={value!r}; give a share between 0 and 1")


def window_length(window_s: float, rate: float) -> int:
    """Samples in a window of ``window_s`` seconds at ``rate`` Hz: ``round(window_s * rate)``."""
    return int(round(window_s * rate))


@dataclass(frozen=True)
class RecordingWindows:
    """The windows cut from one recording (N windows, M modalities in the recording's order).

    - ``signals``: ``{modality: (N, L_m, C_m) float32}``, ``L_m = round(window_s * rate_m)``; gaps
      filled, absent windows zero-filled (never NaN);
    - ``presence``: ``(N, M) bool``; ``labels``: ``(N,) int64`` class indices, ``-1`` = unlabeled;
    - ``starts_s``: ``(N,) float64`` start of each window in seconds from the recording's start.
    """

    signals: dict[str, np.ndarray]
    presence: np.ndarray
    labels: np.ndarray
    starts_s: np.ndarray
    subject: int
    session: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _first_indices(starts_s: np.ndarray, rate: float) -> np.ndarray:
    """(N,) index of each window's first sample at ``rate`` Hz: ``floor(start_s * rate + eps)``."""
    return np.floor(starts_s * rate + _EPS).astype(np.int64)


#: Label samples mapped, and windows labelled, per block: the temporaries of a block stay a few MB
#: however long the recording (a WESAD subject holds millions of label samples at 700 Hz).
LABEL_BLOCK = 1 << 20
WINDOW_BLOCK = 1024


def class_dtype(num_classes: int) -> type[np.signedinteger]:
    """The smallest signed integer type holding class indices ``-1 .. num_classes - 1``."""
    return np.int8 if num_classes < 127 else np.int16 if num_classes < 32767 else np.int64


def _map_labels(raw: np.ndarray, label_map: Mapping[int, int], dtype: type[np.signedinteger] = np.int64) -> np.ndarray:
    """Raw label codes -> class indices (as ``dtype``) through ``label_map``; codes not in the map give -1."""
    out = np.full(raw.shape, -1, dtype=dtype)
    if not label_map:
        return out
    keys = np.array(sorted(label_map), dtype=np.int64)
    values = np.array([label_map[int(k)] for k in keys], dtype=dtype)
    for start in range(0, raw.shape[0], LABEL_BLOCK):
        block = raw[start : start + LABEL_BLOCK]
        pos = np.searchsorted(keys, block).clip(max=keys.size - 1)
        out[start : start + LABEL_BLOCK] = np.where(keys[pos] == block, values[pos], -1)
    return out


def _window_classes(classes: np.ndarray, num_classes: int, rule: WindowRule) -> np.ndarray:
    """(N, L) per-sample class indices (-1 = no class) -> (N,) window classes under ``rule`` (-1 = none)."""
    n, length = classes.shape
    if num_classes == 0 or n == 0:
        return np.full(n, -1, dtype=np.int64)
    # Class counts per window with one bincount over (window, class) pairs: no loop over windows.
    rows = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], classes.shape)
    has = classes >= 0
    counts = np.bincount(rows[has] * num_classes + classes[has].astype(np.int64),
                         minlength=n * num_classes).reshape(n, num_classes)
    top = counts.max(axis=1)
    best = counts.argmax(axis=1)
    # A tie for most common class (possible under "share" with min_label_share <= 0.5) names no class:
    # picking the lower index would bias ambiguous windows towards one class.
    unique = (counts == top[:, None]).sum(axis=1) == 1
    if rule.label_rule == "pure":
        ok = top == length
    elif rule.label_rule == "majority":
        ok = 2 * top > length
    else:
        ok = top >= rule.min_label_share * length - _EPS
    return np.where(ok & unique & (top > 0), best, -1).astype(np.int64)


def _interpolate_gaps(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill the invalid samples of ``x`` (K, L, C) linearly from the nearest valid ones of the same channel.

    ``valid``: (K, L, C) bool; every (window, channel) must hold at least one valid sample. Before the
    first valid sample and after the last, the nearest valid value is repeated.
    """
    length = x.shape[1]
    pos = np.arange(length, dtype=np.int64)[None, :, None]
    # Index of the last valid sample at or before each position (-1: none), and of the first at or after (L: none).
    prev = np.maximum.accumulate(np.where(valid, pos, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(valid, pos, length)[:, ::-1], axis=1)[:, ::-1]
    lo = np.where(prev >= 0, prev, nxt)
    hi = np.where(nxt < length, nxt, prev)
    v_lo = np.take_along_axis(x, lo, axis=1).astype(np.float64)
    v_hi = np.take_along_axis(x, hi, axis=1).astype(np.float64)
    span = hi - lo
    weight = np.where(span > 0, (pos - lo) / np.maximum(span, 1), 0.0)
    filled = v_lo + (v_hi - v_lo) * weight
    return np.where(valid, x, filled).astype(np.float32)


def _cut_modality(signal: np.ndarray, first: np.ndarray, length: int, max_gap_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) signal -> ((N, length, C) float32 windows with gaps filled or zeroed, (N,) presence)."""
    x = np.asarray(signal)[first[:, None] + np.arange(length)[None, :]].astype(np.float32)
    # Inf is no more usable than NaN (the container refuses both in present windows): both are gaps.
    valid: np.ndarray = np.isfinite(x)
    gap_samples = (~valid.all(axis=2)).sum(axis=1)
    every_channel_seen = np.all(np.any(valid, axis=1), axis=1)  # (N,): interpolation needs one valid sample
    present = (gap_samples <= max_gap_share * length + _EPS) & every_channel_seen
    fill = present & (gap_samples > 0)
    if fill.any():
        x[fill] = _interpolate_gaps(x[fill], valid[fill])
    x[~present] = 0.0
    return x, present


def window_recording(recording: Recording, rule: WindowRule, label_map: Mapping[int, int]) -> RecordingWindows:
    """Cut ``recording`` into windows of ``rule.window_s`` seconds, ``rule.stride_s`` apart.

    Window k covers seconds ``[k * stride_s, k * stride_s + window_s)``; modality m (rate r_m) gives
    samples ``floor(start_s * r_m) + arange(L_m)``, ``L_m = round(window_s * r_m)``, and the labels
    (at ``label_rate``) give ``max(1, round(window_s * label_rate))`` samples by the same rule. Only
    windows that fit inside every modality and the labels are made. Label samples map to classes
    through ``label_map`` (raw code -> class index; other codes: no class) and ``rule.label_rule``
    picks the window's class. Windows without a class are dropped unless ``rule.keep_unlabeled``
    (label -1); windows with no modality present are always dropped.
    """
    where = f"recording {recording.session or '?'} of subject {recording.subject}"
    bad = {k: v for k, v in label_map.items() if int(v) < 0}
    if bad:
        raise CrosslError(f"label_map maps {bad} to negative classes; map raw codes to class indices >= 0 "
                          "and leave codes without a class out of the map")
    lengths = {m: window_length(rule.window_s, recording.rates[m]) for m in recording.modality_names}
    for m, length in lengths.items():
        if length < 1:
            raise CrosslError(f"{where}: a {rule.window_s} s window holds no sample of modality '{m}' at "
                              f"{recording.rates[m]} Hz; use longer windows")
    label_length = max(1, window_length(rule.window_s, recording.label_rate))

    duration = recording.duration()
    count = int(math.floor((duration - rule.window_s) / rule.stride_s + _EPS)) + 1 if duration + _EPS >= rule.window_s else 0
    starts_s = np.arange(max(count, 0), dtype=np.float64) * rule.stride_s
    # Rounding L_m (and the floor of each start) can push a window's last sample half a sample past
    # a modality's end even when the window fits in seconds: check the sample indices too.
    firsts = {m: _first_indices(starts_s, recording.rates[m]) for m in recording.modality_names}
    label_first = _first_indices(starts_s, recording.label_rate)
    fits = label_first + label_length <= recording.labels.shape[0]
    for m, first in firsts.items():
        fits &= first + lengths[m] <= recording.signals[m].shape[0]
    starts_s, label_first = starts_s[fits], label_first[fits]
    firsts = {m: first[fits] for m, first in firsts.items()}

    num_classes = max((int(v) for v in label_map.values()), default=-1) + 1
    mapped = _map_labels(recording.labels, label_map, class_dtype(num_classes))
    offsets = np.arange(label_length)[None, :]
    # (windows, label samples) class matrices one block of windows at a time: whole, one of 8-s
    # windows at 700 Hz would hold 5,600 samples per window.
    labels = np.concatenate([np.full(0, -1, dtype=np.int64)] + [
        _window_classes(mapped[label_first[i : i + WINDOW_BLOCK, None] + offsets], num_classes, rule)
        for i in range(0, label_first.size, WINDOW_BLOCK)])

    signals: dict[str, np.ndarray] = {}
    presence_cols: list[np.ndarray] = []
    for m in recording.modality_names:
        signals[m], present = _cut_modality(recording.signals[m], firsts[m], lengths[m], rule.max_gap_share)
        presence_cols.append(present)
    presence = np.stack(presence_cols, axis=1)

    keep = presence.any(axis=1)
    if not rule.keep_unlabeled:
        keep &= labels >= 0
    return RecordingWindows(
        signals={m: np.ascontiguousarray(x[keep]) for m, x in signals.items()},
        presence=presence[keep],
        labels=labels[keep],
        starts_s=starts_s[keep],
        subject=int(recording.subject),
        session=recording.session,
    )


def windows_to_set(parts: Sequence[RecordingWindows], meta: DatasetMeta) -> WindowSet:
    """Concatenate the windows of several recordings into one :class:`WindowSet` described by ``meta``.

    Every part must hold ``meta.modality_names`` in that order with the same ``(L_m, C_m)``; where
    ``meta.extra`` names ``window_s``, ``L_m`` must equal ``round(window_s * meta.sampling_rates[m])``.
    """
    if not parts:
        raise CrosslError(f"no recordings to build dataset '{meta.name}' from; check the raw files were found")
    names = meta.modality_names
    shapes = {m: parts[0].signals[m].shape[1:] for m in names if m in parts[0].signals}
    window_s = meta.extra.get("window_s")
    if isinstance(window_s, (int, float)) and not isinstance(window_s, bool):
        expected = {m: window_length(float(window_s), meta.sampling_rates[m]) for m in names if m in meta.sampling_rates}
        for m, shape in shapes.items():
            if m in expected and shape[0] != expected[m]:
                raise CrosslError(f"modality '{m}' windows hold {shape[0]} samples, but {window_s} s at "
                                  f"{meta.sampling_rates[m]} Hz is {expected[m]}; window with the rates the metadata names")
    for part in parts:
        where = f"recording {part.session or '?'} of subject {part.subject}"
        if tuple(part.signals) != names:
            raise CrosslError(f"{where} has modalities {list(part.signals)}, the dataset {list(names)}; "
                              "give every recording the dataset's modalities, in its order")
        for m in names:
            if part.signals[m].shape[1:] != shapes[m]:
                raise CrosslError(f"{where}: modality '{m}' windows have shape {part.signals[m].shape[1:]}, other "
                                  f"recordings {shapes[m]}; window every recording with one rule and the same rates")
        if part.presence.shape != (len(part), len(names)):
            raise CrosslError(f"{where}: presence has shape {part.presence.shape}, expected {(len(part), len(names))}; "
                              "build the parts with window_recording")
    return WindowSet(
        {m: np.concatenate([p.signals[m] for p in parts]) for m in names},
        np.concatenate([p.presence for p in parts]),
        np.concatenate([p.labels for p in parts]).astype(np.int64),
        np.concatenate([np.full(len(p), p.subject, dtype=np.int64) for p in parts]),
        meta,
    )
