"""A small decoder-only transformer (GPT) for character-level language modelling.

Pre-norm blocks (LayerNorm -> causal self-attention -> residual, LayerNorm -> MLP -> residual), attention through
PyTorch's fused scaled_dot_product_attention, output head tied to the token embedding, and a KV cache for
incremental decoding. Positions: learned absolute (GPT-2 style), fixed sinusoidal, rotary (RoPE), or none.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shakespeare.positional import rope_cos_sin, rotate_pairs, sinusoidal_encoding

POS_ENCODINGS = ("learned", "sinusoidal", "rope", "none")
INIT_STD = 0.02


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 128  # context length: the most tokens the model attends over
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    attn_dropout: bool = True  # also drop attention probabilities (on CPUs this forces SDPA's slow math path)
    bias: bool = False  # biases in Linear and LayerNorm layers
    pos_encoding: str = "learned"  # one of POS_ENCODINGS
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"pos_encoding must be one of {', '.join(POS_ENCODINGS)}, got {self.pos_encoding!r}")
        if self.pos_encoding == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rope needs an even head size (n_embd / n_head)")
        if self.pos_encoding == "sinusoidal" and self.n_embd % 2:
            raise ValueError("sinusoidal positions need an even n_embd")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated for block_size positions."""

    def __init__(self, config: GPTConfig, batch_size: int, device, dtype=torch.float32):
        head_dim = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)  # (L, B, H, block_size, hd)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions 0 .. length-1 are filled

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (e.g. the surviving beams), in that order."""
        self.k = self.k.index_select(1, index)
        self.v = self.v.index_select(1, index)

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout if config.attn_dropout else 0.0
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if rope is not None:
            q, k = rotate_pairs(q, *rope), rotate_pairs(k, *rope)
        dropout_p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)  # (B, H, T, hd)
        else:
            n = cache.length
            cache.k[layer, :, :, n : n + T] = k
            cache.v[layer, :, :, n : n + T] = v
            keys, values = cache.k[layer, :, :, : n + T], cache.v[layer, :, :, : n + T]  # (B, H, n+T, hd)
            if n == 0:
                y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
            elif T == 1:  # one new query may attend to every cached key
                y = F.scaled_dot_product_attention(q, keys, values)
            else:  # query i sits at position n + i: it sees keys 0 .. n + i
                mask = torch.ones(T, n + T, dtype=torch.bool, device=x.device).tril(diagonal=n)
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), rope, cache, layer)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.pos_encoding == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        elif config.pos_encoding == "sinusoidal":
            # Fixed encoding scaled to the token embeddings' size at init (sin/cos have std 1/sqrt(2)), so
            # neither signal drowns the other at the start of training.
            pe = sinusoidal_encoding(config.block_size, config.n_embd) * (INIT_STD * math.sqrt(2))
            self.register_buffer("pe", pe, persistent=False)  # (block_size, C)
        elif config.pos_encoding == "rope":
            cos, sin = rope_cos_sin(torch.arange(config.block_size), config.n_embd // config.n_head, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)  # (block_size, hd/2)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: one matrix embeds and un-embeds characters
        self.apply(self._init_weights)
        # Residual output projections: scale down so the residual stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                nn.init.normal_(p, mean=0.0, std=INIT_STD / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)

    def num_parameters(self) -> int:
        """Trainable parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, vocab). With a cache, idx continues the cached positions."""
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        x = self.wte(idx)  # (B, T, C)
        rope = None
        kind = self.config.pos_encoding
        if kind == "learned":
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))  # (T, C) broadcast over B
        elif kind == "sinusoidal":
            x = x + self.pe[start : start + T]
        elif kind == "rope":
            rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])  # (T, hd/2) each
        x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope, cache, layer)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if cache is not None:
            cache.length += T
        return logits


def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of logits (B, T, V) against targets (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))


class IncrementalDecoder:
    """Feeds a growing token sequence through the model one token at a time.

    The model sees at most block_size tokens. When the window is full, the oldest `slide` tokens are dropped and
    the kept ones are re-encoded from position 0 (one batched forward pass), so every logit equals a full
    forward pass over exactly the tokens in `self.context` -- for every positional encoding. Sliding by more than
    one token amortises that re-encoding; with use_cache=False every step recomputes the whole window instead.
    """

    def __init__(self, model: GPT, batch_size: int, use_cache: bool = True, slide: int | None = None):
        self.model = model
        self.block_size = model.config.block_size
        self.use_cache = use_cache
        self.slide = slide if slide is not None else max(1, self.block_size // 4)
        if not 1 <= self.slide <= self.block_size:
            raise ValueError(f"slide must be in [1, block_size], got {self.slide}")
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        self.cache = KVCache(model.config, batch_size, device, dtype) if use_cache else None
        self.context = torch.empty(batch_size, 0, dtype=torch.long, device=device)  # (B, n) tokens in the window

    @torch.no_grad()
    def _encode_window(self) -> torch.Tensor:
        if self.cache is not None:
            self.cache.reset()
        return self.model(self.context, self.cache)[:, -1]  # (B, V)

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor) -> torch.Tensor:
        """Start from tokens idx (B, T >= 1); keeps the last block_size of them. Returns next-token logits (B, V)."""
        self.context = idx[:, -self.block_size :]
        return self._encode_window()

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per row, tokens (B,); return the next-token logits (B, V)."""
        tokens = tokens.view(-1, 1)  # (B, 1)
        if self.context.size(1) >= self.block_size:  # window full: slide it and re-encode what is kept
            self.context = torch.cat([self.context[:, self.slide :], tokens], dim=1)
            return self._encode_window()
        self.context = torch.cat([self.context, tokens], dim=1)
        if self.cache is None:
            return self._encode_window()
        return self.model(tokens, self.cache)[:, -1]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` of the batch (beam search)."""
        self.context = self.context.index_select(0, index)
        if self.cache is not None:
            self.cache.reorder(index)
