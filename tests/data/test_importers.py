"""Importing the user's own CSV recordings with a YAML spec, and recordings from arrays.

The fixture folder holds three files ``subject01.csv`` .. ``subject03.csv``: 12 s with acc (3 channels,
50 Hz) and ecg (1 channel, 250 Hz) interleaved in one CSV on a shared time column (a row every 4 ms;
acc and the label only on every fifth row), labelled walk (0-6 s), sit (6-9 s), jump (9-12 s, not a
class). acc channel c at sample j holds ``1000 c + j``, ecg at sample k holds ``-k``: both checkable.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crossl.data.container import WindowSet
from crossl.data.import_spec import ImportSpec, import_spec_from_dict, load_import_spec
from crossl.data.importers import import_folder, read_csv_recording
from crossl.data.recording import recording_from_arrays
from crossl.data.splits import default_split
from crossl.data.windowing import WindowRule, window_recording
from crossl.errors import CrosslError

SECONDS = 12
HEADER = "t,ax,ay,az,ecg,activity"

SPEC_YAML = r"""
name: my-study
files: "*.csv"
subject: {from: filename, pattern: "subject(\\d+)"}
time: {column: t}
modalities:
  acc: {columns: [ax, ay, az], rate: 50}
  ecg: {columns: [ecg], rate: 250}
labels: {column: activity, rate: 50, classes: {walk: 0, sit: 1}}
window: {seconds: 2.56, stride: 1.28, label_rule: pure, max_gap_share: 0.1}
split: {train: [1], val: [2], test: [3]}
"""


def _activity(t: float) -> str:
    return "walk" if t < 6 else "sit" if t < 9 else "jump"


def csv_lines(seconds: int = SECONDS, keep: Callable[[int], bool] = lambda k: True,
              ecg_given: Callable[[int], bool] = lambda k: True) -> list[str]:
    """The file's lines: ecg row k (t = k / 250 s) unless ``keep(k)`` is False; acc and label on k % 5 == 0."""
    lines = [HEADER]
    for k in range(250 * seconds):
        if not keep(k):
            continue
        if k % 5 == 0:
            j = k // 5
            acc = [str(c * 1000 + j) for c in range(3)]
            label = _activity(j / 50)
        else:
            acc, label = ["", "", ""], ""
        ecg = str(-k) if ecg_given(k) else ""
        lines.append(",".join([f"{k / 250:.3f}", *acc, ecg, label]))
    return lines


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def spec_from(text: str = SPEC_YAML, **changes: object) -> ImportSpec:
    """The spec above with top-level keys replaced (None removes one)."""
    import yaml

    obj = yaml.safe_load(text)
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return import_spec_from_dict(obj, "test spec")


