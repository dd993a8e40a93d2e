"""Grid files: what a benchmark computes, checked line by line, compiled into independent cells.

A grid names datasets, methods (with options), protocols, label fractions and two seed axes:
pretraining seeds (one pretrained model each) and label seeds (one label subset, head
initialisation and batch order each). It compiles to **cells**: one cell is one pretrained model
(or none, for the supervised baseline) with every evaluation that reads it, so a model and its
frozen features are computed once and cells never depend on each other (a cluster may run them in
any order). Identical pretrainings requested by several parts of a grid (the main table and the
masking-ratio sweep) are one cell.

No torch here: ``crossl bench --list`` and every check run before anything heavy is imported.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crossl.bench.gridfile import (
    GridFile,
    check_fractions,
    check_keys,
    check_list,
    check_protocols,
    check_seeds,
    read_grid_file,
)
from crossl.bench.spec import SCORE_PARTS, Cell, EvalRequest, Grid
from crossl.config import METHOD_NAMES, PROTOCOL_NAMES, RunConfig
from crossl.errors import CrosslError
from crossl.method_options import MASK_STRATEGIES

#: Protocols that read a pretrained model; ``supervised`` has a cell of its own.
PRETRAINED_PROTOCOLS = tuple(p for p in PROTOCOL_NAMES if p != "supervised")

TOP_KEYS = {"name", "datasets", "score_on", "split_seed", "config", "protocols", "label_fractions", "pretrain_seeds",
            "label_seeds", "methods", "supervised", "reference", "comparisons", "analyses"}
METHOD_KEYS = {"method", "name", "options", "config", "pretrain_seeds", "label_seeds", "protocols", "label_fractions"}
ANALYSIS_KEYS = {
    "masking_ratio": {"method", "strategies", "ratios", "protocol", "label_fraction", "pretrain_seeds", "label_seeds",
                      "config"},
    "missing_modalities": {"methods", "protocol", "label_fraction", "modality_dropout", "remove", "ceiling",
                           "pretrain_seeds", "label_seeds"},
    "embedding": {"method", "pretrain_seed", "max_windows"},
}


def _dataset(g: GridFile, path: tuple[Any, ...], name: Any) -> tuple[str, tuple[str, ...]]:
    from crossl.data.datasets import dataset_modalities

    if not isinstance(name, str):
        raise g.fail(path, f"a dataset is a name or a directory, got {name!r}")
    try:
        return name, dataset_modalities(name)
    except CrosslError as exc:
        raise g.fail(path, str(exc)) from exc


def _config_section(g: GridFile, path: tuple[Any, ...], raw: Any) -> dict[str, Any]:
    """A ``config`` section (the grid's shared one, or a method entry's overrides), checked."""
    if raw is None:
        return {}
    section = check_keys(g, path, raw, {"model", "pretrain", "evaluation", "trainer", "split"},
                    "config (settings as in a run's config.yaml)")
    for part in ("model", "pretrain", "evaluation", "trainer", "split"):
        if part in section and not isinstance(section[part], dict):
            raise g.fail((*path, part), f"must be a mapping of {part} settings, got {section[part]!r}")
    for part in ("pretrain", "evaluation"):
        for key in ("seed", "seeds", "protocols", "label_fractions"):
            if isinstance(section.get(part), dict) and key in section[part]:
                raise g.fail((*path, part, key), "seeds, protocols and fractions are axes of the grid: set "
                                                 "pretrain_seeds, label_seeds, protocols, label_fractions instead")
    try:
        RunConfig.from_dict(dict(section))
    except CrosslError as exc:
        raise g.fail(path, str(exc)) from exc
    return dict(section)


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with each section updated by the same section of ``overrides``."""
    return {k: {**base.get(k, {}), **overrides.get(k, {})} for k in dict.fromkeys([*base, *overrides])}


def _cell_config(g: GridFile, path: tuple[Any, ...], base: Mapping[str, Any], dataset: str, method: str,
                 options: Mapping[str, Any], seed: int) -> dict[str, Any]:
    obj: dict[str, Any] = {k: dict(v) for k, v in base.items()}
    obj["dataset"], obj["method"], obj[method] = dataset, method, dict(options)
    obj["pretrain"] = {**obj.get("pretrain", {}), "seed": seed}
    try:
        return RunConfig.from_dict(obj).to_dict()
    except CrosslError as exc:
        raise g.fail(path, str(exc)) from exc


