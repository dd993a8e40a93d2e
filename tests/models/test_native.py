"""The native LayerNorm -> PReLU -> dropout kernel against the eager maths it replaces."""

import pytest
import torch

from crossl.models import encoders as encoders_module
from crossl.models import native
from crossl.models.encoders import LAYER_NORM_EPS, ModalityEncoders, norm_act_dropout
from crossl.models.native import NativeKernelUnavailable, keep_mask, native_norm_act_dropout

pytestmark = pytest.mark.skipif(not native.native_available(), reason="no C compiler builds the native kernel here")


def _block_inputs(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    channels = shape[-1]
    h = torch.randn(*shape, generator=gen).requires_grad_()
    weight = (torch.rand(channels, generator=gen) + 0.5).requires_grad_()
    bias = (0.3 * torch.randn(channels, generator=gen)).requires_grad_()
    slope = (0.4 * torch.rand(channels, generator=gen)).requires_grad_()
    return h, weight, bias, slope


@pytest.mark.parametrize("shape", [(4, 37, 1), (3, 50, 7), (8, 64, 24), (2, 129, 96)])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_native_equals_eager_maths_with_the_same_mask(shape, p):
    h, weight, bias, slope = _block_inputs(shape)
    seed = 0x1234_5678_9ABC_DEF
    out = native_norm_act_dropout(h, weight, bias, slope, p, LAYER_NORM_EPS, seed=seed)
    keep_scale = keep_mask(shape, p, seed).float() / (1 - p) if p > 0 else None
    expected = norm_act_dropout(h, weight, bias, slope, keep_scale)
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-5)
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    got = torch.autograd.grad(out, (h, weight, bias, slope), grad)
    want = torch.autograd.grad(expected, (h, weight, bias, slope), grad)
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", [(4, 37, 1), (3, 50, 7), (8, 64, 24), (2, 129, 96)])
@pytest.mark.parametrize("p", [0.0, 0.1])
def test_bf16_storage_is_the_float32_kernel_rounded_to_bf16(shape, p):
    h, weight, bias, slope = _block_inputs(shape)
    h16 = h.detach().to(torch.bfloat16).requires_grad_()
    h32 = h16.detach().float().requires_grad_()
    seed = 0xFEED_5EED
    out16 = native_norm_act_dropout(h16, weight, bias, slope, p, LAYER_NORM_EPS, seed=seed)
    out32 = native_norm_act_dropout(h32, weight, bias, slope, p, LAYER_NORM_EPS, seed=seed)
    assert out16.dtype == torch.bfloat16
    # The same float32 arithmetic on the same values, rounded to bf16: the two variants' loops may be
    # vectorised (and contracted into FMAs) differently, 1e-6 apart, which moves a few elements across
    # a rounding boundary, so each is within one bf16 step (2**-8 relative) of the float32 result.
    assert torch.allclose(out16.float(), out32, rtol=2**-8, atol=1e-3)
    assert (out16 != out32.to(torch.bfloat16)).float().mean() < 0.01
    grad16 = torch.randn(shape, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    got = torch.autograd.grad(out16, (h16, weight, bias, slope), grad16)
    want = torch.autograd.grad(out32, (h32, weight, bias, slope), grad16.float())
    assert got[0].dtype == torch.bfloat16
    assert torch.allclose(got[0].float(), want[0], rtol=2**-8, atol=1e-3)
    for g, w in zip(got[1:], want[1:], strict=True):
        assert torch.allclose(g, w, rtol=1e-5, atol=1e-5)


def test_bf16_rounding_is_torchs_nearest_even_and_keeps_nan():
    # one row per value; channels 2 with a 0 beside it: mean v/2, so the row's outputs are +-1 scaled
    values = torch.tensor([1.0, -3.5, 1e-30, 3e38, float("nan")])
    h = torch.stack([values, torch.zeros_like(values)], dim=1).view(1, 5, 2).to(torch.bfloat16)
    ones, zeros = torch.ones(2), torch.zeros(2)
    out = native_norm_act_dropout(h, ones, zeros, ones, 0.0, LAYER_NORM_EPS)
    expected = native_norm_act_dropout(h.float(), ones, zeros, ones, 0.0, LAYER_NORM_EPS).to(torch.bfloat16)
    assert torch.isnan(out[0, 4]).all()
    assert torch.equal(out[0, :4], expected[0, :4])


def test_bf16_parameters_get_bf16_gradients():
    h, weight, bias, slope = (t.detach().to(torch.bfloat16).requires_grad_() for t in _block_inputs((2, 16, 8)))
    out = native_norm_act_dropout(h, weight, bias, slope, 0.1, LAYER_NORM_EPS, seed=5)
    grads = torch.autograd.grad(out.sum(), (h, weight, bias, slope))
    assert [g.dtype for g in grads] == [torch.bfloat16] * 4
    assert all(torch.isfinite(g.float()).all() for g in grads)


def test_encoders_under_bf16_autocast_run_the_native_kernel(monkeypatch):
    calls = []

    def counted(h, *args, **kwargs):
        calls.append(h.dtype)
        return native_norm_act_dropout(h, *args, **kwargs)

    monkeypatch.setattr(encoders_module, "native_norm_act_dropout", counted)
    native_encoders = ModalityEncoders({"acc": 3}).eval()
    eager_encoders = ModalityEncoders({"acc": 3}, elementwise="eager").eval()
    eager_encoders.load_state_dict(native_encoders.state_dict())
    x = {"acc": torch.randn(4, 80, 3)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = native_encoders(x), eager_encoders(x)
    assert calls == [torch.bfloat16] * 3
    assert torch.allclose(got.float(), want.float(), atol=0.05, rtol=0.05)


def test_kernel_mask_is_the_torch_statement_of_the_hash_bit_for_bit():
    shape, p, seed = (16, 128, 48), 0.1, 987654321987
    h, weight, bias, slope = _block_inputs(shape)
    with torch.no_grad():
        # a bias of 5 makes every kept value positive, so a zero means dropped
        out = native_norm_act_dropout(h, weight, torch.full_like(bias, 5.0), slope, p, LAYER_NORM_EPS, seed=seed)
    assert torch.equal(out != 0, keep_mask(shape, p, seed))


def test_keep_fraction_and_independent_seeds():
    shape = (200, 50, 100)
    first, second = keep_mask(shape, 0.1, 1), keep_mask(shape, 0.1, 2)
    # 1e6 Bernoulli(0.9) draws: within 5 standard deviations (0.0015) of 0.9
    assert abs(first.float().mean().item() - 0.9) < 0.0015
    # two seeds agree where independent masks would: 0.9^2 + 0.1^2 of the elements
    assert abs((first == second).float().mean().item() - 0.82) < 0.003
    # neighbours in the channel dim are not correlated
    flat = first.flatten().float()
    assert abs((flat[1:] * flat[:-1]).mean().item() - 0.81) < 0.003


def test_seeded_training_is_repeatable_and_draws_a_new_mask_per_step():
    encoders = ModalityEncoders({"acc": 3}).train()
    x = {"acc": torch.randn(8, 64, 3)}
    torch.manual_seed(3)
    first, second = encoders(x), encoders(x)
    torch.manual_seed(3)
    again = encoders(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)


def test_native_and_eager_encoders_agree_without_dropout():
    native_encoders = ModalityEncoders({"acc": 3, "ecg": 1}).eval()
    eager_encoders = ModalityEncoders({"acc": 3, "ecg": 1}, elementwise="eager").eval()
    eager_encoders.load_state_dict(native_encoders.state_dict())
    x = {"acc": torch.randn(4, 80, 3), "ecg": torch.randn(4, 120, 1)}
    assert torch.allclose(native_encoders(x), eager_encoders(x), atol=1e-5, rtol=1e-5)


@pytest.fixture
def fresh_kernel_state(monkeypatch, tmp_path):
    """No loaded kernel, an empty kernel cache, and the encoders' one-time check not yet made."""
    monkeypatch.setenv("CROSSL_HOME", str(tmp_path))
    native.native_kernel.cache_clear()
    monkeypatch.setattr(encoders_module, "_native_failure", None)
    yield tmp_path
    native.native_kernel.cache_clear()


def test_missing_compiler_is_one_clear_error(fresh_kernel_state, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    with pytest.raises(NativeKernelUnavailable, match="'no-such-compiler-here' is not on PATH.*model.elementwise: eager"):
        native.native_kernel()


def test_failing_compiler_is_one_clear_error_and_leaves_no_file(fresh_kernel_state, monkeypatch):
    monkeypatch.setenv("CC", "false")
    with pytest.raises(NativeKernelUnavailable, match="building the native kernel with false failed"):
        native.native_kernel()
    assert not list((fresh_kernel_state / "kernels").glob("*"))


def test_encoders_fall_back_to_eager_with_one_warning(fresh_kernel_state, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    encoders = ModalityEncoders({"acc": 3}).eval()
    eager = ModalityEncoders({"acc": 3}, elementwise="eager").eval()
    eager.load_state_dict(encoders.state_dict())
    x = {"acc": torch.randn(2, 40, 3)}
    with pytest.warns(UserWarning, match="run their eager kernels"):
        out = encoders(x)
    assert torch.equal(out, eager(x))


def test_a_damaged_built_kernel_is_rebuilt(fresh_kernel_state):
    path = native.library_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a shared library")
    lib = native.native_kernel()
    assert lib.crossl_max_channels() == 4096
    assert path.stat().st_size > 1000
