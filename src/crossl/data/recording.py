"""A continuous recording: every modality at its own native rate, labels on their own time base.

Raw-format readers (one module per dataset under :mod:`crossl.data.datasets`) turn files into
:class:`Recording` objects, one at a time; windowing (:mod:`crossl.data.windowing`) cuts a
recording into per-modality windows that cover the same seconds. All time bases start at the
recording's first sample (t = 0 s) for every modality and for the labels.
"""

from __future__ import annotations

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
