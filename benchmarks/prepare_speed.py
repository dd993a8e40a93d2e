"""Speed and memory of `crossl data prepare` on raw files of realistic size, written here.

    python benchmarks/prepare_speed.py [--only wesad,sleepedf,pamap2] [--minutes M] [--profile] \\
        [--dir TMP] [--out results.json]

What is generated (in a temporary directory, deleted afterwards), in the publishers' exact formats:

- ``wesad``: one subject, ``S2/S2.pkl``, a protocol-2 pickle as Python 2 writes it (``str`` data
  strings, ``numpy.core.multiarray._reconstruct``; the reader's tests use the same writer) of
  float64 arrays: chest ACC (3), ECG, EMG, EDA, Temp, Resp at 700 Hz, 6,000,000 samples each
  (142.9 min); wrist ACC 32 Hz (3), BVP 64 Hz, EDA and TEMP 4 Hz over the same time; int32 labels
  at 700 Hz: 10-min segments cycling through the codes 1-4, 30 s of 0 (transient) before each
  (in quick runs an eighth of the recording, at least 30 s, with a twentieth of it 0).
  Prepared twice, by presets ``wesad`` (chest ECG/EMG/EDA) and ``wesad-wrist`` (the wrist device).
- ``sleepedf``: one night, ``SC4001E0-PSG.edf`` (plain EDF, 30-s data records): 8 h of EEG
  Fpz-Cz, EEG Pz-Oz, EOG horizontal at 100 Hz and Resp oro-nasal, EMG submental, Temp rectal,
  Event marker at 1 Hz, the published channels; and ``SC4001EC-Hypnogram.edf`` (EDF+, annotations
  only): 20 min of wake at both ends, 90-min cycles of stages 1/2/3/4/R between, consecutive equal
  epochs merged into one annotation and a last ``Sleep stage ?`` that runs past the PSG, as
  published. Preset ``sleepedf20`` (subject 0 is one of its subjects).
- ``pamap2``: ``Protocol/subject101.dat``, 30 min at 100 Hz, 54 space-separated columns as the
  publisher writes them (``%g``, ``NaN``): timestamp, activityID (the 12 protocol activities in
  turn, 15% of each segment transient 0; segments of at least 15 s in quick runs), heart rate at
  ~9 Hz (NaN between readings), three IMU blocks of 17 columns with short NaN bursts (dropped
  packets, ~0.5% of the rows). Preset ``pamap2``.

How each preparation is measured: the raw files are flushed and evicted from the page cache
(``fsync`` + ``POSIX_FADV_DONTNEED``), then ``python -m crossl.cli data prepare PRESET --raw DIR``
runs in a fresh child process with ``CROSSL_HOME`` pointing to an empty temporary directory (so
nothing is reused). Wall time is from spawning the child to reaping it (interpreter start and
imports included: see the ``baseline`` record, ``crossl data presets``); CPU time and peak resident
memory (``ru_maxrss``: anonymous plus file-backed pages, the written memory maps included) come from
``os.wait4`` on that child, i.e. ``getrusage(RUSAGE_CHILDREN)`` for that child alone (this process
resets its own peak before each spawn: a child's ``ru_maxrss`` also counts the parent's); peaks of
``RssAnon`` / ``RssFile`` are sampled from ``/proc/<pid>/status`` every 20 ms. ``decoded`` is the
float32 size of the signals the preset's reader returns (labels not counted); ``decoded_all``
that of every signal in the raw file. ``other_load`` is the mean number of cores that processes
other than the child kept busy meanwhile (``/proc/stat``); above 0, the times are upper bounds.

``--profile`` adds, per preset, two more fresh preparations: one in this script's own child mode
that wraps the package's phase functions (reader, unpickling / text parsing / EDF decoding,
windowing, ``windows_to_set``, ``WindowSet.validate`` / ``load`` / ``save_chunks``) with markers
that record wall time and reset and read the peak RSS (``/proc/self/clear_refs``) at every
boundary, so each phase gets its exclusive seconds and its own memory peak (the source is not
changed); and one under ``cProfile`` (the functions with the most own time). MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from machine import cpu_model, drop_from_page_cache

MB = 1e6
DATASETS = ("wesad", "sleepedf", "pamap2")
PRESETS_OF = {"wesad": ("wesad", "wesad-wrist"), "sleepedf": ("sleepedf20",), "pamap2": ("pamap2",)}
#: Default recording lengths in minutes: 6,000,000 chest samples at 700 Hz; one 8-h night; 30 min.
DEFAULT_MINUTES = {"wesad": 6_000_000 / 700 / 60, "sleepedf": 8 * 60.0, "pamap2": 30.0}

WESAD_CHEST = (("ACC", 3), ("ECG", 1), ("EMG", 1), ("EDA", 1), ("Temp", 1), ("Resp", 1))
WESAD_WRIST = (("ACC", 3, 32), ("BVP", 1, 64), ("EDA", 1, 4), ("TEMP", 1, 4))
#: preset -> {modality: (rate Hz, channels)} of what its reader returns (the decoded size).
PRESET_SIGNALS: dict[str, dict[str, tuple[float, int]]] = {
    "wesad": {"ecg": (700.0, 1), "emg": (700.0, 1), "eda": (700.0, 1)},
    "wesad-wrist": {"bvp": (64.0, 1), "acc": (32.0, 3), "eda": (4.0, 1), "temp": (4.0, 1)},
    "sleepedf20": {"eeg_fpz_cz": (100.0, 1), "eeg_pz_oz": (100.0, 1), "eog": (100.0, 1), "emg": (1.0, 1)},
    "pamap2": {f"{site}_{sensor}": (100.0, 3) for site in ("hand", "chest", "ankle") for sensor in ("acc", "gyro")},
}
#: The published PSG channels, in the published order, with their rates.
PSG_CHANNELS = (("EEG Fpz-Cz", 100), ("EEG Pz-Oz", 100), ("EOG horizontal", 100), ("Resp oro-nasal", 1),
                ("EMG submental", 1), ("Temp rectal", 1), ("Event marker", 1))
PAMAP2_CODES = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)


# ---- raw files ------------------------------------------------------------------------------------

def python2_pickle(obj: Any, fh: IO[bytes]) -> None:
    """Write ``obj`` as Python 2's ``pickle.dump(obj, fh, 2)`` of NumPy 1.x objects writes it.

    Strings (an array's raw data included) go out as SHORT_BINSTRING / BINSTRING and are memoized,
    as Python 2 does; globals carry their Python 2 / NumPy 1.x module names.
    """
    import pickle
    import struct

    base: Any = pickle._Pickler  # the pure-Python pickler: its dispatch table can be extended
    py2_modules = {"builtins": "__builtin__", "copyreg": "copy_reg"}

    class Python2Pickler(base):
        dispatch = base.dispatch.copy()

        def save_py2_str(self, value: str | bytes) -> None:
            data = value.encode("latin1") if isinstance(value, str) else value
            if len(data) < 256:
                self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
            else:
                self.write(pickle.BINSTRING + struct.pack("<i", len(data)))
                self.write(data)
            self.memoize(value)

        dispatch[str] = save_py2_str
        dispatch[bytes] = save_py2_str

        def save_global(self, value: Any, name: str | None = None) -> None:
            module = value.__module__.replace("numpy._core", "numpy.core")
            module = py2_modules.get(module, module)
            self.write(pickle.GLOBAL + f"{module}\n{name or value.__qualname__}\n".encode("ascii"))
            self.memoize(value)

    Python2Pickler(fh, protocol=2).dump(obj)


def write_wesad(raw: Path, minutes: float) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    n = int(round(minutes * 60 * 700))
    seconds = n / 700
    chest = {key: rng.standard_normal((n, c)) for key, c in WESAD_CHEST}
    wrist = {key: rng.standard_normal((int(seconds * rate), c)) for key, c, rate in WESAD_WRIST}
    segment = int(min(600.0, max(30.0, seconds / 8)) * 700)  # 10-min segments (down to 30 s for quick runs)
    transient = segment // 20  # 30 s of 0 before each
    codes = np.arange(n) // segment % 4 + 1
    labels = np.where(np.arange(n) % segment < transient, 0, codes).astype(np.int32)
    data = {"signal": {"chest": chest, "wrist": wrist}, "label": labels, "subject": "S2"}
    path = raw / "S2" / "S2.pkl"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        python2_pickle(data, fh)
    all_signals = sum(a.shape[0] * a.shape[1] for a in (*chest.values(), *wrist.values())) * 4
    return {"duration_s": seconds, "decoded_all_bytes": all_signals,
            "description": f"1 WESAD subject, {n:,} chest samples/channel ({seconds / 60:.1f} min)"}


def hypnogram_epochs(epochs: int) -> list[str]:
    """Stage text of every 30-s epoch: wake edges, then 90-min cycles, one movement epoch per cycle."""
    cycle = (["Movement time"] + ["Sleep stage 1"] * 9 + ["Sleep stage 2"] * 50 + ["Sleep stage 3"] * 20
             + ["Sleep stage 4"] * 40 + ["Sleep stage 2"] * 20 + ["Sleep stage R"] * 40)
    edge = min(40, epochs // 10)  # 20 min of wake at each end
    middle = epochs - 2 * edge
    return ["Sleep stage W"] * edge + (cycle * (middle // len(cycle) + 1))[:middle] + ["Sleep stage W"] * edge


def write_sleepedf(raw: Path, minutes: float) -> dict[str, Any]:
    import edfio
    import numpy as np

    rng = np.random.default_rng(0)
    epochs = max(10, int(minutes * 2))
    seconds = 30 * epochs
    start, date = dt.time(22, 15, 0), dt.date(1989, 4, 24)
    raw.mkdir(parents=True)
    signals = []
    for label, rate in PSG_CHANNELS:
        if rate == 100:  # microvolts on the published 12-bit digital range
            values = 20.0 * rng.standard_normal(seconds * rate)
            signals.append(edfio.EdfSignal(values, rate, label=label, physical_dimension="uV",
                                           physical_range=(-200.0, 200.0), digital_range=(-2048, 2047)))
        else:
            values = 10.0 + rng.standard_normal(seconds * rate)
            signals.append(edfio.EdfSignal(values, rate, label=label))
    edfio.Edf(signals, recording=edfio.Recording(startdate=date), starttime=start,
              data_record_duration=30).write(raw / "SC4001E0-PSG.edf")
    del signals
    stages = hypnogram_epochs(epochs)
    annotations = []
    onset = 0
    for k in range(1, len(stages) + 1):  # merge runs of one stage, as the published hypnograms do
        if k == len(stages) or stages[k] != stages[onset]:
            annotations.append(edfio.EdfAnnotation(30.0 * onset, 30.0 * (k - onset), stages[onset]))
            onset = k
    annotations.append(edfio.EdfAnnotation(float(seconds), 1800.0, "Sleep stage ?"))
    edfio.Edf([], recording=edfio.Recording(startdate=date), starttime=start,
              annotations=annotations).write(raw / "SC4001EC-Hypnogram.edf")
    all_signals = sum(seconds * rate for _, rate in PSG_CHANNELS) * 4
    return {"duration_s": float(seconds), "decoded_all_bytes": all_signals,
            "description": f"1 Sleep-EDF night, {seconds / 3600:.1f} h, {len(annotations)} hypnogram annotations"}


def pamap2_block(rows: Any, total: int, rng: Any) -> Any:
    """(len(rows), 54) float64 rows in the published layout for row indices ``rows`` of ``total``."""
    import numpy as np

    table = np.empty((len(rows), 54))
    table[:, 0] = 5.64 + rows / 100
    segment = max(1500, total // len(PAMAP2_CODES))  # at least 15 s, so that quick runs still make windows
    position = rows % segment
    code = np.array(PAMAP2_CODES)[np.minimum(rows // segment, len(PAMAP2_CODES) - 1)]
    table[:, 1] = np.where(position < 0.15 * segment, 0, code)
    heart = 90.0 + 30.0 * np.sin(rows / 20_000) + rng.integers(-2, 3, len(rows))
    table[:, 2] = np.where(rows % 11 == 3, np.round(heart), np.nan)
    for start in (3, 20, 37):  # hand, chest, ankle: temp, acc16 x3, acc6 x3, gyro x3, mag x3, orientation x4
        table[:, start] = np.round(30.0 + 3.0 * rows / max(total, 1), 4)
        acc = rng.normal(0.0, 2.0, (len(rows), 3)) + np.array([0.0, 9.81, 0.0])
        table[:, start + 1 : start + 4] = acc
        table[:, start + 4 : start + 7] = np.clip(acc, -58.8, 58.8) + rng.normal(0, 0.05, (len(rows), 3))
        table[:, start + 7 : start + 10] = rng.normal(0.0, 0.5, (len(rows), 3))
        table[:, start + 10 : start + 13] = rng.normal(0.0, 30.0, (len(rows), 3))
        table[:, start + 13 : start + 17] = rng.uniform(-1.0, 1.0, (len(rows), 4))
        dropped = (rows + 97 * start) % 2000 < 10  # a 0.1-s burst of lost packets every 20 s
        table[np.ix_(dropped, np.arange(start, start + 17))] = np.nan
    return table


def write_pamap2(raw: Path, minutes: float) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    total = int(round(minutes * 60 * 100))
    path = raw / "Protocol" / "subject101.dat"
    path.parent.mkdir(parents=True)
    row_format = "%.2f %d " + " ".join(["%g"] * 52) + "\n"
    with open(path, "w", encoding="ascii") as fh:
        for first in range(0, total, 20_000):
            block = pamap2_block(np.arange(first, min(total, first + 20_000)), total, rng)
            text = "".join(row_format % tuple(row) for row in block.tolist())
            fh.write(text.replace("nan", "NaN"))
    return {"duration_s": total / 100, "decoded_all_bytes": total * 52 * 4,
            "description": f"1 PAMAP2 subject, {total:,} rows ({total / 6000:.1f} min) x 54 columns"}


WRITERS: dict[str, Callable[[Path, float], dict[str, Any]]] = {
    "wesad": write_wesad, "sleepedf": write_sleepedf, "pamap2": write_pamap2}


def directory_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


# ---- measuring a child ----------------------------------------------------------------------------

def status_fields(pid: int | str) -> dict[str, int]:
    """``VmRSS``, ``VmHWM``, ``RssAnon``, ``RssFile`` of ``/proc/<pid>/status`` in bytes ({} once gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return {}
    return {m.group(1): int(m.group(2)) * 1024
            for m in re.finditer(r"^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem):\s+(\d+) kB", text, re.MULTILINE)}


class Sampler(threading.Thread):
    """Polls a process's memory every ``interval`` seconds, keeping each field's peak and when VmRSS peaked."""

    def __init__(self, pid: int, started: float, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.started, self.interval = pid, started, interval
        self.peaks: dict[str, int] = {}
        self.peak_at_s = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            sample = status_fields(self.pid)
            if sample.get("VmRSS", 0) > self.peaks.get("VmRSS", 0):
                self.peak_at_s = time.perf_counter() - self.started
            for key, value in sample.items():
                self.peaks[key] = max(self.peaks.get(key, 0), value)
            self.stop.wait(self.interval)


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has been busy so far; None off Linux."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(command: list[str], env: dict[str, str], echo: bool = True) -> dict[str, Any]:
    """Run ``command``; its wall time, rusage (of it alone), sampled memory peaks and timed stderr lines."""
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
    # A child's ru_maxrss also counts this process's peak RSS: the child starts as a (v)fork of this
    # process, and exec records that memory's high-water mark. Reset it to the current RSS first.
    parent_rss = status_fields("self").get("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        pass
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
        sampler = Sampler(child.pid, started)
        sampler.start()
        lines: list[tuple[float, str]] = []
        assert child.stderr is not None
        for line in child.stderr:
            lines.append((round(time.perf_counter() - started, 3), line.rstrip()))
            if echo:
                print(f"    [{lines[-1][0]:7.1f} s] {line.rstrip()}", file=sys.stderr, flush=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
        stdout.seek(0)
        out = stdout.read()
    cpu = usage.ru_utime + usage.ru_stime
    busy1, own1 = busy_cpu_seconds(), own_cpu_seconds()
    other = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - cpu - (own1 - own0)) / wall
    return {
        "exit_status": child.returncode, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports kilobytes
        "sampled_peaks_bytes": sampler.peaks, "peak_rss_at_s": round(sampler.peak_at_s, 2),
        "major_faults": usage.ru_majflt, "read_bytes_blocks": usage.ru_inblock, "other_load": other,
        "stderr": lines, "stdout": out, "parent_rss_at_spawn_bytes": parent_rss,
    }


# ---- child mode: phases -----------------------------------------------------------------------------

def phases_child(preset: str, raw: str) -> None:
    """Prepare ``preset`` in this process with markers around the package's phase functions; print JSON."""
    import edfio

    import crossl.data.presets as presets
    from crossl.data.container import WindowSet
    from crossl.data.datasets import pamap2, sleepedf, wesad

    # (time, "start"/"end", phase, VmHWM since the last event, VmRSS now)
    events: list[tuple[float, str, str, int, int]] = []

    def mark(kind: str, phase: str) -> None:
        fields = status_fields("self")
        events.append((time.perf_counter(), kind, phase, fields.get("VmHWM", 0), fields.get("VmRSS", 0)))
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:  # reset VmHWM to the current RSS
            fh.write("5")

    def wrap(owner: Any, name: str, phase: str, static: bool = False) -> None:
        function = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            mark("start", phase)
            try:
                return function(*args, **kwargs)
            finally:
                mark("end", phase)

        setattr(owner, name, staticmethod(wrapper) if static else wrapper)

    wrap(presets, "raw_fingerprint", "fingerprint raw files")
    wrap(wesad, "read_recording", "read: other")
    wrap(wesad, "restricted_load", "read: unpickle")
    wrap(pamap2, "read_recording", "read: other")
    wrap(pamap2, "_read_table", "read: parse text")
    wrap(sleepedf, "read_recording", "read: other")
    wrap(sleepedf, "open_edf", "read: open EDF")
    wrap(edfio.EdfSignal, "get_data_slice", "read: decode EDF samples")
    wrap(presets, "window_recording", "window_recording")
    wrap(presets, "windows_to_set", "windows_to_set (concatenate)")
    wrap(WindowSet, "validate", "WindowSet.validate")
    wrap(WindowSet, "load", "WindowSet.load (parts)", static=True)
    wrap(WindowSet, "save_chunks", "WindowSet.save_chunks (write)", static=True)
    mark("start", "prepare: other")
    presets.prepare(preset, raw, log=lambda message: print(message, file=sys.stderr, flush=True))
    mark("end", "prepare: other")

    phases: dict[str, dict[str, float]] = {}
    stack: list[str] = []
    for (t0, kind, phase, _, rss0), (t1, _, _, hwm, _) in zip(events, events[1:]):
        if kind == "start":
            stack.append(phase)
        else:
            stack.pop()
        owner = stack[-1] if stack else "prepare: other"
        entry = phases.setdefault(owner, {"seconds": 0.0, "peak_rss_bytes": 0, "growth_bytes": 0, "calls": 0})
        entry["seconds"] += t1 - t0
        entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], hwm)
        entry["growth_bytes"] = max(entry["growth_bytes"], hwm - rss0)  # above the RSS it started from
    for _, kind, phase, _, _ in events:
        if kind == "start" and phase in phases:
            phases[phase]["calls"] += 1
    print(json.dumps({"total_s": events[-1][0] - events[0][0], "phases": phases}))


def profile_top(path: Path, top: int) -> dict[str, list[dict[str, Any]]]:
    """The ``top`` functions by own time in a cProfile dump, and crossl's ``top`` by cumulative time."""
    import pstats

    loaded: Any = pstats.Stats(str(path))
    stats = loaded.stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}

    def where(file: str, line: int, name: str) -> str:
        short = re.sub(r"^.*/(site-packages|src|lib/python3\.\d+)/", "", file)
        return f"{short}:{line}({name})" if line else name

    def row(key: tuple[str, int, str], value: tuple[Any, ...]) -> dict[str, Any]:
        return {"function": where(*key), "calls": value[1], "tottime_s": round(value[2], 3),
                "cumtime_s": round(value[3], 3)}

    own = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    package = sorted(((k, v) for k, v in stats.items() if "/crossl/" in k[0]), key=lambda item: -item[1][3])[:top]
    return {"top_tottime": [row(k, v) for k, v in own], "crossl_top_cumtime": [row(k, v) for k, v in package]}


# ---- the benchmark --------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    import edfio
    import numpy as np

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "python": platform.python_version(), "numpy": np.__version__, "edfio": edfio.__version__,
            "nice": os.nice(0), "loadavg_at_start": list(os.getloadavg())}


