"""The grid's report: Markdown tables with bootstrap confidence intervals, paired comparisons, PNG plots.

Every number is read from the finished cells' records (``results.json`` of the grid directory).
Per cell of a table: mean, std and the 95% two-level bootstrap interval over every pretraining
seed and label seed (:mod:`crossl.evaluation.statistics`); ``n`` counts the scores.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossl.bench.spec import Grid
from crossl.data.splits import split_kind
from crossl.evaluation.statistics import Comparison, Summary, paired_comparison, summarize_scores
from crossl.io import write_text_atomic
from crossl.reports.machine import machine_summary

Row = dict[str, Any]
PART_NAMES = {"test": "test", "validation": "validation"}


# ---------------------------------------------------------------- selecting scores
def _full(row: Row) -> bool:
    return not row.get("missing")


def variant_rows(rows: Iterable[Row], grid: Grid, dataset: str, variant: str) -> list[Row]:
    """The main evaluation's records of ``variant`` (``supervised`` included) on ``dataset``."""
    request, seeds = grid.plans[variant]
    out = []
    for r in rows:
        if r["dataset"] != dataset or r["kept"] is not None or not _full(r):
            continue
        if variant == "supervised":
            if r["method"] is not None or r["protocol"] != "supervised":
                continue
        elif variant not in r["variants"] or r["pretrain_seed"] not in seeds:
            continue
        trained = r["protocol"] in ("finetune", "supervised")
        if (r["protocol"] in request.protocols and r["label_fraction"] in request.label_fractions
                and r["seed"] in request.label_seeds
                and float(r["modality_dropout"]) == (request.modality_dropout if trained else 0.0)):
            out.append(r)
    return out


def grouped(rows: Iterable[Row]) -> dict[int, list[float]]:
    """Macro-F1 by pretraining seed (``-1`` for the supervised baseline, which has none)."""
    groups: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        groups[-1 if r["pretrain_seed"] is None else int(r["pretrain_seed"])].append(float(r["macro_f1"]))
    return dict(groups)


def keyed(rows: Iterable[Row]) -> dict[tuple[int, int], float]:
    return {(-1 if r["pretrain_seed"] is None else int(r["pretrain_seed"]), int(r["seed"])): float(r["macro_f1"])
            for r in rows}


def _fmt(s: Summary, bold: bool = False) -> str:
    text = f"{s.mean:.3f} ± {s.std:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}] ({s.n})"
    return f"**{text}**" if bold else text


def _pct(f: float) -> str:
    return f"{100 * f:g}%"


# ---------------------------------------------------------------- sections
def main_table(rows: Sequence[Row], grid: Grid, dataset: str) -> tuple[str, dict[tuple[str, str, float], Summary]]:
    """Rows (variant, protocol), columns label fractions; the best mean of each column in bold."""
    summaries: dict[tuple[str, str, float], Summary] = {}
    for variant in grid.plans:
        by: dict[tuple[str, float], list[Row]] = defaultdict(list)
        for r in variant_rows(rows, grid, dataset, variant):
            by[(r["protocol"], float(r["label_fraction"]))].append(r)
        for (protocol, fraction), group in by.items():
            summaries[(variant, protocol, fraction)] = summarize_scores(grouped(group))
    fractions = sorted({k[2] for k in summaries})
    if not summaries:
        return "No finished cell of the main table yet.", summaries
    best = {f: max(s.mean for k, s in summaries.items() if k[2] == f) for f in fractions}
    lines = ["| method | protocol | " + " | ".join(_pct(f) + " labels" for f in fractions) + " |",
             "|---|---|" + "---|" * len(fractions)]
    order = list(dict.fromkeys((k[0], k[1]) for k in summaries))
    for variant, protocol in order:
        cells = []
        for f in fractions:
            s = summaries.get((variant, protocol, f))
            cells.append("" if s is None else _fmt(s, bold=s.mean == best[f]))
        name = "supervised (random init)" if variant == "supervised" else f"`{variant}`"
        lines.append(f"| {name} | {protocol} | " + " | ".join(cells) + " |")
    return "\n".join(lines), summaries


def paired_table(rows: Sequence[Row], grid: Grid, dataset: str) -> tuple[str, list[tuple[str, str, float, Comparison]]]:
    """The reference variant against every other variant (same protocol) and against supervised."""
    others = [other for other in grid.plans if other != grid.reference]
    return comparison_table(rows, grid, dataset, [(grid.reference, other) for other in others], f"`{grid.reference}`")


