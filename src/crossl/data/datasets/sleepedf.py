"""Sleep-EDF Expanded, sleep-cassette part: overnight PSG (EEG, EOG, EMG) with 30-s sleep stages.

Kemp et al., "Analysis of a sleep-dependent neuronal feedback loop: the slow-wave microcontinuity
of the EEG", IEEE Trans. Biomed. Eng. 2000; distributed by PhysioNet ("sleep-edfx"). The data
cannot be downloaded from these machines: users place the publisher's files in a directory and
this module reads them.

One night is two files (``ss`` = subject 00-82, ``N`` = night 1 or 2, ``x`` = the scorer's letter):

- ``SC4ssNE0-PSG.edf``: plain EDF, 30-s data records; EEG Fpz-Cz, EEG Pz-Oz and EOG horizontal at
  100 Hz; Resp oro-nasal, EMG submental, Temp rectal and Event marker at 1 Hz.
- ``SC4ssNEx-Hypnogram.edf``: EDF+ holding only annotations ``(onset s, duration s, text)``, with
  the texts of :data:`STAGES`.

:func:`read_recording` turns one pair into a :class:`~crossl.data.recording.Recording` with four
single-channel modalities at their native rates (the EMG keeps its 1 Hz: 30 samples per epoch)
and per-second raw stage codes; :data:`LABEL_MAP` maps those codes to the 5 standard classes.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import edfio
import numpy as np

from crossl.data.edf import open_edf, signals_by_label
from crossl.data.recording import Recording
from crossl.errors import CrosslError

#: Hypnogram annotation text -> raw stage code (the codes stored in ``Recording.labels``).
STAGES: Mapping[str, int] = MappingProxyType({
    "Sleep stage W": 0,
    "Sleep stage 1": 1,
    "Sleep stage 2": 2,
    "Sleep stage 3": 3,
    "Sleep stage 4": 4,
    "Sleep stage R": 5,
    "Movement time": 6,
    "Sleep stage ?": 7,
})
CLASS_NAMES = ("W", "N1", "N2", "N3", "REM")
#: Raw stage code -> class index (AASM convention: N3 = R&K stages 3 + 4). Movement (6) and
#: unscored (7) have no class, so windows holding them get no label.
LABEL_MAP: Mapping[int, int] = MappingProxyType({0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4})
#: The raw codes that count as sleep when trimming wake (movement and "?" do not).
SLEEP_CODES = frozenset({1, 2, 3, 4, 5})

#: Modality -> EDF signal label (matched case-insensitively, surrounding spaces ignored).
MODALITIES: Mapping[str, str] = MappingProxyType({
    "eeg_fpz_cz": "EEG Fpz-Cz",
    "eeg_pz_oz": "EEG Pz-Oz",
    "eog": "EOG horizontal",
    "emg": "EMG submental",
})
LABEL_RATE_HZ = 1.0

#: Sleep-EDF-20: subjects 0-19 (39 nights: subject 13 has one night only).
SC20_SUBJECTS: tuple[int, ...] = tuple(range(20))
#: Sleep-EDF-78: every sleep-cassette subject. Numbers run 0-82 but 39, 68, 69, 78 and 79 do not
#: exist in the publisher's file list (sleep-cassette on PhysioNet; the same gaps are documented by
#: ``mne.datasets.sleep_physionet.age.fetch_data``): 78 subjects, 153 nights (subjects 13, 36 and
#: 52 have one night each). :func:`pair_files` selects from the files actually present.
SC78_SUBJECTS: tuple[int, ...] = tuple(s for s in range(83) if s not in {39, 68, 69, 78, 79})

_NAME = re.compile(r"^SC4(\d{2})(\d)", re.IGNORECASE)
_PSG = re.compile(r"^SC4\d{3}..-PSG\.edf$", re.IGNORECASE)
_HYPNOGRAM = re.compile(r"^SC4\d{3}..-Hypnogram\.edf$", re.IGNORECASE)


def parse_name(path: str | Path) -> tuple[int, int]:
    """``(subject ss, night N)`` from a sleep-cassette file name ``SC4ssN...``."""
    name = Path(path).name
    match = _NAME.match(name)
    if not match:
        raise CrosslError(f"'{name}' is not a Sleep-EDF sleep-cassette file name (expected SC4ssN..., e.g. SC4001E0-PSG.edf)")
    return int(match.group(1)), int(match.group(2))


def pair_files(directory: str | Path, subjects: Iterable[int] | None = None) -> list[tuple[Path, Path]]:
    """Every ``(PSG, hypnogram)`` pair in ``directory``, sorted by subject then night.

    A PSG and a hypnogram belong together when their names share the first 7 characters
    (``SC4ssNE``). Other files (sleep-telemetry ``ST7...``, checksums, ...) are ignored.
    ``subjects``: keep only these subject numbers (e.g. :data:`SC20_SUBJECTS`); files of other
    subjects are not checked. Raises :class:`CrosslError` for a PSG without hypnogram or the
    reverse, two files for one slot, or no pair at all.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CrosslError(f"Sleep-EDF directory {directory} does not exist; download sleep-cassette from PhysioNet into it")
    wanted = None if subjects is None else {int(s) for s in subjects}
    found: dict[str, dict[str, list[Path]]] = {"PSG": {}, "hypnogram": {}}
    for path in directory.iterdir():
        kind = "PSG" if _PSG.match(path.name) else "hypnogram" if _HYPNOGRAM.match(path.name) else None
        if kind is None or not path.is_file():
            continue
        if wanted is not None and parse_name(path)[0] not in wanted:
            continue
        found[kind].setdefault(path.name[:7].upper(), []).append(path)
    for kind, by_key in found.items():
        for paths in by_key.values():
            if len(paths) > 1:
                names = ", ".join(sorted(p.name for p in paths))
                raise CrosslError(f"{directory} holds several {kind} files for one night ({names}); keep one")
    psgs, hypnograms = found["PSG"], found["hypnogram"]
    unmatched = sorted([p.name for k, v in psgs.items() if k not in hypnograms for p in v]
                       + [p.name for k, v in hypnograms.items() if k not in psgs for p in v])
    if unmatched:
        raise CrosslError(f"{directory}: {', '.join(unmatched)} has no matching PSG/hypnogram file "
                          "(SC4ssNE0-PSG.edf pairs with SC4ssNEx-Hypnogram.edf); add the missing file or remove it")
    if not psgs:
        raise CrosslError(f"no Sleep-EDF sleep-cassette files (SC4ssNE0-PSG.edf + SC4ssNEx-Hypnogram.edf) in {directory}"
                          + ("" if wanted is None else " for the selected subjects"))
    return [(psgs[key][0], hypnograms[key][0]) for key in sorted(psgs)]


