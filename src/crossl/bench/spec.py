"""What a compiled grid is: its cells (one pretraining and the evaluations that read it) and the grid.

No torch here: listing cells and checking a grid never import it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossl.bench.gridfile import GridFile
from crossl.config import RunConfig, options_for
from crossl.config_fields import plain_config

SCORE_PARTS = {"test": "test", "validation": "val"}


#: (config section, key) -> the value of a setting added after grids had run that computes what a
#: config without the setting computed. A cell holding that value keeps the id it had before the
#: setting existed; any other value is a new cell. Add every new setting here with its neutral value.
NEUTRAL_DEFAULTS: dict[tuple[str, str], Any] = {
    ("split", "fold"): 0,
    ("split", "val_subjects"): [],
    ("model", "aggregator_norm"): True,
    ("model", "elementwise"): "eager",
    ("model", "input_norm"): "train",
    ("pretrain", "lr_schedule"): "constant",
    ("pretrain", "warmup_epochs"): 0.0,
    ("pretrain", "unlabeled_windows"): False,
    ("crossl", "expander"): [],
    ("evaluation", "head_warmup"): 0.0,
    ("evaluation", "label_smoothing"): 0.0,
}


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation of a cell's model: every (protocol, fraction, label seed), scored on the
    full windows and on each modality subset removed in ``missing``."""

    protocols: tuple[str, ...]
    label_fractions: tuple[float, ...]
    label_seeds: tuple[int, ...]
    modality_dropout: float = 0.0
    missing: tuple[tuple[str, ...], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"protocols": list(self.protocols), "label_fractions": list(self.label_fractions),
                "label_seeds": list(self.label_seeds), "modality_dropout": self.modality_dropout,
                "missing": [list(m) for m in self.missing]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EvalRequest:
        return cls(tuple(obj["protocols"]), tuple(obj["label_fractions"]), tuple(obj["label_seeds"]),
                   float(obj["modality_dropout"]), tuple(tuple(m) for m in obj["missing"]))


@dataclass
class Cell:
    """One independent job: a pretraining (none for ``supervised``) and the evaluations that use it."""

    dataset: str
    #: the pretraining method, None for a supervised-only cell
    method: str | None
    #: the resolved run config (``RunConfig.to_dict()``): model, pretraining (its seed), evaluation, trainer
    config: dict[str, Any]
    #: modalities the cell trains and scores on (a model "trained without" the others); None: all
    kept: tuple[str, ...] | None
    split_seed: int
    score_on: str
    evaluations: list[EvalRequest] = field(default_factory=list)
    #: windows of the scored part to embed with t-SNE (0: none)
    embedding: int = 0
    #: what the report reads this cell for: ``{"analysis": "main", "variant": "crossl"}``, ...
    roles: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pretrain_seed(self) -> int | None:
        return None if self.method is None else int(self.config["pretrain"]["seed"])

    def identity(self) -> dict[str, Any]:
        """What the cell computes; two cells with one identity are one cell. Where its logs go does
        not count (changing the logger keeps the grid's finished cells), nor does a setting added
        after a grid ran while it holds the value that computes what the grid computed then
        (:data:`NEUTRAL_DEFAULTS`): upgrading crossl keeps a grid's finished cells."""
        config = {section: dict(values) if isinstance(values, dict) else values for section, values in self.config.items()}
        config.get("trainer", {}).pop("logger", None)
        for (section, key), neutral in NEUTRAL_DEFAULTS.items():
            values = config.get(section)
            if isinstance(values, dict) and key in values and values[key] == neutral:
                del values[key]
                if not values:  # a section added later with its neutral values only
                    del config[section]
        return {"dataset": self.dataset, "method": self.method, "config": config,
                "kept": self.kept, "split_seed": self.split_seed, "score_on": self.score_on}

    def spec(self) -> dict[str, Any]:
        return {**self.identity(), "evaluations": [e.to_json() for e in self.evaluations], "embedding": self.embedding}

    @property
    def id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.spec(), sort_keys=True).encode()).hexdigest()[:10]
        who = self.method or "supervised"
        seed = "" if self.method is None else f"-p{self.pretrain_seed}"
        kept = "" if self.kept is None else "-only-" + "+".join(self.kept)
        return f"{Path(self.dataset).name}-{who}{seed}{kept}-{digest}"

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config)

    def describe(self) -> str:
        what = "supervised" if self.method is None else f"{self.method} pretraining seed {self.pretrain_seed}"
        defaults = plain_config(options_for(self.method)) if self.method else {}
        options = {k: v for k, v in (self.config.get(self.method, {}) if self.method else {}).items()
                   if defaults.get(k) != v}
        evals = sum(len(e.protocols) * len(e.label_fractions) * len(e.label_seeds) for e in self.evaluations)
        kept = "" if self.kept is None else f", only {'+'.join(self.kept)}"
        opts = "" if not options else " (" + ", ".join(f"{k} {v}" for k, v in options.items()) + ")"
        names = sorted({r["variant"] for r in self.roles if "variant" in r} - {self.method or "supervised"})
        return f"{self.dataset}: {what}{opts}{kept}{' [' + ', '.join(names) + ']' if names else ''}; {evals} evaluations"


@dataclass
class Grid:
    name: str
    source: GridFile
    datasets: tuple[str, ...]
    cells: list[Cell]
    #: the variant the paired comparisons hold against every other (default: the first crossl variant)
    reference: str
    #: variant name -> method name
    variants: dict[str, str]
    score_on: str
    analyses: dict[str, Any]
    #: variant name (and "supervised") -> its main evaluation: the request and its pretraining seeds
    plans: dict[str, tuple[EvalRequest, tuple[int, ...]]] = field(default_factory=dict)
    #: dataset -> its modality names
    modalities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the grid as the user named it (a path, or a shipped grid's name)
    arg: str = ""
    #: further paired comparisons, each (a, b): ``a`` minus ``b`` (``b`` may be "supervised")
    comparisons: tuple[tuple[str, str], ...] = ()
