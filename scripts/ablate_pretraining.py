"""Pretraining ablation on HAPT: one variant per call, one JSON line of downstream scores.

Pretrains CroSSL on the training split (subjects 1-20) with the given PretrainConfig/ModelConfig
overrides, then scores on the test subjects (25-30), seed 0:
- a linear probe (logistic regression) on frozen aggregator and concatenated-encoder features at
  1%, 10% and 100% labels;
- fine-tuning at 1% and 10% labels with the EvalConfig overrides.

    python scripts/ablate_pretraining.py NAME '{"batch_size": 64}' ['{"steps": 300}']
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import numpy as np

from crossl.api import CroSSL
from crossl.config import EvalConfig, ModelConfig, PretrainConfig, TrainerConfig
from crossl.data.datasets import load_dataset
from crossl.data.splits import default_split, nested_label_subsets, normalize
from crossl.evaluation.metrics import classification_metrics
from crossl.evaluation.protocols import compute_features, linear_probe, run_protocol
from crossl.training import gather_batch, window_tensors


def main(name: str, pretrain_overrides: dict, eval_overrides: dict) -> dict[str, object]:
    model_overrides = pretrain_overrides.pop("model", {})
    windows = load_dataset("hapt", quiet=True)
    split = default_split(windows)
    trainer = TrainerConfig(progress=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        model = CroSSL(ModelConfig(**model_overrides), PretrainConfig(**pretrain_overrides), trainer)
        model.fit(windows.subset(split.train), run_dir=run_dir)
    result: dict[str, object] = {"name": name, "pretrain_s": round(time.perf_counter() - started)}
    normalized = normalize(windows, model.stats)  # type: ignore[arg-type]
    train, test = window_tensors(normalized, split.train), window_tensors(normalized, split.test)
    y_test = test["labels"].numpy()
    subsets = nested_label_subsets(windows.labels, split.train, (0.01, 0.1, 1.0), windows.meta.num_classes, 0)
    for source in ("aggregator", "concat"):
        train_x = compute_features(model.backbone, train, source).numpy()  # type: ignore[arg-type]
        test_x = compute_features(model.backbone, test, source).numpy()  # type: ignore[arg-type]
        for fraction, idx in subsets.items():
            pos = np.searchsorted(split.train, idx)
            pred = linear_probe(train_x[pos], train["labels"][pos].numpy(), test_x, seed=0)
            result[f"linear_{source}_{fraction}"] = round(classification_metrics(y_test, pred, 6)["macro_f1"], 3)
    for fraction in (0.01, 0.1):
        pos = np.searchsorted(split.train, subsets[fraction])
        pred = run_protocol("finetune", pretrained=model.backbone, model_config=model.model_config,
                            labeled=gather_batch(train, pos), test=test, frozen_features=None, num_classes=6,
                            config=EvalConfig(**eval_overrides), trainer_config=trainer, seed=0)
        result[f"finetune_{fraction}"] = round(classification_metrics(y_test, pred, 6)["macro_f1"], 3)
    return result


if __name__ == "__main__":
    overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    evaluation = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    print(json.dumps(main(sys.argv[1], overrides, evaluation)), flush=True)