def read_recording(psg: str | Path, hypnogram: str | Path, trim_wake_minutes: float | None = 30.0) -> Recording:
    """One night as a :class:`Recording`.

    - ``signals``: ``eeg_fpz_cz``, ``eeg_pz_oz``, ``eog``, ``emg``, each ``(T_m, 1) float32`` in the
      file's physical units at the file's own rate (100, 100, 100 and 1 Hz in the published files).
    - ``labels``: ``(T_l,) int64`` raw stage codes (:data:`STAGES`) at 1 Hz, one per second of the
      PSG; ``-1`` where no annotation covers the second. A hypnogram that runs past the PSG is
      cut; seconds after its end stay ``-1``.
    - ``trim_wake_minutes``: keep from this many minutes before the first sleep second (codes
      :data:`SLEEP_CODES`) to this many minutes after the last one, clipped to the recording
      (the usual 30-min wake edges of Sleep-EDF studies); ``None`` keeps the whole night.
      Signals and labels are cut at the same instant, which becomes t = 0.
    - ``subject``: ``ss``; ``session``: ``"SC4ssN"``.
    """
    psg, hypnogram = Path(psg), Path(hypnogram)
    subject, night = parse_name(psg)
    if parse_name(hypnogram) != (subject, night):
        raise CrosslError(f"hypnogram {hypnogram.name} is not for PSG {psg.name} (subject/night differ); pass the matching pair")
    if trim_wake_minutes is not None and not trim_wake_minutes >= 0:
        raise CrosslError(f"trim_wake_minutes must be >= 0 or None, got {trim_wake_minutes}")

    psg_edf = open_edf(psg)
    if not psg_edf.is_continuous:
        raise CrosslError(f"{psg} is a discontinuous EDF+D file; Sleep-EDF PSGs are continuous: re-download it")
    by_label = signals_by_label(psg_edf)
    chosen: dict[str, edfio.EdfSignal] = {}
    for modality, label in MODALITIES.items():
        matches = by_label.get(label.casefold(), [])
        if not matches:
            found = ", ".join(repr(s.label.strip()) for s in psg_edf.signals)
            raise CrosslError(f"{psg} has no '{label}' channel (channels found: {found}); "
                              "is it a Sleep-EDF sleep-cassette PSG file?")
        if len(matches) > 1:
            raise CrosslError(f"{psg} has {len(matches)} channels labelled '{label}'; the {modality} channel is ambiguous")
        chosen[modality] = matches[0]

    # Exact time arithmetic: via str(), a record duration such as 0.1 s becomes 1/10, not its binary float.
    duration = psg_edf.num_data_records * Fraction(str(psg_edf.data_record_duration))
    label_rate = Fraction(LABEL_RATE_HZ)
    hyp_edf = open_edf(hypnogram)
    labels = _stage_labels(hyp_edf, hypnogram, _start_offset(psg_edf, hyp_edf), int(duration * label_rate))

    start, stop = Fraction(0), duration
    if trim_wake_minutes is not None:
        sleep = np.flatnonzero(np.isin(labels, list(SLEEP_CODES)))
        if sleep.size == 0:
            raise CrosslError(f"{hypnogram} scores no sleep stage within the PSG, so there is nothing to trim "
                              "wake around; pass trim_wake_minutes=None to keep the whole night")
        edge = Fraction(trim_wake_minutes) * 60
        # Cut on a grid where every modality's and the labels' sample index is an integer, widening
        # outwards so the requested margin is always kept.
        step = _common_grid([*(s.sampling_frequency for s in chosen.values()), LABEL_RATE_HZ])
        start = max(Fraction(0), math.floor((Fraction(int(sleep[0])) / label_rate - edge) / step) * step)
        stop = min(duration, math.ceil((Fraction(int(sleep[-1]) + 1) / label_rate + edge) / step) * step)

    signals: dict[str, np.ndarray] = {}
    rates: dict[str, float] = {}
    try:
        for modality, signal in chosen.items():
            data = signal.get_data_slice(float(start), float(stop))
            signals[modality] = np.asarray(data, dtype=np.float32).reshape(-1, 1)
            rates[modality] = float(signal.sampling_frequency)
    except (ValueError, OSError) as exc:
        raise CrosslError(f"{psg} is unreadable ({exc}); re-download it") from exc
    return Recording(
        signals=signals,
        rates=rates,
        labels=labels[int(start * label_rate) : int(stop * label_rate)],
        label_rate=LABEL_RATE_HZ,
        subject=subject,
        session=f"SC4{subject:02d}{night}",
        channel_names={m: (s.label.strip(),) for m, s in chosen.items()},
    )


