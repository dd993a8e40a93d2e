"""Markdown tables of ``pretrain_speed.py`` result files, as ``docs/performance.md`` shows them.

    python benchmarks/table.py benchmarks/results/A.json [B.json ...] [--mode pretrain|embed]

Rows are (shape, batch, precision); columns are the implementations found in the files, with
windows/s, MFU against the run's ``peak_flops`` and against its ``matmul_peak_flops``, and each
implementation's speed relative to the ``reference`` of the same configuration (which may come
from another file of the same session: run ``crossl-compiled`` in a process of its own).

``--mode methods``: rows are the registered methods found, columns each (shape, batch, precision)
with windows/s and the method's median step over ``crossl``'s in the same run (``step_vs_crossl``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ORDER = ("crossl", "crossl-native", "crossl-compiled", "reference")


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in paths:
        records += json.loads(path.read_text(encoding="utf-8"))
    return records


def table(records: list[dict[str, Any]], mode: str) -> str:
    rows: dict[tuple[str, int, str], dict[str, dict[str, Any]]] = {}
    for r in records:
        if r["mode"] == mode:
            rows.setdefault((r["shape"], r["batch"], r["precision"]), {})[r["implementation"]] = r
    impls = [i for i in ORDER if any(i in row for row in rows.values())]
    header = ["shape", "batch", "precision"]
    for impl in impls:
        header += [f"{impl} windows/s", "MFU (mm)"] + ([] if impl == "reference" else ["vs reference"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (shape, batch, precision), by_impl in rows.items():
        cells = [shape, str(batch), "fp32" if precision == "32" else precision]
        reference = by_impl.get("reference")
        for impl in impls:
            r = by_impl.get(impl)
            if r is None:
                cells += ["-", "-"] + ([] if impl == "reference" else ["-"])
                continue
            cells += [f"{r['windows_per_s']:,.0f}" if r["windows_per_s"] >= 100 else f"{r['windows_per_s']:.1f}",
                      f"{100 * r['mfu']:.1f}% ({100 * r['mfu_vs_mm']:.1f}%)"]
            if impl != "reference":
                cells.append(f"{r['windows_per_s'] / reference['windows_per_s']:.2f}x" if reference else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def methods_table(records: list[dict[str, Any]]) -> str:
    """Rows: the methods found; per (shape, batch, precision): windows/s and the step over crossl's."""
    cells: dict[str, dict[tuple[str, int, str], dict[str, Any]]] = {}
    configs: list[tuple[str, int, str]] = []
    for r in records:
        if r["mode"] == "methods":
            config = (r["shape"], r["batch"], r["precision"])
            configs += [] if config in configs else [config]
            cells.setdefault(r["method"], {})[config] = r
    header = ["method"]
    for shape, batch, precision in configs:
        label = f"{shape} {batch} {'fp32' if precision == '32' else precision}"
        header += [f"{label} windows/s", "step vs crossl"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, by_config in cells.items():
        row = [method]
        for config in configs:
            m = by_config.get(config)
            row += ["-", "-"] if m is None else [
                f"{m['windows_per_s']:,.0f}" if m["windows_per_s"] >= 100 else f"{m['windows_per_s']:.1f}",
                f"{m['step_vs_crossl']:.2f}x"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--mode", choices=("pretrain", "embed", "methods"), default="pretrain")
    args = parser.parse_args(argv)
    records = load(args.files)
    print(methods_table(records) if args.mode == "methods" else table(records, args.mode))


if __name__ == "__main__":
    main()
