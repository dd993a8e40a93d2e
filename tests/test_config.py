"""RunConfig: YAML round trip, unknown keys, validation."""

from __future__ import annotations

import pytest

from crossl.config import EvalConfig, ModelConfig, PretrainConfig, RunConfig
from crossl.errors import CrosslError
from crossl.method_options import CroSSLOptions, SimCLROptions


def _custom_config() -> RunConfig:
    return RunConfig(
        dataset="my_dir",
        model=ModelConfig(modality_channels={"acc": 3, "ecg": 1}, dim=64, kernel_sizes=(9, 5, 3),
                          aggregator="attention", mask_token=True),
        pretrain=PretrainConfig(epochs=3, batch_size=32, seed=7),
        options=CroSSLOptions(mask_strategy="feature", mask_ratio=0.25),
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
    config.options.mask_strategy = "temporal"
    with pytest.raises(CrosslError, match=r"crossl.mask_strategy: unknown value 'temporal'; use one of \['modality'"):
        config.validate()


def test_validate_rejects_masking_ratio_of_one():
    config = RunConfig()
    config.options.mask_ratio = 1.0
    with pytest.raises(CrosslError, match="masking ratio"):
        config.validate()


def test_validate_rejects_unknown_protocol():
    config = RunConfig()
    config.evaluation.protocols = ("linear", "knn")
    with pytest.raises(CrosslError, match=r"evaluation.protocols: unknown value\(s\) \['knn'\]"):
        config.validate()


def test_validate_rejects_unknown_aggregator():
    config = RunConfig()
    config.model.aggregator = "gru"
    with pytest.raises(CrosslError, match="model.aggregator: unknown value 'gru'"):
        config.validate()


def test_validate_rejects_unknown_head_input():
    config = RunConfig()
    config.evaluation.head_input = "encoder"
    with pytest.raises(CrosslError, match="evaluation.head_input: unknown value 'encoder'"):
        config.validate()


def test_validate_rejects_batch_size_one():
    config = RunConfig()
    config.pretrain.batch_size = 1
    with pytest.raises(CrosslError, match="pretrain.batch_size: must be at least 2"):
        config.validate()


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("pretrain:\n  epochs: two\n", "pretrain.epochs must be an integer, got the string 'two'"),
    ("pretrain:\n  lr: 1e-3\n", "pretrain.lr must be a number, got the string '1e-3'"),
    ("pretrain:\n  batch_size: '64'\n", "pretrain.batch_size must be an integer"),
    ("evaluation:\n  label_fractions: '0.1,1'\n", "evaluation.label_fractions must be a list of a number"),
    ("evaluation:\n  seeds: '0'\n", "evaluation.seeds must be a list of an integer"),
    ("evaluation:\n  seeds: []\n", "evaluation.seeds: must not be empty"),
    ("evaluation:\n  label_fractions: [0.0]\n", "fractions must lie in \\(0, 1\\]"),
    ("model:\n  mask_token: 1\n", "model.mask_token must be true or false"),
    ("pretrain:\n  epochs: -1\n", "pretrain.epochs: must be zero or positive"),
    ("evaluation:\n  head_warmup: 1.0\n", "evaluation.head_warmup: is a fraction of the step budget in \\[0, 1\\)"),
    ("evaluation:\n  label_smoothing: -0.1\n", "evaluation.label_smoothing: must lie in \\[0, 1\\)"),
])
def test_yaml_values_are_type_and_range_checked(tmp_path, yaml_text, message):
    (tmp_path / "c.yaml").write_text(yaml_text)
    with pytest.raises(CrosslError, match=message):
        RunConfig.load(tmp_path / "c.yaml")


def test_integers_stand_for_floats_and_devices():
    config = RunConfig.from_dict({"pretrain": {"lr": 1}, "trainer": {"devices": 2}})
    assert config.pretrain.lr == 1.0 and isinstance(config.pretrain.lr, float)
    assert config.trainer.devices == "2"


def test_method_options_are_the_section_named_after_the_method(tmp_path):
    config = RunConfig()
    config.set_method("simclr")
    config.options.temperature = 0.5
    config.save(tmp_path / "c.yaml")
    text = (tmp_path / "c.yaml").read_text()
    assert "method: simclr" in text and "simclr:\n  temperature: 0.5" in text
    loaded = RunConfig.load(tmp_path / "c.yaml")
    assert loaded.method == "simclr" and loaded.options == SimCLROptions(temperature=0.5)


def test_section_of_another_method_is_refused():
    with pytest.raises(CrosslError, match=r"section\(s\) \['crossl'\] belong to other methods than 'simclr'"):
        RunConfig.from_dict({"method": "simclr", "crossl": {"mask_ratio": 0.2}})


def test_option_of_another_method_names_its_owner():
    with pytest.raises(CrosslError, match="'mask_strategy' is an option of \\['crossl'\\]"):
        RunConfig.from_dict({"method": "simclr", "simclr": {"mask_strategy": "modality"}})


def test_unknown_method_is_refused():
    with pytest.raises(CrosslError, match="unknown method 'byol'"):
        RunConfig.from_dict({"method": "byol"})


def test_config_module_is_a_leaf():
    """crossl.config imports neither torch nor any registry: `crossl --help` stays fast."""
    import subprocess
    import sys

    code = ("import sys, crossl.config, crossl.cli; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('crossl.methods', 'crossl.models'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_split_fold_round_trips_and_must_not_be_negative(tmp_path):
    config = RunConfig.from_dict({"split": {"fold": 3}})
    assert config.split.fold == 3
    config.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml").split.fold == 3
    with pytest.raises(CrosslError, match=r"split\.fold"):
        RunConfig.from_dict({"split": {"fold": -1}})


def test_split_val_subjects_round_trip_as_a_tuple_and_refuse_a_negative_id(tmp_path):
    config = RunConfig.from_dict({"split": {"val_subjects": [17, 18]}})
    assert config.split.val_subjects == (17, 18)
    config.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml").split.val_subjects == (17, 18)
    with pytest.raises(CrosslError, match=r"split\.val_subjects"):
        RunConfig.from_dict({"split": {"val_subjects": [3, -1]}})