def prepare_command(preset: str, raw: Path) -> list[str]:
    return [sys.executable, "-m", "crossl.cli", "data", "prepare", preset, "--raw", str(raw)]


def measure_preset(dataset: str, preset: str, raw: Path, info: dict[str, Any], work: Path,
                   profile: bool, top: int) -> dict[str, Any]:
    raw_files = {str(p.relative_to(raw)): p.stat().st_size for p in sorted(raw.rglob("*")) if p.is_file()}
    raw_bytes = sum(raw_files.values())
    decoded = int(round(sum(rate * channels for rate, channels in PRESET_SIGNALS[preset].values())
                        * info["duration_s"])) * 4
    home = work / f"home-{preset}"
    env = dict(os.environ, CROSSL_HOME=str(home))
    drop_from_page_cache(raw)
    print(f"  crossl data prepare {preset} --raw {raw}", file=sys.stderr, flush=True)
    result = run_child(prepare_command(preset, raw), env)
    if result["exit_status"] != 0:
        raise SystemExit(f"crossl data prepare {preset} exited with status {result['exit_status']}")
    pointer = json.loads((home / "datasets" / f"{preset}.json").read_text(encoding="utf-8"))
    target = Path(pointer["path"])
    windows = json.loads((target / "meta.json").read_text(encoding="utf-8"))["num_windows"]
    record: dict[str, Any] = {
        "dataset": dataset, "preset": preset, "recording": info["description"], "duration_s": info["duration_s"],
        "raw_files": raw_files, "raw_bytes": raw_bytes, "raw_mb": raw_bytes / MB,
        "decoded_bytes": decoded, "decoded_all_bytes": info["decoded_all_bytes"],
        "windows": windows, "prepared_bytes": directory_bytes(target),
        "wall_s": round(result["wall_s"], 3), "cpu_s": round(result["user_s"] + result["sys_s"], 3),
        "user_s": round(result["user_s"], 3), "sys_s": round(result["sys_s"], 3),
        "throughput_mb_per_s": raw_bytes / MB / result["wall_s"],
        "peak_rss_bytes": result["peak_rss_bytes"], "peak_rss_mb": result["peak_rss_bytes"] / MB,
        "peak_rss_anon_bytes": result["sampled_peaks_bytes"].get("RssAnon"),
        "peak_rss_file_bytes": result["sampled_peaks_bytes"].get("RssFile"),
        "peak_rss_at_s": result["peak_rss_at_s"], "sampled_vm_hwm_bytes": result["sampled_peaks_bytes"].get("VmHWM"),
        "parent_rss_at_spawn_bytes": result["parent_rss_at_spawn_bytes"],
        "peak_over_decoded": result["peak_rss_bytes"] / decoded,
        "peak_over_decoded_all": result["peak_rss_bytes"] / info["decoded_all_bytes"],
        "major_faults": result["major_faults"], "other_load": result["other_load"],
        "stderr": result["stderr"],
    }
    shutil.rmtree(home, ignore_errors=True)
    if profile:
        drop_from_page_cache(raw)
        print(f"  phases of {preset}", file=sys.stderr, flush=True)
        phased = run_child([sys.executable, __file__, "--phases-child", preset, str(raw)], env, echo=False)
        shutil.rmtree(home, ignore_errors=True)
        if phased["exit_status"] != 0:
            raise SystemExit(f"the phases run of {preset} failed: {phased['stderr'][-3:]}")
        record["phases"] = json.loads(phased["stdout"].strip().splitlines()[-1])
        record["phases"]["wall_s"] = round(phased["wall_s"], 3)
        # the child resets its VmHWM at every phase boundary: its peak is the largest phase peak
        record["phases"]["peak_rss_bytes"] = max(e["peak_rss_bytes"] for e in record["phases"]["phases"].values())
        drop_from_page_cache(raw)
        print(f"  cProfile of {preset}", file=sys.stderr, flush=True)
        prof = work / f"{preset}.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(prof), *prepare_command(preset, raw)[1:]]
        profiled = run_child(command, env, echo=False)
        shutil.rmtree(home, ignore_errors=True)
        if profiled["exit_status"] != 0:
            raise SystemExit(f"the cProfile run of {preset} failed: {profiled['stderr'][-3:]}")
        record["profile"] = {"wall_s": round(profiled["wall_s"], 3), **profile_top(prof, top)}
    return record


