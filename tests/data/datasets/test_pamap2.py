"""PAMAP2 reader on small files written in the publisher's exact 54-column layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from crossl.data.datasets import pamap2
from crossl.errors import CrosslError

N = 400  # rows, 4 s at 100 Hz
T0 = 8.38  # the files start at an arbitrary timestamp, not 0
DROPPED = slice(100, 130)  # rows where the chest IMU lost its packets
HR_EVERY = 11  # the ~9 Hz monitor: one reading per ~11 rows ...
HR_OUTAGE = range(220, 320)  # ... except for a 1 s outage


def _activity(rows: np.ndarray) -> np.ndarray:
    return np.select([rows < 50, rows < 200, rows < 250], [0, 1, 0], default=24)


def _heart_rate(rows: np.ndarray) -> np.ndarray:
    reading = (rows % HR_EVERY == 3) & ~np.isin(rows, HR_OUTAGE)
    return np.where(reading, 80.0 + rows // HR_EVERY, np.nan)


def _table(rows: np.ndarray | None = None) -> np.ndarray:
    """(len(rows), 54): IMU column c (1-based) of row i holds c * 1000 + i, so both are checkable."""
    rows = np.arange(N) if rows is None else rows
    table = np.zeros((len(rows), 54))
    table[:, 0] = T0 + rows / 100
    table[:, 1] = _activity(rows)
    table[:, 2] = _heart_rate(rows)
    table[:, 3:] = np.arange(4, 55)[None, :] * 1000.0 + rows[:, None]
    dropped = (rows >= DROPPED.start) & (rows < DROPPED.stop)
    table[np.ix_(dropped, np.arange(20, 37))] = np.nan
    return table


def _format(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.6f}"


def _lines(table: np.ndarray) -> list[str]:
    """Rows as the publisher writes them: '8.38 0 NaN 30 2.37223 ...'."""
    return [
        " ".join([f"{row[0]:.2f}", str(int(row[1])), *(_format(v) for v in row[2:])]) + "\n" for row in table
    ]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


@pytest.fixture
def dat_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "Protocol" / "subject105.dat", _lines(_table()))


@pytest.fixture(params=[pamap2._BLOCK_LINES, 7], ids=["one-block", "7-line-blocks"])
def block_lines(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pamap2, "_BLOCK_LINES", request.param)
    return int(request.param)


def test_channel_mapping(dat_file: Path, block_lines: int) -> None:
    rec = pamap2.read_recording(dat_file)
    assert rec.modality_names == ("hand_acc", "hand_gyro", "chest_acc", "chest_gyro", "ankle_acc", "ankle_gyro", "heart_rate")
    rows = np.arange(N)[:, None]
    first_column = {"hand_acc": 5, "hand_gyro": 11, "chest_acc": 22, "chest_gyro": 28, "ankle_acc": 39, "ankle_gyro": 45}
    for name, column in first_column.items():
        signal = rec.signals[name]
        assert signal.shape == (N, 3) and signal.dtype == np.float32
        assert rec.rates[name] == 100.0
        assert rec.channel_names[name] == tuple(f"{name.split('_')[1]}_{a}" for a in "xyz")
        expected = (column + np.arange(3))[None, :] * 1000.0 + rows
        if name.startswith("chest"):
            expected[DROPPED] = np.nan
        np.testing.assert_array_equal(signal, expected.astype(np.float32))


def test_dropped_packets_stay_nan(dat_file: Path) -> None:
    rec = pamap2.read_recording(dat_file)
    chest = rec.signals["chest_acc"]
    assert np.isnan(chest[DROPPED]).all()
    assert not np.isnan(np.delete(chest, np.arange(DROPPED.start, DROPPED.stop), axis=0)).any()
    assert not np.isnan(rec.signals["hand_acc"]).any()


def test_labels_subject_session(dat_file: Path) -> None:
    rec = pamap2.read_recording(dat_file)
    assert rec.labels.dtype == np.int64 and rec.label_rate == 100.0
    np.testing.assert_array_equal(rec.labels, _activity(np.arange(N)))
    assert set(np.unique(rec.labels)) == {0, 1, 24}  # transient stays 0
    assert rec.subject == 105
    assert rec.session == "Protocol/subject105"
    assert pamap2.read_recording(dat_file, subject=7).subject == 7
    assert rec.duration() == pytest.approx(N / 100, abs=1 / 9)


def test_heart_rate_nearest_reading_on_9hz_grid(dat_file: Path, block_lines: int) -> None:
    rec = pamap2.read_recording(dat_file)
    assert rec.rates["heart_rate"] == 9.0 and rec.channel_names["heart_rate"] == ("heart_rate",)
    hr = rec.signals["heart_rate"]
    assert hr.shape == (math.ceil(N * 9 / 100), 1) and hr.dtype == np.float32
    rows = np.arange(N)
    raw = _heart_rate(rows)
    reading_times = rows[~np.isnan(raw)] / 100
    reading_values = raw[~np.isnan(raw)]
    for k, value in enumerate(hr[:, 0]):
        distance = np.abs(reading_times - k / 9)
        nearest = int(np.argmin(distance))  # argmin takes the earlier reading on a tie
        if distance[nearest] <= pamap2.HEART_RATE_TOLERANCE_S:
            assert value == reading_values[nearest], k
        else:
            assert np.isnan(value), k
    # no reading from 2.12 s to 3.22 s: grid points more than 0.25 s from both ends are NaN
    assert np.isnan(hr[22:27, 0]).all()  # 2.44-2.89 s
    assert not np.isnan(hr[:22, 0]).any() and not np.isnan(hr[27:, 0]).any()


def test_regular_heart_rate_rules() -> None:
    times = np.array([0.0, 0.1, 0.2, 1.0])
    values = np.array([60.0, 61.0, 62.0, 70.0])
    out = pamap2.regular_heart_rate(times, values, duration=1.0)
    assert out.shape == (9,)
    grid = np.arange(9) / 9
    expected = [60, 61, 62, 62, 62, np.nan, np.nan, 70, 70]  # 0.444 s is 0.244 s from 0.2 s: kept
    np.testing.assert_array_equal(out, np.array(expected, dtype=np.float32))
    assert abs(grid[4] - 0.2) <= pamap2.HEART_RATE_TOLERANCE_S < abs(grid[5] - 0.2)
    assert np.isnan(pamap2.regular_heart_rate(np.zeros(0), np.zeros(0), duration=2.0)).all()
    # a tie goes to the earlier reading
    np.testing.assert_array_equal(pamap2.regular_heart_rate(np.array([-0.05, 0.05]), np.array([1.0, 2.0]), 0.1), [1.0])


def test_pause_between_rows_becomes_a_gap(tmp_path: Path) -> None:
    rows = np.concatenate([np.arange(0, 300), np.arange(310, N)])  # 10 rows never recorded
    rec = pamap2.read_recording(_write(tmp_path / "subject101.dat", _lines(_table(rows))))
    assert rec.session == f"{tmp_path.name}/subject101"
    assert len(rec.labels) == N and rec.signals["hand_acc"].shape == (N, 3)
    assert (rec.labels[300:310] == -1).all()
    assert np.isnan(rec.signals["ankle_gyro"][300:310]).all()
    np.testing.assert_array_equal(rec.signals["hand_acc"][310:, 0], 5000.0 + np.arange(310, N))


def test_blank_trailing_lines_and_crlf_are_fine(tmp_path: Path) -> None:
    lines = [line.replace("\n", "\r\n") for line in _lines(_table())] + ["\n", "\n"]
    rec = pamap2.read_recording(_write(tmp_path / "subject102.dat", lines))
    assert len(rec.labels) == N


def _error(path: Path) -> str:
    with pytest.raises(CrosslError) as info:
        pamap2.read_recording(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_truncated_last_line(tmp_path: Path, block_lines: int) -> None:
    lines = _lines(_table())
    lines[-1] = " ".join(lines[-1].split()[:30])  # cut mid-row, no newline: an interrupted download
    path = _write(tmp_path / "subject103.dat", lines)
    message = _error(path)
    assert str(path) in message and "truncated" in message and f"line {N}" in message and "re-download" in message


def test_short_line_inside_the_file(tmp_path: Path, block_lines: int) -> None:
    lines = _lines(_table())
    lines[9] = " ".join(lines[9].split()[:53]) + "\n"
    message = _error(_write(tmp_path / "subject103.dat", lines))
    assert "line 10 has 53 columns, expected 54" in message


def test_wrong_column_count_everywhere(tmp_path: Path) -> None:
    lines = [" ".join(line.split()[:53]) + "\n" for line in _lines(_table())]
    path = _write(tmp_path / "subject103.dat", lines)
    message = _error(path)
    assert str(path) in message and "line 1 has 53 columns" in message


def test_non_numeric_text(tmp_path: Path, block_lines: int) -> None:
    lines = _lines(_table())
    fields = lines[20].split()
    fields[6] = "abc"
    lines[20] = " ".join(fields) + "\n"
    path = _write(tmp_path / "subject103.dat", lines)
    message = _error(path)
    assert str(path) in message and "line 21 column 7 is not a number ('abc')" in message


@pytest.mark.parametrize("text", ["", "\n \n"], ids=["zero-bytes", "blank-lines"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "subject104.dat"
    path.write_text(text)
    message = _error(path)
    assert str(path) in message and "empty" in message


def test_timestamps_going_backwards(tmp_path: Path) -> None:
    table = _table()
    table[50, 0] = table[40, 0]
    message = _error(_write(tmp_path / "subject104.dat", _lines(table)))
    assert "line 51" in message and "timestamp" in message


def test_non_integer_activity(tmp_path: Path) -> None:
    lines = _lines(_table())
    fields = lines[4].split()
    fields[1] = "1.5"
    lines[4] = " ".join(fields) + "\n"
    message = _error(_write(tmp_path / "subject104.dat", lines))
    assert "line 5 has activityID 1.5" in message


def test_missing_file_and_unnamed_subject(tmp_path: Path, dat_file: Path) -> None:
    assert "cannot read" in _error(tmp_path / "subject109.dat")
    renamed = dat_file.rename(tmp_path / "recording.dat")
    assert "pass subject=" in _error(renamed)
    assert pamap2.read_recording(renamed, subject=3).subject == 3


def test_activity_tables() -> None:
    assert len(pamap2.ACTIVITIES) == 19 and pamap2.ACTIVITIES[24] == "rope_jumping" and pamap2.ACTIVITIES[0] == "transient"
    assert pamap2.PROTOCOL_ACTIVITIES == (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)
    assert set(pamap2.PROTOCOL_ACTIVITIES) <= set(pamap2.ACTIVITIES)
