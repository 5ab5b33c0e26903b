"""Score a checkpoint on the whole validation split: every val token predicted exactly once.

The split is cut into consecutive windows of block_size; inside a window token t is predicted from the tokens
before it in that window. Prints JSON with val_loss (nats/char), bpc (bits/char), top1_acc and top5_acc.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.nn.functional as F

from shakespeare import DATA_DIR, MODELS_DIR
from shakespeare.checkpoint import load_model
from shakespeare.device import DEVICES, resolve_device
from shakespeare.errors import UserError, run_cli
from shakespeare.tokenizer import load_split, load_vocab


@torch.no_grad()
def score_windows(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int, int, int]:
    """Sum of NLL (nats), top-1 hits, top-5 hits and token count for inputs x (B, T) with targets y (B, T)."""
    logits = model(x).float()  # (B, T, V)
    nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
    top5 = logits.topk(min(5, logits.size(-1)), dim=-1).indices  # (B, T, 5)
    hits = top5 == y.unsqueeze(-1)  # (B, T, 5)
    return nll, int(hits[..., 0].sum()), int(hits.any(-1).sum()), y.numel()


def metrics_from_sums(nll: float, top1: int, top5: int, n: int) -> dict:
    val_loss = nll / n
    return {"val_loss": val_loss, "bpc": val_loss / math.log(2), "top1_acc": top1 / n, "top5_acc": top5 / n,
            "tokens": n}


@torch.no_grad()
def evaluate_batches(model: torch.nn.Module, batches, device: torch.device | str = "cpu") -> dict:
    """Metrics summed over an iterable of (x, y) batches of windows, model in eval mode meanwhile."""
    was_training = model.training
    model.eval()
    sums = [0.0, 0, 0, 0]
    for x, y in batches:
        for i, v in enumerate(score_windows(model, x.to(device), y.to(device))):
            sums[i] += v
    model.train(was_training)
    return metrics_from_sums(*sums)


def evaluate_windows(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                     device: torch.device | str = "cpu") -> dict:
    """Metrics over fixed windows x, y (N, T), scored batch_size windows at a time."""
    return evaluate_batches(model, ((x[s : s + batch_size], y[s : s + batch_size])
                                    for s in range(0, len(x), batch_size)), device)


def evaluate_ids(model: torch.nn.Module, ids: np.ndarray, block_size: int, batch_size: int = 64,
                 device: torch.device | str = "cpu") -> dict:
    """Metrics over all of `ids`: consecutive windows, each of the len(ids) - 1 targets scored once."""
    ids_t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
    n_targets = len(ids_t) - 1
    n_full = n_targets // block_size
    inputs = ids_t[: n_full * block_size].view(n_full, block_size)  # (N, T)
    targets = ids_t[1 : n_full * block_size + 1].view(n_full, block_size)  # (N, T)
    batches = [(inputs[s : s + batch_size], targets[s : s + batch_size]) for s in range(0, n_full, batch_size)]
    tail = n_targets - n_full * block_size
    if tail:  # the last, shorter window
        start = n_full * block_size
        batches.append((ids_t[start : start + tail].view(1, -1), ids_t[start + 1 : start + tail + 1].view(1, -1)))
    return evaluate_batches(model, batches, device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(MODELS_DIR / "lite.pt"),
                        help="checkpoint to score (default: %(default)s)")
    parser.add_argument("--data_path", default=str(DATA_DIR),
                        help="folder with vocab.json and val.bin from tokenizer.py (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=64, help="windows per forward pass (default: %(default)s)")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="device to score on (default: %(default)s)")
    args = parser.parse_args()
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    model, tokenizer, _ = load_model(args.model, device)
    data_vocab = load_vocab(args.data_path)
    if data_vocab.chars != tokenizer.chars:
        raise UserError(f"the data in {args.data_path} was tokenized with another vocabulary than {args.model}; "
                        f"rerun tokenizer.py on the model's corpus or pass the matching --data_path")
    val_ids = load_split(args.data_path, "val")
    if len(val_ids) < 2:
        raise UserError(f"{args.data_path}/val.bin has {len(val_ids)} token(s), nothing to score; "
                        f"rerun tokenizer.py on a longer text")
    metrics = evaluate_ids(model, val_ids, model.config.block_size, args.batch_size, device)
    print(json.dumps({"model": str(args.model), **metrics}))
    return 0


if __name__ == "__main__":
    run_cli(main)
