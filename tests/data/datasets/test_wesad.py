"""WESAD reader and the restricted unpickler, on pickles written as Python 2 writes them."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossl.data.datasets import wesad
from crossl.data.unpickle import RestrictedUnpickler, lean_load, restricted_load
from crossl.errors import CrosslError

SECONDS = 3
N = 700 * SECONDS
#: Python 3 module names -> what Python 2 and NumPy 1.x wrote into a pickle.
_PY2_MODULES = {"builtins": "__builtin__", "copyreg": "copy_reg"}
#: The pure-Python pickler, whose per-type dispatch table can be overridden (typeshed omits it).
_PurePickler: Any = pickle._Pickler


class _Python2Pickler(_PurePickler):
    """Writes what Python 2's ``pickle.dump(obj, fh, 2)`` of NumPy 1.x objects writes.

    Python 2 ``str`` is bytes and goes out as SHORT_BINSTRING / BINSTRING (Python 3 writes
    BINUNICODE for str and ``_codecs.encode`` calls for bytes at protocol 2); an array's raw data
    is such a string, which ``encoding="latin1"`` turns into a str that NumPy maps back to bytes.
    Globals carry their Python 2 / NumPy 1.x modules (``numpy.core.multiarray``, ``__builtin__``).
    """

    dispatch = _PurePickler.dispatch.copy()

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        module = _PY2_MODULES.get(module, module)
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode("ascii"))
        self.memoize(obj)


def python2_dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _labels() -> np.ndarray:
    """One second each of transient (0), baseline (1) and stress (2), with a few 'ignore' codes."""
    labels = np.repeat(np.array([0, 1, 2], dtype=np.int32), 700)
    labels[-10:] = 6
    return labels


def _signal(offset: float, length: int, channels: int) -> np.ndarray:
    """float64 like the release; values name the modality (offset), the sample and the channel."""
    return offset + np.arange(length, dtype=np.float64)[:, None] + np.arange(channels)[None, :] / 10


CHEST = {"ACC": (3, 1000.0), "ECG": (1, 2000.0), "EMG": (1, 3000.0), "EDA": (1, 4000.0), "Temp": (1, 5000.0), "Resp": (1, 6000.0)}
WRIST = {"ACC": (3, 32, 100.0), "BVP": (1, 64, 200.0), "EDA": (1, 4, 300.0), "TEMP": (1, 4, 400.0)}


def _subject_data(subject: str = "S5") -> dict[str, Any]:
    return {
        "signal": {
            "chest": {key: _signal(offset, N, channels) for key, (channels, offset) in CHEST.items()},
            "wrist": {key: _signal(offset, rate * SECONDS, channels) for key, (channels, rate, offset) in WRIST.items()},
        },
        "label": _labels(),
        "subject": subject,
    }


def _write(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


@pytest.fixture
def pkl(tmp_path: Path) -> Path:
    return _write(tmp_path / "S5" / "S5.pkl", python2_dumps(_subject_data()))


def test_fixture_is_a_python2_pickle(pkl: Path) -> None:
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(pkl.read_bytes())]
    assert ops[0] == ("PROTO", 2)
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in ops
    assert ("SHORT_BINSTRING", "signal") in ops and any(name == "BINSTRING" for name, _ in ops)
    assert not any(name in {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES"} for name, _ in ops)
    assert not any(name == "GLOBAL" and str(arg).startswith("_codecs") for name, arg in ops)


def test_chest(pkl: Path) -> None:
    rec = wesad.read_recording(pkl)
    assert rec.modality_names == ("acc", "ecg", "emg", "eda", "temp", "resp")
    for name, (key, channels, rate) in wesad.DEVICE_MODALITIES["chest"].items():
        assert rec.rates[name] == rate == 700.0
        assert rec.signals[name].shape == (N, channels) and rec.signals[name].dtype == np.float32
        np.testing.assert_array_equal(rec.signals[name], _signal(CHEST[key][1], N, channels).astype(np.float32))
    assert rec.channel_names["acc"] == ("acc_x", "acc_y", "acc_z") and rec.channel_names["ecg"] == ("ecg",)
    assert rec.labels.dtype == np.int64 and rec.label_rate == 700.0
    np.testing.assert_array_equal(rec.labels, _labels())
    assert rec.subject == 5 and rec.session == "S5-chest"
    assert rec.duration() == SECONDS


def test_wrist_native_rates(pkl: Path) -> None:
    rec = wesad.read_recording(pkl, device="wrist")
    assert rec.modality_names == ("acc", "bvp", "eda", "temp")
    assert dict(rec.rates) == {"acc": 32.0, "bvp": 64.0, "eda": 4.0, "temp": 4.0}
    for name, (key, channels, rate) in wesad.DEVICE_MODALITIES["wrist"].items():
        length = int(rate) * SECONDS
        assert rec.signals[name].shape == (length, channels)
        np.testing.assert_array_equal(rec.signals[name], _signal(WRIST[key][2], length, channels).astype(np.float32))
    assert len(rec.labels) == N and rec.label_rate == 700.0  # the labels stay on the chest's time base
    assert rec.session == "S5-wrist" and rec.duration() == SECONDS


def test_modality_subset(pkl: Path) -> None:
    rec = wesad.read_recording(pkl, modalities=["eda", "ecg", "eda"])
    assert rec.modality_names == ("eda", "ecg")
    assert wesad.read_recording(pkl, "wrist", modalities=["bvp"]).modality_names == ("bvp",)
    with pytest.raises(CrosslError, match=r"WESAD wrist has no modality 'ecg'; choose from acc, bvp, eda, temp"):
        wesad.read_recording(pkl, "wrist", modalities=["ecg"])
    with pytest.raises(CrosslError, match="at least one"):
        wesad.read_recording(pkl, modalities=[])
    with pytest.raises(CrosslError, match="devices"):
        wesad.read_recording(pkl, device="ankle")  # type: ignore[arg-type]


def test_python3_protocol2_pickles_and_bytes_keys(tmp_path: Path) -> None:
    # Python 3's protocol 2 writes bytes through _codecs.encode and numpy._core under NumPy 2
    data = _subject_data("S17")
    rec = wesad.read_recording(_write(tmp_path / "S17.pkl", pickle.dumps(data, protocol=2)))
    assert rec.subject == 17 and rec.signals["ecg"].shape == (N, 1)
    # read with encoding="bytes", Python 2's str keys would be bytes: accepted too
    as_bytes: dict[bytes, Any] = {
        b"signal": {b"chest": {k.encode(): v for k, v in data["signal"]["chest"].items()}},
        b"label": data["label"],
        b"subject": b"S17",
    }
    rec = wesad.read_recording(_write(tmp_path / "S17b.pkl", pickle.dumps(as_bytes, 2)))
    assert rec.subject == 17 and rec.modality_names[0] == "acc"


def _error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(CrosslError) as info:
        wesad.read_recording(path, **kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    payload = python2_dumps(_subject_data())
    for cut in (0, 1, 100, len(payload) // 2, len(payload) - 1):
        assert "not a readable WESAD pickle" in _error(_write(tmp_path / f"S{cut}.pkl", payload[:cut]))
    assert "not a readable WESAD pickle" in _error(_write(tmp_path / "noise.pkl", os.urandom(4096)))
    assert "check the path" in _error(tmp_path / "S99.pkl")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


def test_forbidden_global_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    data = _subject_data()
    data["subject"] = _Evil(marker)
    path = _write(tmp_path / "S5.pkl", pickle.dumps(data, protocol=2))
    message = _error(path)
    assert "forbidden global" in message and "system" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("label"), "has no 'label' entry"),
        (lambda d: d["signal"].pop("chest"), "has no 'chest' entry"),
        (lambda d: d["signal"]["chest"].pop("EMG"), "has no 'EMG' entry"),
        (lambda d: d.update(signal=[1, 2]), "'signal' is a list, expected a dict"),
        (lambda d: d["signal"]["chest"].update(ECG=np.zeros((N, 2))), r"'ECG' has shape \(2100, 2\), expected \(time, 1\)"),
        (lambda d: d["signal"]["chest"].update(ACC=np.zeros(N)), r"'ACC' has shape \(2100,\), expected \(time, 3\)"),
        (lambda d: d["signal"]["chest"].update(EDA=np.zeros((N - 1, 1))), "has 2099 samples but 'label' has 2100"),
        (lambda d: d["signal"]["chest"].update(Resp="x"), "'Resp' is a str, expected a numeric array"),
        (lambda d: d.update(label=np.zeros((N, 2))), "'label' is"),
        (lambda d: d.update(label=np.full(N, 0.5)), "non-integer codes"),
        (lambda d: d.update(subject="subject five"), "'subject' is 'subject five'"),
    ],
)
def test_bad_contents(tmp_path: Path, change: Any, expected: str) -> None:
    data = _subject_data()
    change(data)
    with pytest.raises(CrosslError, match=expected):
        wesad.read_recording(_write(tmp_path / "S5.pkl", python2_dumps(data)))


def test_one_channel_signals_may_be_flat(tmp_path: Path) -> None:
    data = _subject_data()
    data["signal"]["chest"]["ECG"] = data["signal"]["chest"]["ECG"][:, 0]
    rec = wesad.read_recording(_write(tmp_path / "S5.pkl", python2_dumps(data)), modalities=["ecg"])
    assert rec.signals["ecg"].shape == (N, 1)


def test_label_tables() -> None:
    assert wesad.LABELS == {1: "baseline", 2: "stress", 3: "amusement", 4: "meditation"}
    assert set(wesad.IGNORED_LABELS) == {0, 5, 6, 7}


# -- the restricted unpickler itself ---------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_load_reads_numpy_objects(protocol: int) -> None:
    obj = {
        "f": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
        "bool": np.array([True, False]),
        "empty": np.zeros((0, 3)),
        "scalar": np.float64(2.5),
        "misc": ({1, 2}, frozenset({3}), slice(1, 5), 1 + 2j, bytearray(b"ab"), b"raw"),
    }
    loaded = restricted_load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
    for key in ("f", "fortran", "bool", "empty"):
        np.testing.assert_array_equal(loaded[key], obj[key])
        assert loaded[key].dtype == obj[key].dtype
    assert loaded["scalar"] == 2.5 and loaded["misc"] == obj["misc"]


def test_restricted_load_reads_python2_arrays() -> None:
    array = np.linspace(0, 1, 300).reshape(100, 3)  # > 255 bytes: BINSTRING, not SHORT_BINSTRING
    loaded = restricted_load(io.BytesIO(python2_dumps({"a": array, "s": {1}, "t": "S2"})))
    np.testing.assert_array_equal(loaded["a"], array)
    assert loaded["s"] == {1} and loaded["t"] == "S2"


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(_Evil(Path("/nonexistent/ran")), protocol=2),
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"c__builtin__\neval\n(S'1+1'\ntR.",
        b"cnumpy\nload\n(S'/etc/passwd'\ntR.",
        b"cnumpy.core.multiarray\n_reconstructX\n.",
        b"csubprocess\ncall\n.",
    ],
    ids=["os.system", "builtins.eval", "py2-eval", "numpy.load", "near-name", "subprocess"],
)
def test_restricted_unpickler_refuses_other_globals(payload: bytes) -> None:
    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_subclasses_can_extend_the_allow_list() -> None:
    class WithPath(RestrictedUnpickler):
        allowed = RestrictedUnpickler.allowed | {("pathlib", "PurePosixPath")}

    payload = b"cpathlib\nPurePosixPath\n(S'a/b'\ntR."
    with pytest.raises(pickle.UnpicklingError):
        RestrictedUnpickler(io.BytesIO(payload)).load()
    assert str(WithPath(io.BytesIO(payload)).load()) == "a/b"


def test_lean_load_gives_what_restricted_load_gives_on_python2_pickles() -> None:
    data = {"a": np.linspace(0, 1, 600_000).reshape(-1, 3), "b": np.arange(10), "t": "S2", "s": {1}}
    payload = python2_dumps(data)
    lean, full = lean_load(io.BytesIO(payload)), restricted_load(io.BytesIO(payload))
    np.testing.assert_array_equal(lean["a"], full["a"])
    np.testing.assert_array_equal(lean["b"], data["b"])
    assert lean["t"] == "S2" and lean["s"] == {1}


def test_lean_load_peaks_near_the_arrays_size_where_the_full_memo_holds_every_string_too() -> None:
    import tracemalloc

    payload = python2_dumps({f"x{i}": np.full((250_000, 4), float(i)) for i in range(8)})  # 8 x 8 MB
    peaks = []
    for load in (restricted_load, lean_load):
        tracemalloc.start()
        load(io.BytesIO(payload))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    arrays = 8 * 250_000 * 4 * 8
    assert peaks[0] > 1.8 * arrays  # strings and arrays, all alive at the end
    assert peaks[1] < 1.4 * arrays  # the arrays, plus one array's string while it is built


def test_lean_load_refuses_forbidden_globals_and_reads_back_references_again() -> None:
    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        lean_load(io.BytesIO(b"cbuiltins\neval\n(S'1+1'\ntR."))
    big = "x" * (2 << 20)
    payload = python2_dumps([big, big])  # the second is a memo reference to the first
    assert lean_load(io.BytesIO(payload)) == [big, big]
