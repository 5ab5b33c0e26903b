"""The encodings in shakespeare/positional.py have the properties the notebook shows."""

import math

import pytest
import torch

from shakespeare.positional import (
    apply_rope,
    inverse_frequencies,
    rope_relative_upper_bound,
    sinusoidal_encoding,
)


def test_sinusoidal_formula_values():
    pe = sinusoidal_encoding(50, 16)
    p, i = 7, 3
    angle = p / 10000 ** (2 * i / 16)
    assert pe[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
    assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert torch.equal(pe[0, 0::2], torch.zeros(8)) and torch.equal(pe[0, 1::2], torch.ones(8))


def test_sinusoidal_dot_product_depends_only_on_the_offset():
    pe = sinusoidal_encoding(400, 64).double()
    for k in (1, 5, 40):
        dots = (pe[:-k] * pe[k:]).sum(-1)  # PE[p] . PE[p+k] for every p
        assert torch.allclose(dots, dots[0].expand_as(dots), atol=1e-5)
    gram = pe @ pe.T
    assert torch.allclose(gram, gram.T)


def test_sinusoidal_shift_is_a_fixed_rotation():
    pe = sinusoidal_encoding(100, 16).double()
    k = 9
    theta = inverse_frequencies(16).double() * k
    rot = torch.zeros(16, 16, dtype=torch.float64)
    for i, a in enumerate(theta):
        # (sin(x+a), cos(x+a)) = [[cos a, sin a], [-sin a, cos a]] (sin x, cos x)
        rot[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[a.cos(), a.sin()], [-a.sin(), a.cos()]])
    assert torch.allclose(pe[k:], pe[:-k] @ rot.T, atol=1e-5)


def test_rope_preserves_norms_and_is_identity_at_position_zero():
    x = torch.randn(2, 3, 10, 32)
    out = apply_rope(x, torch.arange(10))
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.allclose(out[..., 0, :], x[..., 0, :])


def test_rope_scores_depend_only_on_relative_position():
    q, k = torch.randn(64, dtype=torch.float64), torch.randn(64, dtype=torch.float64)

    def score(m, n):
        qm = apply_rope(q[None].float(), torch.tensor([m])).double()
        kn = apply_rope(k[None].float(), torch.tensor([n])).double()
        return (qm * kn).sum().item()

    for m, n in ((5, 2), (40, 1), (3, 30)):
        for shift in (1, 17, 500):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-3)


def test_rope_upper_bound_decays_with_distance():
    bound = rope_relative_upper_bound(1000, dim=128)
    assert bound[0].item() == pytest.approx((torch.arange(1, 65).double().mean()).item())
    assert bound[900:].mean() < bound[:10].mean() / 4
