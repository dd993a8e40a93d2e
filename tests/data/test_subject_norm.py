"""Subject-wise input standardisation: each subject's windows by that subject's own statistics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from conftest import small_model_configs, synthetic_arrays

from crossl.api import CroSSL
from crossl.data.container import WindowSet
from crossl.data.subject_norm import prepared_inputs, subject_standardised


def _two_subjects(offset: float = 0.0, scale: float = 1.0) -> WindowSet:
    """48 windows, the second half subject 1, whose signals are ``scale * x + offset``."""
    arrays = synthetic_arrays()
    subjects = np.repeat([0, 1], 24)
    moved = {m: np.where(subjects[:, None, None] == 1, scale * a + offset, a).astype(np.float32) for m, a in arrays.items()}
    return WindowSet.from_arrays(moved, subjects=subjects)


def test_every_subjects_channels_have_mean_zero_and_std_one():
    out = subject_standardised(_two_subjects(offset=5.0, scale=3.0))
    for arr in out.modalities.values():
        for subject in (0, 1):
            values = arr[out.subjects == subject].astype(np.float64)
            assert np.allclose(values.mean(axis=(0, 1)), 0.0, atol=1e-5)
            assert np.allclose(values.std(axis=(0, 1)), 1.0, atol=1e-5)


def test_a_subjects_offset_and_scale_are_removed():
    plain, moved = subject_standardised(_two_subjects()), subject_standardised(_two_subjects(offset=-40.0, scale=0.2))
    for m in plain.modality_names:
        assert np.allclose(plain.modalities[m], moved.modalities[m], atol=1e-4)


def test_absent_windows_keep_their_values_and_do_not_count():
    windows = _two_subjects(offset=5.0)
    presence = windows.presence.copy()
    presence[:4, 0] = False  # acc absent in subject 0's first 4 windows
    acc = windows.modalities["acc"].copy()
    acc[:4] = 1e6  # would dominate subject 0's statistics if they counted
    windows = WindowSet(dict(windows.modalities, acc=acc), presence, windows.labels, windows.subjects, windows.meta)
    out = subject_standardised(windows)
    assert np.all(out.modalities["acc"][:4] == 1e6)
    kept = out.modalities["acc"][4:24].astype(np.float64)
    assert np.allclose(kept.mean(axis=(0, 1)), 0.0, atol=1e-5)


def test_train_leaves_the_windows_as_they_are():
    windows = _two_subjects(offset=5.0)
    assert prepared_inputs(windows, "train") is windows


def test_a_model_with_subject_norm_encodes_a_moved_subject_as_before():
    model_config, pretrain, trainer = small_model_configs(epochs=1)
    model = CroSSL(replace(model_config, input_norm="subject"), pretrain, trainer).fit(_two_subjects())
    before = model.encode(_two_subjects())
    after = model.encode(_two_subjects(offset=25.0, scale=4.0))
    assert np.allclose(before, after, atol=1e-4)
    # without it, the same move changes the second subject's embeddings
    plain = CroSSL(replace(model_config, input_norm="train"), pretrain, trainer).fit(_two_subjects())
    assert not np.allclose(plain.encode(_two_subjects())[24:], plain.encode(_two_subjects(offset=25.0, scale=4.0))[24:],
                           atol=1e-2)