def comparison_table(rows: Sequence[Row], grid: Grid, dataset: str, pairs: Sequence[tuple[str, str]], who: str
                     ) -> tuple[str, list[tuple[str, str, float, Comparison]]]:
    """Each ``(a, b)`` of ``pairs``: a minus b per protocol (b's protocol too, or supervised) and fraction.
    ``who`` heads the first column (the reference's name, or "variant")."""
    found: list[tuple[str, str, float, Comparison]] = []
    lines = [f"| {who} | against | protocol (both) | labels | pairs | mean difference [95% CI] | wins / losses / ties |",
             "|---|---|---|---|---|---|---|"]
    for ref, other in pairs:
        for row in _pair_rows(rows, grid, dataset, ref, other):
            found.append(row)
            other_name, protocol, fraction, c = row
            against = "supervised" if other_name == "supervised" else f"`{other_name}`"
            protocol = f"{protocol} / supervised" if other_name == "supervised" else protocol
            mark = " (above 0)" if c.ci_low > 0 else " (below 0)" if c.ci_high < 0 else ""
            lines.append(f"| `{ref}` | {against} | {protocol} | {_pct(fraction)} | {c.pairs} | {c.mean_diff:+.3f} "
                         f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]{mark} | {c.wins} / {c.losses} / {c.ties} |")
    if not found:
        return "No pairs yet (both sides of a comparison need finished cells).", found
    return "\n".join(lines), found


def _pair_rows(rows: Sequence[Row], grid: Grid, dataset: str, ref: str, other: str
               ) -> list[tuple[str, str, float, Comparison]]:
    """``ref`` minus ``other`` per protocol of ``ref`` and fraction, over the shared (pretraining seed,
    label seed) pairs; against supervised, each supervised score pairs with every pretraining."""
    ref_rows = variant_rows(rows, grid, dataset, ref)
    other_rows = variant_rows(rows, grid, dataset, other)
    found: list[tuple[str, str, float, Comparison]] = []
    for protocol in dict.fromkeys(r["protocol"] for r in ref_rows):
        for fraction in sorted({float(r["label_fraction"]) for r in ref_rows}):
            mine = keyed(r for r in ref_rows if r["protocol"] == protocol and r["label_fraction"] == fraction)
            if other == "supervised":
                by_seed = {s: v for (_, s), v in keyed(r for r in other_rows if r["label_fraction"] == fraction).items()}
                theirs = {k: by_seed[k[1]] for k in mine if k[1] in by_seed}
            else:
                theirs = keyed(r for r in other_rows if r["protocol"] == protocol and r["label_fraction"] == fraction)
            c = paired_comparison(mine, theirs)
            if c is not None:
                found.append((other, protocol, fraction, c))
    return found


def masking_section(rows: Sequence[Row], grid: Grid, dataset: str, plots: Path) -> list[str]:
    spec = grid.analyses["masking_ratio"]
    curves: dict[str, list[tuple[float, Summary]]] = defaultdict(list)
    protocol = spec.get("protocol", "linear")
    fraction = float(spec.get("label_fraction", 0.1))
    for strategy in spec.get("strategies", ["modality", "random", "feature"]):
        for ratio in spec.get("ratios", [0.1, 0.3, 0.5, 0.7, 0.9]):
            role = {"analysis": "masking_ratio", "strategy": strategy, "ratio": float(ratio)}
            group = [r for r in rows if r["dataset"] == dataset and role in r["roles"] and r["protocol"] == protocol
                     and r["label_fraction"] == fraction and _full(r) and float(r["modality_dropout"]) == 0.0
                     and _in_seeds(r, spec)]
            if group:
                curves[strategy].append((float(ratio), summarize_scores(grouped(group))))
    if not curves:
        return ["No finished cell of the sweep yet.", ""]
    ratios = sorted({r for points in curves.values() for r, _ in points})
    lines = [f"Macro-F1 of `{protocol}` at {_pct(fraction)} labels, CroSSL with each masking strategy and ratio "
             "(other options as the grid's `crossl` entry):", "",
             "| strategy | " + " | ".join(f"ratio {r:g}" for r in ratios) + " |", "|---|" + "---|" * len(ratios)]
    for strategy, points in curves.items():
        by = dict(points)
        lines.append(f"| {strategy} | " + " | ".join(_fmt(by[r]) if r in by else "" for r in ratios) + " |")
    from crossl.reports.plots import plot_curves

    name = f"masking_ratio-{Path(dataset).name}.png"
    plot_curves({s: [(r, x.mean, x.ci_low, x.ci_high) for r, x in pts] for s, pts in curves.items()}, plots / name,
                "masking ratio", f"macro-F1 ({protocol}, {_pct(fraction)} labels)", f"Masking ratio on {dataset}")
    return [*lines, "", f"![masking ratio](plots/{name})", ""]


