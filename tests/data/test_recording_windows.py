"""Time-based windowing of multi-rate recordings, and dataset specs."""

from __future__ import annotations

import numpy as np
import pytest

from crossl.data.container import WindowSet
from crossl.data.recording import Recording
from crossl.data.spec import DatasetSpec
from crossl.data.windowing import RecordingWindows, WindowRule, window_recording, windows_to_set
from crossl.errors import CrosslError

WEARABLE_RATES = {"bvp": 64.0, "acc": 32.0, "eda": 4.0, "temp": 4.0}


def time_signal(rate: float, seconds: float, channels: int = 1) -> np.ndarray:
    """(T, C) float32 whose every value is its sample's time in seconds."""
    t = np.arange(round(rate * seconds)) / rate
    return np.repeat(t[:, None], channels, axis=1).astype(np.float32)


def recording(
    signals: dict[str, np.ndarray],
    rates: dict[str, float],
    labels: np.ndarray | list[int],
    label_rate: float,
    subject: int = 1,
    session: str = "s",
) -> Recording:
    return Recording(signals, rates, np.asarray(labels, dtype=np.int64), label_rate, subject, session)


def wearable(seconds: float = 30.0, subject: int = 1) -> Recording:
    rates = dict(WEARABLE_RATES)
    signals = {m: time_signal(r, seconds, 3 if m == "acc" else 1) for m, r in rates.items()}
    return recording(signals, rates, np.ones(int(seconds), dtype=np.int64), 1.0, subject, f"rec{subject}")


def one_window_label(labels: list[int], rule: WindowRule, label_map: dict[int, int] | None = None) -> int:
    """The label of the single 1 s window over ``labels`` at 10 Hz (unlabeled windows kept)."""
    rec = recording({"x": time_signal(10.0, 1.0)}, {"x": 10.0}, labels, 10.0)
    out = window_recording(rec, rule, label_map if label_map is not None else {1: 0, 2: 1})
    assert len(out) == 1
    return int(out.labels[0])


def test_window_lengths_follow_each_modality_rate():
    out = window_recording(wearable(), WindowRule(window_s=8.0, stride_s=4.0), {1: 0})
    lengths = {m: x.shape[1] for m, x in out.signals.items()}
    assert lengths == {"bvp": 512, "acc": 256, "eda": 32, "temp": 32}
    assert out.signals["acc"].shape[2] == 3
    assert all(x.dtype == np.float32 for x in out.signals.values())


def test_windows_of_all_modalities_cover_the_same_seconds():
    out = window_recording(wearable(), WindowRule(window_s=8.0, stride_s=4.0), {1: 0})
    for m, x in out.signals.items():
        np.testing.assert_array_equal(x[:, 0, 0], out.starts_s, err_msg=m)
        np.testing.assert_allclose(x[:, -1, 0], out.starts_s + 8.0 - 1.0 / WEARABLE_RATES[m], err_msg=m)


@pytest.mark.parametrize(
    ("seconds", "window_s", "stride_s", "expected_starts"),
    [
        (60.0, 10.0, 5.0, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),
        (60.0, 10.0, 7.0, [0, 7, 14, 21, 28, 35, 42, 49]),
        (60.0, 10.0, 20.0, [0, 20, 40]),
        (10.0, 10.0, 1.0, [0]),
        (9.5, 10.0, 1.0, []),
    ],
)
def test_window_count_and_starts_follow_duration_window_and_stride(seconds, window_s, stride_s, expected_starts):
    rec = recording({"x": time_signal(4.0, seconds)}, {"x": 4.0}, np.ones(round(2 * seconds)), 2.0)
    out = window_recording(rec, WindowRule(window_s, stride_s), {1: 0})
    assert out.starts_s.tolist() == expected_starts
    assert out.signals["x"].shape == (len(expected_starts), round(4 * window_s), 1)
    assert out.presence.shape == (len(expected_starts), 1) and out.labels.shape == (len(expected_starts),)


def test_shortest_stream_bounds_the_windows():
    # 20 s of signal but 12 s of labels: windows must fit inside the labels too.
    rec = recording({"x": time_signal(4.0, 20.0), "y": time_signal(8.0, 20.0)}, {"x": 4.0, "y": 8.0}, np.ones(12), 1.0)
    out = window_recording(rec, WindowRule(4.0, 4.0), {1: 0})
    assert out.starts_s.tolist() == [0.0, 4.0, 8.0]


