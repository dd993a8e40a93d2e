"""Shared fixtures: a session-wide data cache and small format-exact synthetic windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from crossl.config import ModelConfig, PretrainConfig, TrainerConfig
from crossl.data.container import WindowSet


@pytest.fixture(scope="session")
def crossl_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole session, so HAPT is fetched at most once (``$CROSSL_TEST_HOME`` reuses one)."""
    home = Path(os.environ.get("CROSSL_TEST_HOME") or tmp_path_factory.mktemp("crossl_home"))
    return home


@pytest.fixture()
def use_home(crossl_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROSSL_HOME", str(crossl_home))
    return crossl_home


def synthetic_arrays(n: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    """Two modalities with different lengths and channel counts (acc 40x3, ecg 80x1)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 80, dtype=np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1)).astype(np.float32)
    ecg = np.sin(8 * np.pi * t[None, :] + phase)[:, :, None] + 0.1 * rng.standard_normal((n, 80, 1))
    acc = rng.standard_normal((n, 40, 3)) + np.cos(phase)[:, :, None]
    return {"acc": acc.astype(np.float32), "ecg": ecg.astype(np.float32)}


@pytest.fixture()
def tiny_windows() -> WindowSet:
    arrays = synthetic_arrays()
    n = len(arrays["acc"])
    labels = np.arange(n) % 3
    subjects = np.arange(n) % 6
    return WindowSet.from_arrays(arrays, labels=labels, subjects=subjects, class_names=["a", "b", "c"])


def small_model_configs(epochs: int = 2) -> tuple[ModelConfig, PretrainConfig, TrainerConfig]:
    model = ModelConfig(dim=16, kernel_sizes=(5, 3, 3))
    pretrain = PretrainConfig(epochs=epochs, batch_size=16, seed=0)
    # float32 whatever the CPU ("auto" would train in bf16 where the CPU has bf16 instructions), so a
    # test computes the same on every machine; the bf16 path has tests of its own
    trainer = TrainerConfig(progress=False, precision="32-true")
    return model, pretrain, trainer