@pytest.fixture
def spec(tmp_path: Path) -> ImportSpec:
    path = tmp_path / "study.yaml"
    path.write_text(SPEC_YAML)
    return load_import_spec(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for s in (1, 2, 3):
        write(tmp_path / "raw" / f"subject0{s}.csv", csv_lines())
    return tmp_path / "raw"


def test_spec_parses_every_field(spec: ImportSpec) -> None:
    assert spec.name == "my-study" and spec.files == "*.csv" and spec.time_column == "t"
    assert spec.subject.pattern == r"subject(\d+)" and spec.subject.column is None
    assert {m: (s.columns, s.rate) for m, s in spec.modalities.items()} == {
        "acc": (("ax", "ay", "az"), 50.0), "ecg": (("ecg",), 250.0)}
    assert spec.labels is not None and spec.labels.classes == {"walk": 0, "sit": 1}
    assert spec.class_names == ("walk", "sit")
    assert spec.rule == WindowRule(2.56, 1.28, "pure", 0.5, 0.1, False)
    assert spec.split == {"train": (1,), "val": (2,), "test": (3,)}
    assert spec.dataset_spec().window_lengths() == {"acc": 128, "ecg": 640}


def test_spec_defaults_and_list_classes() -> None:
    spec = spec_from(files=None, split=None, window={"seconds": 2.0},
                     labels={"column": "activity", "rate": 50, "classes": ["walk", "sit"]})
    assert spec.files == "*.csv" and spec.split is None
    assert spec.rule.stride_s == 2.0 and spec.rule.label_rule == "pure" and not spec.rule.keep_unlabeled
    assert spec.labels is not None and spec.labels.classes == {"walk": 0, "sit": 1}
    # Several values may share a class: the first names it.
    shared = spec_from(labels={"column": "activity", "rate": 50, "classes": {"walk": 0, "walking": 0, "sit": 1}})
    assert shared.class_names == ("walk", "sit")
    # Without labels every window is unlabeled, so they are kept by default.
    assert spec_from(labels=None).rule.keep_unlabeled


def test_read_interleaved_rates(folder: Path, spec: ImportSpec) -> None:
    rec = read_csv_recording(folder / "subject02.csv", spec)
    assert rec.subject == 2 and rec.session == "subject02"
    assert rec.modality_names == ("acc", "ecg")
    assert dict(rec.rates) == {"acc": 50.0, "ecg": 250.0} and rec.label_rate == 50.0
    assert rec.channel_names == {"acc": ("ax", "ay", "az"), "ecg": ("ecg",)}
    acc, ecg = rec.signals["acc"], rec.signals["ecg"]
    assert acc.shape == (50 * SECONDS, 3) and ecg.shape == (250 * SECONDS, 1)
    assert acc.dtype == np.float32 and ecg.dtype == np.float32
    j = np.arange(50 * SECONDS)
    np.testing.assert_array_equal(acc, np.stack([j, 1000 + j, 2000 + j], axis=1))
    np.testing.assert_array_equal(ecg[:, 0], -np.arange(250 * SECONDS))
    # walk 0-6 s, sit 6-9 s, and "jump", not a class, is unlabeled: not an error.
    expected = np.select([j < 300, j < 450], [0, 1], default=-1)
    np.testing.assert_array_equal(rec.labels, expected)
    assert rec.duration() == pytest.approx(SECONDS)


def test_import_folder(folder: Path, spec: ImportSpec, tmp_path: Path) -> None:
    lines: list[str] = []
    ws = import_folder(folder, spec, log=lines.append)
    # Windows start every 1.28 s while 2.56 s fit in 12 s: 8 per file; pure: 3 walk (starts 0, 1.28,
    # 2.56) and 1 sit (6.4); the others straddle two activities or lie in "jump".
    assert len(ws) == 12
    assert ws.shapes == {"acc": (128, 3), "ecg": (640, 1)}
    assert ws.presence.all()
    np.testing.assert_array_equal(ws.labels, np.tile([0, 0, 0, 1], 3))
    np.testing.assert_array_equal(ws.subjects, np.repeat([1, 2, 3], 4))
    # The second window starts at 1.28 s: acc sample 64, ecg sample 320.
    np.testing.assert_array_equal(ws.modalities["acc"][1, :, 0], np.arange(64, 192))
    np.testing.assert_array_equal(ws.modalities["ecg"][1, :, 0], -np.arange(320, 960))
    meta = ws.meta
    assert meta.name == "my-study" and meta.modality_names == ("acc", "ecg")
    assert meta.sampling_rates == {"acc": 50.0, "ecg": 250.0} and meta.class_names == ("walk", "sit")
    assert meta.channel_names == {"acc": ("ax", "ay", "az"), "ecg": ("ecg",)}
    assert meta.extra["default_split"] == {"train": [1], "val": [2], "test": [3]}
    assert meta.extra["source"] == "import" and meta.extra["skipped"] == [] and meta.extra["files"] == 3
    assert meta.extra["window_s"] == 2.56
    assert lines == [f"subject0{s}.csv: 4 windows (subject {s})" for s in (1, 2, 3)]
    split = default_split(ws)
    assert split.subjects == {"train": [1], "val": [2], "test": [3]}
    # The metadata survives the container's JSON.
    assert WindowSet.load(ws.save(tmp_path / "saved")).meta == meta


def test_without_split_a_seeded_subject_split(folder: Path) -> None:
    ws = import_folder(folder, spec_from(split=None), log=lambda _: None)
    assert "default_split" not in ws.meta.extra
    split = default_split(ws, seed=0)
    assert sorted(s for part in split.subjects.values() for s in part) == [1, 2, 3]
    assert split.subjects == default_split(ws, seed=0).subjects


def test_dropped_ecg_rows_are_gaps(tmp_path: Path, spec: ImportSpec) -> None:
    # ecg lost 4.0-4.8 s (rows 1000-1199): its other rows are left out, its cells on acc rows empty.
    lost = range(1000, 1200)
    path = write(tmp_path / "subject07.csv",
                 csv_lines(keep=lambda k: k % 5 == 0 or k not in lost, ecg_given=lambda k: k not in lost))
    rec = read_csv_recording(path, spec)
    ecg = rec.signals["ecg"][:, 0]
    assert ecg.shape == (3000,)
    assert np.isnan(ecg[1000:1200]).all() and not np.isnan(ecg[:1000]).any() and not np.isnan(ecg[1200:]).any()
    np.testing.assert_array_equal(ecg[1200:], -np.arange(1200, 3000))
    assert not np.isnan(rec.signals["acc"]).any()
    w = window_recording(rec, spec.rule, spec.dataset_spec().label_map)
    # Window 2 (2.56-5.12 s) holds the 200-sample gap of its 640 ecg samples: ecg absent, acc present.
    np.testing.assert_array_equal(w.presence, [[True, True], [True, True], [True, False], [True, True]])


def test_missing_timestamps_become_nan_rows(tmp_path: Path, spec: ImportSpec) -> None:
    # Nothing at all was written for 4-5 s: every series has NaN (labels -1) there, and the rest in place.
    path = write(tmp_path / "subject08.csv", csv_lines(keep=lambda k: not 1000 <= k < 1250))
    rec = read_csv_recording(path, spec)
    acc, ecg = rec.signals["acc"], rec.signals["ecg"]
    assert acc.shape == (600, 3) and ecg.shape == (3000, 1)
    assert np.isnan(acc[200:250]).all() and np.isnan(ecg[1000:1250]).all()
    np.testing.assert_array_equal(acc[250:, 0], np.arange(250, 600))
    np.testing.assert_array_equal(ecg[1250:, 0], -np.arange(1250, 3000))
    assert (rec.labels[200:250] == -1).all() and (rec.labels[:200] == 0).all()


def test_modality_ending_early_and_modality_never_sampled(tmp_path: Path, spec: ImportSpec) -> None:
    # ecg stops at 6 s: padded with NaN to the file's end, so acc keeps its windows.
    path = write(tmp_path / "subject09.csv", csv_lines(keep=lambda k: k % 5 == 0 or k < 1500,
                                                        ecg_given=lambda k: k < 1500))
    rec = read_csv_recording(path, spec)
    # The last row is at 11.98 s (acc's last sample): 2996 ecg slots (0-11.98 s) at 250 Hz.
    assert rec.signals["ecg"].shape == (2996, 1) and np.isnan(rec.signals["ecg"][1500:]).all()
    never = write(tmp_path / "subject10.csv", csv_lines(keep=lambda k: k % 5 == 0, ecg_given=lambda k: False))
    rec = read_csv_recording(never, spec)
    assert rec.signals["ecg"].shape == (2996, 1) and np.isnan(rec.signals["ecg"]).all()
    w = window_recording(rec, spec.rule, spec.dataset_spec().label_map)
    assert len(w) == 4 and w.presence[:, 0].all() and not w.presence[:, 1].any()


def test_without_time_column_every_row_is_a_sample(tmp_path: Path) -> None:
    rows = ["ax,ay,az,ecg,activity"] + [f"{i},{i},{i},{-i},{'walk' if i < 100 else 'other'}" for i in range(200)]
    rows[51] = "50,50,50,,walk"  # an empty cell is a gap of that modality
    path = write(tmp_path / "p5.csv", rows)
    spec = spec_from(time=None, subject={"from": "filename"},
                     modalities={"acc": {"columns": ["ax", "ay", "az"], "rate": 50}, "ecg": {"columns": "ecg", "rate": 50}},
                     labels={"column": "activity", "rate": 50, "classes": ["walk"]}, window={"seconds": 1.0},
                     split=None)
    rec = read_csv_recording(path, spec)
    assert rec.subject == 5
    assert rec.signals["acc"].shape == (200, 3) and rec.signals["ecg"].shape == (200, 1)
    assert np.isnan(rec.signals["ecg"][50, 0]) and rec.signals["ecg"][51, 0] == -51
    np.testing.assert_array_equal(rec.labels, np.where(np.arange(200) < 100, 0, -1))


def test_subject_from_column(tmp_path: Path) -> None:
    lines = [line + ("," + ("17" if i % 7 else "") if i else ",sid") for i, line in enumerate(csv_lines(seconds=3))]
    path = write(tmp_path / "anything.csv", lines)
    spec = spec_from(subject={"column": "sid"})
    assert read_csv_recording(path, spec).subject == 17
    lines[5] = lines[5].rsplit(",", 1)[0] + ",18"
    with pytest.raises(CrosslError, match=r"anything\.csv: subject column 'sid' holds \[17\.0, 18\.0\]"):
        read_csv_recording(write(path, lines), spec)


def test_skips_unreadable_files_and_strict(folder: Path, spec: ImportSpec) -> None:
    lines = csv_lines()
    lines[7] = lines[7].replace(",-6,", ",abc,")
    write(folder / "subject04.csv", lines)
    write(folder / "subject05.csv", [HEADER])
    log: list[str] = []
    ws = import_folder(folder, spec, log=log.append)
    np.testing.assert_array_equal(np.unique(ws.subjects), [1, 2, 3])
    skipped = [line for line in log if line.startswith("skipped")]
    assert len(skipped) == 2
    assert skipped[0].startswith("skipped subject04.csv: ") and "line 8 column 'ecg' holds 'abc'" in skipped[0]
    assert skipped[1].startswith("skipped subject05.csv: ") and "has a header but no rows" in skipped[1]
    recorded = ws.meta.extra["skipped"]
    assert isinstance(recorded, list) and [name for name, _ in recorded] == ["subject04.csv", "subject05.csv"]
    with pytest.raises(CrosslError, match=r"subject04\.csv line 8 column 'ecg' holds 'abc', not a number"):
        import_folder(folder, spec, strict=True, log=lambda _: None)


def test_folder_errors(tmp_path: Path, spec: ImportSpec) -> None:
    with pytest.raises(CrosslError, match="is not a folder"):
        import_folder(tmp_path / "nowhere", spec)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrosslError, match=r"no file in .*empty matches '\*\.csv'"):
        import_folder(tmp_path / "empty", spec)
    write(tmp_path / "bad" / "subject01.csv", [HEADER])
    with pytest.raises(CrosslError, match="no windows could be made"):
        import_folder(tmp_path / "bad", spec, log=lambda _: None)


