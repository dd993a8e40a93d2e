"""TCN encoders: output shapes, parameter counts (as in the Keras release), per-modality encoders,
equivalence with a straightforward implementation, the fused (compiled) path and dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crossl.models.encoders import ModalityEncoders, TCNEncoder, dropout_keep_scale


def _num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("length", [30, 128, 3000])
def test_tcn_encoder_output_shape(length, channels):
    encoder = TCNEncoder(channels).eval()
    with torch.no_grad():
        out = encoder(torch.randn(2, length, channels))
    assert out.shape == (2, 96)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("length", [1, 7, 8, 23, 24])
def test_tcn_encoder_accepts_windows_shorter_than_the_kernels(length):
    encoder = TCNEncoder(2).eval()
    with torch.no_grad():
        assert encoder(torch.randn(3, length, 2)).shape == (3, 96)


@pytest.mark.parametrize(("channels", "expected"), [(1, 56_544), (3, 57_696)])
def test_tcn_encoder_parameter_count_matches_keras_release(channels, expected):
    assert _num_params(TCNEncoder(channels)) == expected


def test_tcn_encoder_custom_dim():
    encoder = TCNEncoder(3, dim=32).eval()
    with torch.no_grad():
        assert encoder(torch.randn(2, 50, 3)).shape == (2, 32)


def test_tcn_encoder_same_padding_keeps_time_length():
    encoder = TCNEncoder(1).eval()
    x = torch.randn(2, 45, 1)
    with torch.no_grad():
        h = encoder.blocks(x)
    assert h.shape == (2, 45, 96)


def test_tcn_encoder_samples_are_independent():
    encoder = TCNEncoder(3).eval()
    x = torch.randn(4, 64, 3)
    with torch.no_grad():
        full = encoder(x)
        x2 = x.clone()
        x2[1:] = torch.randn(3, 64, 3) * 10
        changed = encoder(x2)
    assert torch.allclose(full[0], changed[0], atol=1e-6)


def test_modality_encoders_heterogeneous_lengths_and_channels():
    encoders = ModalityEncoders({"acc": 3, "ecg": 1}).eval()
    with torch.no_grad():
        out = encoders({"acc": torch.randn(5, 128, 3), "ecg": torch.randn(5, 700, 1)})
    assert out.shape == (5, 2, 96)
    assert encoders.names == ("acc", "ecg")


def test_modality_encoders_stack_in_configured_order():
    encoders = ModalityEncoders({"acc": 3, "ecg": 1}).eval()
    inputs = {"ecg": torch.randn(2, 70, 1), "acc": torch.randn(2, 32, 3)}
    with torch.no_grad():
        out = encoders(inputs)
        assert torch.allclose(out[:, 0], encoders.encoders["acc"](inputs["acc"]))
        assert torch.allclose(out[:, 1], encoders.encoders["ecg"](inputs["ecg"]))


def test_modality_encoders_share_no_weights():
    encoders = ModalityEncoders({"a": 2, "b": 2, "c": 2})
    pointers = [{p.data_ptr() for p in enc.parameters()} for enc in encoders.encoders.values()]
    assert pointers[0].isdisjoint(pointers[1])
    assert pointers[0].isdisjoint(pointers[2])
    assert pointers[1].isdisjoint(pointers[2])
    assert _num_params(encoders) == 3 * _num_params(TCNEncoder(2))


def test_modality_encoders_gradient_reaches_only_its_own_encoder():
    encoders = ModalityEncoders({"a": 2, "b": 2})
    out = encoders({"a": torch.randn(2, 20, 2), "b": torch.randn(2, 20, 2)})
    out[:, 0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoders.encoders["a"].blocks[0].parameters())
    # stack's backward hands encoder "b" a zero gradient: its parameter grads are zero (or None).
    assert all(p.grad is None or not p.grad.any() for p in encoders.encoders["b"].parameters())


def straightforward_tcn(encoder: TCNEncoder, x: torch.Tensor) -> torch.Tensor:
    """The encoder written the plain way: (B, C, T) Conv1d with Keras padding, LayerNorm over
    channels via transposes, PReLU, mean over time; the weights are ``encoder``'s."""
    h = x.transpose(1, 2)
    for block in encoder.blocks:
        h = F.conv1d(F.pad(h, block.padding), block.conv.weight, block.conv.bias)
        h = F.layer_norm(h.transpose(1, 2), (h.shape[1],), block.norm.weight, block.norm.bias, 1e-3).transpose(1, 2)
        h = F.prelu(h, block.act.weight)
    return h.mean(dim=2)


