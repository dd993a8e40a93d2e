"""RunConfig: YAML round trip, unknown keys, validation."""

from __future__ import annotations

import pytest

from crossl.config import EvalConfig, ModelConfig, PretrainConfig, RunConfig
from crossl.errors import CrosslError


def _custom_config() -> RunConfig:
    return RunConfig(
        dataset="my_dir",
        model=ModelConfig(modality_channels={"acc": 3, "ecg": 1}, dim=64, kernel_sizes=(9, 5, 3),
                          aggregator="attention", mask_token=True),
        pretrain=PretrainConfig(epochs=3, batch_size=32, mask_strategy="feature", mask_ratio=0.25, seed=7),
        evaluation=EvalConfig(protocols=("linear", "mlp"), label_fractions=(0.05, 1.0), seeds=(4,),
                              head_input="concat"),
    )


def test_save_load_yaml_round_trip(tmp_path):
    config = _custom_config()
    path = tmp_path / "run" / "config.yaml"
    config.save(path)
    loaded = RunConfig.load(path)
    assert loaded == config
    assert isinstance(loaded.model.kernel_sizes, tuple)
    assert isinstance(loaded.evaluation.label_fractions, tuple)


def test_default_config_round_trip(tmp_path):
    RunConfig().save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml") == RunConfig()


def test_saved_yaml_is_plain(tmp_path):
    _custom_config().save(tmp_path / "c.yaml")
    text = (tmp_path / "c.yaml").read_text()
    assert "!!python" not in text
    assert "kernel_sizes:" in text


def test_empty_yaml_gives_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("")
    assert RunConfig.load(tmp_path / "c.yaml") == RunConfig()


def test_partial_yaml_keeps_other_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("pretrain:\n  epochs: 2\nevaluation:\n  seeds: 5\n")
    config = RunConfig.load(tmp_path / "c.yaml")
    assert config.pretrain.epochs == 2
    assert config.pretrain.batch_size == PretrainConfig().batch_size
    assert config.evaluation.seeds == (5,)


def test_unknown_top_level_key_raises():
    with pytest.raises(CrosslError, match=r"unknown config key\(s\) \['epochs'\]"):
        RunConfig.from_dict({"epochs": 3})


def test_unknown_nested_key_raises(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  dims: 32\n")
    with pytest.raises(CrosslError, match=r"unknown config\.model key\(s\) \['dims'\]"):
        RunConfig.load(tmp_path / "c.yaml")


def test_non_mapping_section_raises():
    with pytest.raises(CrosslError, match="config.pretrain must be a mapping"):
        RunConfig.from_dict({"pretrain": [1, 2]})


def test_malformed_yaml_raises(tmp_path):
    (tmp_path / "c.yaml").write_text("model: [unclosed\n")
    with pytest.raises(CrosslError, match="cannot read config"):
        RunConfig.load(tmp_path / "c.yaml")


def test_missing_file_raises(tmp_path):
    with pytest.raises(CrosslError, match="cannot read config"):
        RunConfig.load(tmp_path / "absent.yaml")


def test_validate_accepts_defaults_and_custom():
    RunConfig().validate()
    _custom_config().validate()


def test_validate_rejects_unknown_masking_strategy():
    config = RunConfig()
    config.pretrain.mask_strategy = "temporal"
    with pytest.raises(CrosslError, match="unknown masking strategy 'temporal'"):
        config.validate()


def test_validate_rejects_masking_ratio_of_one():
    config = RunConfig()
    config.pretrain.mask_ratio = 1.0
    with pytest.raises(CrosslError, match="masking ratio"):
        config.validate()


def test_validate_rejects_unknown_protocol():
    config = RunConfig()
    config.evaluation.protocols = ("linear", "knn")
    with pytest.raises(CrosslError, match=r"unknown protocol\(s\) \['knn'\]"):
        config.validate()


def test_validate_rejects_unknown_aggregator():
    config = RunConfig()
    config.model.aggregator = "gru"
    with pytest.raises(CrosslError, match="unknown aggregator 'gru'"):
        config.validate()


def test_validate_rejects_unknown_head_input():
    config = RunConfig()
    config.evaluation.head_input = "encoder"
    with pytest.raises(CrosslError, match="head input 'encoder'"):
        config.validate()


def test_validate_rejects_batch_size_one():
    config = RunConfig()
    config.pretrain.batch_size = 1
    with pytest.raises(CrosslError, match="batch size must be at least 2"):
        config.validate()
