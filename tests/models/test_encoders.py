"""TCN encoders: output shapes, parameter counts (as in the Keras release), per-modality encoders."""

from __future__ import annotations

import pytest
import torch

from crossl.models.encoders import ModalityEncoders, TCNEncoder


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
        h = encoder.blocks(x.transpose(1, 2))
    assert h.shape == (2, 96, 45)


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
