"""Property-based: whatever arrays a user passes, crossl either works or says why in one line."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_model_configs, synthetic_arrays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossl.api import CroSSL
from crossl.data.container import WindowSet
from crossl.errors import CrosslError

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.bool_, np.complex64, np.str_, object]


@st.composite
def user_arrays(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray | None]:
    """Random modality arrays (shapes, dtypes, NaN/inf patterns), presence masks and labels."""
    n = draw(st.integers(0, 5))
    arrays = {}
    for name in draw(st.lists(st.sampled_from(["acc", "ecg", "eda"]), min_size=0, max_size=3, unique=True)):
        ndim = draw(st.integers(1, 4))
        shape = (draw(st.sampled_from([n, n, n + 1])),) + tuple(draw(st.integers(0, 6)) for _ in range(ndim - 1))
        dtype = draw(st.sampled_from(DTYPES))
        values = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=shape)
        if np.issubdtype(np.dtype(dtype), np.floating) and values.size:
            for bad in draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), max_size=3)):
                values.flat[draw(st.integers(0, values.size - 1))] = bad
        arrays[name] = values.astype(dtype)
    presence = None
    if arrays and draw(st.booleans()):
        presence = np.array(draw(st.lists(st.lists(st.booleans(), min_size=len(arrays), max_size=len(arrays)),
                                          min_size=n, max_size=n + draw(st.integers(0, 1)))), dtype=bool)
    labels = None
    if draw(st.booleans()):
        labels = np.array(draw(st.lists(st.one_of(st.integers(-2, 4), st.floats(-2, 4), st.just(float("nan"))),
                                        min_size=n, max_size=n)))
    return arrays, presence, labels


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(user_arrays())
def test_from_arrays_builds_a_valid_set_or_raises_crossl_error(case) -> None:  # type: ignore[no-untyped-def]
    arrays, presence, labels = case
    try:
        windows = WindowSet.from_arrays(arrays, presence=presence, labels=labels)
    except CrosslError as exc:
        assert "\n" not in str(exc)
        return
    assert len(windows) == len(next(iter(arrays.values())))
    for m, arr in windows.modalities.items():
        present = windows.presence[:, windows.modality_names.index(m)]
        assert arr.dtype == np.float32 and np.isfinite(arr[present]).all()


@pytest.fixture(scope="module")
def fitted() -> CroSSL:
    return CroSSL(*small_model_configs(epochs=0)).fit(synthetic_arrays(n=24))


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_arrays())
def test_encode_gives_finite_embeddings_or_raises_crossl_error(fitted: CroSSL, case) -> None:  # type: ignore[no-untyped-def]
    arrays, presence, _ = case
    try:
        z = fitted.encode(arrays, presence=presence)
    except CrosslError as exc:
        assert "\n" not in str(exc)
        return
    assert z.shape[1] == fitted.model_config.out_dim and np.isfinite(z).all()