def baseline(work: Path) -> dict[str, Any]:
    """Interpreter start and the CLI's imports: ``crossl data presets`` in a fresh child."""
    env = dict(os.environ, CROSSL_HOME=str(work / "home-baseline"))
    result = run_child([sys.executable, "-m", "crossl.cli", "data", "presets"], env, echo=False)
    return {"command": "crossl data presets", "exit_status": result["exit_status"],
            "wall_s": round(result["wall_s"], 3), "cpu_s": round(result["user_s"] + result["sys_s"], 3),
            "peak_rss_bytes": result["peak_rss_bytes"], "other_load": result["other_load"]}


def table(records: Sequence[dict[str, Any]]) -> str:
    """Markdown; with ``--profile`` also the phases run's time and peak (``prepare`` without the CLI's imports)."""
    alone = all("phases" in r for r in records)
    header = ("| preset | recording | raw MB | decoded MB | windows | wall s | CPU s | raw MB/s | peak RSS MB "
              "| peak / decoded | peak / all signals |"
              + (" prepare alone: s | peak MB | peak / decoded |" if alone else "") + " other load |")
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in records:
        load = "-" if r["other_load"] is None else f"{r['other_load']:.2f}"
        row = (f"| {r['preset']} | {r['recording']} | {r['raw_mb']:,.1f} | {r['decoded_bytes'] / MB:,.1f} | "
               f"{r['windows']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['throughput_mb_per_s']:.1f} | "
               f"{r['peak_rss_mb']:,.0f} | {r['peak_over_decoded']:.1f}x | {r['peak_over_decoded_all']:.1f}x |")
        if alone:
            phases = r["phases"]
            row += (f" {phases['total_s']:.1f} | {phases['peak_rss_bytes'] / MB:,.0f} | "
                    f"{phases['peak_rss_bytes'] / r['decoded_bytes']:.1f}x |")
        rows.append(row + f" {load} |")
    return "\n".join(rows)


