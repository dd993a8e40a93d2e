"""The grid report's header: which machines computed the finished cells."""

from __future__ import annotations

import json
from pathlib import Path

from tiny_grid import make_data, write_grid

from crossl.bench.grid import load_grid
from crossl.bench.report import machines_line

GRID = """\
protocols: [linear]
label_fractions: [1.0]
pretrain_seeds: [0, 1, 2, 3]
label_seeds: [0]
supervised: false
methods: [crossl]
"""


def _finish(out: Path, cell_id: str, machine: str | None) -> None:
    directory = out / "cells" / cell_id
    directory.mkdir(parents=True)
    (directory / "cell.json").write_text(json.dumps({"id": cell_id, **({"machine": machine} if machine else {})}))
    (directory / "results.json").write_text("[]")


def test_cells_from_several_machines_are_counted_per_machine_with_the_unrecorded_ones(tmp_path: Path) -> None:
    make_data(tmp_path)
    grid = load_grid(write_grid(tmp_path, GRID))
    out = tmp_path / "out"
    ids = [c.id for c in grid.cells]
    _finish(out, ids[0], "CPU A, 2 cores")
    _finish(out, ids[1], "CPU A, 2 cores")
    _finish(out, ids[2], None)  # computed before cells recorded their machine
    (out / "cells" / ids[3]).mkdir()  # started, not finished: not counted
    assert machines_line(grid, out) == ("- cells computed on: CPU A, 2 cores (2); not recorded (1) (the same seed "
                                         "gives the same numbers on one machine, not across CPUs)")


def test_no_finished_cell_says_so(tmp_path: Path) -> None:
    make_data(tmp_path)
    grid = load_grid(write_grid(tmp_path, GRID))
    assert machines_line(grid, tmp_path / "out") == "- cells computed on: no cell has finished yet"
