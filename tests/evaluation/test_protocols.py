"""Evaluation does what it claims: probes learn separable features, finetune and supervised start
where they say, and frozen features are the rows of the labeled windows they stand for."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from conftest import small_model_configs, synthetic_arrays

import crossl.evaluation.label_efficiency as label_efficiency
import crossl.evaluation.protocols as protocols
from crossl.api import CroSSL
from crossl.config import EvalConfig, TrainerConfig
from crossl.data.batches import WindowBatches
from crossl.data.container import WindowSet
from crossl.data.splits import split_by_subjects
from crossl.data.subject_norm import prepared_inputs
from crossl.evaluation.features import compute_features
from crossl.evaluation.metrics import classification_metrics
from crossl.models.heads import mlp_head
from crossl.training import ClassifierModule


def test_linear_probe_scores_about_one_on_separable_features() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(4, 8))
    y_train, y_test = rng.integers(0, 4, 200), rng.integers(0, 4, 400)
    x_train = centres[y_train] + rng.normal(size=(200, 8))
    x_test = centres[y_test] + rng.normal(size=(400, 8))
    (predictions,) = protocols.linear_probe(x_train, y_train, [x_test], seed=0)
    assert classification_metrics(y_test, predictions, 4)["macro_f1"] > 0.98


def test_linear_probe_is_at_chance_on_shuffled_labels() -> None:
    """The check above can fail: labels unrelated to the features give chance-level scores."""
    rng = np.random.default_rng(1)
    x_train, x_test = rng.normal(size=(200, 8)), rng.normal(size=(400, 8))
    (predictions,) = protocols.linear_probe(x_train, rng.integers(0, 4, 200), [x_test], seed=0)
    assert classification_metrics(rng.integers(0, 4, 400), predictions, 4)["macro_f1"] < 0.4


@pytest.fixture(scope="module")
def pretrained() -> CroSSL:
    return CroSSL(*small_model_configs(epochs=1)).fit(synthetic_arrays(n=48))


def labeled_set() -> tuple[WindowSet, Any]:
    windows = WindowSet.from_arrays(synthetic_arrays(n=48), labels=np.arange(48) % 3, subjects=np.arange(48) % 6,
                                    class_names=["a", "b", "c"])
    return windows, split_by_subjects(windows.subjects, {"train": [0, 1, 2, 3], "val": [4], "test": [5]})


def prepared_module(protocol: str, model: CroSSL, monkeypatch: pytest.MonkeyPatch,
                    config: EvalConfig | None = None) -> ClassifierModule:
    """The module ``protocol`` would train, as it stands before its first step (training is skipped)."""
    seen: list[ClassifierModule] = []

    def capture(module: ClassifierModule, labeled: Any, tests: Any, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        seen.append(module)
        return [np.zeros(len(test), dtype=np.int64) for test in tests]

    monkeypatch.setattr(protocols, "train_classifier", capture)
    windows, split = labeled_set()
    batches = WindowBatches(windows, model.stats, split.train)  # type: ignore[arg-type]
    protocols.run_protocol(protocol, pretrained=model.backbone, model_config=model.model_config, labeled=batches,
                           tests=[batches], frozen_features=None, num_classes=3, source="aggregator",
                           config=config or EvalConfig(), trainer_config=TrainerConfig(progress=False), seed=0)
    return seen[0]


def starting_weights(protocol: str, model: CroSSL, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """The backbone weights ``protocol`` starts training from."""
    return dict(prepared_module(protocol, model, monkeypatch).backbone.state_dict())  # type: ignore[union-attr]


def test_finetune_starts_from_the_pretrained_weights(pretrained: CroSSL, monkeypatch: pytest.MonkeyPatch) -> None:
    start = starting_weights("finetune", pretrained, monkeypatch)
    for key, value in pretrained.backbone.state_dict().items():  # type: ignore[union-attr]
        torch.testing.assert_close(start[key], value, rtol=0, atol=0)


def test_supervised_starts_from_fresh_weights(pretrained: CroSSL, monkeypatch: pytest.MonkeyPatch) -> None:
    start = starting_weights("supervised", pretrained, monkeypatch)
    reference = pretrained.backbone.state_dict()  # type: ignore[union-attr]
    differing = [k for k in reference if k.endswith("weight") and not torch.equal(start[k], reference[k])]
    assert len(differing) >= len([k for k in reference if k.endswith("conv.weight")])


def test_finetune_leaves_the_pretrained_model_untouched(pretrained: CroSSL) -> None:
    before = {k: v.clone() for k, v in pretrained.backbone.state_dict().items()}  # type: ignore[union-attr]
    windows, split = labeled_set()
    pretrained.evaluate(windows, split, EvalConfig(protocols=("finetune",), label_fractions=(1.0,), seeds=(0,),
                                                   steps=3, epochs=0))
    for key, value in pretrained.backbone.state_dict().items():  # type: ignore[union-attr]
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_frozen_features_are_the_rows_of_the_labeled_windows(pretrained: CroSSL,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    windows, split = labeled_set()
    given: list[tuple[np.ndarray, torch.Tensor]] = []
    original = label_efficiency.run_protocol

    def capture(protocol: str, **kwargs: Any) -> list[np.ndarray]:
        given.append((kwargs["labeled"].indices.copy(), kwargs["frozen_features"][0]))
        return original(protocol, **kwargs)

    monkeypatch.setattr(label_efficiency, "run_protocol", capture)
    pretrained.evaluate(windows, split, EvalConfig(protocols=("linear",), label_fractions=(0.25, 1.0), seeds=(0, 1)))
    assert len(given) == 4
    inputs = prepared_inputs(windows, pretrained.model_config.input_norm)  # what the model reads
    for rows, features in given:
        direct = compute_features(pretrained.backbone, WindowBatches(inputs, pretrained.stats, rows),  # type: ignore[arg-type]
                                  "aggregator")
        torch.testing.assert_close(features, direct, rtol=1e-5, atol=1e-6)


def test_removed_modalities_are_scored_without_retraining_and_change_the_score(pretrained: CroSSL) -> None:
    """One classifier per label subset, scored on the full test windows and on each removal: the full
    record equals a run without removals, and hiding a modality changes what the classifier sees."""
    windows, split = labeled_set()
    config = EvalConfig(protocols=("linear",), label_fractions=(1.0,), seeds=(0,))
    plain = pretrained.evaluate(windows, split, config)
    records = label_efficiency.evaluate_label_efficiency(
        windows, split, {0: {1.0: split.train}}, pretrained, config, TrainerConfig(progress=False),
        pretrained.model_config, missing=[("acc",), ("ecg",)])
    assert [r["missing"] for r in records] == [[], ["acc"], ["ecg"]]
    assert records[0]["macro_f1"] == plain[0]["macro_f1"]
    full, no_acc = (compute_features(pretrained.backbone, WindowBatches(w, pretrained.stats, split.test), "aggregator")  # type: ignore[arg-type]
                    for w in (windows, label_efficiency.without_modalities(windows, ["acc"])))
    assert not torch.allclose(full, no_acc)


def test_removing_an_unknown_modality_is_refused(pretrained: CroSSL) -> None:
    windows, _ = labeled_set()
    with pytest.raises(Exception, match="cannot remove modalities"):
        label_efficiency.without_modalities(windows, ["eeg"])


def test_scoring_on_validation_uses_the_validation_windows(pretrained: CroSSL) -> None:
    windows, split = labeled_set()
    config = EvalConfig(protocols=("linear",), label_fractions=(1.0,), seeds=(0,))
    records = label_efficiency.evaluate_label_efficiency(
        windows, split, {0: {1.0: split.train}}, pretrained, config, TrainerConfig(progress=False),
        pretrained.model_config, score_part="val")
    assert records[0]["scored_on"] == "validation"
    features = compute_features(pretrained.backbone, WindowBatches(windows, pretrained.stats, split.train), "aggregator")  # type: ignore[arg-type]
    val = compute_features(pretrained.backbone, WindowBatches(windows, pretrained.stats, split.val), "aggregator")  # type: ignore[arg-type]
    (predicted,) = protocols.linear_probe(features.numpy(), windows.labels[split.train], [val.numpy()], seed=0)
    assert records[0]["macro_f1"] == classification_metrics(windows.labels[split.val], predicted, 3)["macro_f1"]


def test_windows_without_a_class_are_left_out_of_the_score(pretrained: CroSSL) -> None:
    """A dataset that keeps its unlabeled windows (label -1) is scored on its labeled ones only: the
    same score as the set without them."""
    windows, split = labeled_set()
    labels = windows.labels.copy()
    unlabeled_test = split.test[::2]
    labels[unlabeled_test] = -1
    with_pool = WindowSet(windows.modalities, windows.presence, labels, windows.subjects, windows.meta)
    config = EvalConfig(protocols=("linear",), label_fractions=(1.0,), seeds=(0,))
    kept = np.setdiff1d(np.arange(len(windows)), unlabeled_test)
    without = windows.subset(kept)
    split_without = split_by_subjects(without.subjects, {"train": [0, 1, 2, 3], "val": [4], "test": [5]})
    scored = label_efficiency.evaluate_label_efficiency(
        with_pool, split, {0: {1.0: split.train}}, pretrained, config, TrainerConfig(progress=False),
        pretrained.model_config)
    reference = label_efficiency.evaluate_label_efficiency(
        without, split_without, {0: {1.0: split_without.train}}, pretrained, config, TrainerConfig(progress=False),
        pretrained.model_config)
    assert scored[0]["macro_f1"] == reference[0]["macro_f1"]
    assert scored[0]["accuracy"] == reference[0]["accuracy"]


def finetuned_backbone(model: CroSSL, steps: int, head_warmup_steps: int) -> dict[str, torch.Tensor]:
    """The backbone weights after ``steps`` fine-tuning steps of which the first ``head_warmup_steps`` train the head alone."""
    windows, split = labeled_set()
    batches = WindowBatches(windows, model.stats, split.train)  # type: ignore[arg-type]
    backbone = copy.deepcopy(model.backbone).train()  # type: ignore[union-attr]
    module = ClassifierModule(mlp_head(backbone.feature_dim("aggregator"), 3), backbone, total_steps=steps,
                              head_warmup_steps=head_warmup_steps)
    protocols.train_classifier(module, batches, [], EvalConfig(batch_size=8), TrainerConfig(progress=False), seed=0)
    return {k: v.detach().clone() for k, v in module.backbone.state_dict().items()}  # type: ignore[union-attr]


def test_head_warmup_keeps_the_backbone_frozen_for_its_steps(pretrained: CroSSL) -> None:
    after = finetuned_backbone(pretrained, steps=4, head_warmup_steps=4)
    for key, value in pretrained.backbone.state_dict().items():  # type: ignore[union-attr]
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)


def test_backbone_trains_after_the_head_warmup(pretrained: CroSSL) -> None:
    after = finetuned_backbone(pretrained, steps=6, head_warmup_steps=4)
    reference = pretrained.backbone.state_dict()  # type: ignore[union-attr]
    assert any(not torch.equal(after[k], reference[k]) for k in reference if k.endswith("weight"))


def test_head_warmup_is_a_share_of_the_finetuning_budget_only(pretrained: CroSSL, monkeypatch: pytest.MonkeyPatch) -> None:
    config = EvalConfig(steps=200, epochs=0, head_warmup=0.25, label_smoothing=0.1)
    finetune = prepared_module("finetune", pretrained, monkeypatch, config)
    supervised = prepared_module("supervised", pretrained, monkeypatch, config)
    assert (finetune.total_steps, finetune.head_warmup_steps) == (200, 50)
    assert (supervised.total_steps, supervised.head_warmup_steps) == (200, 0)
    assert finetune.label_smoothing == supervised.label_smoothing == 0.1