def _in_seeds(row: Row, spec: dict[str, Any]) -> bool:
    """The row's label seed (and pretraining seed) are among the analysis's, where it names them."""
    labels, pretrainings = spec.get("label_seeds"), spec.get("pretrain_seeds")
    return ((labels is None or row["seed"] in labels)
            and (pretrainings is None or row["pretrain_seed"] is None or row["pretrain_seed"] in pretrainings))


def _has_role(row: Row, analysis: str, variant: str) -> bool:
    return any(r.get("analysis") == analysis and r.get("variant") == variant for r in row["roles"])


def missing_section(rows: Sequence[Row], grid: Grid, dataset: str, plots: Path) -> list[str]:
    spec = grid.analyses["missing_modalities"]
    protocol = spec.get("protocol", "finetune")
    fraction = float(spec.get("label_fraction", 0.1))
    names = spec.get("methods", [])
    modalities = grid.modalities[dataset]
    table: dict[str, dict[str, Summary]] = {}
    columns: list[str] = ["none"]
    for name in names:
        wanted = "supervised" if name == "supervised" else protocol
        base = [r for r in rows if r["dataset"] == dataset and r["protocol"] == wanted and r["label_fraction"] == fraction
                and _in_seeds(r, spec) and (_has_role(r, "missing_modalities", name) or _has_role(r, "ceiling", name))]
        for dropout in sorted({float(r["modality_dropout"]) for r in base if r["kept"] is None}):
            label = f"`{name}`" + (f", modality dropout {dropout:g}" if dropout else "")
            by: dict[str, list[Row]] = defaultdict(list)
            for r in base:
                if r["kept"] is None and float(r["modality_dropout"]) == dropout:
                    by["+".join(r["missing"]) or "none"].append(r)
            table[label] = {k: summarize_scores(grouped(v)) for k, v in by.items()}
            columns += [k for k in by if k not in columns]
        ceilings: dict[str, list[Row]] = defaultdict(list)
        for r in base:
            if r["kept"] is not None and _full(r) and _has_role(r, "ceiling", name):
                removed = "+".join(m for m in modalities if m not in r["kept"])
                ceilings[removed].append(r)
        if ceilings:
            table[f"`{name}` trained without the removed modalities (ceiling)"] = {
                k: summarize_scores(grouped(v)) for k, v in ceilings.items()}
    if not table:
        return ["No finished cell of this analysis yet.", ""]
    lines = [f"Macro-F1 at {_pct(fraction)} labels (`{protocol}`; `supervised` trains from scratch) with the named "
             "modalities removed from every scored window after training:", "",
             "| model | " + " | ".join("all modalities" if c == "none" else f"without {c}" for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for label, scores in table.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(scores[c]) if c in scores else "" for c in columns) + " |")
    from crossl.reports.plots import plot_heatmap

    name = f"missing_modalities-{Path(dataset).name}.png"
    values = np.array([[scores[c].mean if c in scores else np.nan for c in columns] for scores in table.values()])
    plot_heatmap(values, [label.replace("`", "") for label in table], ["all" if c == "none" else f"-{c}" for c in columns],
                 plots / name, f"Missing modalities on {dataset} (macro-F1)")
    return [*lines, "", f"![missing modalities](plots/{name})", ""]


def embedding_section(grid: Grid, out: Path, dataset: str, plots: Path) -> list[str]:
    cells = [c for c in grid.cells if c.dataset == dataset and c.embedding
             and any(r.get("analysis") == "embedding" for r in c.roles)]
    lines: list[str] = []
    for cell in cells:
        path = out / "cells" / cell.id / "embedding.npz"
        if not path.is_file():
            lines += [f"`{cell.id}` has not finished yet.", ""]
            continue
        data = np.load(path)
        from crossl.reports.plots import plot_embedding

        name = f"embedding-{cell.id}.png"
        plot_embedding(data["coords"], data["labels"], data["subjects"], [str(c) for c in data["class_names"]],
                       plots / name, f"{cell.method}, pretraining seed {cell.pretrain_seed}")
        lines += [f"t-SNE of the {str(data['source'])} features of {len(data['labels'])} {grid.score_on} windows "
                  f"(`{cell.method}`, pretraining seed {cell.pretrain_seed}), coloured by class and by subject:", "",
                  f"![embedding](plots/{name})", ""]
    return lines


