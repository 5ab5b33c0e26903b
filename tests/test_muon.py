"""Muon: the Newton-Schulz iteration approximates the polar factor; the optimizer does what its docstring says."""

from __future__ import annotations

import math

import pytest
import torch

from shakespeare.config import TrainConfig
from shakespeare.model import GPT
from shakespeare.muon import Muon, orthogonalize
from shakespeare.train import make_optimizer


def matrix_with_singular_values(s: torch.Tensor, rows: int, cols: int, seed: int = 0):
    """A (rows x cols) matrix U diag(s) V^T with random orthonormal U, V; returns it with U and V."""
    gen = torch.Generator().manual_seed(seed)
    k = len(s)
    u, _ = torch.linalg.qr(torch.randn(rows, k, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, k, generator=gen, dtype=torch.float64))
    return (u * s) @ v.T, u, v


@pytest.mark.parametrize("rows, cols", [(64, 64), (192, 64), (64, 256)])
def test_orthogonalize_keeps_singular_vectors_and_equalizes_singular_values(rows, cols):
    # Condition number 100: the raw gradient would move the weakest direction 100x less than the strongest.
    s = torch.logspace(-2, 0, min(rows, cols), dtype=torch.float64)
    g, u, v = matrix_with_singular_values(s, rows, cols)
    o = orthogonalize(g.float()).double()
    assert o.shape == g.shape
    core = u.T @ o @ v  # (k, k): diagonal exactly when o = U f(S) V^T
    off = core - torch.diag(torch.diagonal(core))
    assert off.norm() < 1e-3 * core.norm()
    # The quintic does not converge to 1: it lands every singular value in a band around it (0.68 .. 1.2).
    assert torch.diagonal(core).min() > 0.6 and torch.diagonal(core).max() < 1.25
    assert (o - u @ v.T).norm() / (u @ v.T).norm() < 0.3  # close to the exact polar factor U V^T


def test_orthogonalize_is_batched_and_scale_invariant():
    g = torch.randn(3, 32, 48, generator=torch.Generator().manual_seed(1))
    batched = orthogonalize(g)
    one_by_one = torch.stack([orthogonalize(m) for m in g])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(orthogonalize(1000.0 * g), batched, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(orthogonalize(g.mT), batched.mT, rtol=1e-5, atol=1e-5)  # tall == wide transposed


def test_bfloat16_iteration_is_as_good_as_float32():
    # Rounding moves the result by a few percent, but not further from the exact polar factor U V^T.
    g = torch.randn(4, 64, 128, generator=torch.Generator().manual_seed(3))
    fast, full = orthogonalize(g, dtype=torch.bfloat16), orthogonalize(g)
    assert fast.dtype == torch.float32
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    polar = u @ vh

    def distance(o):
        return ((o - polar).norm() / polar.norm()).item()

    assert distance(fast) < 1.05 * distance(full) < 0.3
    sv = torch.linalg.svdvals(fast)
    assert sv.min() > 0.6 and sv.max() < 1.25


def test_muon_matrix_step_matches_the_formula():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(6, 4))  # two stacked (3 x 4) maps, orthogonalized separately
    lr, wd, mom = 0.1, 0.5, 0.9
    opt = Muon([w], lr=lr, weight_decay=wd, momentum=mom, split=2, ns_dtype=torch.float32)
    expected, buf = w.detach().clone(), torch.zeros(6, 4)
    for _ in range(3):
        w.grad = torch.randn(6, 4)
        buf = mom * buf + w.grad
        nesterov = w.grad + mom * buf
        update = torch.cat([orthogonalize(nesterov[:3]), orthogonalize(nesterov[3:])])
        expected = expected * (1 - lr * wd) - lr * update  # blocks are wide (3 x 4): scale 1
        opt.step()
    torch.testing.assert_close(w.detach(), expected)


def test_tall_matrices_get_the_sqrt_aspect_scale():
    w = torch.nn.Parameter(torch.zeros(16, 4))
    w.grad = torch.randn(16, 4, generator=torch.Generator().manual_seed(2))
    Muon([w], lr=1.0, momentum=0.0, ns_dtype=torch.float32).step()
    torch.testing.assert_close(-w.detach(), 2.0 * orthogonalize(w.grad))  # sqrt(16 / 4)


def test_non_muon_groups_are_exactly_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    ours = Muon([{"params": [a], "muon": False}], lr=3e-2, weight_decay=0.1, betas=(0.8, 0.95), eps=1e-8)
    ref = torch.optim.AdamW([b], lr=3e-2, weight_decay=0.1, betas=(0.8, 0.95), eps=1e-8)
    for _ in range(5):
        grad = torch.randn(5, 3)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)


def test_muon_rejects_what_it_cannot_orthogonalize():
    with pytest.raises(ValueError, match="matrices"):
        Muon([torch.nn.Parameter(torch.zeros(5))])
    with pytest.raises(ValueError, match="3 blocks"):
        Muon([torch.nn.Parameter(torch.zeros(4, 4))], split=3)


def test_make_optimizer_puts_block_matrices_on_muon_and_the_rest_on_adamw():
    cfg = TrainConfig(n_layer=2, n_embd=32, n_head=2, block_size=16, optimizer="muon", muon_lr=0.03, lr=1e-3)
    model = GPT(cfg.model_config(vocab_size=11))
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    owner = {id(p): g for g in opt.param_groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(owner) == len(names) == sum(len(g["params"]) for g in opt.param_groups)  # each exactly once
    for name, p in names.items():
        g = owner[id(p)]
        on_muon = name.startswith("blocks.") and p.dim() == 2
        assert g["muon"] == on_muon, name
        assert g["peak_lr"] == (0.03 if on_muon else 1e-3)
        assert g.get("split", 1) == (3 if name.endswith("attn.qkv.weight") else 1)
        assert (g["weight_decay"] > 0) == (p.dim() == 2), name  # never on norm gains


def test_muon_step_lowers_the_loss_of_a_small_model():
    torch.manual_seed(0)
    cfg = TrainConfig(n_layer=1, n_embd=32, n_head=2, block_size=16, optimizer="muon", warmup_iters=0)
    model = GPT(cfg.model_config(vocab_size=7))
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    x = torch.randint(0, 7, (4, 16))
    y = torch.roll(x, -1, dims=1)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        losses.append(loss.item())
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert losses[0] == pytest.approx(math.log(7), abs=0.1) and losses[-1] < 0.5 * losses[0]