@dataclass
class _Variant:
    name: str
    method: str
    options: dict[str, Any]
    pretrain_seeds: tuple[int, ...]
    label_seeds: tuple[int, ...]
    protocols: tuple[str, ...]
    label_fractions: tuple[float, ...]
    path: tuple[Any, ...]
    #: the entry's own config sections, over the grid's
    config: dict[str, Any] = field(default_factory=dict)


def _variants(g: GridFile, top: Mapping[str, Any]) -> list[_Variant]:
    raw = top.get("methods")
    if not isinstance(raw, list) or not raw:
        raise g.fail(("methods",), "list at least one method, e.g. `methods: [{method: crossl}]`")
    variants: list[_Variant] = []
    for i, entry in enumerate(raw):
        path = ("methods", i)
        if isinstance(entry, str):
            entry = {"method": entry}
        entry = check_keys(g, path, entry, METHOD_KEYS, "a method entry")
        method = entry.get("method")
        if method not in METHOD_NAMES:
            raise g.fail((*path, "method"), f"unknown method {method!r}; use one of {list(METHOD_NAMES)}")
        name = entry.get("name", method)
        if not isinstance(name, str) or not name or name == "supervised":
            raise g.fail((*path, "name"), f"a variant name is a non-empty string other than 'supervised', got {name!r}")
        if any(v.name == name for v in variants):
            raise g.fail(path, f"two entries are named '{name}'; give each variant of a method its own `name`")
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            raise g.fail((*path, "options"), f"options must be a mapping of the method's options, got {options!r}")
        variants.append(_Variant(
            name, method, options,
            check_seeds(g, (*path, "pretrain_seeds"), entry.get("pretrain_seeds", top["pretrain_seeds"])),
            check_seeds(g, (*path, "label_seeds"), entry.get("label_seeds", top["label_seeds"])),
            check_protocols(g, (*path, "protocols"), entry.get("protocols", top["protocols"]), PRETRAINED_PROTOCOLS),
            check_fractions(g, (*path, "label_fractions"), entry.get("label_fractions", top["label_fractions"])),
            path, _config_section(g, (*path, "config"), entry.get("config"))))
    return variants


def proper_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty proper subset of ``modalities``, smallest first, in the dataset's order."""
    return [c for k in range(1, len(modalities)) for c in itertools.combinations(modalities, k)]


# ---------------------------------------------------------------- compiling
class _Cells:
    """Cells by identity: a request for an existing pretraining adds to that cell."""

    def __init__(self) -> None:
        self.cells: dict[str, Cell] = {}

    def get(self, cell: Cell) -> Cell:
        key = json.dumps(cell.identity(), sort_keys=True)
        return self.cells.setdefault(key, cell)


