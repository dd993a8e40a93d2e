"""The Python API: fit on arrays, encode (with missing modalities), save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_model_configs, synthetic_arrays

from crossl.api import CroSSL
from crossl.errors import CrosslError


@pytest.fixture(scope="module")
def fitted() -> CroSSL:
    model = CroSSL(*small_model_configs(epochs=1))
    return model.fit(synthetic_arrays())


def test_encode_gives_one_aggregator_embedding_per_window(fitted: CroSSL) -> None:
    z = fitted.encode(synthetic_arrays(n=10, seed=1))
    assert z.shape == (10, 32) and np.isfinite(z).all()


def test_encode_concat_gives_modalities_times_dim(fitted: CroSSL) -> None:
    z = fitted.encode(synthetic_arrays(n=5, seed=1), source="concat")
    assert z.shape == (5, 2 * 16)


def test_missing_modality_left_out_equals_presence_false(fitted: CroSSL) -> None:
    arrays = synthetic_arrays(n=6, seed=2)
    left_out = fitted.encode({"acc": arrays["acc"]})
    presence = np.array([[True, False]] * 6)
    masked = fitted.encode(arrays, presence=presence)
    np.testing.assert_allclose(left_out, masked, rtol=1e-5, atol=1e-5)


def test_nan_modality_is_treated_as_missing(fitted: CroSSL) -> None:
    arrays = synthetic_arrays(n=4, seed=3)
    with_nan = dict(arrays, ecg=np.full_like(arrays["ecg"], np.nan))
    np.testing.assert_allclose(fitted.encode(with_nan), fitted.encode({"acc": arrays["acc"]}), atol=1e-5)


def test_unknown_modality_is_rejected(fitted: CroSSL) -> None:
    with pytest.raises(CrosslError, match="unknown modality"):
        fitted.encode({"eeg": np.zeros((2, 40, 1), np.float32)})


def test_wrong_channel_count_is_rejected(fitted: CroSSL) -> None:
    arrays = synthetic_arrays(n=3)
    arrays["acc"] = arrays["acc"][:, :, :2]
    with pytest.raises(CrosslError, match="channels"):
        fitted.encode(arrays)


def test_save_load_round_trip_gives_identical_embeddings(fitted: CroSSL, tmp_path) -> None:
    arrays = synthetic_arrays(n=8, seed=4)
    fitted.save(tmp_path / "m")
    loaded = CroSSL.load(tmp_path / "m")
    np.testing.assert_array_equal(fitted.encode(arrays), loaded.encode(arrays))


def test_load_rejects_weights_from_another_config(fitted: CroSSL, tmp_path) -> None:
    fitted.save(tmp_path / "m")
    other = CroSSL(*small_model_configs())
    other.model_config.dim = 24
    other.fit(synthetic_arrays(n=20))
    other.save(tmp_path / "o")
    (tmp_path / "m" / "model.json").write_bytes((tmp_path / "o" / "model.json").read_bytes())
    with pytest.raises(CrosslError, match="do not match"):
        CroSSL.load(tmp_path / "m")


def test_encode_before_fit_is_an_error() -> None:
    with pytest.raises(CrosslError, match="not fitted"):
        CroSSL().encode(synthetic_arrays(n=2))


def test_nan_in_training_data_marks_modality_absent_not_crash() -> None:
    arrays = synthetic_arrays(n=24)
    arrays["ecg"][0, 5, 0] = np.nan
    model = CroSSL(*small_model_configs(epochs=1)).fit(arrays)
    assert np.isfinite(model.encode(arrays)).all()


def test_inf_in_training_data_is_rejected() -> None:
    arrays = synthetic_arrays(n=24)
    arrays["acc"][3, 0, 0] = np.inf
    with pytest.raises(CrosslError, match="NaN or inf"):
        CroSSL(*small_model_configs(epochs=1)).fit(arrays)


def test_fit_on_memory_mapped_indices_equals_fit_on_an_in_memory_subset(tmp_path) -> None:
    from dataclasses import replace

    from crossl.data.container import WindowSet

    arrays = synthetic_arrays(n=40, seed=6)
    WindowSet.from_arrays(arrays).save(tmp_path / "set")
    mapped = WindowSet.load(tmp_path / "set", mmap=True)
    rows = np.arange(4, 36)
    # The training statistics only: subject-wise standardisation reads every window of a subject
    # in the set it is given, so a subset and the indices of a larger set differ by design.
    model_config, pretrain, trainer = small_model_configs(epochs=1)
    configs = (replace(model_config, input_norm="train"), pretrain, trainer)
    in_memory = CroSSL(*configs).fit(mapped.subset(rows))
    streamed = CroSSL(*configs).fit(mapped, indices=rows)
    for (name, a), b in zip(in_memory.backbone.state_dict().items(), streamed.backbone.state_dict().values()):
        assert torch.equal(a, b), name


def test_max_steps_stops_pretraining_and_still_validates(tmp_path) -> None:
    from dataclasses import replace

    from crossl.data.container import WindowSet

    model_config, pretrain, trainer = small_model_configs(epochs=5)
    model = CroSSL(model_config, replace(pretrain, max_steps=2), trainer)
    val = WindowSet.from_arrays(synthetic_arrays(n=20, seed=8))
    model.fit(synthetic_arrays(n=48), val=val, run_dir=tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()  # monitored on val/loss: validation ran
