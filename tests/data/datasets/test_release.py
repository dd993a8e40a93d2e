"""The authors' release's preprocessed layouts on small files written in those layouts.

Window values encode where they came from: channel c of window w of file f holds
``10000 f + 100 w + c`` at every time step, so the modality split and the order are checkable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossl.data.datasets.release import LAYOUTS, SOURCE, read_release, sleep_split
from crossl.data.presets import WESAD_SPLIT, WESAD_SUBJECTS
from crossl.data.splits import default_split
from crossl.errors import CrosslError

SLEEP_COUNTS = (2, 3, 4)  # windows per sleep file
SLEEP_NAMES = ("SC4001E0.npz", "SC4011E0.npz", "SC4021E0.npz")


def windows(file: int, count: int, length: int, channels: int) -> np.ndarray:
    """(count, length, channels) float64, constant over time: 10000 * file + 100 * window + channel."""
    code = 10000 * file + 100 * np.arange(count)[:, None] + np.arange(channels)[None, :]
    return np.repeat(code[:, None, :], length, axis=1).astype(np.float64)


def one_hot(classes: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float64)[classes]


def write_sleep(root: Path) -> Path:
    folder = root / "sleep"
    folder.mkdir(parents=True)
    # Written in reverse name order: the reader sorts by name.
    for f in reversed(range(len(SLEEP_NAMES))):
        n = SLEEP_COUNTS[f]
        np.savez(folder / SLEEP_NAMES[f], x=windows(f, n, 3000, 4), y=(np.arange(n) + f) % 5)
    return root


def wesad_classes(k: int, part: str) -> np.ndarray:
    return (np.arange(2) + k + (part == "test")) % 4


def write_wesad(root: Path) -> Path:
    folder = root / "wesad"
    folder.mkdir(parents=True)
    for k in WESAD_SUBJECTS:
        for part in ("train", "test"):
            np.save(folder / f"x_{k}{part}.npy", windows(k, 2, 1000, 3))
            np.save(folder / f"y_{k}{part}.npy", one_hot(wesad_classes(k, part), 4))
    return root


def write_pamap2(root: Path) -> Path:
    folder = root / "pamap2"
    folder.mkdir(parents=True)
    for i in range(8):
        np.save(folder / f"X_{i}.npy", windows(i, 3, 512, 18))
        np.save(folder / f"y_{i}.npy", one_hot((np.arange(3) * 5 + i) % 12, 12))
    return root


def test_sleep(tmp_path: Path) -> None:
    ws = read_release("sleepedf", write_sleep(tmp_path))
    assert len(ws) == sum(SLEEP_COUNTS)
    assert ws.modality_names == ("eeg_fpz_cz", "eeg_pz_oz", "eog", "emg")
    assert ws.shapes == {m: (3000, 1) for m in ws.modality_names}  # EMG too: the release upsampled it
    assert ws.presence.all() and ws.modalities["emg"].dtype == np.float32
    np.testing.assert_array_equal(ws.subjects, np.repeat([0, 1, 2], SLEEP_COUNTS))
    np.testing.assert_array_equal(ws.labels, np.concatenate([(np.arange(n) + f) % 5 for f, n in enumerate(SLEEP_COUNTS)]))
    # Window 1 of the second file (SC4011E0): channel c is modality c.
    for c, m in enumerate(ws.modality_names):
        assert (ws.modalities[m][SLEEP_COUNTS[0] + 1] == 10000 + 100 + c).all()
    meta = ws.meta
    assert meta.name == "sleepedf-release" and meta.class_names == ("W", "N1", "N2", "N3", "REM")
    assert meta.sampling_rates == {m: 100.0 for m in ws.modality_names}
    assert meta.channel_names["eog"] == ("eog",)
    assert meta.extra["source"] == SOURCE == "authors' release layout"
    assert "upsampled EMG" in str(meta.extra["note"]) and meta.extra["window_s"] == 30.0
    assert meta.extra["default_split"] == {"train": [0], "val": [1], "test": [2]}
    # The sleep/ folder itself works too.
    assert len(read_release("sleepedf", tmp_path / "sleep")) == len(ws)


def test_sleep_split_rule() -> None:
    assert sleep_split(range(20)) == {"train": list(range(14)), "val": [14, 15], "test": [16, 17, 18, 19]}
    assert sleep_split([0, 1]) is None


def test_wesad_keeps_train_and_test_files_as_the_subjects_windows(tmp_path: Path) -> None:
    ws = read_release("wesad", write_wesad(tmp_path))
    assert len(ws) == 4 * len(WESAD_SUBJECTS)
    assert ws.modality_names == ("ecg", "emg", "eda") and ws.shapes == {m: (1000, 1) for m in ("ecg", "emg", "eda")}
    np.testing.assert_array_equal(ws.subjects, np.repeat(WESAD_SUBJECTS, 4))
    expected = np.concatenate([np.concatenate([wesad_classes(k, "train"), wesad_classes(k, "test")]) for k in WESAD_SUBJECTS])
    np.testing.assert_array_equal(ws.labels, expected)
    first_of_13 = 4 * WESAD_SUBJECTS.index(13)
    assert (ws.modalities["eda"][first_of_13 + 3] == 130000 + 100 + 2).all()  # test file, window 1, channel 2
    meta = ws.meta
    assert meta.sampling_rates == {"ecg": 700.0, "emg": 700.0, "eda": 700.0}
    assert meta.class_names == ("baseline", "stress", "amusement", "meditation")
    assert meta.extra["default_split"] == {k: list(v) for k, v in WESAD_SPLIT.items()}
    assert "subject-wise" in str(meta.extra["note"]) and meta.extra["source"] == SOURCE
    assert meta.extra["window_s"] == pytest.approx(1000 / 700)


def test_wesad_release_split_keeps_each_subjects_train_and_test_files(tmp_path: Path) -> None:
    ws = read_release("wesad", write_wesad(tmp_path), release_split=True)
    assert ws.meta.name == "wesad-release-split" and "default_split" not in ws.meta.extra
    split = default_split(ws)
    # each subject: its 2 train-file windows, then its 2 test-file windows
    rows = np.arange(len(ws)).reshape(len(WESAD_SUBJECTS), 4)
    np.testing.assert_array_equal(split.train, rows[:, :2].ravel())
    np.testing.assert_array_equal(split.test, rows[:, 2:].ravel())
    assert split.val.size == 0 and split.subjects["test"] == list(WESAD_SUBJECTS)


def test_pamap2_release_split_is_leave_one_subject_out_over_the_files(tmp_path: Path) -> None:
    ws = read_release("pamap2", write_pamap2(tmp_path), release_split=True)
    assert ws.meta.extra["split_scheme"] == "leave-one-subject-out"
    assert default_split(ws, fold=7).subjects == {"train": [1, 2, 3, 4, 5, 6], "val": [0], "test": [7]}


def test_pamap2(tmp_path: Path) -> None:
    ws = read_release("pamap2", write_pamap2(tmp_path))
    assert len(ws) == 24
    assert ws.modality_names == ("hand_acc", "hand_gyro", "ankle_acc", "ankle_gyro", "chest_acc", "chest_gyro")
    assert ws.shapes == {m: (512, 3) for m in ws.modality_names}
    np.testing.assert_array_equal(ws.subjects, np.repeat(np.arange(8), 3))
    np.testing.assert_array_equal(ws.labels, np.concatenate([(np.arange(3) * 5 + i) % 12 for i in range(8)]))
    # File 4, window 2: ankle_acc is channels 6-8, chest_gyro 15-17.
    np.testing.assert_array_equal(ws.modalities["ankle_acc"][4 * 3 + 2, 0], 40000 + 200 + np.arange(6, 9))
    np.testing.assert_array_equal(ws.modalities["chest_gyro"][4 * 3 + 2, 0], 40000 + 200 + np.arange(15, 18))
    meta = ws.meta
    assert meta.channel_names["hand_gyro"] == ("gyro_x", "gyro_y", "gyro_z")
    assert meta.class_names == (
        "lying", "sitting", "standing", "walking", "running", "cycling", "nordic_walking", "ascending_stairs",
        "descending_stairs", "vacuum_cleaning", "ironing", "rope_jumping")
    assert meta.sampling_rates == {m: 100.0 for m in ws.modality_names}
    assert meta.extra["default_split"] == {"train": [0, 1, 2, 3, 4], "val": [5], "test": [6, 7]}
    assert meta.extra["window_s"] == 5.12


def test_nan_windows_absent_or_dropped(tmp_path: Path) -> None:
    root = write_sleep(tmp_path)
    x = windows(0, 2, 3000, 4)
    x[0, 10, 3] = np.nan  # EMG of window 0 absent
    x[1] = np.nan  # nothing left of window 1
    np.savez(root / "sleep" / SLEEP_NAMES[0], x=x, y=np.array([0, 1]))
    ws = read_release("sleepedf", root)
    assert len(ws) == sum(SLEEP_COUNTS) - 1 and ws.meta.extra["dropped_windows"] == 1
    assert ws.presence[0].tolist() == [True, True, True, False] and (ws.modalities["emg"][0] == 0).all()


def _fails(kind: str, root: Path, *fragments: str) -> None:
    with pytest.raises(CrosslError) as exc:
        read_release(kind, root)  # type: ignore[arg-type]
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_sleep_errors(tmp_path: Path) -> None:
    (tmp_path / "none" / "sleep").mkdir(parents=True)
    _fails("sleepedf", tmp_path / "none", "no sleep/*.npz files in")
    _fails("sleepedf", tmp_path / "absent", "is not a folder")
    root = write_sleep(tmp_path / "a")
    bad = root / "sleep" / SLEEP_NAMES[1]
    np.savez(bad, x=windows(1, 3, 3000, 3), y=np.zeros(3))
    _fails("sleepedf", root, str(bad), "windows of shape (3, 3000, 3)", "(N, 3000, 4)")
    np.savez(bad, x=windows(1, 3, 3000, 4), y=np.array([0, 5, 1]))
    _fails("sleepedf", root, str(bad), "row 1 has label 5, not a stage 0..4")
    np.savez(bad, x=windows(1, 3, 3000, 4), y=np.zeros(2))
    _fails("sleepedf", root, str(bad), "labels of shape (2,) (float64) for 3 windows")
    np.savez(bad, x=windows(1, 3, 3000, 4))
    _fails("sleepedf", root, str(bad), "not ['y']")
    bad.write_bytes(b"not a zip")
    _fails("sleepedf", root, str(bad), "is unreadable")


def test_wesad_errors(tmp_path: Path) -> None:
    root = write_wesad(tmp_path)
    folder = root / "wesad"
    y = one_hot(wesad_classes(3, "test"), 4)
    y[1, 2] = 1.0
    np.save(folder / "y_3test.npy", y)
    _fails("wesad", root, str(folder / "y_3test.npy"), "row 1 is not one-hot ([", "one 1 and zeros elsewhere")
    np.save(folder / "y_3test.npy", one_hot(np.arange(3) % 4, 4))
    _fails("wesad", root, str(folder / "y_3test.npy"), "labels of shape (3, 4) (float64) for 2 windows", "one-hot (2, 4)")
    np.save(folder / "y_3test.npy", one_hot(wesad_classes(3, "test"), 4))
    np.save(folder / "x_4train.npy", windows(4, 2, 999, 3))
    _fails("wesad", root, str(folder / "x_4train.npy"), "(2, 999, 3)", "(N, 1000, 3)")
    np.save(folder / "x_4train.npy", windows(4, 2, 1000, 3))
    (folder / "x_17test.npy").unlink()
    _fails("wesad", root, str(folder / "x_17test.npy"), "is missing")


def test_pamap2_errors(tmp_path: Path) -> None:
    root = write_pamap2(tmp_path)
    folder = root / "pamap2"
    (folder / "y_7.npy").unlink()
    _fails("pamap2", root, str(folder / "y_7.npy"), "is missing")
    np.save(folder / "y_7.npy", np.zeros((3, 12)))
    _fails("pamap2", root, str(folder / "y_7.npy"), "row 0 is not one-hot")
    np.save(folder / "y_7.npy", one_hot(np.arange(3), 12))
    np.save(folder / "X_2.npy", windows(2, 3, 512, 17))
    _fails("pamap2", root, str(folder / "X_2.npy"), "(3, 512, 17)", "(N, 512, 18)")
    np.save(folder / "X_2.npy", np.array([["a"] * 18] * 512)[None])
    _fails("pamap2", root, str(folder / "X_2.npy"), "numbers")
    np.save(folder / "X_2.npy", np.array([{"x": 1}], dtype=object))
    _fails("pamap2", root, str(folder / "X_2.npy"), "is unreadable")


def test_unknown_kind(tmp_path: Path) -> None:
    _fails("hapt", tmp_path, "unknown release layout 'hapt'; use one of sleepedf, wesad, pamap2")
    assert set(LAYOUTS) == {"sleepedf", "wesad", "pamap2"}
