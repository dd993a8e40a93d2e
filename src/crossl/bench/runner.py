"""``crossl bench``: run a grid's cells (in parallel processes), skip finished ones, collect the results.

Each cell runs in a process of its own (``crossl bench GRID --cell K``) with ``threads`` compute
threads, ``jobs x threads`` by default never above the machine's cores: two cells sharing cores
would spin at each other's OpenMP barriers. Where the user asks for more, the cells wait passively
(``crossl.openmp``). A cell that fails is recorded with its error and the others go on;
``retry_failed`` runs the recorded ones again. The parent imports no torch.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, Any

from crossl.bench.spec import Cell, Grid
from crossl.errors import CrosslError
from crossl.io import write_json_atomic, write_text_atomic
from crossl.openmp import CHOICE_VARIABLE, cell_wait_policy

GRID_COPY = "grid.yaml"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
CSV_COLUMNS = ("cell", "dataset", "variants", "method", "options", "pretrain_seed", "kept", "scored_on", "protocol",
               "label_fraction", "seed", "n_labeled", "modality_dropout", "missing", "head_input", "macro_f1",
               "accuracy", "kappa", "seconds")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cells_dir(out: Path) -> Path:
    return out / "cells"


def finished(out: Path, cell: Cell) -> bool:
    return (cells_dir(out) / cell.id / "results.json").is_file()


def failure_path(out: Path, cell: Cell) -> Path:
    return cells_dir(out) / f"{cell.id}.failed.json"


def log_path(out: Path, cell: Cell) -> Path:
    return out / "logs" / f"{cell.id}.log"


def status(out: Path, cell: Cell) -> str:
    if finished(out, cell):
        return "done"
    if failure_path(out, cell).is_file():
        return "failed"
    if (cells_dir(out) / f"{cell.id}.incomplete").is_dir():
        return "started"
    return "todo"


def list_cells(grid: Grid, out: Path) -> str:
    """One line per cell: its number (for ``--cell``), status, id and what it computes."""
    width = len(str(len(grid.cells) - 1))
    return "\n".join(f"{k:>{width}}  {status(out, c):<7}  {c.id}  {c.describe()}" for k, c in enumerate(grid.cells))


def _hold_lock(out: Path) -> IO[str]:
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / ".lock", "w")  # noqa: SIM115 - held until the grid run ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        lock.close()
        raise CrosslError(f"{out} is used by another `crossl bench`; wait for it, or give another --out") from exc
    return lock


def default_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("crossl: error:")]
    return (errors or lines or ["no output"])[-1]


class _Progress:
    def __init__(self, total: int, already: int, jobs: int, log: Callable[[str], None]) -> None:
        self.total, self.done, self.jobs, self.log = total, already, jobs, log
        self.seconds: list[float] = []
        self.lock = threading.Lock()

    def finished(self, cell: Cell, seconds: float, ok: bool, left: int) -> None:
        with self.lock:
            self.done += 1
            self.seconds.append(seconds)
            mean = sum(self.seconds) / len(self.seconds)
            eta = mean * left / self.jobs
            state = "finished" if ok else "FAILED"
            self.log(f"[{self.done}/{self.total}] {cell.id} {state} in {seconds:.0f} s; "
                     f"mean {mean:.0f} s a cell, {left} left, about {_duration(eta)} to go")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def run_grid(grid: Grid, grid_arg: str, out: Path, jobs: int = 1, threads: int | None = None,
             retry_failed: bool = False, log: Callable[[str], None] = _log) -> list[Cell]:
    """Run every unfinished cell of ``grid`` into ``out``; returns the cells that failed."""
    if jobs < 1:
        raise CrosslError(f"--jobs must be at least 1, got {jobs}")
    threads = threads or default_threads(jobs)
    cores = os.cpu_count() or 1
    if jobs * threads > cores:
        log(f"warning: {jobs} jobs x {threads} threads is more than the {cores} cores: cells will slow each other "
            "down (their OpenMP threads wait passively, so in proportion to the cores shared)")
    lock = _hold_lock(out)
    try:
        write_text_atomic(out / GRID_COPY, grid.source.text)
        _prepare_datasets(grid, log)
        states = {c.id: status(out, c) for c in grid.cells}
        todo = [c for c in grid.cells if states[c.id] in ("todo", "started") or (retry_failed and states[c.id] == "failed")]
        skipped_failed = [c for c in grid.cells if states[c.id] == "failed" and not retry_failed]
        done = sum(s == "done" for s in states.values())
        log(f"grid {grid.name}: {len(grid.cells)} cells, {done} finished, {len(todo)} to run"
            + (f", {len(skipped_failed)} failed earlier (rerun them with --retry-failed)" if skipped_failed else "")
            + f"; {jobs} job(s) x {threads} thread(s)")
        progress = _Progress(len(grid.cells), done, jobs, log)
        failed = list(skipped_failed)
        failed += _run_cells(grid, grid_arg, out, todo, jobs, threads, progress)
        collect_results(grid, out)
        return failed
    finally:
        lock.close()


def _prepare_datasets(grid: Grid, log: Callable[[str], None]) -> None:
    """Fetch and prepare every dataset once, before cells run in parallel (they would race to)."""
    from crossl.data.datasets import load_dataset

    for name in grid.datasets:
        load_dataset(name)


def _run_cells(grid: Grid, grid_arg: str, out: Path, todo: list[Cell], jobs: int, threads: int,
               progress: _Progress) -> list[Cell]:
    failed: list[Cell] = []
    processes: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.setdefault(CHOICE_VARIABLE, cell_wait_policy(jobs, threads, os.cpu_count() or 1))

    def one(cell: Cell) -> tuple[Cell, float, int]:
        started = time.perf_counter()
        path = log_path(out, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "crossl.cli", "bench", grid_arg, "--out", str(out),
                   "--cell", cell.id, "--threads", str(threads)]  # by id: the grid file may change meanwhile
        with open(path, "ab") as fh:
            fh.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            fh.flush()
            process = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env)
            processes.append(process)
            code = process.wait()
        return cell, time.perf_counter() - started, code

    queue = list(todo)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        pending: set[Future[tuple[Cell, float, int]]] = set()
        while queue or pending:
            while queue and len(pending) < jobs:
                pending.add(pool.submit(one, queue.pop(0)))
            finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished_now:
                cell, seconds, code = future.result()
                ok = code == 0 and finished(out, cell)
                if ok:
                    failure_path(out, cell).unlink(missing_ok=True)
                else:
                    failed.append(cell)
                    write_json_atomic(failure_path(out, cell), {
                        "cell": cell.id, "exit_status": code, "error": _last_line(log_path(out, cell)),
                        "log": str(log_path(out, cell)), "seconds": round(seconds, 1)})
                progress.finished(cell, seconds, ok, len(queue) + len(pending))
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
    return failed


def find_cell(grid: Grid, which: str) -> Cell:
    """The cell ``--cell`` names: its number in ``--list`` or its id."""
    if which.isdigit():
        number = int(which)
        if not 0 <= number < len(grid.cells):
            raise CrosslError(f"--cell {number}: the grid has cells 0 to {len(grid.cells) - 1} (`--list` shows them)")
        return grid.cells[number]
    for cell in grid.cells:
        if cell.id == which:
            return cell
    raise CrosslError(f"--cell {which}: no cell of grid {grid.name} has this id (the grid file changed?); "
                      "`--list` shows its cells")


def run_one_cell(grid: Grid, out: Path, which: str, threads: int | None) -> Path:
    """``--cell K``: compute cell K (a number or an id) in this process (what a cluster's array task runs)."""
    cell = find_cell(grid, which)
    import torch

    from crossl.bench.cells import run_cell

    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / GRID_COPY).is_file():
        write_text_atomic(out / GRID_COPY, grid.source.text)
    return run_cell(cell, out)


