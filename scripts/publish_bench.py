"""Copy a grid directory's report and results into the docs, without models and checkpoints.

    python scripts/publish_bench.py runs/bench-hapt docs/results/hapt

Copies ``report/`` (report.md and its PNGs), ``results.csv``, ``results.json`` and ``grid.yaml``,
and for every finished cell ``cells/<id>/`` its ``cell.json``, ``config.yaml``, ``results.json``,
``split.json``, ``logs/`` and ``plots/`` (and ``embedding.npz``); the cells' label subsets are
identical (one split, nested subsets per seed: their data fingerprints are checked when made), so
one ``label_subsets.json`` is kept at the top. A finished cell copied back under a grid directory
counts as finished there: ``crossl bench`` then computes only the others.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

CELL_FILES = ("cell.json", "config.yaml", "results.json", "split.json", "embedding.npz")
CELL_DIRS = ("logs", "plots")
TOP_FILES = ("results.csv", "results.json", "grid.yaml")


def publish(grid_dir: Path, dest: Path) -> int:
    """Copy into ``dest`` (replacing what it held); returns the number of finished cells copied.

    The copy is made beside ``dest`` and swapped in at the end: a failure leaves ``dest`` as it was.
    """
    if not (grid_dir / "report" / "report.md").is_file():
        raise SystemExit(f"{grid_dir} has no report/report.md: run `crossl bench GRID --out {grid_dir} --report` first")
    staging = dest.with_name(f".{dest.name}.publishing")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(grid_dir / "report", staging)
    for name in TOP_FILES:
        shutil.copy2(grid_dir / name, staging / name)
    cells = sorted(p for p in (grid_dir / "cells").iterdir() if p.is_dir() and (p / "results.json").is_file())
    for cell in cells:
        target = staging / "cells" / cell.name
        target.mkdir(parents=True)
        for name in CELL_FILES:
            if (cell / name).is_file():
                shutil.copy2(cell / name, target / name)
        for name in CELL_DIRS:
            if (cell / name).is_dir():
                shutil.copytree(cell / name, target / name)
    # Cells copied back from an earlier publication hold no label_subsets.json: any computed one does.
    subsets = [cell / "label_subsets.json" for cell in cells if (cell / "label_subsets.json").is_file()]
    if subsets:
        shutil.copy2(subsets[0], staging / "label_subsets.json")
    elif (dest / "label_subsets.json").is_file():
        shutil.copy2(dest / "label_subsets.json", staging / "label_subsets.json")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return len(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid_dir", type=Path, help="the grid directory (crossl bench --out)")
    parser.add_argument("dest", type=Path, help="where the published copy goes, e.g. docs/results/hapt")
    args = parser.parse_args()
    print(f"{publish(args.grid_dir, args.dest)} finished cells published to {args.dest}")


if __name__ == "__main__":
    main()