def test_pure_rule_rejects_mixed_windows():
    rule = WindowRule(1.0, 1.0, label_rule="pure", keep_unlabeled=True)
    assert one_window_label([2] * 10, rule) == 1
    assert one_window_label([1] * 9 + [2], rule) == -1


def test_majority_rule_needs_more_than_half():
    rule = WindowRule(1.0, 1.0, label_rule="majority", keep_unlabeled=True)
    assert one_window_label([1] * 6 + [2] * 4, rule) == 0
    assert one_window_label([2] * 6 + [1] * 4, rule) == 1
    assert one_window_label([1] * 5 + [2] * 5, rule) == -1


def test_share_rule_honours_min_label_share():
    labels = [1] * 7 + [2] * 3
    assert one_window_label(labels, WindowRule(1.0, 1.0, label_rule="share", min_label_share=0.7, keep_unlabeled=True)) == 0
    assert one_window_label(labels, WindowRule(1.0, 1.0, label_rule="share", min_label_share=0.8, keep_unlabeled=True)) == -1
    # Below half is allowed, but a tie for most common class names no class.
    low = WindowRule(1.0, 1.0, label_rule="share", min_label_share=0.4, keep_unlabeled=True)
    assert one_window_label([1] * 4 + [2] * 3 + [3] * 3, low, {1: 0, 2: 1, 3: 2}) == 0
    assert one_window_label([1] * 5 + [2] * 5, low) == -1


def test_unmapped_raw_labels_count_as_no_class():
    # Code 0 is a transient, -1 unlabeled: neither is in the map.
    pure = WindowRule(1.0, 1.0, label_rule="pure", keep_unlabeled=True)
    majority = WindowRule(1.0, 1.0, label_rule="majority", keep_unlabeled=True)
    assert one_window_label([0] + [1] * 9, pure) == -1
    assert one_window_label([0] * 4 + [1] * 6, majority) == 0
    assert one_window_label([0] * 3 + [-1] * 3 + [1] * 4, majority) == -1
    assert one_window_label([0] * 10, majority) == -1


def test_several_raw_codes_can_map_to_one_class():
    rule = WindowRule(1.0, 1.0, label_rule="pure", keep_unlabeled=True)
    assert one_window_label([3] * 5 + [4] * 5, rule, {3: 1, 4: 1}) == 1


def test_unlabeled_windows_are_dropped_unless_kept_with_minus_one():
    rec = recording({"x": time_signal(4.0, 4.0)}, {"x": 4.0}, [1, 0, 2, 0], 1.0)
    dropped = window_recording(rec, WindowRule(1.0, 1.0), {1: 0, 2: 1})
    assert dropped.starts_s.tolist() == [0.0, 2.0] and dropped.labels.tolist() == [0, 1]
    kept = window_recording(rec, WindowRule(1.0, 1.0, keep_unlabeled=True), {1: 0, 2: 1})
    assert kept.starts_s.tolist() == [0.0, 1.0, 2.0, 3.0] and kept.labels.tolist() == [0, -1, 1, -1]


def test_modality_with_too_many_gap_samples_is_absent_and_zero_filled():
    x = time_signal(10.0, 3.0, channels=2)
    x[2:4, 0] = np.nan  # window 0: 2 of 10 samples are gaps (one channel suffices) > 0.1
    x[15, 1] = np.nan  # window 1: 1 of 10, exactly the allowed share
    rec = recording({"x": x, "y": time_signal(5.0, 3.0)}, {"x": 10.0, "y": 5.0}, np.ones(3), 1.0)
    out = window_recording(rec, WindowRule(1.0, 1.0, max_gap_share=0.1), {1: 0})
    assert out.presence.tolist() == [[False, True], [True, True], [True, True]]
    assert np.all(out.signals["x"][0] == 0.0)
    assert not np.isnan(out.signals["x"]).any()