# --- bad files: one line naming the file ------------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo[CrosslError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_column_names_the_columns_found(tmp_path: Path, spec: ImportSpec) -> None:
    lines = [",".join(c for i, c in enumerate(line.split(",")) if i != 3) for line in csv_lines(seconds=3)]
    path = write(tmp_path / "subject01.csv", lines)
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    message = _one_line(exc, path)
    assert "has no column 'az' (named in modalities.acc.columns)" in message
    assert "its columns are 't', 'ax', 'ay', 'ecg', 'activity'" in message


def test_non_numeric_cell(tmp_path: Path, spec: ImportSpec) -> None:
    lines = csv_lines(seconds=3)
    cells = lines[11].split(",")  # t = 0.040 s, an acc row
    cells[1] = "1.5.3"
    lines[11] = ",".join(cells)
    path = write(tmp_path / "subject01.csv", lines)
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    assert re.search(r"line 12 column 'ax' holds '1\.5\.3', not a number", _one_line(exc, path))


def test_rate_contradicting_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path / "subject01.csv", csv_lines(seconds=3))
    spec = spec_from(modalities={"acc": {"columns": ["ax", "ay", "az"], "rate": 100}, "ecg": {"columns": ["ecg"], "rate": 250}})
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    assert (f"modality 'acc': rate 100 contradicts the timestamps (median interval 0.02 s) in {path}"
            in _one_line(exc, path))
    # 2 % is tolerated: 49.5 Hz against a 0.02 s interval.
    ok = spec_from(modalities={"acc": {"columns": ["ax", "ay", "az"], "rate": 49.5}, "ecg": {"columns": ["ecg"], "rate": 250}},
                   window={"seconds": 2.0})
    assert read_csv_recording(path, ok).rates["acc"] == 49.5
    labels = spec_from(labels={"column": "activity", "rate": 25, "classes": ["walk"]})
    with pytest.raises(CrosslError, match=r"the labels: rate 25 contradicts the timestamps \(median interval 0\.02 s\)"):
        read_csv_recording(path, labels)


