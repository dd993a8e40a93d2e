"""Sleep-EDF sleep-cassette reader on miniature PSG/hypnogram pairs written with edfio in the published layout."""

from __future__ import annotations

import datetime
from pathlib import Path

import edfio
import numpy as np
import pytest

from crossl.data.datasets import sleepedf
from crossl.errors import CrosslError

DURATION_S = 1200  # 20 min: 40 data records of 30 s, as in the published PSGs
START = datetime.time(22, 15, 0)
DATE = datetime.date(1989, 4, 24)
EXACT = (-32768.0, 32767.0)  # physical range = digital range: integer values round-trip exactly

# (onset s, duration s, text): wake edges, every stage, movement, "?", a 30-s gap (630 is the next
# onset) and a last "?" that runs 300 s past the PSG's end, like the published hypnograms.
HYPNOGRAM = [
    (0, 300, "Sleep stage W"), (300, 30, "Sleep stage 1"), (330, 60, "Sleep stage 2"),
    (390, 30, "Sleep stage 3"), (420, 30, "Sleep stage 4"), (450, 60, "Sleep stage R"),
    (510, 30, "Movement time"), (540, 30, "Sleep stage 2"), (570, 30, "Sleep stage ?"),
    (630, 510, "Sleep stage W"), (1140, 360, "Sleep stage ?"),
]
# The same, second by second, written out independently (code per segment, seconds).
EXPECTED_LABELS = np.concatenate([np.full(n, code) for code, n in [
    (0, 300), (1, 30), (2, 60), (3, 30), (4, 30), (5, 60), (6, 30), (2, 30), (7, 30), (-1, 30), (0, 510), (7, 60),
]])
FIRST_SLEEP_S, LAST_SLEEP_END_S = 300, 570


def _channel(label: str, rate: int) -> np.ndarray:
    """Values that identify the channel and the time (sample k of a ``rate`` Hz signal)."""
    k = np.arange(DURATION_S * rate)
    return {
        "EEG Fpz-Cz": 1000 + k // 100,  # the second
        "EEG Pz-Oz": 5000 + k % 100,  # the sample within the second
        "EOG horizontal": -1000 - k // 100,
        "EMG submental": 3000 + k,  # 1 Hz: the second
        "Resp oro-nasal": np.full(k.shape, 9999),
        "Event marker": np.full(k.shape, -7),
    }[label].astype(np.float64)


PSG_CHANNELS = [  # published order and rates
    ("EEG Fpz-Cz", 100), ("EEG Pz-Oz", 100), ("EOG horizontal", 100),
    ("Resp oro-nasal", 1), ("EMG submental", 1), ("Event marker", 1),
]


def write_psg(path: Path, channels=PSG_CHANNELS, rename=None, edf_plus: bool = False) -> Path:
    rename = rename or {}
    signals = [
        edfio.EdfSignal(_channel(label, rate), rate, label=rename.get(label, label), physical_range=EXACT)
        for label, rate in channels
    ]
    edf = edfio.Edf(signals, recording=edfio.Recording(startdate=DATE), starttime=START, data_record_duration=30,
                    annotations=[] if edf_plus else None)
    edf.write(path)
    return path


def write_hypnogram(path: Path, annotations=HYPNOGRAM, starttime: datetime.time = START) -> Path:
    # Annotation-only EDF+ (data record duration 0), the layout of the published hypnograms.
    edf = edfio.Edf([], recording=edfio.Recording(startdate=DATE), starttime=starttime,
                    annotations=[edfio.EdfAnnotation(float(o), float(d), t) for o, d, t in annotations])
    edf.write(path)
    return path


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sleepedf")
    return write_psg(d / "SC4121E0-PSG.edf"), write_hypnogram(d / "SC4121EC-Hypnogram.edf")


