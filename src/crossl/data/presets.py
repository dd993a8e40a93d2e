"""Dataset presets: how each public dataset's raw files become windows, and preparing them once.

A preset names the raw reader, the modalities, the window rule, the label map and the default
subject split (:class:`~crossl.data.spec.DatasetSpec`). ``prepare(preset, raw)`` reads one
recording at a time, windows it, and writes the memory-mappable container to the cache under a key
made of the preset and the raw files' fingerprints (names, sizes, modification times): a rerun
with the same inputs reuses it. A recording that cannot be read is skipped and reported (or, with
``strict``, stops the preparation); nothing half-written is left in the cache.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crossl.data.cache import crossl_home
from crossl.data.container import WindowSet
from crossl.data.recording import Recording
from crossl.data.spec import DatasetSpec
from crossl.data.splits import SplitScheme
from crossl.data.windowing import RecordingWindows, WindowRule, window_recording, windows_to_set
from crossl.errors import CrosslError
from crossl.io import write_json_atomic

#: Reads one recording; ``(name shown in reports, reader)`` pairs come from :func:`recording_sources`.
Source = tuple[str, Callable[[], Recording]]


@dataclass(frozen=True)
class Preset:
    """A :class:`DatasetSpec` plus the raw reader that feeds it."""

    spec: DatasetSpec
    reader: str  # "pamap2", "wesad" or "sleepedf"
    options: dict[str, Any] = field(default_factory=dict)
    #: What this preset reproduces or why it departs from the authors' release.
    note: str = ""


def _imu_channels(sensor: str) -> tuple[str, ...]:
    return tuple(f"{sensor}_{axis}" for axis in "xyz")


PAMAP2_IMUS = tuple(f"{site}_{sensor}" for site in ("hand", "chest", "ankle") for sensor in ("acc", "gyro"))
PAMAP2_CLASSES = (
    ("lying", 1), ("sitting", 2), ("standing", 3), ("walking", 4), ("running", 5), ("cycling", 6),
    ("nordic_walking", 7), ("ascending_stairs", 12), ("descending_stairs", 13), ("vacuum_cleaning", 16),
    ("ironing", 17), ("rope_jumping", 24),
)
PAMAP2_SUBJECTS = tuple(range(101, 109))
PAMAP2_SPLIT = {"train": (101, 102, 103, 104, 105), "val": (106,), "test": (107, 108)}
WESAD_SUBJECTS = tuple(k for k in range(2, 18) if k != 12)
WESAD_SPLIT = {"train": WESAD_SUBJECTS[:10], "val": WESAD_SUBJECTS[10:12], "test": WESAD_SUBJECTS[12:]}
WESAD_CLASSES = ("baseline", "stress", "amusement", "meditation")
SLEEP_CLASSES = ("W", "N1", "N2", "N3", "REM")


def _pamap2(name: str, heart_rate: bool, note: str, split_scheme: SplitScheme = "subjects") -> Preset:
    modalities = PAMAP2_IMUS + (("heart_rate",) if heart_rate else ())
    rates = {m: 100.0 for m in PAMAP2_IMUS} | ({"heart_rate": 9.0} if heart_rate else {})
    channels = {m: _imu_channels(m.split("_")[1]) for m in PAMAP2_IMUS} | (
        {"heart_rate": ("bpm",)} if heart_rate else {})
    spec = DatasetSpec(
        name=name, modalities=modalities, rates=rates, channel_names=channels,
        class_names=tuple(c for c, _ in PAMAP2_CLASSES),
        label_map={code: i for i, (_, code) in enumerate(PAMAP2_CLASSES)},
        # 5.12 s = the release's 512 samples at 100 Hz; half-window stride.
        rule=WindowRule(window_s=5.12, stride_s=2.56, label_rule="pure", max_gap_share=0.1),
        default_split=PAMAP2_SPLIT if split_scheme == "subjects" else None,
        split_scheme=split_scheme,
        description="PAMAP2 protocol: three IMUs (hand, chest, ankle) x acc (+-16 g) / gyro at 100 Hz, 12 activities",
    )
    # Subject 109 holds almost no protocol data: leave-one-subject-out uses 101-108, as the release
    # did (the subject split never lists 109).
    options = {"subjects": PAMAP2_SUBJECTS} if split_scheme == "leave-one-subject-out" else {}
    return Preset(spec, "pamap2", options, note)


def _wesad(name: str, device: str, modalities: tuple[str, ...], rates: dict[str, float], window_s: float,
           stride_s: float, note: str, split_scheme: SplitScheme = "subjects") -> Preset:
    channels = {m: _imu_channels("acc") if m == "acc" else (m,) for m in modalities}
    spec = DatasetSpec(
        name=name, modalities=modalities, rates=rates, channel_names=channels, class_names=WESAD_CLASSES,
        label_map={1: 0, 2: 1, 3: 2, 4: 3},
        rule=WindowRule(window_s=window_s, stride_s=stride_s, label_rule="pure", max_gap_share=0.1),
        default_split=WESAD_SPLIT if split_scheme == "subjects" else None,
        split_scheme=split_scheme,
        description=f"WESAD {device}: baseline / stress / amusement / meditation, 15 subjects",
    )
    return Preset(spec, "wesad", {"device": device, "modalities": modalities}, note)


def _sleepedf(name: str, subjects: tuple[int, ...] | None, split: dict[str, tuple[int, ...]] | None,
              note: str) -> Preset:
    modalities = ("eeg_fpz_cz", "eeg_pz_oz", "eog", "emg")
    spec = DatasetSpec(
        name=name, modalities=modalities, rates={"eeg_fpz_cz": 100.0, "eeg_pz_oz": 100.0, "eog": 100.0, "emg": 1.0},
        channel_names={m: (m,) for m in modalities}, class_names=SLEEP_CLASSES,
        label_map={0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4},
        rule=WindowRule(window_s=30.0, stride_s=30.0, label_rule="pure", max_gap_share=0.1),
        default_split=split,
        description="Sleep-EDF expanded, sleep cassette: 30-s epochs, W/N1/N2/N3/REM",
    )
    return Preset(spec, "sleepedf", {"subjects": subjects, "trim_wake_minutes": 30.0}, note)


PRESETS: dict[str, Preset] = {
    preset.spec.name: preset
    for preset in (
        _pamap2("pamap2", heart_rate=False,
                note="the release's modalities, window and classes; a subject split (train 101-105, val 106, "
                     "test 107-108) where the release ran leave-one-subject-out"),
        _pamap2("pamap2-hr", heart_rate=True, note="pamap2 plus heart rate as its own modality at 9 Hz"),
        _pamap2("pamap2-loso", heart_rate=False, split_scheme="leave-one-subject-out",
                note="the release's choices: modalities, window, classes and leave-one-subject-out over subjects "
                     "101-108 (--fold K holds out the K-th; the next one is validation)"),
        _wesad("wesad", "chest", ("ecg", "emg", "eda"), {"ecg": 700.0, "emg": 700.0, "eda": 700.0},
               1000 / 700, 500 / 700,
               note="the release's modalities and 1000-sample windows; subject-disjoint split, where the "
                    "release split each subject's windows into train and test (that is wesad-within-subject)"),
        _wesad("wesad-within-subject", "chest", ("ecg", "emg", "eda"), {"ecg": 700.0, "emg": 700.0, "eda": 700.0},
               1000 / 700, 500 / 700, split_scheme="within-subject",
               note="the release's choices, within-subject split included: each subject's windows of each class "
                    "cut in time (70% train, 10% val, 20% test, no window overlapping the cut); scores it gives "
                    "are not about new people: use wesad for that"),
        _wesad("wesad-wrist", "wrist", ("bvp", "acc", "eda", "temp"),
               {"bvp": 64.0, "acc": 32.0, "eda": 4.0, "temp": 4.0}, 8.0, 4.0,
               note="the wrist device at its native rates: four modalities, four window lengths"),
        _sleepedf("sleepedf20", tuple(range(20)),
                  {"train": tuple(range(14)), "val": (14, 15), "test": (16, 17, 18, 19)},
                  note="Sleep-EDF-20 (subjects 0-19), the release's four channels; EMG at its own 1 Hz"),
        _sleepedf("sleepedf78", None, None,
                  note="every subject whose files are present; a seeded subject-wise split"),
    )
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise CrosslError(f"unknown preset '{name}'; use one of {sorted(PRESETS)}")
    return PRESETS[name]


def recording_sources(preset: Preset, raw: Path) -> list[Source]:
    """The recordings under ``raw`` for ``preset``'s reader, each read only when called."""
    if not raw.is_dir():
        raise CrosslError(f"raw data directory {raw} does not exist; pass the folder of the downloaded files")
    if preset.reader == "pamap2":
        from crossl.data.datasets import pamap2

        files = sorted(raw.glob("Protocol/subject10*.dat")) or sorted(raw.glob("subject10*.dat"))
        subjects = preset.options.get("subjects")
        if subjects is not None:
            files = [f for f in files if pamap2.subject_of(f) in subjects]
        return [(str(f.relative_to(raw)), lambda f=f: pamap2.read_recording(f)) for f in files]  # type: ignore[misc]
    if preset.reader == "wesad":
        from crossl.data.datasets import wesad

        files = sorted(raw.glob("S*/S*.pkl"))
        device, modalities = preset.options["device"], preset.options["modalities"]
        return [(str(f.relative_to(raw)), lambda f=f: wesad.read_recording(f, device, modalities))  # type: ignore[misc]
                for f in files]
    from crossl.data.datasets import sleepedf

    pairs = sleepedf.pair_files(raw, preset.options["subjects"])
    trim = preset.options["trim_wake_minutes"]
    return [(psg.name, lambda p=psg, h=hyp: sleepedf.read_recording(p, h, trim)) for psg, hyp in pairs]  # type: ignore[misc]