def load_grid(grid: str | Path) -> Grid:
    """Read, check and compile a grid file (or a shipped grid's name) into its cells."""
    g = read_grid_file(grid)
    top = check_keys(g, (), g.data, TOP_KEYS, "the grid")
    name = top.get("name", g.path.stem.removesuffix(".yaml"))
    if not isinstance(name, str) or not name:
        raise g.fail(("name",), f"the grid's name is a non-empty string, got {name!r}")
    datasets_raw = top.get("datasets")
    if datasets_raw is None:
        raise g.fail((), "name the data: `datasets: [hapt]` (built-in names, prepared presets or directories)")
    datasets = [_dataset(g, ("datasets", i), d) for i, d in
                enumerate(check_list(g, ("datasets",), datasets_raw, str, "dataset names"))]
    score_on = top.get("score_on", "test")
    if score_on not in SCORE_PARTS:
        raise g.fail(("score_on",), f"must be one of {list(SCORE_PARTS)} (choose variants on validation; "
                                    f"report the chosen one once on test), got {score_on!r}")
    split_seed = top.get("split_seed", 0)
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise g.fail(("split_seed",), f"must be a whole number >= 0, got {split_seed!r}")
    for key, default in (("pretrain_seeds", [0]), ("label_seeds", [0]), ("protocols", ["linear", "finetune"]),
                         ("label_fractions", [0.01, 0.1, 1.0])):
        top.setdefault(key, default)
    check_seeds(g, ("pretrain_seeds",), top["pretrain_seeds"])
    check_seeds(g, ("label_seeds",), top["label_seeds"])
    check_fractions(g, ("label_fractions",), top["label_fractions"])
    check_protocols(g, ("protocols",), top["protocols"], PRETRAINED_PROTOCOLS)
    base = _config_section(g, ("config",), top.get("config"))
    # A grid's cells train in float32 unless the grid names a precision: "auto" would make what a cell
    # computes depend on the CPU that computes it, and a grid's cells are shared between machines.
    base = {**base, "trainer": {"precision": "32-true", **base.get("trainer", {})}}
    variants = _variants(g, top)
    by_name = {v.name: v for v in variants}
    reference = top.get("reference", next((v.name for v in variants if v.method == "crossl"), variants[0].name))
    if reference not in by_name:
        raise g.fail(("reference",), f"unknown variant '{reference}'; use one of {sorted(by_name)}")
    supervised = _supervised(g, top)
    comparisons = _comparisons(g, top.get("comparisons", []), set(by_name) | ({"supervised"} if supervised else set()))
    analyses = dict(check_keys(g, ("analyses",), top.get("analyses") or {}, set(ANALYSIS_KEYS), "analyses"))
    for key, value in analyses.items():
        analyses[key] = check_keys(g, ("analyses", key), value or {}, ANALYSIS_KEYS[key], f"analyses.{key}")
    main_dropout = float(base.get("evaluation", {}).get("modality_dropout", 0.0))

    def dropout_of(v: _Variant) -> float:
        return float(_merged(base, v.config).get("evaluation", {}).get("modality_dropout", 0.0))

    cells = _Cells()
    for dataset, modalities in datasets:
        def pretrained_cell(v: _Variant, seed: int, options: Mapping[str, Any], path: tuple[Any, ...],
                            kept: tuple[str, ...] | None = None, *, ds: str = dataset) -> Cell:
            config = _cell_config(g, path, _merged(base, v.config), ds, v.method, options, seed)
            return cells.get(Cell(ds, v.method, config, kept, split_seed, score_on))

        def supervised_cell(kept: tuple[str, ...] | None = None, *, ds: str = dataset) -> Cell:
            config = _cell_config(g, ("config",), base, ds, "random-init", {}, 0)
            return cells.get(Cell(ds, None, config, kept, split_seed, score_on))

        for v in variants:
            for seed in v.pretrain_seeds:
                cell = pretrained_cell(v, seed, v.options, v.path)
                cell.evaluations.append(EvalRequest(v.protocols, v.label_fractions, v.label_seeds, dropout_of(v)))
                cell.roles.append({"analysis": "main", "variant": v.name})
        if supervised is not None:
            cell = supervised_cell()
            cell.evaluations.append(EvalRequest(("supervised",), supervised[1], supervised[0], main_dropout))
            cell.roles.append({"analysis": "main", "variant": "supervised"})
        if "masking_ratio" in analyses:
            _masking_ratio(g, analyses["masking_ratio"], by_name, top, pretrained_cell)
        if "missing_modalities" in analyses:
            _missing_modalities(g, analyses["missing_modalities"], by_name, top, modalities, pretrained_cell,
                                supervised_cell)
        if "embedding" in analyses:
            _embedding(g, analyses["embedding"], by_name, pretrained_cell)
    plans = {v.name: (EvalRequest(v.protocols, v.label_fractions, v.label_seeds, dropout_of(v)), v.pretrain_seeds)
             for v in variants}
    if supervised is not None:
        plans["supervised"] = (EvalRequest(("supervised",), supervised[1], supervised[0], main_dropout), ())
    return Grid(name, g, tuple(d for d, _ in datasets), list(cells.cells.values()), reference,
                {v.name: v.method for v in variants}, score_on, analyses, plans, dict(datasets), str(grid),
                comparisons)


