"""The recipe levers (expander, aggregator LayerNorm, learning-rate schedule) do what they say and
keep a resumed run exact."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import small_model_configs, synthetic_arrays
from torch import nn

from crossl.api import CroSSL
from crossl.config import PretrainConfig, RunConfig
from crossl.errors import CrosslError
from crossl.method_options import CroSSLOptions
from crossl.methods.base import lr_factor
from crossl.methods.crossl import expander_mlp


def test_warm_up_rises_linearly_and_cosine_reaches_zero_at_the_last_step() -> None:
    assert [lr_factor(s, total=100, warmup=4, cosine=True) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 100, 4, True) == pytest.approx(1.0)
    assert lr_factor(52, 100, 4, True) == pytest.approx(0.5)
    assert lr_factor(100, 100, 4, True) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(70, 100, 0, False) == 1.0


def test_the_expander_is_vicregs_shape() -> None:
    layers = list(expander_mlp(32, (64, 64, 16)))
    kinds = [type(m) for m in layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert layers[0].in_features == 32 and layers[-1].out_features == 16


def recipe_model(epochs: int) -> CroSSL:
    model, pretrain, trainer = small_model_configs(epochs=epochs)
    return CroSSL(replace(model, aggregator_norm=False),
                  replace(pretrain, lr_schedule="cosine", warmup_epochs=1.0), trainer, method="crossl",
                  options=CroSSLOptions(expander=(24, 24), sim_weight=25.0, var_weight=25.0, cov_weight=1.0))


def test_a_recipe_run_exports_the_backbone_only_without_the_final_layernorm(tmp_path: Path) -> None:
    model = recipe_model(epochs=2).fit(synthetic_arrays(n=48), run_dir=tmp_path)
    assert model.backbone is not None
    assert not any("expander" in k for k in model.backbone.state_dict())
    assert not any(isinstance(m, nn.LayerNorm) for m in model.backbone.aggregator.modules())
    loaded = CroSSL.load(model.save(tmp_path / "model"))
    assert loaded.options.expander == (24, 24) and loaded.model_config.aggregator_norm is False
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert any(k.startswith("expander.") for k in checkpoint["state_dict"])  # resumable: kept in checkpoints
    rates = [s["_last_lr"][0] for s in checkpoint["lr_schedulers"]]
    assert rates and rates[0] < model.pretrain_config.lr  # decayed from the peak by the end


def test_a_resumed_recipe_run_ends_at_the_same_weights(tmp_path: Path) -> None:
    straight = recipe_model(epochs=2).fit(synthetic_arrays(n=48))
    recipe_model(epochs=1).fit(synthetic_arrays(n=48), run_dir=tmp_path)
    resumed = recipe_model(epochs=2).fit(synthetic_arrays(n=48), run_dir=tmp_path, resume=True)
    assert straight.backbone is not None and resumed.backbone is not None
    for key, value in straight.backbone.state_dict().items():
        torch.testing.assert_close(resumed.backbone.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_bad_recipe_values_are_refused_in_one_line() -> None:
    with pytest.raises(CrosslError, match="crossl.expander: widths must be positive"):
        RunConfig.from_dict({"crossl": {"expander": [64, 0]}})
    with pytest.raises(CrosslError, match="pretrain.lr_schedule"):
        RunConfig.from_dict({"pretrain": {"lr_schedule": "step"}})
    with pytest.raises(CrosslError, match="pretrain.warmup_epochs"):
        PretrainConfig(warmup_epochs=-1).check()
    assert math.isfinite(RunConfig.from_dict({"pretrain": {"warmup_epochs": 2}}).pretrain.warmup_epochs)