def test_short_gaps_are_interpolated_linearly_inside_the_window_and_held_at_its_edges():
    rate = 20.0
    t = np.arange(20) / rate
    ramp = np.stack([3.0 * t + 1.0, -2.0 * t], axis=1).astype(np.float32)
    x = ramp.copy()
    x[0:2, 0] = np.nan  # leading gap: held at the first valid value
    x[7:10, 0] = np.nan  # interior gap: on the ramp
    x[18:20, 0] = np.nan  # trailing gap: held at the last valid value
    x[12, 1] = np.nan  # the other channel's own gap
    rec = recording({"x": x}, {"x": rate}, [1], 1.0)
    out = window_recording(rec, WindowRule(1.0, 1.0, max_gap_share=0.5), {1: 0})
    got = out.signals["x"][0]
    expected = ramp.copy()
    expected[0:2, 0] = ramp[2, 0]
    expected[18:20, 0] = ramp[17, 0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert out.presence.tolist() == [[True]]


def test_gaps_are_filled_from_the_window_only():
    # Windows overlap; each fills its gaps from its own samples, not from its neighbours'.
    x = np.arange(8, dtype=np.float32)[:, None]
    x[3] = np.nan
    rec = recording({"x": x}, {"x": 1.0}, np.ones(8), 1.0)
    out = window_recording(rec, WindowRule(4.0, 2.0, max_gap_share=0.5), {1: 0})
    np.testing.assert_allclose(out.signals["x"][0, :, 0], [0, 1, 2, 2])  # gap at its edge: held
    np.testing.assert_allclose(out.signals["x"][1, :, 0], [2, 3, 4, 5])  # gap inside: interpolated


def test_windows_with_every_modality_absent_are_dropped():
    a = time_signal(4.0, 3.0)
    b = time_signal(8.0, 3.0)
    a[4:8] = np.nan
    b[8:16] = np.nan
    b[16] = np.nan  # window 2 loses b only
    rec = recording({"a": a, "b": b}, {"a": 4.0, "b": 8.0}, np.ones(3), 1.0)
    out = window_recording(rec, WindowRule(1.0, 1.0, keep_unlabeled=True), {1: 0})
    assert out.starts_s.tolist() == [0.0, 2.0]
    assert out.presence.tolist() == [[True, True], [True, False]]


def spec(**changes) -> DatasetSpec:
    fields = dict(
        name="toy",
        modalities=("bvp", "acc", "eda", "temp"),
        rates=dict(WEARABLE_RATES),
        channel_names={"bvp": ("bvp",), "acc": ("x", "y", "z"), "eda": ("eda",), "temp": ("temp",)},
        class_names=("rest", "stress"),
        label_map={1: 0, 2: 1},
        rule=WindowRule(8.0, 4.0),
        default_split={"train": (1, 2), "val": (3,), "test": (4,)},
        description="four wearable streams",
    )
    fields.update(changes)
    return DatasetSpec(**fields)


def test_windows_to_set_builds_a_valid_window_set_with_subjects_and_presence():
    first, second = wearable(30.0, subject=3), wearable(20.0, subject=7)
    second.signals["eda"][:] = np.nan  # eda absent from every window of subject 7
    parts = [window_recording(r, spec().rule, spec().label_map) for r in (first, second)]
    windows = windows_to_set(parts, spec().meta())
    assert isinstance(windows, WindowSet)
    assert len(windows) == len(parts[0]) + len(parts[1]) == 6 + 4
    assert windows.subjects.tolist() == [3] * 6 + [7] * 4
    assert windows.shapes == {"bvp": (512, 1), "acc": (256, 3), "eda": (32, 1), "temp": (32, 1)}
    assert windows.presence[:, 2].tolist() == [True] * 6 + [False] * 4
    assert windows.presence[:, [0, 1, 3]].all()
    assert windows.labels.tolist() == [0] * 10


def test_windows_to_set_refuses_parts_with_other_modalities_or_lengths():
    meta = spec().meta()
    good = window_recording(wearable(), spec().rule, spec().label_map)
    reordered = RecordingWindows(dict(reversed(list(good.signals.items()))), good.presence, good.labels, good.starts_s, 2)
    with pytest.raises(CrosslError, match="modalities"):
        windows_to_set([good, reordered], meta)
    slower = dict(WEARABLE_RATES, bvp=32.0)
    rec = recording({m: time_signal(r, 30.0, 3 if m == "acc" else 1) for m, r in slower.items()}, slower,
                    np.ones(30), 1.0, 2)
    with pytest.raises(CrosslError, match="bvp"):
        windows_to_set([good, window_recording(rec, spec().rule, spec().label_map)], meta)
    with pytest.raises(CrosslError, match="no recordings"):
        windows_to_set([], meta)


def test_spec_meta_carries_split_window_seconds_and_lengths():
    s = spec()
    meta = s.meta()
    assert meta.modality_names == ("bvp", "acc", "eda", "temp")
    assert meta.sampling_rates == WEARABLE_RATES
    assert meta.extra == {"default_split": {"train": [1, 2], "val": [3], "test": [4]}, "window_s": 8.0, "stride_s": 4.0}
    assert s.window_lengths() == {"bvp": 512, "acc": 256, "eda": 32, "temp": 32}
    assert "default_split" not in spec(default_split=None).meta().extra


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"rates": {"bvp": 64.0, "acc": 32.0, "eda": 4.0}}, "rates"),
        ({"rates": dict(WEARABLE_RATES, eda=0.0)}, "rate"),
        ({"channel_names": {"bvp": ("bvp",), "acc": ("x", "y", "z"), "eda": ("eda",)}}, "channel_names"),
        ({"channel_names": {"bvp": (), "acc": ("x", "y", "z"), "eda": ("eda",), "temp": ("temp",)}}, "channel names"),
        ({"label_map": {1: 0, 2: 2}}, "label_map"),
        ({"label_map": {1: -1}}, "label_map"),
        ({"default_split": {"train": (1, 2), "test": (2,)}}, "subject 2"),
        ({"default_split": {"train": (1,), "holdout": (2,)}}, "holdout"),
        ({"default_split": {"train": (1, 2)}}, "test"),
        ({"modalities": ("bvp", "acc", "eda", "temp", "acc")}, "twice"),
        ({"rule": WindowRule(0.1, 0.1)}, "no sample"),
    ],
)
def test_dataset_spec_validation_errors(changes, match):
    with pytest.raises(CrosslError, match=match):
        spec(**changes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_s": 0.0}, "window_s"),
        ({"stride_s": -1.0}, "stride_s"),
        ({"window_s": float("nan")}, "window_s"),
        ({"label_rule": "mode"}, "label_rule"),
        ({"min_label_share": 1.5}, "min_label_share"),
        ({"max_gap_share": -0.1}, "max_gap_share"),
    ],
)
def test_window_rule_validation_errors(kwargs, match):
    args = {"window_s": 8.0, "stride_s": 4.0, **kwargs}
    with pytest.raises(CrosslError, match=match):
        WindowRule(**args)


