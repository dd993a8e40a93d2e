"""Subject-wise input standardisation (``model.input_norm: subject``).

Why. People differ in how a sensor sits on them (an accelerometer's gravity axis, an electrode's
contact, a heart's baseline rate), and on subject-wise splits the test subjects are new people.
Standardising every channel by its own subject's mean and std removes those per-person offsets and
scales before any model sees the data; the training set's statistics are then fitted on the
standardised windows as usual.

What it uses. A subject's statistics come from all of that subject's windows in the set being
processed, labeled or not, where the modality is present: no labels, but the subject's own
recordings, as a user calibrating on a new person's unlabeled data would. A set without subject ids
(e.g. arrays given to :meth:`crossl.api.CroSSL.encode`) counts as one subject.

Memory. The standardised arrays are new float32 arrays in memory (a memory-mapped set is read
once, subject by subject).
"""

from __future__ import annotations

import numpy as np

from crossl.data.container import WindowSet

#: A channel with less spread than this keeps std 1, so it maps to zeros rather than to inf.
MIN_STD = 1e-8


def subject_standardised(windows: WindowSet) -> WindowSet:
    """``windows`` with every present window's channels standardised by its subject's per-channel
    mean and std (over that subject's present windows of the modality, all time steps).

    Absent modalities keep their values (they are masked later). Returns a new set; ``windows`` is
    not changed.
    """
    subjects = np.asarray(windows.subjects)
    arrays: dict[str, np.ndarray] = {}
    for i, (name, arr) in enumerate(windows.modalities.items()):
        out = np.array(arr, dtype=np.float32)  # (N, T, C), a copy in memory
        present = windows.presence[:, i]
        for subject in np.unique(subjects):
            rows = np.flatnonzero((subjects == subject) & present)
            if rows.size == 0:
                continue
            values = out[rows].astype(np.float64)
            mean = values.mean(axis=(0, 1))
            std = values.std(axis=(0, 1))
            std = np.where(std > MIN_STD, std, 1.0)
            out[rows] = ((values - mean) / std).astype(np.float32)
        arrays[name] = out
    return windows.with_modalities(arrays)


def prepared_inputs(windows: WindowSet, input_norm: str) -> WindowSet:
    """The windows a model with ``model.input_norm == input_norm`` reads: subject-standardised for
    ``subject``, unchanged for ``train``."""
    return subject_standardised(windows) if input_norm == "subject" else windows