def _randomize(encoder: torch.nn.Module) -> None:
    """Non-trivial LayerNorm and PReLU parameters (their defaults would hide a mix-up)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if not name.endswith("conv.weight") and not name.endswith("conv.bias"):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5 + (1.0 if name.endswith("norm.weight") else 0.0))


@pytest.mark.parametrize(("length", "channels"), [(128, 3), (45, 1), (7, 2)])
def test_tcn_encoder_equals_straightforward_implementation(length, channels):
    encoder = TCNEncoder(channels).eval()
    _randomize(encoder)
    x = torch.randn(4, length, channels)
    with torch.no_grad():
        assert torch.allclose(encoder(x), straightforward_tcn(encoder, x), atol=1e-5, rtol=1e-4)


def test_tcn_encoder_gradients_equal_straightforward_implementation():
    encoder = TCNEncoder(3).eval()
    _randomize(encoder)
    x = torch.randn(4, 64, 3)
    weights = torch.randn(4, 96)
    grads = torch.autograd.grad((encoder(x) * weights).sum(), list(encoder.parameters()))
    expected = torch.autograd.grad((straightforward_tcn(encoder, x) * weights).sum(), list(encoder.parameters()))
    for g, e in zip(grads, expected, strict=True):
        assert torch.allclose(g, e, atol=1e-5, rtol=1e-4)


def test_fused_encoders_equal_eager_with_dropout():
    """The compiled elementwise path: same outputs and gradients as eager, dropout included."""
    encoders = ModalityEncoders({"acc": 3, "ecg": 1}, elementwise="eager").train()
    _randomize(encoders)
    inputs = {"acc": torch.randn(8, 64, 3), "ecg": torch.randn(8, 100, 1)}
    results = []
    for fused in (False, True):
        encoders.set_fused(fused)
        torch.manual_seed(5)  # the same dropout draws for both paths
        out = encoders(inputs)
        results.append((out, torch.autograd.grad(out.square().sum(), list(encoders.parameters()))))
    (eager, eager_grads), (fused_out, fused_grads) = results
    assert torch.allclose(eager, fused_out, atol=1e-5, rtol=1e-4)
    for g, e in zip(fused_grads, eager_grads, strict=True):
        assert torch.allclose(g, e, atol=1e-4, rtol=1e-3)


def test_dropout_keep_scale_keeps_the_configured_fraction_and_rescales():
    torch.manual_seed(0)
    scale = dropout_keep_scale((200, 50, 100), 0.1, torch.float32, torch.device("cpu"))
    kept = scale > 0
    assert torch.unique(scale).tolist() == pytest.approx([0.0, 1 / 0.9])
    # 1e6 Bernoulli(0.9) draws: the kept fraction is within 5 standard deviations (0.0015) of 0.9.
    assert abs(kept.float().mean().item() - 0.9) < 0.0015


def test_dropout_keep_scale_is_uncorrelated_between_neighbours():
    """Four decisions share one 64-bit draw: neighbours must still be independent."""
    torch.manual_seed(0)
    kept = dropout_keep_scale((1_000_000,), 0.5, torch.float32, torch.device("cpu")) > 0
    both = (kept[:-1] & kept[1:]).float().mean().item()
    assert abs(both - 0.25) < 0.003


def test_dropout_is_off_in_eval_mode_and_on_in_training():
    encoder = TCNEncoder(3)
    x = torch.randn(4, 64, 3)
    encoder.eval()
    with torch.no_grad():
        assert torch.equal(encoder(x), encoder(x))
        encoder.train()
        assert not torch.equal(encoder(x), encoder(x))
