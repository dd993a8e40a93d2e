"""Pretraining ablation on HAPT: one variant per call, one JSON line of downstream scores.

A thin use of the Python API: pretrain one variant on the training subjects (1-20), then score the
``linear`` and ``finetune`` protocols at 1%, 10% and 100% labels on the **validation** subjects
(21-24), seed 0. Variants are compared on validation subjects only; the test subjects give the
final table once, through ``crossl evaluate``.

    python scripts/ablate_pretraining.py NAME '{"method": "crossl", "options": {"mask_ratio": 0.3},
                                               "pretrain": {"batch_size": 128}, "model": {}}' \
                                              ['{"steps": 300}']

The first JSON object overrides the pretraining (``method``, its ``options``, ``model``,
``pretrain``); the second the evaluation (:class:`crossl.config.EvalConfig` fields).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from crossl.api import CroSSL
from crossl.config import EvalConfig, ModelConfig, PretrainConfig, TrainerConfig, build_config, options_for
from crossl.data.datasets import load_dataset
from crossl.data.splits import Split, default_split


def validation_as_test(split: Split) -> Split:
    """``split`` with the validation subjects in the place of the test subjects."""
    return Split(split.train, split.val, split.val,
                 {"train": split.subjects["train"], "val": split.subjects["val"], "test": split.subjects["val"]})


def main(name: str, variant: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    method = variant.get("method", "crossl")
    model = CroSSL(build_config(ModelConfig, variant.get("model", {}), "model"),
                   build_config(PretrainConfig, variant.get("pretrain", {}), "pretrain"),
                   TrainerConfig(progress=False), method=method, options=options_for(method, variant.get("options")))
    eval_config = build_config(EvalConfig, {"protocols": ["linear", "finetune"], "seeds": [0], **evaluation}, "evaluation")
    windows = load_dataset("hapt", quiet=True)
    split = default_split(windows)
    started = time.perf_counter()
    model.fit(windows, indices=split.train)
    result: dict[str, Any] = {"name": name, "method": method, "pretrain_s": round(time.perf_counter() - started),
                              "scored_on": "validation subjects " + str(split.subjects["val"])}
    for record in model.evaluate(windows, validation_as_test(split), eval_config):
        result[f"{record['protocol']}_{record['label_fraction']}"] = round(record["macro_f1"], 3)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a label for this variant")
    parser.add_argument("variant", nargs="?", default="{}", help="JSON: method, options, model, pretrain")
    parser.add_argument("evaluation", nargs="?", default="{}", help="JSON: EvalConfig fields")
    args = parser.parse_args()
    print(json.dumps(main(args.name, json.loads(args.variant), json.loads(args.evaluation))), flush=True)
