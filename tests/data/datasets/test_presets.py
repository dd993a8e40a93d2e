"""Presets end to end: raw-format fixtures -> `crossl data prepare` -> the documented windows ->
`crossl pretrain` on the prepared set (the WESAD wrist preset with four lengths in one window)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from test_pamap2 import _lines
from test_pamap2 import _table as pamap2_table
from test_sleepedf import write_hypnogram, write_psg

from crossl.cli import main
from crossl.data.presets import PRESETS, prepare
from crossl.errors import CrosslError

TOY = ["--epochs", "1", "--batch-size", "8", "--fractions", "1", "--seeds", "0", "--no-progress", "--steps", "2",
       "--eval-epochs", "0"]


PAMAP2_CODES = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)


def write_pamap2(raw: Path, subjects: tuple[int, ...] = (101, 106, 107), seconds_each: int = 8) -> Path:
    """One protocol file per subject (train, val and test subjects): 8 s of each of the 12 activities."""
    rows = 100 * seconds_each * len(PAMAP2_CODES)
    for subject in subjects:
        table = pamap2_table(np.arange(rows))
        table[:, 1] = np.repeat(PAMAP2_CODES, 100 * seconds_each)
        path = raw / "Protocol" / f"subject{subject}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(_lines(table)))
    return raw


def write_wesad(raw: Path, seconds_each: int = 10) -> Path:
    """One pickle per subject: 10 s each of baseline, stress, amusement, meditation (codes 1-4)."""
    rng = np.random.default_rng(0)
    seconds = 4 * seconds_each
    for k in (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17):
        chest = {key: rng.normal(size=(700 * seconds, c)) for key, c in
                 (("ACC", 3), ("ECG", 1), ("EMG", 1), ("EDA", 1), ("Temp", 1), ("Resp", 1))}
        wrist = {key: rng.normal(size=(rate * seconds, c)) for key, c, rate in
                 (("ACC", 3, 32), ("BVP", 1, 64), ("EDA", 1, 4), ("TEMP", 1, 4))}
        labels = np.repeat(np.array([1, 2, 3, 4], dtype=np.int32), 700 * seconds_each)
        data = {"signal": {"chest": chest, "wrist": wrist}, "label": labels, "subject": f"S{k}"}
        (raw / f"S{k}").mkdir(parents=True, exist_ok=True)
        (raw / f"S{k}" / f"S{k}.pkl").write_bytes(pickle.dumps(data, protocol=2))
    return raw


def write_sleepedf(raw: Path, subjects: tuple[int, ...] = (0, 1, 14, 16)) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    for s in subjects:
        write_psg(raw / f"SC4{s:02d}1E0-PSG.edf")
        write_hypnogram(raw / f"SC4{s:02d}1EC-Hypnogram.edf")
    return raw


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROSSL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.mark.parametrize(("preset", "write", "lengths"), [
    ("pamap2", write_pamap2, {m: 512 for m in PRESETS["pamap2"].spec.modalities}),
    ("pamap2-hr", write_pamap2, {**{m: 512 for m in PRESETS["pamap2"].spec.modalities}, "heart_rate": 46}),
    ("wesad", write_wesad, {"ecg": 1000, "emg": 1000, "eda": 1000}),
    ("wesad-wrist", write_wesad, {"bvp": 512, "acc": 256, "eda": 32, "temp": 32}),
    ("sleepedf20", write_sleepedf, {"eeg_fpz_cz": 3000, "eeg_pz_oz": 3000, "eog": 3000, "emg": 30}),
])
def test_prepare_gives_the_documented_windows_and_pretrain_runs_on_them(
        preset: str, write, lengths: dict[str, int], home: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
        capsys: pytest.CaptureFixture[str]) -> None:
    raw = write(tmp_path / "raw")
    assert main(["data", "prepare", preset, "--raw", str(raw)]) == 0
    assert main(["data", "info", preset]) == 0
    info = capsys.readouterr().out
    for modality, length in lengths.items():
        rate = PRESETS[preset].spec.rates[modality]
        assert f"  {modality}: {length} samples x" in info and f"at {rate:g} Hz" in info, info
    assert main(["data", "prepare", preset, "--raw", str(raw)]) == 0
    assert "reusing" in capsys.readouterr().err
    assert main(["pretrain", "--data", preset, "--out", "run", *TOY]) == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "results.json").is_file()


def test_pamap2_loso_pretrains_on_the_fold_asked_for_and_refuses_one_out_of_range(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = write_pamap2(tmp_path / "raw", subjects=(101, 104, 106, 109))
    assert main(["data", "prepare", "pamap2-loso", "--raw", str(raw)]) == 0
    assert "subject109" not in capsys.readouterr().err  # the release's eight subjects: 109 is not read
    assert main(["data", "info", "pamap2-loso"]) == 0
    assert "split: leave-one-subject-out over 3 subjects" in capsys.readouterr().out
    assert main(["pretrain", "--data", "pamap2-loso", "--fold", "2", "--out", "run", *TOY]) == 0, capsys.readouterr().err
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["subjects"] == {"train": [104], "val": [101], "test": [106]}
    assert main(["pretrain", "--data", "pamap2-loso", "--fold", "3", "--out", "run3", *TOY]) == 2
    assert "fold 3 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "run3.incomplete").exists()


def test_wesad_within_subject_splits_every_subject_in_time_and_says_so(
        home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "prepare", "wesad-within-subject", "--raw", str(write_wesad(tmp_path / "raw"))]) == 0
    assert main(["pretrain", "--data", "wesad-within-subject", "--out", "run", *TOY]) == 0, capsys.readouterr().err
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    subjects = [k for k in range(2, 18) if k != 12]
    assert split["subjects"]["train"] == subjects and split["subjects"]["test"] == subjects
    assert "split within subjects" in (tmp_path / "run" / "report.md").read_text()


def test_pamap2_windows_carry_the_classes_of_their_seconds(home: Path, tmp_path: Path) -> None:
    from crossl.data.datasets import load_dataset

    prepare("pamap2", write_pamap2(tmp_path / "raw"), log=lambda _: None)
    windows = load_dataset("pamap2")
    # 8 s of each activity: at least one pure 5.12-s window each (starts 2.56 s apart), in order
    per_subject = windows.labels[windows.subjects == 101]
    assert per_subject.tolist() == sorted(per_subject.tolist()) and np.unique(per_subject).tolist() == list(range(12))
    assert sorted(np.unique(windows.subjects)) == [101, 106, 107]
    # the chest IMU lost packets in rows 100-129 (0.3 s of the first 5.12-s window): interpolated, present
    assert windows.presence.all()


def test_sleepedf_labels_follow_the_hypnogram_and_trimming(home: Path, tmp_path: Path) -> None:
    from crossl.data.datasets import load_dataset

    prepare("sleepedf20", write_sleepedf(tmp_path / "raw", subjects=(0, 16)), log=lambda _: None)
    windows = load_dataset("sleepedf20")
    per_subject = np.bincount(windows.labels[windows.subjects == 0], minlength=5)
    # the fixture's night: 300 s wake, then N1 30, N2 60+30, N3 (3+4) 60, REM 60, 510 s wake; movement/? dropped
    assert per_subject.tolist() == [27, 1, 3, 2, 2]


def test_an_unreadable_recording_is_skipped_and_reported_or_refused_with_strict(home: Path, tmp_path: Path) -> None:
    raw = write_pamap2(tmp_path / "raw")
    bad = raw / "Protocol" / "subject108.dat"
    bad.write_text("1.0 2 NaN 30\n")  # a truncated download
    lines: list[str] = []
    prepare("pamap2", raw, log=lines.append)
    assert any(line.startswith("skipped Protocol/subject108.dat") for line in lines)
    with pytest.raises(CrosslError, match="subject108.dat.*drop --strict"):
        prepare("pamap2", raw, strict=True, log=lambda _: None)


def test_unknown_preset_and_missing_raw_folder_are_one_line(home: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "prepare", "opportunity", "--raw", str(tmp_path)]) == 2
    assert "unknown preset 'opportunity'" in capsys.readouterr().err
    assert main(["data", "prepare", "pamap2", "--raw", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["pretrain", "--data", "wesad", "--out", "run"]) == 2
    assert "wesad is not prepared yet" in capsys.readouterr().err
    assert not (tmp_path / "run.incomplete").exists()
