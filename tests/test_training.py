"""Lightning training: determinism, checkpoints, resume."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import small_model_configs, synthetic_arrays

from crossl.api import CroSSL
from crossl.errors import CrosslError
from crossl import training
from crossl.config import TrainerConfig
from crossl.training import IndexBatchSampler, classifier_lr_factor, resolve_precision


def epoch_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "logs" / "metrics.csv", newline="") as fh:
        return [float(r["train/loss"]) for r in csv.DictReader(fh) if r.get("train/loss")]


def test_same_seed_gives_same_loss_trajectory(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        CroSSL(*small_model_configs(epochs=3)).fit(synthetic_arrays(), run_dir=tmp_path / name)
        runs.append(epoch_losses(tmp_path / name))
    assert len(runs[0]) == 3
    assert runs[0] == runs[1]


def test_bf16_training_is_deterministic_and_finite(tmp_path: Path) -> None:
    losses = []
    for run in ("a", "b"):
        model, pretrain, trainer = small_model_configs(epochs=2)
        trainer.precision = "bf16-mixed"
        CroSSL(model, pretrain, trainer).fit(synthetic_arrays(), run_dir=tmp_path / run)
        losses.append(epoch_losses(tmp_path / run))
    assert losses[0] and all(math.isfinite(v) for v in losses[0])
    assert losses[0] == losses[1]


def test_other_seed_gives_other_loss_trajectory(tmp_path: Path) -> None:
    model, pretrain, trainer = small_model_configs(epochs=2)
    CroSSL(model, pretrain, trainer).fit(synthetic_arrays(), run_dir=tmp_path / "a")
    pretrain.seed = 1
    CroSSL(model, pretrain, trainer).fit(synthetic_arrays(), run_dir=tmp_path / "b")
    assert epoch_losses(tmp_path / "a") != epoch_losses(tmp_path / "b")


def test_compile_option_trains_with_fused_encoders_to_the_eager_trajectory(tmp_path: Path) -> None:
    # --compile fuses the eager kernels' maths, dropout draws included: it follows the eager trajectory
    eager_model, eager_pretrain, eager_trainer = small_model_configs(epochs=2)
    eager_model.elementwise = "eager"
    eager = CroSSL(eager_model, eager_pretrain, eager_trainer)
    eager.fit(synthetic_arrays(), run_dir=tmp_path / "eager")
    model, pretrain, trainer = small_model_configs(epochs=2)
    trainer.compile = True
    compiled = CroSSL(model, pretrain, trainer)
    compiled.fit(synthetic_arrays(), run_dir=tmp_path / "compiled")
    blocks = [m for m in compiled.backbone.modules() if hasattr(m, "fused")]
    assert blocks and all(b.fused for b in blocks)
    assert epoch_losses(tmp_path / "compiled") == pytest.approx(epoch_losses(tmp_path / "eager"), rel=1e-4)


def test_fit_writes_last_and_best_checkpoints(tmp_path: Path) -> None:
    CroSSL(*small_model_configs(epochs=2)).fit(synthetic_arrays(), run_dir=tmp_path)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()


def test_resume_continues_to_the_same_weights(tmp_path: Path) -> None:
    model, pretrain, trainer = small_model_configs(epochs=4)
    straight = CroSSL(model, pretrain, trainer).fit(synthetic_arrays(), run_dir=tmp_path / "straight")
    pretrain_short = type(pretrain)(**{**pretrain.__dict__, "epochs": 2})
    CroSSL(type(model)(**model.__dict__), pretrain_short, trainer).fit(synthetic_arrays(), run_dir=tmp_path / "split")
    resumed = CroSSL(type(model)(**model.__dict__), pretrain, trainer).fit(
        synthetic_arrays(), run_dir=tmp_path / "split", resume=True)
    for (name, a), b in zip(straight.backbone.state_dict().items(), resumed.backbone.state_dict().values()):
        torch.testing.assert_close(a, b, msg=f"parameter {name} differs after resume")


def test_resume_from_checkpoint_of_another_config_is_an_error(tmp_path: Path) -> None:
    CroSSL(*small_model_configs(epochs=1)).fit(synthetic_arrays(), run_dir=tmp_path)
    model, pretrain, trainer = small_model_configs(epochs=2)
    model.dim = 24
    with pytest.raises(CrosslError, match="another model config"):
        CroSSL(model, pretrain, trainer).fit(synthetic_arrays(), run_dir=tmp_path, resume=True)


def test_batch_sampler_with_budget_yields_that_many_full_batches() -> None:
    sampler = IndexBatchSampler(10, 4, shuffle=True, seed=0, num_batches=7)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7
    assert all(1 <= len(b) <= 4 for b in batches)
    assert sorted(torch.cat(batches[:3]).tolist()) == list(range(10))


def test_batch_sampler_reshuffles_per_epoch() -> None:
    sampler = IndexBatchSampler(50, 50, shuffle=True, seed=0)
    first = next(iter(sampler)).tolist()
    sampler.set_epoch(1)
    assert next(iter(sampler)).tolist() != first


def test_classifier_lr_is_zero_before_its_start_then_decays_from_one_to_zero() -> None:
    assert [classifier_lr_factor(s, total=10, start=4) for s in (0, 3)] == [0.0, 0.0]
    assert classifier_lr_factor(4, total=10, start=4) == 1.0
    assert classifier_lr_factor(7, total=10, start=4) == pytest.approx(0.5)
    assert classifier_lr_factor(10, total=10, start=4) == pytest.approx(0.0)


def test_classifier_lr_from_step_zero_is_the_plain_cosine() -> None:
    for step in range(12):
        assert classifier_lr_factor(step, total=12) == 0.5 * (1.0 + math.cos(math.pi * step / 12))


@pytest.mark.parametrize(("has_bf16", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_precision_is_bf16_exactly_on_a_cpu_with_bf16_instructions(
        monkeypatch: pytest.MonkeyPatch, has_bf16: bool, expected: str) -> None:
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: has_bf16)
    assert resolve_precision(TrainerConfig(accelerator="cpu", precision="auto")) == expected


def test_auto_precision_is_float32_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    assert resolve_precision(TrainerConfig(accelerator="gpu", precision="auto")) == "32-true"


def test_a_named_precision_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: True)
    assert resolve_precision(TrainerConfig(accelerator="cpu", precision="32-true")) == "32-true"
