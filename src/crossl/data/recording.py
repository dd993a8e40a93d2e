"""A continuous recording: every modality at its own native rate, labels on their own time base.

Raw-format readers (one module per dataset under :mod:`crossl.data.datasets`) turn files into
:class:`Recording` objects, one at a time; windowing (:mod:`crossl.data.windowing`) cuts a
recording into per-modality windows that cover the same seconds. All time bases start at the
recording's first sample (t = 0 s) for every modality and for the labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from crossl.errors import CrosslError


@dataclass(frozen=True)
class Recording:
    """One session of one subject.

    - ``signals``: ``{modality: (T_m, C_m) float32}`` at ``rates[modality]`` Hz; NaN marks a gap
      (a dropped packet, a sensor off): never zero-filled here.
    - ``labels``: ``(T_l,) int64`` raw label values at ``label_rate`` Hz (the dataset's own codes,
      mapped to classes by the windowing's label map); ``-1`` where unlabeled.
    - ``subject``: integer subject id; ``session``: a name unique within the subject (file stem).
    - ``channel_names``: per modality, one name per channel.
    """

    signals: Mapping[str, np.ndarray]
    rates: Mapping[str, float]
    labels: np.ndarray
    label_rate: float
    subject: int
    session: str = ""
    channel_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"recording {self.session or '?'} of subject {self.subject}"
        if not self.signals:
            raise CrosslError(f"{where} has no modality")
        if set(self.rates) != set(self.signals):
            raise CrosslError(f"{where}: rates given for {sorted(self.rates)}, signals for {sorted(self.signals)}")
        for name, signal in self.signals.items():
            if signal.ndim != 2 or signal.shape[1] < 1:
                raise CrosslError(f"{where}: modality '{name}' has shape {signal.shape}; expected (time, channels)")
            if not self.rates[name] > 0:
                raise CrosslError(f"{where}: modality '{name}' has rate {self.rates[name]}; rates must be positive")
            names = self.channel_names.get(name)
            if names is not None and len(names) != signal.shape[1]:
                raise CrosslError(f"{where}: modality '{name}' has {signal.shape[1]} channels, {len(names)} names")
        if self.labels.ndim != 1 or not np.issubdtype(self.labels.dtype, np.integer):
            raise CrosslError(f"{where}: labels must be (time,) integers, got {self.labels.dtype} {self.labels.shape}")
        if not self.label_rate > 0:
            raise CrosslError(f"{where}: label rate {self.label_rate} must be positive")

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(self.signals)

    def duration(self) -> float:
        """Seconds covered by every modality and by the labels."""
        spans = [len(s) / self.rates[m] for m, s in self.signals.items()]
        return min([*spans, len(self.labels) / self.label_rate])


#: Slack for float products of seconds and rates (11.996 s x 250 Hz may land a hair under 2999).
TIME_SLACK = 1e-6


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
        label_arr = np.full(int(math.ceil(longest * label_rate - TIME_SLACK)), -1, dtype=np.int64)
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
