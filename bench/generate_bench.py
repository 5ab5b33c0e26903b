"""Generation speed on the CPU: tokens/s with the KV cache vs the standard uncached loop.

Two models: (a) the shipped lite checkpoint (a random lite-architecture model if it is missing; the table says
which) and (b) the heavy architecture (6 x 384, context 256, random weights: speed does not depend on them).
Each greedy-decodes --num_tokens characters from a one-character prompt, two ways:
  cached    shakespeare.model.IncrementalDecoder(use_cache=True): one single-token forward pass per character;
            when the window is full the oldest block_size/4 characters are dropped and the rest re-encoded.
  uncached  the standard loop: every step is a full forward pass over the last block_size characters.
Repeats alternate cached and uncached runs, so machine noise hits both alike; the table shows medians after a
warm-up. The last line is exactly kv_cache_speedup=<x>: heavy cached tokens/s / heavy uncached tokens/s.

  python bench/generate_bench.py                     # 1000 tokens, 3 repeats (a few minutes on 2 cores)
  python bench/generate_bench.py --num_tokens 300 --repeats 1   # quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from shakespeare import MODELS_DIR
from shakespeare.checkpoint import load_model
from shakespeare.config import get_config
from shakespeare.errors import UserError
from shakespeare.model import GPT, GPTConfig, IncrementalDecoder

HEAVY = GPTConfig(vocab_size=65, n_layer=6, n_head=6, n_embd=384, block_size=256)


@torch.no_grad()
def decode_cached(model: GPT, num_tokens: int) -> list[int]:
    """Greedy decoding through the KV cache; no forward pass after the last token."""
    decoder = IncrementalDecoder(model, batch_size=1, use_cache=True)
    logits = decoder.prefill(torch.zeros(1, 1, dtype=torch.long))  # (1, V)
    out = []
    for i in range(num_tokens):
        tok = logits.argmax(-1)  # (1,)
        out.append(int(tok))
        if i + 1 < num_tokens:
            logits = decoder.step(tok)
    return out


@torch.no_grad()
def decode_uncached(model: GPT, num_tokens: int) -> list[int]:
    """Greedy decoding the standard way: a full forward pass over the last block_size tokens per step."""
    block = model.config.block_size
    idx = torch.zeros(1, 1, dtype=torch.long)  # (1, T)
    out = []
    for i in range(num_tokens):
        tok = model(idx[:, -block:])[:, -1].argmax(-1)  # (1,)
        out.append(int(tok))
        if i + 1 < num_tokens:
            idx = torch.cat([idx, tok[:, None]], dim=1)
    return out


def tokens_per_s(fn: Callable[[GPT, int], list[int]], model: GPT, num_tokens: int) -> float:
    t0 = time.perf_counter()
    fn(model, num_tokens)
    return num_tokens / (time.perf_counter() - t0)


def lite_model(path: Path) -> tuple[GPT, str]:
    try:
        model, _, _ = load_model(path, "cpu")
        return model, f"shipped {path.name}"
    except UserError:
        torch.manual_seed(0)
        return GPT(get_config("lite").model_config(vocab_size=65)).eval(), "lite arch, random (no checkpoint)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_tokens", type=int, default=1000,
                   help="characters generated per run (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs per model and mode; the median is reported (default: %(default)s)")
    p.add_argument("--warmup_tokens", type=int, default=64,
                   help="characters generated once per model and mode before timing (default: %(default)s)")
    p.add_argument("--model", default=str(MODELS_DIR / "lite.pt"),
                   help="lite checkpoint to time (default: %(default)s; a random lite model if missing)")
    args = p.parse_args()
    if args.num_tokens < 1 or args.repeats < 1 or args.warmup_tokens < 0:
        p.error("--num_tokens and --repeats must be >= 1, --warmup_tokens >= 0")

    lite, lite_source = lite_model(Path(args.model))
    torch.manual_seed(0)
    heavy = GPT(HEAVY).eval()
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; greedy decoding of "
          f"{args.num_tokens} tokens from a 1-token prompt; median of {args.repeats} repeats after a warm-up")
    rows = []
    models = (("lite", lite_source, lite), ("heavy", "6x384 ctx 256, random weights", heavy))
    for name, source, model in models:
        for fn in (decode_cached, decode_uncached):
            fn(model, args.warmup_tokens)
        cached, uncached = [], []
        for _ in range(args.repeats):
            cached.append(tokens_per_s(decode_cached, model, args.num_tokens))
            uncached.append(tokens_per_s(decode_uncached, model, args.num_tokens))
        c, u = statistics.median(cached), statistics.median(uncached)
        print(f"  {name}: cached {[round(x) for x in cached]} tok/s, uncached {[round(x) for x in uncached]} tok/s",
              flush=True)
        rows.append((name, source, model.num_parameters() / 1e6, model.config.block_size, c, u, c / u))

    header = ("model", "weights", "params (M)", "context", "cached tok/s", "uncached tok/s", "speedup")
    table = [header] + [(n, s, f"{m:.2f}", str(b), f"{c:.0f}", f"{u:.0f}", f"{x:.2f}x")
                        for n, s, m, b, c, u, x in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in table[1:]:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")
    print()
    print(f"kv_cache_speedup={rows[-1][-1]:.2f}")


if __name__ == "__main__":
    main()