def _comparisons(g: GridFile, raw: Any, known: set[str]) -> tuple[tuple[str, str], ...]:
    """``comparisons: [[a, b], ...]``: each pair of variant names (``b`` may be supervised)."""
    if not isinstance(raw, list):
        raise g.fail(("comparisons",), "must be a list of [variant, variant] pairs, e.g. [[vicreg-expander, crossl]]")
    pairs: list[tuple[str, str]] = []
    for i, pair in enumerate(raw):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
            raise g.fail(("comparisons", i), f"must be a pair of variant names [a, b] (a minus b), got {pair!r}")
        for j, name in enumerate(pair):
            if name not in known or (j == 0 and name == "supervised"):
                side = "the first of a pair" if j == 0 else "a variant"
                raise g.fail(("comparisons", i), f"{name!r} is not {side} of this grid; use one of "
                                                  f"{sorted(known - ({'supervised'} if j == 0 else set()))}")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _supervised(g: GridFile, top: Mapping[str, Any]) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """``supervised: true`` (every label seed and fraction of the grid), false, or a mapping of them."""
    raw = top.get("supervised", True)
    if raw is False:
        return None
    if raw is True:
        raw = {}
    raw = check_keys(g, ("supervised",), raw, {"label_seeds", "label_fractions"}, "supervised")
    return (check_seeds(g, ("supervised", "label_seeds"), raw.get("label_seeds", top["label_seeds"])),
            check_fractions(g, ("supervised", "label_fractions"), raw.get("label_fractions", top["label_fractions"])))


def _variant(g: GridFile, path: tuple[Any, ...], name: Any, by_name: Mapping[str, _Variant]) -> _Variant:
    if name not in by_name:
        raise g.fail(path, f"unknown variant {name!r}; name one of the grid's methods {sorted(by_name)}")
    return by_name[name]


def _one_fraction(g: GridFile, path: tuple[Any, ...], value: Any) -> float:
    return check_fractions(g, path, [value])[0]


def _masking_ratio(g: GridFile, spec: Mapping[str, Any], by_name: Mapping[str, _Variant], top: Mapping[str, Any],
                   pretrained_cell: Any) -> None:
    path = ("analyses", "masking_ratio")
    v = _variant(g, (*path, "method"), spec.get("method", "crossl"), by_name)
    # The sweep's own settings (e.g. fewer epochs to keep it cheap) over the variant's.
    v = replace(v, config=_merged(v.config, _config_section(g, (*path, "config"), spec.get("config"))))
    if v.method != "crossl":
        raise g.fail((*path, "method"), f"the masking-ratio sweep varies CroSSL's latent masking; '{v.name}' is {v.method}")
    strategies = check_list(g, (*path, "strategies"), spec.get("strategies", ["modality", "random", "feature"]), str,
                       "masking strategies")
    for i, s in enumerate(strategies):
        if s not in MASK_STRATEGIES or s == "none":
            raise g.fail((*path, "strategies", i), f"unknown masking strategy '{s}'; use modality, random or feature")
    ratios = [float(r) for r in check_list(g, (*path, "ratios"), spec.get("ratios", [0.1, 0.3, 0.5, 0.7, 0.9]),
                                      (int, float), "masking ratios")]
    if any(not 0.0 < r < 1.0 for r in ratios):
        raise g.fail((*path, "ratios"), f"masking ratios must lie in (0, 1), got {ratios}")
    protocol = check_protocols(g, (*path, "protocol"), spec.get("protocol", "linear"), PRETRAINED_PROTOCOLS)[0]
    fraction = _one_fraction(g, (*path, "label_fraction"), spec.get("label_fraction", 0.1))
    seeds = check_seeds(g, (*path, "pretrain_seeds"), spec.get("pretrain_seeds", v.pretrain_seeds[:1]))
    label_seeds = check_seeds(g, (*path, "label_seeds"), spec.get("label_seeds", v.label_seeds))
    for strategy in strategies:
        for ratio in ratios:
            options = {**v.options, "mask_strategy": strategy, "mask_ratio": ratio}
            for seed in seeds:
                cell = pretrained_cell(v, seed, options, path)
                cell.evaluations.append(EvalRequest((protocol,), (fraction,), label_seeds))
                cell.roles.append({"analysis": "masking_ratio", "strategy": strategy, "ratio": ratio})


