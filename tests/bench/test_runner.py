"""`crossl bench` end to end on a tiny grid: real cells, the report, resuming after a kill, failed cells."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_grid import make_data, write_grid

from crossl.bench.grid import load_grid
from crossl.bench.runner import find_cell
from crossl.errors import CrosslError
from crossl.reports.machine import machine_summary

FULL = """\
protocols: [linear, finetune]
label_fractions: [1.0]
pretrain_seeds: [0, 1]
label_seeds: [0, 1]
methods:
  - crossl
  - {method: simclr, pretrain_seeds: [0], protocols: [linear]}
comparisons: [[simclr, crossl], [simclr, supervised]]
analyses:
  masking_ratio: {strategies: [modality], ratios: [0.5], label_fraction: 1.0, label_seeds: [0]}
  missing_modalities: {methods: [crossl], label_fraction: 1.0, modality_dropout: [0.0, 0.5], label_seeds: [0]}
  embedding: {method: crossl, max_windows: 30}
"""

SMALL = """\
protocols: [linear]
label_fractions: [1.0]
pretrain_seeds: [0, 1, 2]
label_seeds: [0]
supervised: false
methods: [crossl]
"""


def bench(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossl.cli", "bench", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def test_a_grid_runs_every_cell_and_reports_tables_intervals_and_plots(tmp_path: Path) -> None:
    make_data(tmp_path)
    grid_file = write_grid(tmp_path, FULL)
    out = tmp_path / "out"
    result = bench(grid_file, "--out", out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    grid = load_grid(grid_file)
    rows = json.loads((out / "results.json").read_text())
    # crossl p0 (main, sweep, missing, embedding), crossl p1, simclr p0, supervised
    assert len(grid.cells) == 4 and len({r["cell"] for r in rows}) == 4
    main = [r for r in rows if "crossl" in r["variants"] and r["protocol"] == "finetune" and not r["missing"]
            and r["modality_dropout"] == 0.0]
    assert sorted((r["pretrain_seed"], r["seed"]) for r in main) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    removed = {tuple(r["missing"]) for r in rows if r["pretrain_seed"] == 0 and r["protocol"] == "finetune"}
    assert removed == {(), ("acc",), ("ecg",)}
    assert {r["scored_on"] for r in rows} == {"test"}
    report = (out / "report" / "report.md").read_text()
    for section in ("### Label efficiency", "### Paired comparisons", "### Masking ratio", "### Missing modalities",
                    "### Embedding", "```yaml"):
        assert section in report
    assert "| `crossl` | finetune | " in report
    assert "| `crossl` | supervised | finetune / supervised | 100% | 4 |" in report
    further = report[report.index("### Further comparisons"):]
    # simclr's one pretraining (seed 0) pairs with crossl's seed 0 on both label subsets
    assert "| `simclr` | `crossl` | linear | 100% | 2 |" in further
    assert "| `simclr` | supervised | linear / supervised | 100% | 2 |" in further
    for plot in ("label_efficiency-data.png", "masking_ratio-data.png", "missing_modalities-data.png"):
        assert (out / "report" / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (out / "results.csv").read_text().splitlines()[0]
    assert header.startswith("cell,dataset,variants,method,options,pretrain_seed")


def test_killing_the_grid_midway_and_rerunning_it_skips_the_finished_cells(tmp_path: Path) -> None:
    make_data(tmp_path)
    grid_file = write_grid(tmp_path, SMALL)
    out = tmp_path / "out"
    cells = out / "cells"
    process = subprocess.Popen([sys.executable, "-m", "crossl.cli", "bench", str(grid_file), "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any((p / "results.json").is_file() for p in cells.glob("*")
                                                  if p.is_dir() and not p.name.endswith(".incomplete")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the grid and the cell it was running, at once
    process.wait()
    done_before = {p.name: (p / "results.json").stat().st_mtime_ns for p in cells.iterdir()
                   if p.is_dir() and not p.name.endswith(".incomplete")}
    assert 1 <= len(done_before) < 3
    result = bench(grid_file, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"3 cells, {len(done_before)} finished, {3 - len(done_before)} to run" in result.stderr
    for name, mtime in done_before.items():
        assert (cells / name / "results.json").stat().st_mtime_ns == mtime  # not recomputed
    assert len([p for p in cells.iterdir() if p.is_dir()]) == 3  # no .incomplete left
    assert len({r["cell"] for r in json.loads((out / "results.json").read_text())}) == 3


def test_a_failing_cell_is_recorded_the_others_finish_and_retry_failed_reruns_it(tmp_path: Path) -> None:
    make_data(tmp_path)
    grid_file = write_grid(tmp_path, SMALL + "analyses:\n  embedding: {pretrain_seed: 1, max_windows: 30}\n")
    out = tmp_path / "out"
    # The embedding is written by one cell only: a full disk there fails that cell alone.
    failing = bench(grid_file, "--out", out, env={"CROSSL_INJECT_FAULT": "ENOSPC:embedding.npz"})
    assert failing.returncode == 2
    assert failing.stderr.strip().splitlines()[-1].startswith("crossl: error: 1 of 3 cells did not finish")
    [failure] = list((out / "cells").glob("*.failed.json"))
    record = json.loads(failure.read_text())
    assert "No space left on device" in record["error"] and "-p1-" in record["cell"]
    assert len(list((out / "cells").glob("*-p[02]-*/results.json"))) == 2
    skipped = bench(grid_file, "--out", out)
    assert skipped.returncode == 2 and "1 failed earlier (rerun them with --retry-failed)" in skipped.stderr
    retried = bench(grid_file, "--out", out, "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert not list((out / "cells").glob("*.failed.json"))
    assert (out / "report" / "report.md").is_file()


def test_list_and_cell_run_one_cell_the_way_a_cluster_array_task_does(tmp_path: Path) -> None:
    make_data(tmp_path)
    grid_file = write_grid(tmp_path, SMALL)
    out = tmp_path / "out"
    listed = bench(grid_file, "--out", out, "--list")
    assert listed.returncode == 0
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 3 and all(" todo " in line for line in lines)
    assert bench(grid_file, "--out", out, "--cell", "1").returncode == 0
    statuses = [line.split()[1] for line in bench(grid_file, "--out", out, "--list").stdout.strip().splitlines()]
    assert statuses == ["todo", "done", "todo"]
    report = bench(grid_file, "--out", out, "--report")
    assert report.returncode == 0 and "cells: 1 of 3 finished" in (out / "report" / "report.md").read_text()
    computed = [json.loads(p.read_text())["machine"] for p in (out / "cells").glob("*/cell.json")]
    assert computed == [machine_summary()]
    assert f"- cells computed on: {machine_summary()} (1)\n" in (out / "report" / "report.md").read_text()
    assert bench(grid_file, "--out", out, "--cell", "3").returncode == 2


@pytest.mark.parametrize("jobs", ["0"])
def test_zero_jobs_is_refused(tmp_path: Path, jobs: str) -> None:
    make_data(tmp_path)
    result = bench(write_grid(tmp_path, SMALL), "--out", tmp_path / "out", "--jobs", jobs)
    assert result.returncode == 2 and "--jobs must be at least 1" in result.stderr


def test_a_cell_is_found_by_its_number_or_its_id_and_an_unknown_id_is_refused(tmp_path: Path) -> None:
    # The runner names its cells by id: a grid file edited while it runs cannot swap one cell for another.
    make_data(tmp_path)
    grid = load_grid(write_grid(tmp_path, SMALL))
    assert find_cell(grid, grid.cells[2].id) is grid.cells[2]
    assert find_cell(grid, "1") is grid.cells[1]
    with pytest.raises(CrosslError, match="no cell of grid .* has this id"):
        find_cell(grid, "hapt-crossl-p9-0000000000")