def phase_table(record: dict[str, Any]) -> str:
    phases = sorted(record["phases"]["phases"].items(), key=lambda item: -item[1]["seconds"])
    rows = [f"{record['preset']} (phases run: {record['phases']['wall_s']:.1f} s wall, "
            f"peak RSS {record['phases']['peak_rss_bytes'] / MB:,.0f} MB):"]
    for name, entry in phases:
        rows.append(f"  {name:<34} {entry['seconds']:8.2f} s  peak {entry['peak_rss_bytes'] / MB:6.0f} MB "
                    f"(+{entry['growth_bytes'] / MB:4.0f} MB over its start)  calls {int(entry['calls'])}")
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def only(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in DATASETS]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{text!r}: use a comma-separated subset of {','.join(DATASETS)}")
        return names

    parser.add_argument("--only", type=only, default=list(DATASETS), help="datasets to generate and prepare")
    parser.add_argument("--minutes", type=float, default=None,
                        help="length of every generated recording in minutes, for quick runs (default: WESAD "
                             "142.9 min = 6,000,000 samples at 700 Hz, Sleep-EDF 480, PAMAP2 30)")
    parser.add_argument("--profile", action="store_true",
                        help="also time each preset's phases and run it under cProfile (two more preparations)")
    parser.add_argument("--top", type=int, default=12, help="functions kept from each cProfile run")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary directory (default: $TMPDIR)")
    parser.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--phases-child", nargs=2, metavar=("PRESET", "RAW"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.minutes is not None and not args.minutes > 0:
        parser.error("--minutes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.phases_child:
        phases_child(*args.phases_child)
        return
    from crossl.io import write_json_atomic

    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": " ".join(["python", "benchmarks/prepare_speed.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(), "minutes": args.minutes, "baseline": None, "records": []}
    with tempfile.TemporaryDirectory(prefix="crossl-prepare-speed-", dir=args.dir) as scratch:
        work = Path(scratch)
        results["baseline"] = baseline(work)
        print(f"baseline (crossl data presets): {results['baseline']['wall_s']:.2f} s, "
              f"{results['baseline']['peak_rss_bytes'] / MB:.0f} MB", file=sys.stderr, flush=True)
        for dataset in args.only:
            raw = work / f"raw-{dataset}"
            minutes = DEFAULT_MINUTES[dataset] if args.minutes is None else args.minutes
            started = time.perf_counter()
            info = WRITERS[dataset](raw, minutes)
            print(f"{dataset}: wrote {directory_bytes(raw) / MB:,.1f} MB ({info['description']}) in "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            for preset in PRESETS_OF[dataset]:
                record = measure_preset(dataset, preset, raw, info, work, args.profile, args.top)
                results["records"].append(record)
                print(table([record]).splitlines()[-1], file=sys.stderr, flush=True)
                if args.out:
                    write_json_atomic(args.out, results)
            shutil.rmtree(raw)
    results["machine"]["loadavg_at_end"] = list(os.getloadavg())
    if args.out:
        write_json_atomic(args.out, results)
    print(table(results["records"]))
    for record in results["records"]:
        if "phases" in record:
            print(phase_table(record))


if __name__ == "__main__":
    main()
