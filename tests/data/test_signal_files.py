"""Importing the user's EDF/EDF+ and WFDB recordings: files written here in each exact format."""

from __future__ import annotations

from pathlib import Path

import edfio
import numpy as np
import pytest

from crossl.data.import_spec import import_spec_from_dict
from crossl.data.importers import import_folder
from crossl.data.signal_files import parse_wfdb_header, read_wfdb_recording
from crossl.errors import CrosslError

SECONDS = 40


def write_edf(path: Path, annotations: list[tuple[float, float, str]]) -> None:
    """ECG at 128 Hz and respiration at 16 Hz whose values are the second they belong to (exact in
    EDF's 16-bit digits over their physical range), with EDF+ annotations."""
    ecg = np.arange(SECONDS * 128) // 128 + 100.0
    resp = -(np.arange(SECONDS * 16) // 16) - 5.0
    signals = [edfio.EdfSignal(ecg, 128, label="ECG", physical_range=(-32768, 32767)),
               edfio.EdfSignal(resp, 16, label="Resp", physical_range=(-32768, 32767))]
    edfio.Edf(signals, data_record_duration=1,
              annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations]).write(path)


EDF_SPEC = {
    "name": "edf-study", "format": "edf", "subject": {"from": "filename", "pattern": r"p(\d+)"},
    "modalities": {"ecg": {"columns": ["ECG"], "rate": 128}, "resp": {"columns": "Resp", "rate": 16}},
    "labels": {"column": "annotations", "rate": 1, "classes": {"rest": 0, "task": 1}},
    "window": {"seconds": 10, "stride": 10},
}


def test_edf_files_import_at_their_own_rates_with_annotation_labels(tmp_path: Path) -> None:
    write_edf(tmp_path / "p3.edf", [(0, 20, "rest"), (20, 20, "task"), (5, 1, "a note")])
    write_edf(tmp_path / "p4.edf", [(0, 10, "task"), (10, 30, "rest")])
    windows = import_folder(tmp_path, import_spec_from_dict(EDF_SPEC), log=lambda _: None)
    assert windows.shapes == {"ecg": (1280, 1), "resp": (160, 1)}
    assert windows.subjects.tolist() == [3] * 4 + [4] * 4
    assert windows.labels.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    # window k of a file covers seconds 10k..10k+9: its values say so, in both modalities
    ecg, resp = windows.modalities["ecg"][:4, :, 0], windows.modalities["resp"][:4, :, 0]
    assert np.array_equal(ecg[2], np.repeat(np.arange(20, 30) + 100.0, 128))
    assert np.array_equal(resp[3], -np.repeat(np.arange(30, 40), 16) - 5.0)


