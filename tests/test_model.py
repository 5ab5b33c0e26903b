"""Properties of the GPT: causality, loss at init, it learns, every positional encoding, the KV cache."""

import math

import pytest
import torch

from shakespeare.model import GPT, POS_ENCODINGS, GPTConfig, IncrementalDecoder, KVCache, loss


def tiny(pos: str = "learned", **kw) -> GPT:
    torch.manual_seed(0)
    cfg = dict(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32, pos_encoding=pos)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_changing_future_tokens_never_changes_earlier_logits(pos):
    model = tiny(pos)
    idx = torch.randint(0, 20, (3, 16))
    for t in range(0, 16, 3):
        changed = idx.clone()
        changed[:, t + 1 :] = torch.randint(0, 20, changed[:, t + 1 :].shape)
        a, b = model(idx), model(changed)
        assert torch.equal(a[:, : t + 1], b[:, : t + 1])
        if t + 1 < 16:
            assert not torch.allclose(a[:, t + 1 :], b[:, t + 1 :])


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_loss_at_init_is_close_to_uniform(pos):
    model = tiny(pos, vocab_size=65)
    idx = torch.randint(0, 65, (8, 16))
    value = loss(model(idx[:, :-1]), idx[:, 1:]).item()
    assert abs(value - math.log(65)) < 0.1


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_tiny_model_overfits_a_fixed_batch(pos):
    model = tiny(pos).train()
    torch.manual_seed(1)
    data = torch.randint(0, 20, (4, 17))
    x, y = data[:, :-1], data[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        value = loss(model(x), y)
        value.backward()
        opt.step()
    assert value.item() < 0.1


def test_output_head_is_tied_and_parameter_count_counts_it_once():
    model = tiny()
    assert model.lm_head.weight is model.wte.weight
    c = model.config
    per_block = 2 * c.n_embd + 12 * c.n_embd**2  # two LayerNorm weights, qkv + proj + 2 MLP matrices
    expected = c.vocab_size * c.n_embd + c.block_size * c.n_embd + c.n_layer * per_block + c.n_embd
    assert model.num_parameters() == expected


def test_sequence_longer_than_block_size_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        tiny()(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("bad", [dict(n_embd=30, n_head=4), dict(pos_encoding="alibi"), dict(n_layer=0),
                                 dict(dropout=1.0), dict(pos_encoding="rope", n_embd=6, n_head=2)])
def test_impossible_configs_are_refused(bad):
    with pytest.raises(ValueError):
        GPTConfig(**bad)


@pytest.mark.parametrize("pos", POS_ENCODINGS)
def test_kv_cache_logits_equal_full_recompute_through_window_slides(pos):
    model = tiny(pos)
    torch.manual_seed(2)
    seq = torch.randint(0, 20, (2, 60))  # 60 tokens through a 16-token window: several slides
    cached, plain = IncrementalDecoder(model, 2, slide=3), IncrementalDecoder(model, 2, use_cache=False, slide=3)
    a, b = cached.prefill(seq[:, :5]), plain.prefill(seq[:, :5])
    for t in range(5, 60):
        full = model(cached.context)[:, -1]
        torch.testing.assert_close(a, full, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b, full, rtol=1e-5, atol=1e-5)
        a, b = cached.step(seq[:, t]), plain.step(seq[:, t])
        assert torch.equal(cached.context, plain.context)
        assert cached.context.size(1) <= model.config.block_size
        assert torch.equal(cached.context[:, -1], seq[:, t])


def test_cache_chunk_after_prefix_matches_full_forward():
    model = tiny("rope")
    idx = torch.randint(0, 20, (2, 12))
    cache = KVCache(model.config, 2, "cpu")
    model(idx[:, :5], cache)
    chunk = model(idx[:, 5:], cache)  # several new tokens attend to the cache with a causal offset mask
    torch.testing.assert_close(chunk, model(idx)[:, 5:], rtol=1e-5, atol=1e-5)