def _check_span(rec, start_s: int, stop_s: int) -> None:
    """Every modality and the labels cover exactly seconds [start_s, stop_s) of the night."""
    n = stop_s - start_s
    assert {m: s.shape for m, s in rec.signals.items()} == {
        "eeg_fpz_cz": (100 * n, 1), "eeg_pz_oz": (100 * n, 1), "eog": (100 * n, 1), "emg": (n, 1)}
    seconds = np.arange(start_s, stop_s)
    np.testing.assert_array_equal(rec.signals["eeg_fpz_cz"][:, 0], np.repeat(1000 + seconds, 100))
    np.testing.assert_array_equal(rec.signals["eeg_pz_oz"][:, 0], np.tile(5000 + np.arange(100), n))
    np.testing.assert_array_equal(rec.signals["eog"][:, 0], np.repeat(-1000 - seconds, 100))
    np.testing.assert_array_equal(rec.signals["emg"][:, 0], 3000 + seconds)
    np.testing.assert_array_equal(rec.labels, EXPECTED_LABELS[start_s:stop_s])
    assert rec.duration() == n


# ---- reading -------------------------------------------------------------------------------------

def test_untrimmed_night_maps_channels_rates_and_per_second_labels(night):
    rec = sleepedf.read_recording(*night, trim_wake_minutes=None)
    assert rec.modality_names == ("eeg_fpz_cz", "eeg_pz_oz", "eog", "emg")
    assert rec.rates == {"eeg_fpz_cz": 100.0, "eeg_pz_oz": 100.0, "eog": 100.0, "emg": 1.0}
    assert rec.label_rate == 1.0
    assert rec.channel_names == {"eeg_fpz_cz": ("EEG Fpz-Cz",), "eeg_pz_oz": ("EEG Pz-Oz",),
                                 "eog": ("EOG horizontal",), "emg": ("EMG submental",)}
    assert all(s.dtype == np.float32 for s in rec.signals.values())
    assert rec.labels.dtype == np.int64
    assert (rec.subject, rec.session) == (12, "SC4121")
    _check_span(rec, 0, DURATION_S)  # the hypnogram's tail past the PSG is cut; the gap stays -1
    assert (rec.labels[600:630] == -1).all()


@pytest.mark.parametrize("minutes, span", [
    (2.0, (FIRST_SLEEP_S - 120, LAST_SLEEP_END_S + 120)),
    (0.0, (FIRST_SLEEP_S, LAST_SLEEP_END_S)),
    (0.75 / 60, (FIRST_SLEEP_S - 1, LAST_SLEEP_END_S + 1)),  # 0.75 s: widened to whole seconds
    (30.0, (0, DURATION_S)),  # the default: clipped to the recording on both sides
], ids=["2min", "0min", "0.75s", "30min-clipped"])
def test_wake_trimming_keeps_the_exact_span(night, minutes, span):
    _check_span(sleepedf.read_recording(*night, trim_wake_minutes=minutes), *span)


def test_default_trim_is_30_minutes(night):
    assert sleepedf.read_recording(*night).duration() == DURATION_S
    assert sleepedf.read_recording(*night).labels.tolist() == sleepedf.read_recording(*night, 30.0).labels.tolist()


def test_movement_and_unscored_do_not_count_as_sleep_for_trimming(tmp_path):
    # Sleep only in [300, 330); movement and "?" after it must not stretch the kept span.
    annotations = [(0, 300, "Sleep stage W"), (300, 30, "Sleep stage 2"), (330, 60, "Movement time"),
                   (390, 810, "Sleep stage ?")]
    rec = sleepedf.read_recording(write_psg(tmp_path / "SC4011E0-PSG.edf"),
                                  write_hypnogram(tmp_path / "SC4011EH-Hypnogram.edf", annotations), 1.0)
    np.testing.assert_array_equal(rec.labels, [0] * 60 + [2] * 30 + [6] * 60)  # [240, 390)
    assert rec.signals["emg"][0, 0] == 3240


