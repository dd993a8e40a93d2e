"""Pretraining on a prepared dataset several times larger than the memory it may use.

Generates a format-exact prepared dataset (``WindowSet.save_chunks``, written chunk by chunk), puts
a ``crossl pretrain --data <dir>`` run into a cgroup v1 memory cgroup whose limit is several times
smaller than the dataset, and records the cgroup's and the process's peak memory, exit status and
time. Needs root (it creates ``/sys/fs/cgroup/memory/<name>``). Never part of the test suite.

    sudo python benchmarks/larger_than_memory.py --size-gib 6 --limit-gib 1.5 --max-steps 300 \
        --json benchmarks/results/larger-than-memory.json

The dataset goes to ``--dir`` (default ``/tmp/crossl-larger-than-memory``) and is deleted afterwards
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from machine import cpu_model, drop_from_page_cache

from crossl.data.container import DatasetMeta, WindowSet
from crossl.io import write_json_atomic

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
GIB = 1 << 30
MIB = 1 << 20

#: name -> modalities {name: (time steps, channels)}, as in benchmarks/pretrain_speed.py.
SHAPES: dict[str, dict[str, tuple[int, int]]] = {
    "hapt": {"acc": (128, 3), "gyro": (128, 3)},
    "pamap2": {f"{place}_{kind}": (512, 3) for place in ("hand", "ankle", "chest") for kind in ("acc", "gyro")},
}
NUM_CLASSES = 6


def dataset_meta(shape: str, num_subjects: int) -> DatasetMeta:
    """Metadata whose default split puts the last two (small) subjects in val and test."""
    modalities = SHAPES[shape]
    return DatasetMeta(
        name=f"synthetic-{shape}",
        modality_names=tuple(modalities),
        channel_names={m: tuple(f"{m}_{c}" for c in range(ch)) for m, (_, ch) in modalities.items()},
        sampling_rates={m: 50.0 for m in modalities},
        class_names=tuple(f"class{c}" for c in range(NUM_CLASSES)),
        extra={"default_split": {"train": list(range(num_subjects - 2)), "val": [num_subjects - 2],
                                 "test": [num_subjects - 1]}},
    )


def subject_sizes(num_windows: int, eval_windows: int, train_subject_windows: int) -> list[int]:
    """Windows per subject: training subjects of ``train_subject_windows``, then val and test subjects."""
    train = num_windows - 2 * eval_windows
    full, rest = divmod(train, train_subject_windows)
    return [train_subject_windows] * full + ([rest] if rest else []) + [eval_windows, eval_windows]


def generate_chunks(meta: DatasetMeta, shape: str, sizes: list[int], chunk_windows: int, seed: int
                    ) -> Iterator[WindowSet]:
    """Random windows (a per-class offset so the classes differ), ``chunk_windows`` at a time."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(len(sizes)), sizes)
    for start in range(0, subjects.size, chunk_windows):
        n = min(chunk_windows, subjects.size - start)
        labels = rng.integers(0, NUM_CLASSES, n)
        modalities = {}
        for m, (t, c) in SHAPES[shape].items():
            x = rng.standard_normal((n, t, c), dtype=np.float32)
            x += labels[:, None, None].astype(np.float32) * 0.5
            modalities[m] = x
        yield WindowSet(modalities, np.ones((n, len(modalities)), dtype=bool), labels,
                        subjects[start : start + n], meta)