def test_time_going_backwards(tmp_path: Path, spec: ImportSpec) -> None:
    lines = csv_lines(seconds=3)
    lines[3], lines[4] = lines[4], lines[3]
    path = write(tmp_path / "subject01.csv", lines)
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    assert "line 5: modality 'ecg' has time 0.008 s after 0.012 s (line 4); sort the rows by time" in _one_line(exc, path)


def test_unknown_label_value_is_unlabeled(tmp_path: Path, spec: ImportSpec) -> None:
    lines = [line.replace(",walk", ",stroll") for line in csv_lines(seconds=3)]
    rec = read_csv_recording(write(tmp_path / "subject01.csv", lines), spec)
    assert (rec.labels == -1).all() and rec.labels.shape == (150,)


@pytest.mark.parametrize("content, problem", [
    ("", "is empty"),
    ("\n\n", "is empty"),
    (HEADER + "\n", "has a header but no rows"),
])
def test_empty_files(tmp_path: Path, spec: ImportSpec, content: str, problem: str) -> None:
    path = tmp_path / "subject01.csv"
    path.write_text(content)
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    assert problem in _one_line(exc, path)


def test_truncated_last_line(tmp_path: Path, spec: ImportSpec) -> None:
    lines = csv_lines(seconds=3)
    path = tmp_path / "subject01.csv"
    path.write_text("\n".join(lines) + "\n" + "3.000,150")  # cut off while written, no newline
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    assert f"is truncated: its last line {len(lines) + 1} has 2 of 6 fields" in _one_line(exc, path)
    # The same short line in the middle is a malformed row, not a truncation.
    write(path, [*lines[:5], "0.016,3", *lines[5:]])
    with pytest.raises(CrosslError, match=r"line 6 has 2 fields, the header 6"):
        read_csv_recording(path, spec)


