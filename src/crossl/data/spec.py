"""A dataset's description as data: modalities, rates, channels, classes, label codes, windowing, split.

One :class:`DatasetSpec` per public dataset states everything the reader and the windowing need
besides the raw files; :meth:`DatasetSpec.meta` gives the :class:`~crossl.data.container.DatasetMeta`
that the prepared :class:`~crossl.data.container.WindowSet` carries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from crossl.data.container import DatasetMeta
from crossl.data.splits import SPLIT_NAMES, SPLIT_SCHEMES, SplitScheme
from crossl.data.windowing import WindowRule, window_length
from crossl.errors import CrosslError


@dataclass(frozen=True)
class DatasetSpec:
    """A multimodal dataset: what its recordings hold and how they become windows.

    - ``modalities``: modality names, in the order of the prepared arrays;
    - ``rates``: Hz per modality; ``channel_names``: one name per channel, per modality;
    - ``class_names``: one per class index; ``label_map``: raw label code -> class index (codes not
      listed, such as transients or "unknown", give no class);
    - ``rule``: the windowing; ``default_split``: subject ids per part (``train``/``val``/``test``),
      or None where the dataset publishes none;
    - ``split_scheme``: ``"subjects"`` (``default_split``, else drawn subject-wise),
      ``"within-subject"`` or ``"leave-one-subject-out"`` (:mod:`crossl.data.splits`; no
      ``default_split`` then).

    Mappings are copied into plain dicts (and sequences into tuples) on construction.
    """

    name: str
    modalities: tuple[str, ...]
    rates: Mapping[str, float]
    channel_names: Mapping[str, tuple[str, ...]]
    class_names: tuple[str, ...]
    label_map: Mapping[int, int]
    rule: WindowRule
    default_split: Mapping[str, tuple[int, ...]] | None = None
    description: str = ""
    split_scheme: SplitScheme = "subjects"

    def __post_init__(self) -> None:
        # Copies, so that a caller's later edits of its dicts cannot change a frozen spec.
        set_ = object.__setattr__
        set_(self, "modalities", tuple(self.modalities))
        set_(self, "class_names", tuple(self.class_names))
        set_(self, "rates", dict(self.rates))
        set_(self, "channel_names", {m: tuple(c) for m, c in self.channel_names.items()})
        set_(self, "label_map", dict(self.label_map))
        if self.default_split is not None:
            set_(self, "default_split", {k: tuple(v) for k, v in self.default_split.items()})
        self._validate()

    def _validate(self) -> None:
        where = f"dataset spec '{self.name}'"
        if not self.name:
            raise CrosslError("a dataset spec needs a name; give it one")
        if not self.modalities:
            raise CrosslError(f"{where} lists no modality; name at least one")
        if len(set(self.modalities)) != len(self.modalities):
            raise CrosslError(f"{where} lists a modality twice in {list(self.modalities)}; list each once")
        for field_name, mapping in (("rates", self.rates), ("channel_names", self.channel_names)):
            missing = [m for m in self.modalities if m not in mapping]
            extra = [m for m in mapping if m not in self.modalities]
            if missing or extra:
                raise CrosslError(f"{where}: {field_name} given for {sorted(mapping)}, modalities are "
                                  f"{list(self.modalities)}; give exactly one entry per modality")
        for m in self.modalities:
            rate = self.rates[m]
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf:
                raise CrosslError(f"{where}: modality '{m}' has rate {rate!r}; rates must be positive numbers of Hz")
            names = self.channel_names[m]
            if not names or len(set(names)) != len(names):
                raise CrosslError(f"{where}: modality '{m}' has channel names {list(names)}; give one distinct name per channel")
        if len(set(self.class_names)) != len(self.class_names):
            raise CrosslError(f"{where} lists a class name twice in {list(self.class_names)}; list each once")
        out_of_range = {k: v for k, v in self.label_map.items() if not 0 <= v < len(self.class_names)}
        if out_of_range:
            raise CrosslError(f"{where}: label_map sends {out_of_range} outside the {len(self.class_names)} classes; "
                              f"map raw codes to class indices 0..{len(self.class_names) - 1}")
        if not isinstance(self.rule, WindowRule):
            raise CrosslError(f"{where}: rule is {type(self.rule).__name__}; pass a WindowRule")
        for m, length in self.window_lengths().items():
            if length < 1:
                raise CrosslError(f"{where}: a {self.rule.window_s} s window holds no sample of modality '{m}' at "
                                  f"{self.rates[m]} Hz; use longer windows")
        if self.default_split is not None:
            self._validate_split(where, self.default_split)
        if self.split_scheme not in SPLIT_SCHEMES:
            raise CrosslError(f"{where}: split_scheme {self.split_scheme!r} is unknown; use one of {', '.join(SPLIT_SCHEMES)}")
        if self.split_scheme != "subjects" and self.default_split is not None:
            raise CrosslError(f"{where}: a {self.split_scheme} split takes no default_split; pass None")

    @staticmethod
    def _validate_split(where: str, split: Mapping[str, tuple[int, ...]]) -> None:
        unknown = [k for k in split if k not in SPLIT_NAMES]
        if unknown:
            raise CrosslError(f"{where}: default_split has parts {unknown}; use {', '.join(SPLIT_NAMES)}")
        for part in ("train", "test"):
            if not split.get(part):
                raise CrosslError(f"{where}: default_split gives no '{part}' subjects; list some, or pass None")
        seen: dict[int, str] = {}
        for part, subjects in split.items():
            for s in subjects:
                if s in seen:
                    twice = "twice" if seen[s] == part else f"in '{seen[s]}' and '{part}'"
                    raise CrosslError(f"{where}: default_split lists subject {s} {twice}; a subject belongs to one part, once")
                seen[s] = part

    def window_lengths(self) -> dict[str, int]:
        """Samples per window of each modality: ``round(rule.window_s * rates[m])``."""
        return {m: window_length(self.rule.window_s, self.rates[m]) for m in self.modalities}

    def meta(self) -> DatasetMeta:
        """The container metadata of this dataset's windows (split and window seconds in ``extra``)."""
        extra: dict[str, object] = {}
        if self.default_split is not None:
            # Lists, as JSON gives them back from meta.json: a loaded set's metadata compares equal.
            extra["default_split"] = {k: [int(s) for s in v] for k, v in self.default_split.items()}
        if self.split_scheme != "subjects":
            extra["split_scheme"] = self.split_scheme
        extra["window_s"] = float(self.rule.window_s)
        extra["stride_s"] = float(self.rule.stride_s)
        return DatasetMeta(
            name=self.name,
            modality_names=self.modalities,
            channel_names=dict(self.channel_names),
            sampling_rates={m: float(self.rates[m]) for m in self.modalities},
            class_names=self.class_names,
            extra=extra,
        )