def read_kib_fields(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """``{name: bytes}`` from a ``/proc/<pid>/status``-style file of ``Name:  N kB`` lines."""
    out = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in names:
                out[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def read_cgroup_stat(cgroup: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in (line.split() for line in (cgroup / "memory.stat").read_text().splitlines())}
    except (OSError, ValueError):
        return {}


class Sampler(threading.Thread):
    """Polls the process's and the cgroup's memory every ``interval`` seconds, keeping the peaks."""

    def __init__(self, pid: int, cgroup: Path, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.cgroup, self.interval = pid, cgroup, interval
        self.peaks: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            status = read_kib_fields(Path(f"/proc/{self.pid}/status"), ("VmHWM", "VmRSS", "RssAnon", "RssFile"))
            stat = read_cgroup_stat(self.cgroup)
            sample = {**status, "cgroup_rss": stat.get("rss", 0), "cgroup_cache": stat.get("cache", 0),
                      "cgroup_mapped_file": stat.get("mapped_file", 0)}
            for key, value in sample.items():
                self.peaks[key] = max(self.peaks.get(key, 0), value)
            self.stop.wait(self.interval)


def run_in_cgroup(command: list[str], cgroup: Path, limit_bytes: int, env: dict[str, str]
                  ) -> tuple[int, float, dict[str, int], list[tuple[float, str]]]:
    """Run ``command`` in a fresh memory cgroup; returns exit status, seconds, peaks, timed stderr lines."""
    cgroup.mkdir()
    (cgroup / "memory.limit_in_bytes").write_text(str(limit_bytes))
    procs = cgroup / "cgroup.procs"

    def enter_cgroup() -> None:  # runs in the child before exec: nothing it allocates escapes the limit
        procs.write_text(str(os.getpid()))

    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=enter_cgroup)
    sampler = Sampler(child.pid, cgroup)
    sampler.start()
    lines = []
    assert child.stderr is not None
    for line in child.stderr:
        lines.append((time.perf_counter() - started, line.rstrip()))
        print(f"  [{lines[-1][0]:7.1f} s] {line.rstrip()}", file=sys.stderr, flush=True)
    status = child.wait()
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    peaks = dict(sampler.peaks)
    peaks["cgroup_max_usage"] = int((cgroup / "memory.max_usage_in_bytes").read_text())
    peaks["cgroup_failcnt"] = int((cgroup / "memory.failcnt").read_text())
    oom = dict(line.split() for line in (cgroup / "memory.oom_control").read_text().splitlines())
    peaks["oom_kills"] = int(oom.get("oom_kill", 0))
    return status, seconds, peaks, lines


def remove_cgroup(cgroup: Path) -> None:
    for _ in range(50):  # the kernel refuses while the exited child is still being torn down
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def seconds_at(lines: list[tuple[float, str]], prefix: str) -> float | None:
    return next((t for t, line in lines if line.startswith(prefix)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=6.0, help="bytes of modality arrays to generate")
    parser.add_argument("--limit-gib", type=float, default=1.5, help="the cgroup's memory limit")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="hapt")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--eval-windows", type=int, default=4096, help="windows of the val and of the test subject")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/crossl-larger-than-memory"))
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset")
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()
    if not CGROUP_ROOT.is_dir() or not os.access(CGROUP_ROOT, os.W_OK):
        sys.exit(f"{CGROUP_ROOT} is missing or not writable: run as root on a cgroup v1 machine")

    window_bytes = sum(t * c * 4 for t, c in SHAPES[args.shape].values())
    num_windows = int(args.size_gib * GIB) // window_bytes
    sizes = subject_sizes(num_windows, args.eval_windows, train_subject_windows=100_000)
    meta = dataset_meta(args.shape, len(sizes))
    data_dir = args.dir / "dataset"
    out_dir = args.dir / "run"
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    cgroup = CGROUP_ROOT / f"crossl-ltm-{os.getpid()}"
    try:
        print(f"generating {num_windows:,} {args.shape} windows ({num_windows * window_bytes / GIB:.2f} GiB) "
              f"in {data_dir}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        chunk_windows = max(1, (64 * MIB) // window_bytes)
        WindowSet.save_chunks(data_dir, generate_chunks(meta, args.shape, sizes, chunk_windows, seed=0), num_windows)
        drop_from_page_cache(data_dir)
        generate_s = time.perf_counter() - started
        dataset_bytes = sum(p.stat().st_size for p in data_dir.iterdir())

        command = [sys.executable, "-m", "crossl.cli", "pretrain", "--data", str(data_dir), "--out", str(out_dir),
                   "--epochs", "1", "--max-steps", str(args.max_steps), "--batch-size", str(args.batch),
                   "--fractions", "0.01", "--seeds", "0", "--no-progress"]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        limit = int(args.limit_gib * GIB)
        print(f"running in cgroup {cgroup.name} limited to {limit / GIB:.2f} GiB: {' '.join(command[1:])}",
              file=sys.stderr, flush=True)
        status, seconds, peaks, lines = run_in_cgroup(command, cgroup, limit, env)
    finally:
        remove_cgroup(cgroup)
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)

    pretrain_start = seconds_at(lines, "pretraining CroSSL on")
    pretrain_end = seconds_at(lines, "pretraining took")
    pretrain_s = None if pretrain_start is None or pretrain_end is None else pretrain_end - pretrain_start
    record = {
        "date": dt.date.today().isoformat(),
        "shape": args.shape, "num_windows": num_windows, "dataset_bytes": dataset_bytes,
        "limit_bytes": limit, "max_steps": args.max_steps, "batch": args.batch, "threads": args.threads,
        "command": " ".join(["crossl", *command[3:]]),
        "exit_status": status, "oom_killed": peaks["oom_kills"] > 0 or status == -9,
        "generate_s": round(generate_s, 1), "total_s": round(seconds, 1),
        "load_s": None if pretrain_start is None else round(pretrain_start, 1),
        "pretrain_stage_s": None if pretrain_s is None else round(pretrain_s, 1),
        "pretrain_windows_per_s": None if not pretrain_s else round(args.max_steps * args.batch / pretrain_s, 1),
        "evaluate_s": None if pretrain_end is None else round(seconds - pretrain_end, 1),
        "cgroup_max_usage_bytes": peaks["cgroup_max_usage"], "cgroup_failcnt": peaks["cgroup_failcnt"],
        "peak_cgroup_rss_bytes": peaks.get("cgroup_rss"), "peak_cgroup_cache_bytes": peaks.get("cgroup_cache"),
        "peak_cgroup_mapped_file_bytes": peaks.get("cgroup_mapped_file"),
        "vm_hwm_bytes": peaks.get("VmHWM"), "peak_rss_anon_bytes": peaks.get("RssAnon"),
        "peak_rss_file_bytes": peaks.get("RssFile"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
                    "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
    }
    if args.json:
        write_json_atomic(args.json, record)
    print_table(record)
    if status != 0:
        sys.exit(f"crossl pretrain exited with status {status}")


def print_table(record: dict[str, object]) -> None:
    def mib(key: str) -> str:
        value = record.get(key)
        return "n/a" if value is None else f"{int(value) / MIB:,.0f} MiB"  # type: ignore[call-overload]

    rows = [
        ("dataset", f"{record['num_windows']:,} {record['shape']} windows, {mib('dataset_bytes')}"),
        ("cgroup limit", mib("limit_bytes")),
        ("exit status", f"{record['exit_status']} (OOM-killed: {record['oom_killed']})"),
        ("time: load / pretrain / evaluate / total",
         f"{record['load_s']} / {record['pretrain_stage_s']} / {record['evaluate_s']} / {record['total_s']} s"),
        ("pretrain windows/s (stage, incl. stats pass)", str(record["pretrain_windows_per_s"])),
        ("cgroup memory.max_usage_in_bytes", mib("cgroup_max_usage_bytes")),
        ("peak cgroup rss (anonymous)", mib("peak_cgroup_rss_bytes")),
        ("peak cgroup page cache", mib("peak_cgroup_cache_bytes")),
        ("process VmHWM (anon + mapped file)", mib("vm_hwm_bytes")),
        ("process peak RssAnon", mib("peak_rss_anon_bytes")),
        ("process peak RssFile", mib("peak_rss_file_bytes")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