def _missing_modalities(g: GridFile, spec: Mapping[str, Any], by_name: Mapping[str, _Variant], top: Mapping[str, Any],
                        modalities: tuple[str, ...], pretrained_cell: Any, supervised_cell: Any) -> None:
    path = ("analyses", "missing_modalities")
    names = check_list(g, (*path, "methods"), spec.get("methods", [next(iter(by_name))]), str, "variant names")
    protocol = check_protocols(g, (*path, "protocol"), spec.get("protocol", "finetune"), PRETRAINED_PROTOCOLS)[0]
    fraction = _one_fraction(g, (*path, "label_fraction"), spec.get("label_fraction", 0.1))
    dropouts = [float(d) for d in check_list(g, (*path, "modality_dropout"), spec.get("modality_dropout", [0.0]),
                                        (int, float), "modality dropout probabilities")]
    if any(not 0.0 <= d < 1.0 for d in dropouts):
        raise g.fail((*path, "modality_dropout"), f"probabilities must lie in [0, 1), got {dropouts}")
    if protocol in ("linear", "mlp") and dropouts != [0.0]:
        raise g.fail((*path, "modality_dropout"), f"modality dropout trains the backbone; '{protocol}' keeps it "
                                                  "frozen: use protocol finetune, or modality_dropout [0.0]")
    if "remove" in spec:
        remove = []
        for i, subset in enumerate(check_list(g, (*path, "remove"), spec["remove"], list, "lists of modality names")):
            unknown = [m for m in subset if m not in modalities]
            if unknown or not subset:
                raise g.fail((*path, "remove", i), f"remove lists modalities of the data {list(modalities)}, got {subset}")
            if set(subset) == set(modalities):
                raise g.fail((*path, "remove", i), f"removes every modality {list(modalities)}: nothing is left to "
                                                   "classify; keep at least one")
            remove.append(tuple(m for m in modalities if m in subset))
    else:
        remove = proper_subsets(modalities)
        if not remove:
            raise g.fail(path, f"the data has one modality {list(modalities)}: removing any drops every modality")
    ceiling = spec.get("ceiling", False)
    if isinstance(ceiling, bool):
        ceiling = names if ceiling else []
    ceiling = check_list(g, (*path, "ceiling"), ceiling, str, "variant names") if ceiling else []
    for i, name in enumerate(ceiling):
        if name not in names:
            raise g.fail((*path, "ceiling", i), f"'{name}' is not among this analysis's methods {names}")
    for i, name in enumerate(names):
        label_default = top["label_seeds"] if name == "supervised" else _variant(g, (*path, "methods", i), name,
                                                                                  by_name).label_seeds
        label_seeds = check_seeds(g, (*path, "label_seeds"), spec.get("label_seeds", label_default))
        targets: list[tuple[Callable[..., Cell], int | None, tuple[str, ...]]]
        if name == "supervised":
            targets = [(supervised_cell, None, ("supervised",))]
        else:
            v = by_name[name]
            seeds = check_seeds(g, (*path, "pretrain_seeds"), spec.get("pretrain_seeds", v.pretrain_seeds[:1]))
            targets = [(lambda kept=None, v=v, s=s: pretrained_cell(v, s, v.options, path, kept), s, (protocol,))
                       for s in seeds]
        for make, _, protocols in targets:
            cell = make()
            for d in dropouts:
                cell.evaluations.append(EvalRequest(protocols, (fraction,), label_seeds, d, tuple(remove)))
            cell.roles.append({"analysis": "missing_modalities", "variant": name})
            if name in ceiling:
                for removed in remove:
                    kept = tuple(m for m in modalities if m not in removed)
                    ceiling_cell = make(kept)
                    ceiling_cell.evaluations.append(EvalRequest(protocols, (fraction,), label_seeds))
                    ceiling_cell.roles.append({"analysis": "ceiling", "variant": name, "removed": list(removed)})


def _embedding(g: GridFile, spec: Mapping[str, Any], by_name: Mapping[str, _Variant], pretrained_cell: Any) -> None:
    path = ("analyses", "embedding")
    v = _variant(g, (*path, "method"), spec.get("method", next(iter(by_name))), by_name)
    seed = check_seeds(g, (*path, "pretrain_seed"), [spec.get("pretrain_seed", v.pretrain_seeds[0])])[0]
    most = spec.get("max_windows", 2000)
    if isinstance(most, bool) or not isinstance(most, int) or most < 10:
        raise g.fail((*path, "max_windows"), f"must be a whole number of at least 10, got {most!r}")
    cell = pretrained_cell(v, seed, v.options, path)
    cell.embedding = max(cell.embedding, most)
    cell.roles.append({"analysis": "embedding", "variant": v.name})
