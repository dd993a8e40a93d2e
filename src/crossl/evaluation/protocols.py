"""Downstream protocols, named so nobody confuses them.

- ``linear``: logistic regression on frozen features (computed once per model, reused);
- ``mlp``: the release's frozen-encoder probe (128 hidden units, dropout 0.1) on frozen features;
- ``finetune``: the pretrained backbone and an MLP head, everything trainable;
- ``supervised``: the same backbone and head from random initialisation (the baseline).

Trainable protocols run a fixed budget of optimiser steps (:func:`step_budget`) and
are scored at their last step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch.utils.data import Dataset

from crossl.config import EvalConfig, ModelConfig, TrainerConfig
from crossl.data.batches import WindowBatches
from crossl.models.backbone import CrossModalBackbone
from crossl.models.heads import mlp_head
from crossl.training import ClassifierModule, TensorBatches, batch_loader, build_trainer

#: protocol -> what it starts from: "frozen" features of the pretrained model, the "pretrained"
#: weights (trained further), or "scratch" (a freshly initialised backbone; no pretraining used).
PROTOCOLS: dict[str, str] = {"linear": "frozen", "mlp": "frozen", "finetune": "pretrained", "supervised": "scratch"}


def step_budget(config: EvalConfig, num_labeled: int) -> int:
    """Optimiser steps of a trainable protocol on ``num_labeled`` windows."""
    return max(config.steps, config.epochs * math.ceil(num_labeled / config.batch_size))


def head_warmup_steps(config: EvalConfig, total_steps: int) -> int:
    """Fine-tuning's first steps that train the head alone (:attr:`EvalConfig.head_warmup`)."""
    return int(config.head_warmup * total_steps)


def uses_pretrained(protocol: str) -> bool:
    return PROTOCOLS[protocol] != "scratch"


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, tests_x: Sequence[np.ndarray], seed: int) -> list[np.ndarray]:
    """Standardised multinomial logistic regression; returns its predictions on each test set."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(train_x, train_y)
    return [clf.predict(x) for x in tests_x]


def train_classifier(module: ClassifierModule, labeled: Dataset, tests: Sequence[Dataset], config: EvalConfig,
                     trainer_config: TrainerConfig, seed: int) -> list[np.ndarray]:
    """Train ``module`` for ``module.total_steps`` steps on ``labeled``; return its predictions on each of ``tests``."""
    steps = module.total_steps
    trainer = build_trainer(trainer_config, None, max_epochs=1, max_steps=steps, progress=False, validate=False)
    loader = batch_loader(labeled, config.batch_size, shuffle=True, seed=seed, num_batches=steps)
    trainer.fit(module, train_dataloaders=loader)
    outputs = []
    for test in tests:
        predictions = trainer.predict(module, batch_loader(test, 1024, shuffle=False))
        outputs.append(torch.cat(predictions).cpu().numpy())  # type: ignore[arg-type]
    return outputs


def run_protocol(
    protocol: str,
    *,
    pretrained: CrossModalBackbone | None,
    model_config: ModelConfig,
    labeled: WindowBatches,
    tests: Sequence[WindowBatches],
    frozen_features: tuple[torch.Tensor, Sequence[torch.Tensor]] | None,
    num_classes: int,
    source: str,
    config: EvalConfig,
    trainer_config: TrainerConfig,
    seed: int,
) -> list[np.ndarray]:
    """Predictions of one protocol trained on ``labeled``, on each of ``tests`` (one training, several
    test sets: e.g. the test split with and without some modalities).

    ``frozen_features``: ``(labeled_features, [features of each test set])`` for ``linear`` and ``mlp``;
    ``source``: the features the trainable heads read (``aggregator`` or ``concat``).
    """
    L.seed_everything(seed, workers=False, verbose=False)
    steps = step_budget(config, len(labeled))
    if protocol in ("linear", "mlp"):
        assert frozen_features is not None
        train_x, tests_x = frozen_features
        if protocol == "linear":
            return linear_probe(train_x.numpy(), labeled.labels, [x.numpy() for x in tests_x], seed)
        head = mlp_head(train_x.shape[1], num_classes)
        module = ClassifierModule(head, backbone=None, lr=config.lr, total_steps=steps,
                                  label_smoothing=config.label_smoothing)
        train = TensorBatches({"features": train_x, "labels": torch.from_numpy(labeled.labels)})
        test_sets = [TensorBatches({"features": x, "labels": torch.from_numpy(t.labels)}) for x, t in zip(tests_x, tests)]
        return train_classifier(module, train, test_sets, config, trainer_config, seed)
    if protocol == "finetune":
        assert pretrained is not None
        backbone = copy.deepcopy(pretrained).train()
    else:
        backbone = CrossModalBackbone(model_config)
    head = mlp_head(backbone.feature_dim(source), num_classes)
    finetunes = protocol == "finetune"
    module = ClassifierModule(head, backbone, source=source, train_backbone=True, lr=config.lr,
                              backbone_lr_scale=config.backbone_lr_scale if finetunes else 1.0, total_steps=steps,
                              modality_dropout=config.modality_dropout, seed=seed,
                              head_warmup_steps=head_warmup_steps(config, steps) if finetunes else 0,
                              label_smoothing=config.label_smoothing)
    return train_classifier(module, labeled, tests, config, trainer_config, seed)