def test_short_hypnogram_leaves_the_rest_unlabeled(tmp_path):
    annotations = HYPNOGRAM[:9]  # ends at 600 s
    rec = sleepedf.read_recording(write_psg(tmp_path / "SC4001E0-PSG.edf"),
                                  write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf", annotations), None)
    assert len(rec.labels) == DURATION_S
    np.testing.assert_array_equal(rec.labels[:600], EXPECTED_LABELS[:600])
    assert (rec.labels[600:] == -1).all()


def test_hypnogram_starting_later_is_aligned_on_the_psg_clock(tmp_path):
    later = datetime.time(22, 16, 0)  # 60 s after the PSG: its onsets are relative to its own start
    rec = sleepedf.read_recording(write_psg(tmp_path / "SC4001E0-PSG.edf"),
                                  write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf", starttime=later), None)
    np.testing.assert_array_equal(rec.labels, np.concatenate([np.full(60, -1), EXPECTED_LABELS[:-60]]))


def test_labels_are_found_case_insensitively_and_edf_plus_psg_works(tmp_path):
    rename = {"EEG Fpz-Cz": "eeg fpz-cz", "EMG submental": "EMG SUBMENTAL"}
    psg = write_psg(tmp_path / "SC4001E0-PSG.edf", rename=rename, edf_plus=True)
    rec = sleepedf.read_recording(psg, write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf"), None)
    assert rec.channel_names["eeg_fpz_cz"] == ("eeg fpz-cz",)
    assert rec.channel_names["emg"] == ("EMG SUBMENTAL",)
    _check_span(rec, 0, DURATION_S)


def test_constants_describe_the_five_classes():
    assert sleepedf.STAGES["Sleep stage ?"] == 7 and sleepedf.STAGES["Movement time"] == 6
    assert sleepedf.CLASS_NAMES == ("W", "N1", "N2", "N3", "REM")
    assert dict(sleepedf.LABEL_MAP) == {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4}
    assert sorted(set(sleepedf.LABEL_MAP.values())) == list(range(len(sleepedf.CLASS_NAMES)))
    assert sleepedf.SC20_SUBJECTS == tuple(range(20))
    assert len(sleepedf.SC78_SUBJECTS) == 78
    assert {39, 68, 69, 78, 79}.isdisjoint(sleepedf.SC78_SUBJECTS) and sleepedf.SC78_SUBJECTS[-1] == 82


# ---- names and pairing ---------------------------------------------------------------------------

def test_parse_name():
    assert sleepedf.parse_name("SC4001E0-PSG.edf") == (0, 1)
    assert sleepedf.parse_name(Path("/data/SC4822GC-Hypnogram.edf")) == (82, 2)
    with pytest.raises(CrosslError, match="ST7011J0-PSG.edf"):
        sleepedf.parse_name("ST7011J0-PSG.edf")


def _touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"")


def test_pair_files_matches_sorts_and_ignores_other_files(tmp_path):
    _touch(tmp_path, "SC4451F0-PSG.edf", "SC4451FY-Hypnogram.edf", "SC4002E0-PSG.edf", "SC4002EC-Hypnogram.edf",
           "SC4001EC-Hypnogram.edf", "SC4001E0-PSG.edf", "ST7011J0-PSG.edf", "ST7011JP-Hypnogram.edf", "RECORDS")
    pairs = sleepedf.pair_files(tmp_path)
    assert [(p.name, h.name) for p, h in pairs] == [
        ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf"), ("SC4002E0-PSG.edf", "SC4002EC-Hypnogram.edf"),
        ("SC4451F0-PSG.edf", "SC4451FY-Hypnogram.edf")]
    assert [p.name for p, _ in sleepedf.pair_files(tmp_path, subjects=sleepedf.SC20_SUBJECTS)] == [
        "SC4001E0-PSG.edf", "SC4002E0-PSG.edf"]


def test_pair_files_names_an_unmatched_file(tmp_path):
    _touch(tmp_path, "SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SC4011E0-PSG.edf")
    with pytest.raises(CrosslError, match="SC4011E0-PSG.edf"):
        sleepedf.pair_files(tmp_path)
    # an unmatched file of an unselected subject does not block the selection
    assert len(sleepedf.pair_files(tmp_path, subjects=[0])) == 1


def test_pair_files_rejects_two_hypnograms_for_one_night_and_empty_directories(tmp_path):
    _touch(tmp_path, "SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf", "SC4001EH-Hypnogram.edf")
    with pytest.raises(CrosslError, match="SC4001EC-Hypnogram.edf, SC4001EH-Hypnogram.edf"):
        sleepedf.pair_files(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrosslError, match="no Sleep-EDF"):
        sleepedf.pair_files(tmp_path / "empty")
    with pytest.raises(CrosslError, match="does not exist"):
        sleepedf.pair_files(tmp_path / "missing")


# ---- bad input -----------------------------------------------------------------------------------

def test_missing_channel_names_it_and_the_channels_found(tmp_path):
    channels = [c for c in PSG_CHANNELS if c[0] != "EOG horizontal"]
    psg = write_psg(tmp_path / "SC4001E0-PSG.edf", channels=channels)
    with pytest.raises(CrosslError, match=r"SC4001E0-PSG.edf has no 'EOG horizontal' channel.*'Resp oro-nasal'"):
        sleepedf.read_recording(psg, write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf"))


def test_duplicate_channel_is_ambiguous(tmp_path):
    psg = write_psg(tmp_path / "SC4001E0-PSG.edf", rename={"Resp oro-nasal": "EMG submental"})
    with pytest.raises(CrosslError, match="2 channels labelled 'EMG submental'"):
        sleepedf.read_recording(psg, write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf"))


def test_unknown_annotation_is_named(tmp_path, night):
    hyp = write_hypnogram(tmp_path / "SC4121EC-Hypnogram.edf", [*HYPNOGRAM, (600, 30, "Lights off")])
    with pytest.raises(CrosslError, match="SC4121EC-Hypnogram.edf has an unknown annotation 'Lights off' at 600 s"):
        sleepedf.read_recording(night[0], hyp)


@pytest.mark.parametrize("which", ["psg", "hypnogram"])
def test_truncated_file_is_rejected(tmp_path, which):
    psg = write_psg(tmp_path / "SC4001E0-PSG.edf")
    hyp = write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf")
    target = psg if which == "psg" else hyp
    target.write_bytes(target.read_bytes()[:-7])
    with pytest.raises(CrosslError, match=f"{target.name} is truncated"):
        sleepedf.read_recording(psg, hyp)


@pytest.mark.parametrize("content", [b"", b"0       garbage", b"not an edf file at all " * 40],
                         ids=["empty", "short-header", "garbage"])
def test_corrupt_file_is_rejected(tmp_path, night, content):
    psg = tmp_path / "SC4121E0-PSG.edf"
    psg.write_bytes(content)
    with pytest.raises(CrosslError, match="SC4121E0-PSG.edf"):
        sleepedf.read_recording(psg, night[1])


def test_trailing_bytes_are_rejected(tmp_path, night):
    psg = tmp_path / "SC4121E0-PSG.edf"
    psg.write_bytes(night[0].read_bytes() + b"\0" * 10)
    with pytest.raises(CrosslError, match="10 bytes after the 40 data records"):
        sleepedf.read_recording(psg, night[1])


def test_mismatched_pair_no_sleep_and_bad_trim(tmp_path, night):
    with pytest.raises(CrosslError, match="is not for PSG"):
        sleepedf.read_recording(night[0], write_hypnogram(tmp_path / "SC4122EC-Hypnogram.edf"))
    awake = write_hypnogram(tmp_path / "SC4121EC-Hypnogram.edf", [(0, 1200, "Sleep stage W")])
    with pytest.raises(CrosslError, match="no sleep stage"):
        sleepedf.read_recording(night[0], awake)
    assert (sleepedf.read_recording(night[0], awake, None).labels == 0).all()
    with pytest.raises(CrosslError, match="trim_wake_minutes"):
        sleepedf.read_recording(*night, trim_wake_minutes=-1.0)