def test_gap_filling_matches_per_channel_np_interp_on_random_gaps():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 3)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    rec = recording({"x": x}, {"x": 10.0}, np.ones(30), 1.0)
    out = window_recording(rec, WindowRule(2.0, 0.5, max_gap_share=0.5), {1: 0})
    assert out.presence.all() and len(out) == 57
    for k in (0, 13, 56):  # a few windows, checked one channel at a time against NumPy's reference
        first = round(out.starts_s[k] * 10)
        window = x[first : first + 20]
        for c in range(3):
            ok = ~np.isnan(window[:, c])
            reference = np.interp(np.arange(20), np.flatnonzero(ok), window[ok, c])
            np.testing.assert_allclose(out.signals["x"][k, :, c], reference, atol=1e-6)


@pytest.mark.parametrize("label_rule", ["pure", "majority", "share"])
def test_labelling_in_blocks_gives_what_one_block_gives(monkeypatch: pytest.MonkeyPatch, label_rule: str) -> None:
    """Label mapping and window labels run block by block to bound memory; the blocks must not show."""
    import crossl.data.windowing as windowing

    rng = np.random.default_rng(0)
    # 700 Hz labels changing every 0-3 s among codes 1-5 (5 unmapped), 2-s windows 0.5 s apart
    runs = rng.integers(0, 2100, size=400)
    labels = np.repeat(rng.integers(1, 6, size=runs.size), runs).astype(np.int64)
    signal = rng.standard_normal((labels.size // 7, 1)).astype(np.float32)  # 100 Hz
    rec = Recording({"x": signal}, {"x": 100.0}, labels, 700.0, subject=1, session="s")
    rule = WindowRule(window_s=2.0, stride_s=0.5, label_rule=label_rule, min_label_share=0.6, keep_unlabeled=True)
    label_map = {1: 0, 2: 1, 3: 2, 4: 3}
    monkeypatch.setattr(windowing, "LABEL_BLOCK", 10**9)
    monkeypatch.setattr(windowing, "WINDOW_BLOCK", 10**9)
    whole = window_recording(rec, rule, label_map)
    monkeypatch.setattr(windowing, "LABEL_BLOCK", 1000)
    monkeypatch.setattr(windowing, "WINDOW_BLOCK", 7)
    blocked = window_recording(rec, rule, label_map)
    assert len(whole) > 7 * 10 and labels.size > 1000 * 10
    assert np.array_equal(blocked.labels, whole.labels) and blocked.labels.dtype == np.int64
    assert set(np.unique(whole.labels)) <= {-1, 0, 1, 2, 3} and (whole.labels >= 0).any()
