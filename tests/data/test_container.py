"""WindowSet: construction, validation, save/load round trip and corrupt directories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crossl.data.container import DatasetMeta, WindowSet
from crossl.errors import CrosslError


def _arrays(n: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "acc": rng.normal(size=(n, 8, 3)).astype(np.float32),
        "ecg": rng.normal(size=(n, 20, 1)).astype(np.float32),
    }


def _meta(num_classes: int = 3) -> DatasetMeta:
    return DatasetMeta(
        name="toy",
        modality_names=("acc", "ecg"),
        channel_names={"acc": ("x", "y", "z"), "ecg": ("ecg",)},
        sampling_rates={"acc": 32.0, "ecg": 700.0},
        class_names=tuple(f"c{i}" for i in range(num_classes)),
        extra={"note": "fixture", "split": {"train": [1, 2]}},
    )


def _window_set(n: int = 6) -> WindowSet:
    presence = np.ones((n, 2), dtype=bool)
    presence[1, 1] = False
    mods = _arrays(n)
    mods["ecg"][1] = 0.0
    return WindowSet(
        mods,
        presence,
        np.arange(n, dtype=np.int64) % 3 - (np.arange(n) == 0),  # first window unlabeled (-1)
        np.arange(n, dtype=np.int64) // 2 + 1,
        _meta(),
    )


# --- construction and validation -------------------------------------------------------------


def test_from_arrays_nan_marks_modality_absent_and_zero_fills():
    mods = {k: v.copy() for k, v in _arrays().items()}
    mods["ecg"][2, 5, 0] = np.nan
    mods["acc"][4] = np.nan
    ws = WindowSet.from_arrays(mods, labels=[0, 1, 2, 0, 1, 2])
    expected = np.ones((6, 2), dtype=bool)
    expected[2, 1] = False
    expected[4, 0] = False
    assert np.array_equal(ws.presence, expected)
    assert np.all(ws.modalities["ecg"][2] == 0.0)
    assert np.all(ws.modalities["acc"][4] == 0.0)
    assert np.isfinite(ws.modalities["acc"]).all() and np.isfinite(ws.modalities["ecg"]).all()


def test_from_arrays_defaults_unlabeled_single_subject_float32():
    ws = WindowSet.from_arrays({"a": np.zeros((4, 5, 2), dtype=np.float64), "b": np.ones((4, 7))})
    assert np.array_equal(ws.labels, np.full(4, -1))
    assert np.array_equal(ws.subjects, np.zeros(4))
    assert ws.modalities["a"].dtype == np.float32
    assert ws.shapes == {"a": (5, 2), "b": (7, 1)}


def test_from_arrays_does_not_modify_the_callers_arrays():
    acc = np.ones((3, 4, 1), dtype=np.float32)
    acc[1] = np.nan
    WindowSet.from_arrays({"acc": acc, "gyro": np.ones((3, 4, 1), dtype=np.float32)})
    assert np.isnan(acc[1]).all()


def test_from_arrays_wrong_rank_raises():
    with pytest.raises(CrosslError, match="modality 'acc' has shape"):
        WindowSet.from_arrays({"acc": np.zeros(5)})


def test_from_arrays_no_modalities_raises():
    with pytest.raises(CrosslError, match="no modalities"):
        WindowSet.from_arrays({})


def test_from_arrays_mismatched_window_counts_raise_crossl_error():
    with pytest.raises(CrosslError):
        WindowSet.from_arrays({"acc": np.zeros((3, 4, 1)), "ecg": np.zeros((2, 4, 1))})


def test_mismatched_window_counts_with_presence_raise():
    with pytest.raises(CrosslError, match="different numbers of windows"):
        WindowSet.from_arrays(
            {"acc": np.zeros((3, 4, 1)), "ecg": np.zeros((2, 4, 1))}, presence=np.ones((3, 2), dtype=bool)
        )


def test_labels_of_wrong_length_raise():
    with pytest.raises(CrosslError, match=r"expected \(N=2"):
        WindowSet.from_arrays(_arrays(3), labels=[0, 1])


def test_wrong_modality_dtype_raises():
    ws = _window_set()
    mods = dict(ws.modalities)
    mods["acc"] = mods["acc"].astype(np.float64)
    with pytest.raises(CrosslError, match="modality 'acc' has dtype float64"):
        WindowSet(mods, ws.presence, ws.labels, ws.subjects, ws.meta)


def test_float_labels_raise():
    ws = _window_set()
    with pytest.raises(CrosslError):
        WindowSet(ws.modalities, ws.presence, ws.labels.astype(np.float64) + 0.5, ws.subjects, ws.meta)


def test_channel_count_disagreeing_with_metadata_raises():
    ws = _window_set()
    mods = dict(ws.modalities)
    mods["acc"] = mods["acc"][:, :, :2].copy()
    with pytest.raises(CrosslError, match="modality 'acc' has 2 channels but metadata names 3"):
        WindowSet(mods, ws.presence, ws.labels, ws.subjects, ws.meta)


def test_modality_order_disagreeing_with_metadata_raises():
    ws = _window_set()
    mods = {"ecg": ws.modalities["ecg"], "acc": ws.modalities["acc"]}
    with pytest.raises(CrosslError, match="do not match metadata"):
        WindowSet(mods, ws.presence, ws.labels, ws.subjects, ws.meta)


def test_presence_of_wrong_shape_raises():
    ws = _window_set()
    with pytest.raises(CrosslError, match="presence mask"):
        WindowSet(ws.modalities, ws.presence[:, :1], ws.labels, ws.subjects, ws.meta)


def test_subjects_of_wrong_shape_raise():
    ws = _window_set()
    with pytest.raises(CrosslError, match="subjects must have shape"):
        WindowSet(ws.modalities, ws.presence, ws.labels, ws.subjects[:-1], ws.meta)


def test_nan_in_present_modality_raises():
    mods = _arrays()
    mods["ecg"][3, 0, 0] = np.nan
    with pytest.raises(CrosslError, match=r"modality 'ecg' has NaN or inf values in 1 window\(s\) \(first: 3\)"):
        WindowSet.from_arrays(mods, presence=np.ones((6, 2), dtype=bool))


def test_inf_in_modality_raises():
    mods = _arrays()
    mods["acc"][2, 1, 1] = np.inf
    with pytest.raises(CrosslError, match=r"modality 'acc' has NaN or inf.*first: 2"):
        WindowSet.from_arrays(mods)


@pytest.mark.parametrize("bad_label", [3, -2])
def test_labels_out_of_range_raise(bad_label):
    labels = [0, 1, 2, 0, 1, bad_label]
    with pytest.raises(CrosslError, match=r"labels must lie in -1\.\.2"):
        WindowSet.from_arrays(_arrays(), labels=labels, class_names=["a", "b", "c"])


def test_window_with_no_modality_present_raises():
    mods = _arrays()
    mods["acc"][4] = np.nan
    mods["ecg"][4] = np.nan
    with pytest.raises(CrosslError, match="window 4 has no modality present"):
        WindowSet.from_arrays(mods)


def test_subset_selects_windows():
    ws = _window_set()
    sub = ws.subset(np.array([5, 1]))
    assert len(sub) == 2
    assert np.array_equal(sub.modalities["acc"], ws.modalities["acc"][[5, 1]])
    assert np.array_equal(sub.presence, ws.presence[[5, 1]])
    assert np.array_equal(sub.labels, ws.labels[[5, 1]])


# --- save / load -----------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path, mmap):
    ws = _window_set()
    ws.save(tmp_path / "ds")
    loaded = WindowSet.load(tmp_path / "ds", mmap=mmap)
    assert loaded.meta == ws.meta
    assert loaded.modality_names == ("acc", "ecg")
    for m in ws.modalities:
        assert loaded.modalities[m].dtype == np.float32
        assert np.array_equal(loaded.modalities[m], ws.modalities[m])
    assert np.array_equal(loaded.presence, ws.presence)
    assert np.array_equal(loaded.labels, ws.labels)
    assert np.array_equal(loaded.subjects, ws.subjects)


def test_load_memory_maps_modalities_by_default(tmp_path):
    _window_set().save(tmp_path / "ds")
    loaded = WindowSet.load(tmp_path / "ds")
    assert all(isinstance(a, np.memmap) for a in loaded.modalities.values())
    not_mapped = WindowSet.load(tmp_path / "ds", mmap=False)
    assert not any(isinstance(a, np.memmap) for a in not_mapped.modalities.values())


def test_save_is_atomic_and_leaves_no_temp_directory(tmp_path):
    target = tmp_path / "ds"
    _window_set().save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert not any(p.name.startswith(".") or p.name.endswith(".tmp") for p in target.iterdir())


def test_save_over_an_existing_dataset_directory_replaces_it(tmp_path):
    target = tmp_path / "ds"
    _window_set(6).save(target)
    _window_set(4).save(target)
    assert len(WindowSet.load(target)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_save_never_deletes_files_crossl_did_not_write(tmp_path):
    ordinary = tmp_path / "mine"
    ordinary.mkdir()
    (ordinary / "thesis.tex").write_text("years of work")
    with pytest.raises(CrosslError, match="is not a crossl dataset directory"):
        _window_set(4).save(ordinary)
    assert (ordinary / "thesis.tex").read_text() == "years of work"
    dataset = tmp_path / "ds"
    _window_set(6).save(dataset)
    (dataset / "notes.txt").write_text("mine")
    with pytest.raises(CrosslError, match="crossl never replaces what it did not write"):
        _window_set(4).save(dataset)
    assert (dataset / "notes.txt").exists() and len(WindowSet.load(dataset)) == 6


def test_save_into_an_empty_directory_works(tmp_path):
    (tmp_path / "empty").mkdir()
    _window_set(4).save(tmp_path / "empty")
    assert len(WindowSet.load(tmp_path / "empty")) == 4


def test_load_directory_without_meta_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrosslError, match="not a crossl dataset directory"):
        WindowSet.load(tmp_path / "empty")


@pytest.mark.parametrize("filename", ["modality_0.npy", "modality_1.npy", "presence.npy", "labels.npy", "subjects.npy"])
def test_load_with_missing_array_file_raises(tmp_path, filename):
    _window_set().save(tmp_path / "ds")
    (tmp_path / "ds" / filename).unlink()
    with pytest.raises(CrosslError, match="unreadable or corrupt"):
        WindowSet.load(tmp_path / "ds")


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("filename", ["modality_0.npy", "modality_1.npy", "presence.npy", "labels.npy", "subjects.npy"])
def test_load_with_truncated_array_file_raises(tmp_path, filename, mmap):
    _window_set().save(tmp_path / "ds")
    path = tmp_path / "ds" / filename
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3])
    with pytest.raises(CrosslError, match="unreadable or corrupt"):
        WindowSet.load(tmp_path / "ds", mmap=mmap)


def test_load_with_empty_array_file_raises(tmp_path):
    _window_set().save(tmp_path / "ds")
    (tmp_path / "ds" / "labels.npy").write_bytes(b"")
    with pytest.raises(CrosslError, match="unreadable or corrupt"):
        WindowSet.load(tmp_path / "ds")


def test_load_with_garbled_meta_json_raises(tmp_path):
    _window_set().save(tmp_path / "ds")
    (tmp_path / "ds" / "meta.json").write_text('{"format_version": 1, "num_win')
    with pytest.raises(CrosslError, match="unreadable or corrupt"):
        WindowSet.load(tmp_path / "ds")


def test_load_with_meta_missing_fields_raises(tmp_path):
    _window_set().save(tmp_path / "ds")
    meta_path = tmp_path / "ds" / "meta.json"
    header = json.loads(meta_path.read_text())
    del header["meta"]["class_names"]
    meta_path.write_text(json.dumps(header))
    with pytest.raises(CrosslError, match="metadata is malformed"):
        WindowSet.load(tmp_path / "ds")


@pytest.mark.parametrize("content", ["[]", "null"])
def test_load_with_non_object_meta_json_raises(tmp_path, content):
    _window_set().save(tmp_path / "ds")
    (tmp_path / "ds" / "meta.json").write_text(content)
    with pytest.raises(CrosslError):
        WindowSet.load(tmp_path / "ds")


def test_load_with_window_count_disagreeing_with_meta_raises(tmp_path):
    _window_set().save(tmp_path / "ds")
    meta_path = tmp_path / "ds" / "meta.json"
    header = json.loads(meta_path.read_text())
    header["num_windows"] = 99
    meta_path.write_text(json.dumps(header))
    with pytest.raises(CrosslError, match="truncated"):
        WindowSet.load(tmp_path / "ds")


def test_load_with_array_of_other_window_count_raises(tmp_path):
    _window_set().save(tmp_path / "ds")
    np.save(tmp_path / "ds" / "modality_1.npy", np.zeros((2, 20, 1), dtype=np.float32))
    with pytest.raises(CrosslError, match="has shape"):
        WindowSet.load(tmp_path / "ds")


def test_save_chunks_writes_the_same_files_as_save(tmp_path):
    ws = _window_set(7)
    ws.save(tmp_path / "whole")
    chunks = [ws.subset(np.arange(0, 3)), ws.subset(np.arange(3, 7))]
    WindowSet.save_chunks(tmp_path / "chunked", chunks, num_windows=7)
    for name in ("modality_0.npy", "modality_1.npy", "presence.npy", "labels.npy", "subjects.npy", "meta.json"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes()


def test_save_chunks_with_a_wrong_window_count_raises(tmp_path):
    ws = _window_set(4)
    with pytest.raises(CrosslError, match="chunks hold 4 windows, not num_windows=5"):
        WindowSet.save_chunks(tmp_path / "d", [ws], num_windows=5)


def test_value_check_in_chunks_counts_every_bad_window_and_names_the_first(monkeypatch):
    mods = _arrays(n=50)
    mods["acc"][[31, 44], 2, 1] = np.nan
    monkeypatch.setattr("crossl.data.container.CHUNK_BYTES", 4 * mods["acc"][0].nbytes)
    with pytest.raises(CrosslError, match=r"modality 'acc' has NaN or inf values in 2 window\(s\) \(first: 31\)"):
        WindowSet(mods, np.ones((50, 2), dtype=bool), np.zeros(50, np.int64), np.zeros(50, np.int64), _meta())
