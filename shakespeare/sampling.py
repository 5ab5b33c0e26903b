"""Decoding: turn next-token logits into tokens (greedy, temperature sampling, top-k, top-p, beam search).

Every strategy runs through model.IncrementalDecoder, so the prompt is encoded once and each new token costs
one single-token forward pass (KV cache), and no forward pass is run after the last token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shakespeare.model import GPT, IncrementalDecoder
from shakespeare.tokenizer import CharTokenizer


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to -inf every logit outside the top k and/or outside the nucleus of top_p.

    top_k keeps exactly min(k, V) tokens per row (ties broken by torch.topk). top_p keeps the smallest set of
    most likely tokens whose probability mass reaches top_p (the most likely token is always kept). With both,
    top-k is applied first and the nucleus is taken over the renormalised top-k distribution.
    """
    if top_k is not None and top_k < logits.size(-1):
        keep = torch.zeros_like(logits, dtype=torch.bool)
        keep.scatter_(-1, logits.topk(top_k, dim=-1).indices, True)  # (B, V)
        logits = logits.masked_fill(~keep, float("-inf"))
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


def generate_tokens(model: GPT, ids: torch.Tensor, num_tokens: int, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None,
                    generator: torch.Generator | None = None, use_cache: bool = True,
                    slide: int | None = None) -> Iterator[torch.Tensor]:
    """Yield num_tokens next tokens (B,) continuing ids (B, T >= 1), one at a time, as they are chosen.

    Lazy: the forward pass for token i + 1 runs only when it is asked for, so a consumer that stops early (or
    the end of the loop) never pays for a wasted pass. The model should be in eval mode.
    """
    if num_tokens <= 0:
        return
    decoder = IncrementalDecoder(model, ids.size(0), use_cache=use_cache, slide=slide)
    logits = decoder.prefill(ids)  # (B, V)
    for i in range(num_tokens):
        tok = next_token(logits, temperature, top_k, top_p, generator)  # (B,)
        yield tok
        if i + 1 < num_tokens:
            logits = decoder.step(tok)


@torch.no_grad()
def sample_text(model: GPT, tokenizer: CharTokenizer, prompt: str = "\n", num_tokens: int = 200,
                temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> str:
    """Prompt + num_tokens sampled characters (KV-cached decoding)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)  # (1, T)
    out = [int(tok) for tok in generate_tokens(model, ids, num_tokens, temperature, top_k, top_p, generator)]
    model.train(was_training)
    return prompt + tokenizer.decode(out)


@dataclass
class Hypothesis:
    """One beam: the generated token ids (prompt excluded) and their summed log-probability."""

    tokens: list[int]
    logprob: float  # sum of log softmax(logits / T) of the chosen tokens
    finished: bool = False  # ended by the stop sequence (else it ran to num_tokens)

    def score(self, length_penalty: float = 0.0) -> float:
        """Length-normalised score logprob / L**length_penalty, L = generated tokens (0: raw sum, 1: mean)."""
        if length_penalty == 0 or not self.tokens:
            return self.logprob
        return self.logprob / len(self.tokens) ** length_penalty


def _ends_with(seq: list[int], stop: list[int] | None) -> bool:
    return bool(stop) and len(seq) >= len(stop) and seq[-len(stop):] == stop


@torch.no_grad()
def beam_search(model: GPT, ids: torch.Tensor, num_tokens: int, beam_width: int, temperature: float = 1.0,
                length_penalty: float = 0.0, num_return: int = 1, stop: list[int] | None = None,
                use_cache: bool = True, slide: int | None = None) -> list[Hypothesis]:
    """The num_return best of the beams found by beam search of width beam_width, best first.

    Beams are scored by the sum of log softmax(logits / T) of their tokens (T = 0 is scored as T = 1) and
    ranked at the end by Hypothesis.score(length_penalty). All live beams run as one batch through one
    IncrementalDecoder whose caches are reordered by beam after each step; the search starts from the single
    prompt beam, so no two beams are ever identical. A beam whose continuation ends with `stop` is finished
    and leaves the batch (kept only if it ranks among the top beam_width candidates of its step, as usual).

    Plain beam search can prune the greedy path and end below it; here the greedy path rides along as one
    extra batch row and competes in the final ranking, so the best result never scores below greedy decoding.
    """
    if beam_width < 1 or num_return < 1:
        raise ValueError("beam_width and num_return must be >= 1")
    t_scale = temperature if temperature > 0 else 1.0
    if num_tokens <= 0:
        return [Hypothesis([], 0.0)]
    device = ids.device
    decoder = IncrementalDecoder(model, 1, use_cache=use_cache, slide=slide)
    logits = decoder.prefill(ids[:1])  # (1, V): one row, the prompt
    vocab = logits.size(-1)
    seqs: list[list[int]] = [[]]  # live beams
    scores = torch.zeros(1, device=device)  # (beams,) their log-probs
    finished: list[Hypothesis] = []
    greedy = Hypothesis([], 0.0) if beam_width > 1 else None  # width 1 is greedy already
    greedy_row = 0  # the greedy path's row in the batch (None once it has finished)
    for t in range(num_tokens):
        logp = F.log_softmax(logits.float() / t_scale, dim=-1)  # (rows, V)
        rows = []  # batch rows to keep, in order, and the token each one takes next
        tokens = []
        if greedy is not None and greedy_row is not None:
            g_tok = int(logp[greedy_row].argmax())
            greedy.tokens.append(g_tok)
            greedy.logprob += float(logp[greedy_row, g_tok])
            greedy.finished = _ends_with(greedy.tokens, stop)
        cand = (scores[:, None] + logp[: len(seqs)]).view(-1)  # (beams * V,) every one-token extension
        top_scores, top_idx = cand.topk(min(cand.numel(), 2 * beam_width))
        live_score = []
        for rank, (s, i) in enumerate(zip(top_scores.tolist(), top_idx.tolist(), strict=True)):
            if s == float("-inf") or len(rows) == beam_width:
                break
            b, tok = divmod(i, vocab)
            if _ends_with(seqs[b] + [tok], stop):
                if rank < beam_width:
                    finished.append(Hypothesis(seqs[b] + [tok], s, finished=True))
                continue
            rows.append(b)
            tokens.append(tok)
            live_score.append(s)
        seqs = [seqs[b] + [tok] for b, tok in zip(rows, tokens, strict=True)]
        scores = torch.tensor(live_score, device=device)
        if greedy is not None and greedy_row is not None:
            if greedy.finished:
                greedy_row = None
            else:
                rows.append(greedy_row)
                tokens.append(g_tok)
                greedy_row = len(rows) - 1
        if not rows or t == num_tokens - 1:
            break
        if length_penalty == 0 and len(finished) >= num_return:
            # Log-probs only decrease as beams grow: stop once no live beam can overtake the finished ones.
            kth = sorted((h.logprob for h in finished), reverse=True)[num_return - 1]
            if kth >= max(live_score + ([greedy.logprob] if greedy_row is not None else [])):
                break
        if rows != list(range(logits.size(0))):  # rows were dropped, duplicated or reordered
            decoder.reorder(torch.tensor(rows, device=device))
        logits = decoder.step(torch.tensor(tokens, device=device))  # (rows, V)
    hyps = finished + [Hypothesis(seq, s) for seq, s in zip(seqs, scores.tolist(), strict=True)]
    if greedy is not None and all(h.tokens != greedy.tokens for h in hyps):
        hyps.append(greedy)
    hyps.sort(key=lambda h: h.score(length_penalty), reverse=True)
    return hyps[:num_return]
