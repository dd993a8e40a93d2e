"""What every registered method must do: fit, save, load, encode, resume exactly, run every protocol.

A new method in ``crossl.methods.METHODS`` is picked up here without any change to this file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import small_model_configs, synthetic_arrays

from crossl.api import CroSSL
from crossl.config import METHOD_NAMES, PROTOCOL_NAMES, EvalConfig, options_for
from crossl.data.container import WindowSet
from crossl.data.splits import split_by_subjects
from crossl.errors import CrosslError
from crossl.evaluation.protocols import PROTOCOLS
from crossl.method_options import METHOD_OPTIONS
from crossl.methods import METHODS, method_class

N_WINDOWS = 48


def windows_with_labels() -> WindowSet:
    arrays = synthetic_arrays(n=N_WINDOWS)
    return WindowSet.from_arrays(arrays, labels=np.arange(N_WINDOWS) % 3, subjects=np.arange(N_WINDOWS) % 6,
                                 class_names=["a", "b", "c"])


def make_model(method: str, epochs: int = 2) -> CroSSL:
    model, pretrain, trainer = small_model_configs(epochs=epochs)
    return CroSSL(model, pretrain, trainer, method=method)


def weights(model: CroSSL) -> dict[str, torch.Tensor]:
    assert model.backbone is not None
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


@pytest.fixture(scope="module", params=list(METHODS))
def fitted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, CroSSL, Path]:
    method = request.param
    run_dir = tmp_path_factory.mktemp(f"fit-{method}")
    model = make_model(method).fit(synthetic_arrays(n=N_WINDOWS), run_dir=run_dir)
    return method, model, run_dir


def test_registry_matches_the_config_names() -> None:
    assert tuple(METHODS) == METHOD_NAMES == tuple(METHOD_OPTIONS)
    assert set(PROTOCOLS) == set(PROTOCOL_NAMES)


def test_fit_trains_the_backbone_unless_the_method_does_not_train(fitted: tuple[str, CroSSL, Path]) -> None:
    method, model, run_dir = fitted
    untrained = make_model(method, epochs=0)
    untrained.fit(synthetic_arrays(n=N_WINDOWS))
    changed = [k for k, v in weights(model).items() if not torch.equal(v, weights(untrained)[k])]
    if method_class(method).trains:
        assert changed, "pretraining left every weight at its initial value"
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    else:
        assert changed == []


def test_save_load_encode_round_trip(fitted: tuple[str, CroSSL, Path], tmp_path: Path) -> None:
    method, model, _ = fitted
    loaded = CroSSL.load(model.save(tmp_path / "model"))
    assert loaded.method == method and loaded.options == model.options
    arrays = synthetic_arrays(n=7, seed=3)
    for source in ("aggregator", "concat"):
        np.testing.assert_allclose(loaded.encode(arrays, source=source), model.encode(arrays, source=source),
                                   rtol=1e-5, atol=1e-6)


def test_encode_works_with_a_modality_missing(fitted: tuple[str, CroSSL, Path]) -> None:
    _, model, _ = fitted
    z = model.encode({"acc": synthetic_arrays(n=5, seed=4)["acc"]}, source="concat")
    assert z.shape == (5, 2 * model.model_config.dim) and np.isfinite(z).all()


def test_resume_continues_to_the_same_weights(fitted: tuple[str, CroSSL, Path], tmp_path: Path) -> None:
    method, model, _ = fitted
    if not method_class(method).trains:
        pytest.skip("nothing to resume: the method does not train")
    make_model(method, epochs=1).fit(synthetic_arrays(n=N_WINDOWS), run_dir=tmp_path)
    resumed = make_model(method, epochs=2).fit(synthetic_arrays(n=N_WINDOWS), run_dir=tmp_path, resume=True)
    for key, value in weights(model).items():
        torch.testing.assert_close(weights(resumed)[key], value, rtol=0, atol=0, msg=key)


def test_every_protocol_runs_and_records_name_the_method(fitted: tuple[str, CroSSL, Path]) -> None:
    method, model, _ = fitted
    windows = windows_with_labels()
    split = split_by_subjects(windows.subjects, {"train": [0, 1, 2, 3], "val": [4], "test": [5]})
    config = EvalConfig(protocols=PROTOCOL_NAMES, label_fractions=(0.5, 1.0), seeds=(0,), steps=3, epochs=0)
    records = model.evaluate(windows, split, config)
    assert {(r["protocol"], r["label_fraction"]) for r in records} == {
        (p, f) for p in PROTOCOL_NAMES for f in (0.5, 1.0)}
    expected_source = "aggregator" if method_class(method).trains_aggregator else "concat"
    for r in records:
        assert r["method"] == (None if r["protocol"] == "supervised" else method)
        assert r["head_input"] == expected_source
        assert 0.0 <= r["macro_f1"] <= 1.0


def test_same_seed_gives_the_same_weights(fitted: tuple[str, CroSSL, Path]) -> None:
    method, model, _ = fitted
    again = make_model(method).fit(synthetic_arrays(n=N_WINDOWS))
    for key, value in weights(model).items():
        torch.testing.assert_close(weights(again)[key], value, rtol=0, atol=0, msg=key)


def test_option_of_another_method_is_refused() -> None:
    with pytest.raises(CrosslError, match="options of method 'simclr' must be a SimCLROptions"):
        CroSSL(method="simclr", options=options_for("crossl"))


def test_unknown_method_is_refused() -> None:
    with pytest.raises(CrosslError, match="unknown method 'byol'"):
        CroSSL(method="byol")


def test_cocoa_with_one_modality_is_refused_before_training() -> None:
    model = make_model("cocoa")
    with pytest.raises(CrosslError, match="cocoa needs at least 2 modalities"):
        model.fit({"acc": synthetic_arrays()["acc"]})
    assert model.backbone is None


def test_rotation_without_a_three_axis_modality_is_refused() -> None:
    options = options_for("simclr", {"augmentations": ["rotation"]})
    model_config, pretrain, trainer = small_model_configs()
    model = CroSSL(model_config, pretrain, trainer, method="simclr", options=options)
    with pytest.raises(CrosslError, match="rotation"):
        model.fit({"ecg": synthetic_arrays()["ecg"]})
