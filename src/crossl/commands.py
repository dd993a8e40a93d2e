"""The commands that do not train: ``crossl methods``, ``crossl data ...`` and ``crossl bench``; each
imports what it needs when it runs (``data`` never loads torch or Lightning)."""

from __future__ import annotations

import argparse
from pathlib import Path

from crossl.config import options_for
from crossl.config_fields import plain_config
from crossl.errors import CrosslError


def print_methods() -> None:
    """``crossl methods``: one line per method, then its options with their defaults."""
    from crossl.methods import METHODS

    width = max(len(n) for n in METHODS)
    for name, cls in METHODS.items():
        print(f"{name:<{width}}  {cls.summary}")
        options = plain_config(options_for(name))
        if options:
            print(" " * (width + 2) + "options: " + ", ".join(f"{k}={v}" for k, v in options.items()))


def run_data(args: argparse.Namespace) -> None:
    """``crossl data ...``: presets, import, download, prepare, fetch and info."""
    if args.data_command == "presets":
        from crossl.data.presets import PRESETS

        width = max(len(name) for name in PRESETS)
        for name, preset in PRESETS.items():
            print(f"{name:<{width}}  {preset.spec.description}; {preset.note}")
        return
    if args.data_command == "import":
        from crossl.data.cache import crossl_home

        if args.release:
            from crossl.data.datasets.release import read_release

            windows = read_release(args.release, args.folder, release_split=args.release_split)
        else:
            if args.release_split:
                raise CrosslError("--release-split keeps the split of the authors' release files; use it with --release")
            from crossl.data.import_spec import load_import_spec
            from crossl.data.importers import import_folder

            windows = import_folder(args.folder, load_import_spec(args.spec), strict=args.strict)
        target = windows.save(args.out or crossl_home() / "datasets" / windows.meta.name)
        print(f"{windows.meta.name}: {len(windows)} windows in {target}; use it with --data {target}")
        return
    if args.data_command == "download":
        from crossl.data.download import download

        raw = download(args.name, args.to)
        if raw is not None:
            print(f"{args.name}: raw files in {raw}; next: crossl data prepare {args.name} --raw {raw}")
        return
    if args.data_command == "prepare":
        from crossl.data.presets import prepare

        path = prepare(args.name, args.raw, strict=args.strict)
        print(f"{args.name}: prepared in {path}; use it with --data {args.name}")
        return
    from crossl.data.datasets import load_dataset

    windows = load_dataset(args.name)
    if args.data_command == "info":
        import numpy as np

        from crossl.data.splits import split_description

        print(f"{windows.meta.name}: {len(windows)} windows, {len(np.unique(windows.subjects))} subjects")
        for m, (t, c) in windows.shapes.items():
            print(f"  {m}: {t} samples x {c} channels at {windows.meta.sampling_rates[m]:g} Hz")
        counts = np.bincount(windows.labels[windows.labels >= 0], minlength=windows.meta.num_classes)
        for name, n in zip(windows.meta.class_names, counts):
            print(f"  class {name}: {n}")
        print(f"  split: {split_description(windows)}")
    else:
        print(f"{windows.meta.name}: {len(windows)} windows ready")


def run_bench(args: argparse.Namespace) -> Path | None:
    """``crossl bench``: every check of the grid file runs before any cell starts."""
    from crossl.bench import grid as grids
    from crossl.bench import runner
    from crossl.bench.gridfile import shipped_grids

    if args.grids:
        for name in shipped_grids():
            print(name)
        return None
    if args.grid is None:
        raise CrosslError("name a grid: a YAML file, or one of the shipped grids " + ", ".join(shipped_grids()))
    grid = grids.load_grid(args.grid)
    out = args.out or Path("runs") / f"bench-{grid.name}"
    if args.list:
        print(runner.list_cells(grid, out))
        return None
    if args.cell is not None:
        return runner.run_one_cell(grid, out, args.cell, args.threads)
    from crossl.bench.report import write_bench_report

    failed = [] if args.report else runner.run_grid(grid, args.grid, out, args.jobs, args.threads, args.retry_failed)
    rows = runner.collect_results(grid, out)
    report = write_bench_report(grid, out, rows, _bench_command(args))
    missing = [c for c in grid.cells if not runner.finished(out, c)]
    if failed or (missing and not args.report):
        names = ", ".join(c.id for c in (failed or missing)[:3]) + (", ..." if len(failed or missing) > 3 else "")
        raise CrosslError(f"{len(failed or missing)} of {len(grid.cells)} cells did not finish ({names}); their errors "
                          f"are in {out / 'cells'}/*.failed.json and {out / 'logs'}; rerun with --retry-failed "
                          f"(the report {report} covers the finished cells)")
    return report


def _bench_command(args: argparse.Namespace) -> str:
    parts = ["crossl bench", str(args.grid)]
    if args.out is not None:
        parts += ["--out", str(args.out)]
    if args.jobs != 1:
        parts += ["--jobs", str(args.jobs)]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    return " ".join(parts)
