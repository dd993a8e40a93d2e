"""Print one Markdown table of macro-F1 from the results.json of finished runs.

One row per (method, protocol), one column per label fraction; a cell is the mean over the seeds
the runs hold (with the seed count when there is more than one). ``scripts/methods_table.sh``
uses it for the methods table in ``docs/methods.md``:

    python scripts/summarize_runs.py runs/methods/*-eval runs/methods/supervised
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories (holding results.json)")
    args = parser.parse_args()
    cells: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in args.runs:
        for record in json.loads((run / "results.json").read_text(encoding="utf-8")):
            key = (record["method"] or "none (random init)", record["protocol"])
            cells[key][float(record["label_fraction"])].append(float(record["macro_f1"]))
    fractions = sorted({f for by_fraction in cells.values() for f in by_fraction})
    print("| method | protocol | " + " | ".join(f"{f:.0%}" for f in fractions) + " |")
    print("|---|---|" + "---|" * len(fractions))
    for (method, protocol), by_fraction in sorted(cells.items()):
        values = []
        for f in fractions:
            scores = by_fraction.get(f, [])
            mean = f"{sum(scores) / len(scores):.3f}" if scores else ""
            values.append(mean + (f" (n={len(scores)})" if len(scores) > 1 else ""))
        print(f"| `{method}` | {protocol} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