def test_parquet_needs_pyarrow(tmp_path: Path, spec: ImportSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail whether or not pyarrow is installed.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "subject01.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(CrosslError) as exc:
        read_csv_recording(path, spec)
    assert "reading Parquet needs pyarrow, which is not installed: install it (pip install pyarrow)" in _one_line(exc, path)


def test_subject_pattern_must_match(tmp_path: Path, spec: ImportSpec) -> None:
    path = write(tmp_path / "patient.csv", csv_lines(seconds=3))
    with pytest.raises(CrosslError, match=r"cannot tell the subject of .*patient\.csv: subject\.pattern"):
        read_csv_recording(path, spec)


# --- bad specs: one line naming the key -------------------------------------------------------------


@pytest.mark.parametrize("changes, problem", [
    ({"windw": {"seconds": 1}}, "unknown key 'windw'"),
    ({"modalities": {"acc": {"colums": ["ax"], "rate": 50}}}, "unknown key 'modalities.acc.colums'"),
    ({"window": {"seconds": 2.56, "strid": 1}}, "unknown key 'window.strid'"),
    ({"name": None}, "test spec: no 'name'; give name"),
    ({"modalities": {"acc": {"columns": ["ax"]}}}, "'modalities.acc' has no 'rate'"),
    ({"modalities": {"acc": {"columns": ["ax"], "rate": "fast"}}}, "'modalities.acc.rate' is 'fast'"),
    ({"modalities": {"acc": {"columns": [], "rate": 50}}}, "'modalities.acc.columns' is []"),
    ({"window": {"seconds": -1}}, "'window.seconds' is -1"),
    ({"window": {"seconds": 2, "label_rule": "most"}}, "'window.label_rule' is 'most'"),
    ({"window": {"seconds": 2, "max_gap_share": 2}}, "'window.max_gap_share' is 2"),
    ({"window": {"seconds": 0.001}}, "holds no sample of modality 'acc'"),
    ({"subject": {"from": "folder"}}, "'subject.from' is 'folder'"),
    ({"subject": {"from": "filename", "pattern": "(\\d+"}}, "'subject.pattern' '(\\d+' is not a regular expression"),
    ({"subject": {"column": "sid", "pattern": "x"}}, "'subject' gives a column and a file-name pattern"),
    ({"time": {"col": "t"}}, "unknown key 'time.col'"),
    ({"labels": {"column": "activity", "rate": 50, "classes": {True: 0}}}, "YAML reads yes/no/on/off"),
    ({"labels": {"column": "activity", "rate": 50, "classes": {"walk": 0, "sit": 2}}}, "uses class indices [0, 2]"),
    ({"labels": {"column": "activity", "rate": 50}}, "'labels' has no 'classes'"),
    ({"split": {"train": [1], "test": [1]}}, "lists subject 1 in 'train' and 'test'"),
    ({"split": {"train": [1], "tests": [2]}}, "unknown key 'split.tests'"),
    ({"split": {"train": [1], "test": "2"}}, "'split.test' is '2'"),
    ({"delimiter": ";;"}, "'delimiter' is ';;'"),
    ({"modalities": {"acc": {"columns": ["ax"], "rate": 50}, "ecg": {"columns": ["ax"], "rate": 250}}},
     "column 'ax' is in modalities.ecg.columns and in modalities.acc.columns"),
    ({"modalities": {"acc": {"columns": ["t"], "rate": 50}}}, "column 't' is in modalities.acc.columns and in time.column"),
    ({"time": None}, "rates differ (modalities.acc.rate=50, modalities.ecg.rate=250, labels.rate=50)"),
])
def test_spec_errors_name_the_key(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(CrosslError) as exc:
        spec_from(**changes)
    message = str(exc.value)
    assert "\n" not in message and message.startswith("test spec")
    assert problem in message


def test_spec_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CrosslError, match=r"cannot read import spec .*missing\.yaml"):
        load_import_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(CrosslError) as exc:
        load_import_spec(bad)
    assert "is not valid YAML" in _one_line(exc, bad)
    bad.write_text("")
    with pytest.raises(CrosslError, match="is empty"):
        load_import_spec(bad)
    bad.write_text(SPEC_YAML.replace("rate: 250", "rate: 250, gain: 2"))
    with pytest.raises(CrosslError) as exc:
        load_import_spec(bad)
    assert "unknown key 'modalities.ecg.gain'" in _one_line(exc, bad)


# --- arrays from Python -----------------------------------------------------------------------------


def test_recording_from_arrays() -> None:
    acc = np.arange(300, dtype=np.float64).reshape(100, 3)
    ecg = np.arange(500)  # (T,): one channel
    rec = recording_from_arrays({"acc": acc, "ecg": ecg}, {"acc": 50, "ecg": 250}, np.zeros(100, dtype=np.int32), 50, 4, "s1")
    assert rec.signals["acc"].dtype == np.float32 and rec.signals["ecg"].shape == (500, 1)
    assert rec.labels.dtype == np.int64 and rec.label_rate == 50.0 and rec.subject == 4 and rec.session == "s1"
    assert rec.channel_names == {"acc": ("acc0", "acc1", "acc2"), "ecg": ("ecg0",)}
    acc[0, 0] = 99.0
    assert rec.signals["acc"][0, 0] == 0.0  # copied
    unlabeled = recording_from_arrays({"acc": acc, "ecg": ecg}, {"acc": 50, "ecg": 250}, None, None, 4)
    assert (unlabeled.labels == -1).all() and unlabeled.duration() == pytest.approx(2.0)
    w = window_recording(unlabeled, WindowRule(1.0, 1.0, keep_unlabeled=True), {})
    assert len(w) == 2 and w.signals["ecg"].shape == (2, 250, 1)


@pytest.mark.parametrize("kwargs, problem", [
    ({"signals": {}}, "no signals"),
    ({"rates": {"acc": 50}}, "rates given for ['acc'], signals for ['acc', 'ecg']"),
    ({"rates": {"acc": 50, "ecg": 0}}, "modality 'ecg' has rate 0"),
    ({"signals": {"acc": np.zeros((4, 2, 3)), "ecg": np.zeros(8)}}, "modality 'acc' has shape (4, 2, 3)"),
    ({"signals": {"acc": np.array(["a"] * 4), "ecg": np.zeros(8)}}, "modality 'acc' has dtype <U1"),
    ({"labels": np.array([0.0, np.nan])}, "not whole numbers"),
    ({"labels": np.zeros((2, 2))}, "labels have shape (2, 2)"),
    ({"label_rate": None}, "labels are given without label_rate"),
    ({"label_rate": -1.0}, "label_rate -1.0"),
    ({"subject": "3"}, "subject must be an integer"),
])
def test_recording_from_arrays_errors(kwargs: dict[str, object], problem: str) -> None:
    args: dict[str, object] = {"signals": {"acc": np.zeros((4, 3)), "ecg": np.zeros(8)}, "rates": {"acc": 2, "ecg": 4},
                               "labels": np.zeros(4, dtype=np.int64), "label_rate": 2.0, "subject": 1}
    args.update(kwargs)
    with pytest.raises(CrosslError) as exc:
        recording_from_arrays(**args)  # type: ignore[arg-type]
    assert problem in str(exc.value) and "\n" not in str(exc.value)