def label_efficiency_plot(summaries: dict[tuple[str, str, float], Summary], dataset: str, plots: Path) -> str:
    from crossl.reports.plots import plot_curves

    curves: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for (variant, protocol, fraction), s in sorted(summaries.items(), key=lambda kv: kv[0][2]):
        label = "supervised" if variant == "supervised" else f"{variant} {protocol}"
        curves[label].append((100 * fraction, s.mean, s.ci_low, s.ci_high))
    name = f"label_efficiency-{Path(dataset).name}.png"
    plot_curves(dict(curves), plots / name, "labeled training windows (%)", "macro-F1 (mean, 95% CI)",
                f"Label efficiency on {dataset}", log_x=True)
    return name


def _split_line(grid: Grid, out: Path, dataset: str) -> str:
    for cell in grid.cells:
        path = out / "cells" / cell.id / "split.json"
        if cell.dataset == dataset and path.is_file():
            subjects = json.loads(path.read_text(encoding="utf-8"))["subjects"]
            return (f"- split {split_kind(subjects)}: train {subjects['train']}, validation {subjects['val']}, "
                    f"test {subjects['test']}; label subsets drawn from the training subjects "
                    "(every cell saves `split.json` and `label_subsets.json`)")
    return "- split: no cell has finished yet"


def machines_line(grid: Grid, out: Path) -> str:
    """Which machines computed the finished cells (``cell.json``'s ``machine``), with a count each."""
    counts: dict[str, int] = defaultdict(int)
    for cell in grid.cells:
        directory = out / "cells" / cell.id
        if (directory / "results.json").is_file():
            spec_file = directory / "cell.json"
            spec = json.loads(spec_file.read_text(encoding="utf-8")) if spec_file.is_file() else {}
            counts[spec.get("machine") or "not recorded"] += 1
    if not counts:
        return "- cells computed on: no cell has finished yet"
    listed = "; ".join(f"{machine} ({n})" for machine, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    note = " (the same seed gives the same numbers on one machine, not across CPUs)" if len(counts) > 1 else ""
    return f"- cells computed on: {listed}{note}"


def write_bench_report(grid: Grid, out: Path, rows: Sequence[Row], command: str) -> Path:
    """``out/report/report.md`` and its PNGs, from the finished cells' rows."""
    report_dir = out / "report"
    plots = report_dir / "plots"
    finished = len({r["cell"] for r in rows})
    done_cells = sum((out / "cells" / c.id / "results.json").is_file() for c in grid.cells)
    part = PART_NAMES[grid.score_on]
    parts = [
        f"# crossl bench: {grid.name}", "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; machine: {machine_summary()}",
        f"- cells: {done_cells} of {len(grid.cells)} finished ({finished} with records); "
        f"`crossl bench {grid.arg} --list` shows them",
        machines_line(grid, out),
        f"- **every number is macro-F1 on the {part} subjects**"
        + (" (the grid chooses between variants: test subjects are not used)" if part == "validation" else ""),
        "- a table cell: mean ± std [95% bootstrap CI of the mean, resampling pretraining seeds and then label "
        "seeds] (number of scores)",
    ]
    for dataset in grid.datasets:
        parts += [_split_line(grid, out, dataset), "", f"## {dataset}", "", "### Label efficiency", ""]
        table, summaries = main_table(rows, grid, dataset)
        parts += [table, ""]
        if summaries:
            parts += [f"![label efficiency](plots/{label_efficiency_plot(summaries, dataset, plots)})", ""]
        paired, _ = paired_table(rows, grid, dataset)
        parts += ["### Paired comparisons", "",
                  f"`{grid.reference}` minus each other method, over the pairs that share a pretraining seed and a "
                  "label subset (against supervised: the same label subset); CI from the two-level bootstrap. "
                  "\"(above 0)\" or \"(below 0)\": the interval excludes zero.", "", paired, ""]
        if grid.comparisons:
            further, _ = comparison_table(rows, grid, dataset, grid.comparisons, "variant")
            parts += ["### Further comparisons", "",
                      "The grid's `comparisons`: each variant minus the one it is set against, paired as above.", "",
                      further, ""]
        if "masking_ratio" in grid.analyses:
            parts += ["### Masking ratio and strategy", "", *masking_section(rows, grid, dataset, plots)]
        if "missing_modalities" in grid.analyses:
            parts += ["### Missing modalities", "", *missing_section(rows, grid, dataset, plots)]
        if "embedding" in grid.analyses:
            parts += ["### Embedding", "", *embedding_section(grid, out, dataset, plots)]
    parts += ["## The grid file", "", "```yaml", grid.source.text.rstrip(), "```", "",
              "Files: `results.csv` and `results.json` (one row per record, with its cell, pretraining seed, label "
              "seed, options), `cells/<id>/` (each cell's config, split, label subsets, model, logs).", ""]
    path = report_dir / "report.md"
    write_text_atomic(path, "\n".join(parts))
    return path