@pytest.mark.parametrize(("change", "message"), [
    ({"modalities": {"ecg": {"columns": ["EKG"], "rate": 128}}}, "has no signal 'EKG' (modalities.ecg.columns); its signals: 'ECG', 'Resp'"),
    ({"modalities": {"ecg": {"columns": ["ECG"], "rate": 250}}}, "signal 'ECG' is recorded at 128 Hz, modalities.ecg.rate says 250"),
])
def test_an_edf_that_does_not_match_the_spec_is_refused_naming_the_file(tmp_path: Path, change: dict,
                                                                      message: str) -> None:
    write_edf(tmp_path / "p3.edf", [])
    with pytest.raises(CrosslError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_folder(tmp_path, import_spec_from_dict({**EDF_SPEC, **change}), strict=True, log=lambda _: None)


def test_a_truncated_edf_is_refused(tmp_path: Path) -> None:
    write_edf(tmp_path / "p3.edf", [])
    data = (tmp_path / "p3.edf").read_bytes()
    (tmp_path / "p3.edf").write_bytes(data[:-100])
    with pytest.raises(CrosslError, match="p3.edf is truncated"):
        import_folder(tmp_path, import_spec_from_dict(EDF_SPEC), strict=True, log=lambda _: None)


def write_wfdb(directory: Path, name: str, fmt: int, digital: np.ndarray, gains: tuple[float, float] = (200.0, 50.0),
               baselines: tuple[int, int] = (1024, 0)) -> Path:
    """A two-signal record of ``digital`` (frames, 2) samples at 250 Hz in format 16, 212 or 80."""
    frames = digital.shape[0]
    if fmt == 16:
        body = digital.astype("<i2").tobytes()
    elif fmt == 80:
        body = (digital + 128).astype(np.uint8).tobytes()
    else:  # 212, written out independently: pairs of 12-bit two's-complement values in 3 bytes
        flat = (digital.reshape(-1) & 0xFFF).astype(np.int64)
        out = bytearray()
        for a, b in zip(flat[0::2], flat[1::2]):
            out += bytes([a & 0xFF, ((a >> 8) & 0x0F) | ((b >> 8) & 0x0F) << 4, b & 0xFF])
        body = bytes(out)
    (directory / f"{name}.dat").write_bytes(body)
    header = [f"{name} 2 250 {frames}",
              f"{name}.dat {fmt} {gains[0]}({baselines[0]})/mV 12 0 0 0 0 ECG lead II",
              f"{name}.dat {fmt} {gains[1]}({baselines[1]})/mV 12 0 0 0 0 PPG",
              "# a comment line"]
    path = directory / f"{name}.hea"
    path.write_text("\n".join(header) + "\n", encoding="ascii")
    return path


WFDB_SPEC = {
    "name": "wfdb-study", "format": "wfdb", "subject": {"from": "filename"},
    "modalities": {"ecg": {"columns": ["ECG lead II"], "rate": 250}, "ppg": {"columns": ["PPG"], "rate": 250}},
    "window": {"seconds": 2},
}


@pytest.mark.parametrize("fmt", [16, 212, 80])
def test_wfdb_samples_become_physical_values_and_invalid_ones_gaps(tmp_path: Path, fmt: int) -> None:
    limit = {16: 30000, 212: 2000, 80: 120}[fmt]
    rng = np.random.default_rng(fmt)
    digital = rng.integers(-limit, limit, size=(1000, 2))
    invalid = {16: -32768, 212: -2048, 80: -128}[fmt]
    digital[10, 1] = invalid
    path = write_wfdb(tmp_path, "rec7", fmt, digital)
    recording = read_wfdb_recording(path, import_spec_from_dict(WFDB_SPEC), subject=7)
    expected_ecg = (digital[:, 0] - 1024) / 200.0
    np.testing.assert_allclose(recording.signals["ecg"][:, 0], expected_ecg, rtol=1e-6)
    ppg = recording.signals["ppg"][:, 0]
    assert np.isnan(ppg[10]) and np.isnan(ppg).sum() == 1
    np.testing.assert_allclose(np.delete(ppg, 10), np.delete(digital[:, 1] / 50.0, 10), rtol=1e-6)
    assert (recording.labels == -1).all() and recording.rates == {"ecg": 250.0, "ppg": 250.0}


def test_a_wfdb_folder_imports_unlabeled_windows(tmp_path: Path) -> None:
    write_wfdb(tmp_path, "rec7", 16, np.zeros((1000, 2), dtype=np.int64))
    write_wfdb(tmp_path, "rec8", 16, np.ones((1250, 2), dtype=np.int64))
    windows = import_folder(tmp_path, import_spec_from_dict(WFDB_SPEC), log=lambda _: None)
    assert windows.shapes == {"ecg": (500, 1), "ppg": (500, 1)}
    assert windows.subjects.tolist() == [7, 7, 8, 8]
    assert (windows.labels == -1).all()


def test_a_truncated_wfdb_signal_file_is_refused(tmp_path: Path) -> None:
    path = write_wfdb(tmp_path, "rec7", 16, np.zeros((1000, 2), dtype=np.int64))
    data = tmp_path / "rec7.dat"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CrosslError, match="holds 250 samples per signal, its header 1000: the file is truncated"):
        read_wfdb_recording(path, import_spec_from_dict(WFDB_SPEC), subject=7)


def test_unsupported_wfdb_headers_are_refused_in_one_line(tmp_path: Path) -> None:
    path = write_wfdb(tmp_path, "rec7", 16, np.zeros((10, 2), dtype=np.int64))
    path.write_text(path.read_text().replace(".dat 16 ", ".dat 310 ", 1))
    with pytest.raises(CrosslError, match="is in WFDB format 310; crossl reads formats"):
        parse_wfdb_header(path)
    path.write_text("rec7/2 2 250\n")
    with pytest.raises(CrosslError, match="multi-segment"):
        parse_wfdb_header(path)


@pytest.mark.parametrize(("change", "message"), [
    ({"labels": {"column": "annotations", "rate": 1, "classes": ["a"]}}, "WFDB annotation files are not read"),
    ({"time": {"column": "t"}}, "carry their own time base"),
    ({"format": "mat"}, "'format' is 'mat'"),
])
def test_a_spec_that_cannot_apply_to_the_format_is_refused(change: dict, message: str) -> None:
    with pytest.raises(CrosslError, match=message):
        import_spec_from_dict({**WFDB_SPEC, **change})