def _common_grid(rates: Iterable[float]) -> Fraction:
    """Smallest time step (s) whose multiples fall on a sample of every rate.

    The sample period of rate p/q Hz is q/p s; the lcm of fractions (in lowest terms) is
    lcm(numerators) / gcd(denominators). 100 Hz and 1 Hz give 1 s.
    """
    fractions = [Fraction(r).limit_denominator(1_000_000) for r in rates]
    return Fraction(math.lcm(*(f.denominator for f in fractions)), math.gcd(*(f.numerator for f in fractions)))


def _stage_labels(edf: edfio.Edf, hypnogram: Path, offset: float, length: int) -> np.ndarray:
    """``(length,) int64`` stage code per second of the PSG, -1 where no annotation covers it.

    ``offset``: seconds from the PSG's start to the hypnogram's (annotation onsets are relative to
    their own file). Second k gets the code of an annotation covering [k, k + 1); onsets and ends
    are rounded to whole seconds (they are 30-s multiples in the published files). Annotations are
    applied in onset order, so a later one overrides an overlapping earlier one.
    """
    try:
        annotations = edf.annotations
    except (ValueError, UnicodeDecodeError) as exc:
        raise CrosslError(f"{hypnogram} has corrupt EDF+ annotations ({exc}); re-download it") from exc
    labels = np.full(length, -1, dtype=np.int64)
    for annotation in annotations:
        text = annotation.text.strip()
        if text not in STAGES:
            raise CrosslError(f"{hypnogram} has an unknown annotation '{text}' at {annotation.onset:g} s; "
                              f"a Sleep-EDF hypnogram holds only {', '.join(STAGES)}")
        if annotation.duration is None:
            continue  # an instant covers no whole second
        first = math.floor(offset + annotation.onset + 0.5)
        end = math.floor(offset + annotation.onset + annotation.duration + 0.5)
        labels[max(first, 0) : max(min(end, length), 0)] = STAGES[text]
    return labels


def _start_offset(psg_edf: edfio.Edf, hyp_edf: edfio.Edf) -> float:
    """Seconds from the PSG's start to the hypnogram's; 0 when either start is unknown (anonymized)."""
    try:
        with warnings.catch_warnings():
            # edfio warns when the legacy and EDF+ date fields differ; it then uses the EDF+ one.
            warnings.simplefilter("ignore")
            return (hyp_edf.startdatetime - psg_edf.startdatetime).total_seconds()
    except ValueError:
        return 0.0
