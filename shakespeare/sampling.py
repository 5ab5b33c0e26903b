"""Decoding: turn next-token logits into tokens (greedy, temperature sampling, top-k, top-p)."""

from __future__ import annotations

import torch

from shakespeare.model import GPT, IncrementalDecoder
from shakespeare.tokenizer import CharTokenizer


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to -inf every logit outside the top k and/or outside the smallest nucleus of mass >= top_p."""
    if top_k is not None and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
        drop_sorted = mass_before >= top_p  # the first token is always kept
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick one token per row of logits (B, V): argmax when temperature == 0, else sample. Returns (B,)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample_text(model: GPT, tokenizer: CharTokenizer, prompt: str = "\n", num_tokens: int = 200,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> str:
    """Prompt + num_tokens sampled characters (KV-cached decoding)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)  # (1, T)
    decoder = IncrementalDecoder(model, batch_size=1)
    logits = decoder.prefill(ids)
    out = []
    for _ in range(num_tokens):
        tok = next_token(logits, temperature, top_k, top_p, generator)  # (1,)
        out.append(int(tok))
        logits = decoder.step(tok)
    model.train(was_training)
    return prompt + tokenizer.decode(out)