def raw_fingerprint(preset: Preset, raw: Path) -> str:
    """A key for the prepared set: the preset's spec and every raw file's name, size and mtime."""
    digest = hashlib.sha256(repr((preset.spec, preset.options)).encode())
    for path in sorted(p for p in raw.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(raw)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def prepared_directory(name: str, key: str) -> Path:
    return crossl_home() / "datasets" / f"{name}-{key}"


def pointer_file(name: str) -> Path:
    """Where ``--data NAME`` finds the latest preparation of preset ``name``."""
    return crossl_home() / "datasets" / f"{name}.json"


def _select(recording: Recording, modalities: tuple[str, ...]) -> Recording:
    missing = [m for m in modalities if m not in recording.signals]
    if missing:
        raise CrosslError(f"recording {recording.session} lacks modalities {missing}")
    return replace(recording, signals={m: recording.signals[m] for m in modalities},
                   rates={m: recording.rates[m] for m in modalities},
                   channel_names={m: recording.channel_names[m] for m in modalities if m in recording.channel_names})


def _check_rates(spec: DatasetSpec, recording: Recording) -> None:
    for m in spec.modalities:
        if abs(recording.rates[m] - spec.rates[m]) > 1e-6 * spec.rates[m]:
            raise CrosslError(f"recording {recording.session}: modality '{m}' is at {recording.rates[m]:g} Hz, "
                              f"the preset expects {spec.rates[m]:g} Hz")


def window_sources(preset: Preset, sources: list[Source], strict: bool, log: Callable[[str], None],
                   skipped: list[list[str]]) -> Iterator[RecordingWindows]:
    """Each readable recording's windows; unreadable ones are reported, listed in ``skipped`` as
    ``[name, reason]`` and passed over (``strict``: raised)."""
    for name, read in sources:
        try:
            recording = _select(read(), preset.spec.modalities)
            _check_rates(preset.spec, recording)
            windows = window_recording(recording, preset.spec.rule, preset.spec.label_map)
        except CrosslError as exc:
            if strict:
                raise CrosslError(f"{name}: {exc} (drop --strict to skip such recordings)") from exc
            log(f"skipped {name}: {exc}")
            skipped.append([name, str(exc)])
            continue
        log(f"{name}: {len(windows)} windows (subject {recording.subject})")
        yield windows


def write_prepared(preset: Preset, raw: Path, sources: list[Source], target: Path, strict: bool,
                   log: Callable[[str], None]) -> None:
    """Window one recording at a time into ``target``: each recording's windows go to a scratch
    directory beside it as they are made, then every part is copied into the final memory-mapped
    arrays, so memory holds one recording (and its windows), never the whole set."""
    skipped: list[list[str]] = []
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.parts-") as scratch:
        meta = preset.spec.meta()
        parts: list[Path] = []
        # the skipped list is only known at the end: parts carry the plain metadata, the set gets both
        for windows in window_sources(preset, sources, strict, log, skipped):
            if len(windows):
                parts.append(windows_to_set([windows], meta).save(Path(scratch) / f"part-{len(parts):05d}"))
        if not parts:
            raise CrosslError(f"no windows could be made from the recordings under {raw}; see the lines above")
        total = sum(len(WindowSet.load(part)) for part in parts)
        full = replace(meta, extra={**meta.extra, "raw": str(raw.resolve()), "skipped": skipped})
        chunks = (WindowSet.load(part).with_meta(full) for part in parts)
        WindowSet.save_chunks(target, chunks, total)


def prepare(preset_name: str, raw: str | Path, strict: bool = False,
            log: Callable[[str], None] | None = None) -> Path:
    """Prepare ``preset_name`` from the raw files in ``raw``; returns the prepared directory."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    preset = get_preset(preset_name)
    raw = Path(raw)
    sources = recording_sources(preset, raw)
    if not sources:
        raise CrosslError(f"no {preset.reader} recordings found under {raw}; point --raw to the unpacked download")
    target = prepared_directory(preset_name, raw_fingerprint(preset, raw))
    if not (target / "meta.json").is_file():
        write_prepared(preset, raw, sources, target, strict, log)
    else:
        recorded: Any = WindowSet.load(target).meta.extra.get("skipped", [])
        skipped = [list(item) for item in recorded]
        log(f"reusing {target} (same preset and raw files)")
        for name, reason in skipped:
            if strict:
                raise CrosslError(f"{name}: {reason} (drop --strict to skip such recordings)")
            log(f"skipped {name}: {reason}")
    write_json_atomic(pointer_file(preset_name), {"preset": preset_name, "path": str(target), "raw": str(raw.resolve())})
    return target


def load_prepared(name: str) -> WindowSet:
    """The latest preparation of preset ``name`` (``crossl data prepare`` makes it)."""
    pointer = pointer_file(name)
    try:
        path = Path(json.loads(pointer.read_text(encoding="utf-8"))["path"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CrosslError(f"{name} is not prepared yet; run `crossl data prepare {name} --raw DIR` on its raw "
                          "files first") from exc
    return WindowSet.load(path)