# ---------------------------------------------------------------- results
def result_rows(grid: Grid, out: Path) -> list[dict[str, Any]]:
    """Every record of every finished cell, with the cell's description: one row per record."""
    rows = []
    for cell in grid.cells:
        if not finished(out, cell):
            continue
        records = json.loads((cells_dir(out) / cell.id / "results.json").read_text(encoding="utf-8"))
        variants = sorted({r["variant"] for r in cell.roles if "variant" in r})
        options = cell.config.get(cell.method, {}) if cell.method else {}
        for record in records:
            # The grid's name for the data (a name or a directory) replaces the record's `dataset`
            # (the data's own name), which stays as `data_name`.
            rows.append({"cell": cell.id, "dataset": cell.dataset, "variants": variants, "method": cell.method,
                         "options": options, "pretrain_seed": cell.pretrain_seed,
                         "kept": None if cell.kept is None else list(cell.kept), "roles": cell.roles,
                         **{k: v for k, v in record.items() if k not in ("dataset", "method")},
                         "data_name": record["dataset"]})
    return rows


def collect_results(grid: Grid, out: Path) -> list[dict[str, Any]]:
    """Write ``results.json`` and ``results.csv`` of the finished cells (atomically); return the rows."""
    rows = result_rows(grid, out)
    write_json_atomic(out / RESULTS_JSON, rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    write_text_atomic(out / RESULTS_CSV, buffer.getvalue())
    return rows
