"""Training-step throughput: the project's train step vs a plain fp32 eager step of the same model.

All steps run in this process, interleaved, so machine noise hits them alike; medians of several repeats.
Also measures the fp32 matmul ceiling on this machine and reports model FLOP utilisation (MFU) against it.
The project's step is timed with each optimizer: with AdamW it is the same arithmetic as the plain step (the ratio
measures overhead), with Muon each step also orthogonalizes every block matrix's update (a fixed cost per step
that buys more progress per step; bench/README.md measures what it buys per second of training).

  python bench/train_bench.py                      # CPU-baby shape: 4 x 128, context 64, batch 12
  python bench/train_bench.py --preset lite        # the lite training config's shape
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from torch.utils.data import DataLoader

from shakespeare.config import get_config
from shakespeare.dataset import RandomWindows
from shakespeare.model import GPT, loss
from shakespeare.train import make_optimizer


def matmul_ceiling(n: int = 2048, repeats: int = 5) -> float:
    """Median fp32 GFLOP/s of an n x n x n matmul."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def flops_per_token(model: GPT) -> float:
    """Training FLOPs per token: 6 per weight (forward + backward) plus attention's 6 * L * T * C."""
    c = model.config
    weights = model.num_parameters() - (model.wpe.weight.numel() if hasattr(model, "wpe") else 0)
    return 6 * weights + 6 * c.n_layer * c.block_size * c.n_embd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=["baby", "lite"], default="baby",
                   help="baby: 4x128, context 64, batch 12 (the classic CPU setting); lite: the lite config")
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="repeats; the median is reported (default: %(default)s)")
    args = p.parse_args()

    cfg = get_config("lite")
    if args.preset == "baby":
        cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size = 4, 4, 128, 64, 12
    ids = np.random.default_rng(0).integers(0, 65, size=200_000).astype(np.uint16)
    tokens_per_step = cfg.batch_size * cfg.block_size

    def project_step(optimizer: str):
        """The project's step: DataLoader over RandomWindows, the configured optimizer, grad clipping."""
        torch.manual_seed(0)
        model = GPT(cfg.model_config(65))
        opt = make_optimizer(model, dataclasses.replace(cfg, optimizer=optimizer), torch.device("cpu"))
        batches = iter(DataLoader(RandomWindows(ids, cfg.block_size, seed=0), batch_size=cfg.batch_size))

        def step() -> None:
            x, y = next(batches)
            loss(model(x), y).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)

        return model, step

    ours, our_step = project_step("adamw")
    _, muon_step = project_step("muon")

    # The plain step: random indices into a tensor, default AdamW, nothing else.
    torch.manual_seed(0)
    plain = GPT(cfg.model_config(65))
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=cfg.lr)
    data = torch.from_numpy(ids.astype(np.int64))
    gen = torch.Generator().manual_seed(0)

    def plain_step() -> None:
        ix = torch.randint(len(data) - cfg.block_size - 1, (cfg.batch_size,), generator=gen)
        x = torch.stack([data[i : i + cfg.block_size] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + cfg.block_size] for i in ix])
        logits = plain(x)
        torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)).backward()
        plain_opt.step()
        plain_opt.zero_grad()

    steps = {"plain": plain_step, "ours": our_step, "ours+muon": muon_step}
    for fn in steps.values():
        for _ in range(5):  # warm-up
            fn()
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append((time.perf_counter() - t0) / args.steps)
    ceiling = matmul_ceiling()
    fpt = flops_per_token(ours)
    print(f"shape: {cfg.n_layer} x {cfg.n_embd}, context {cfg.block_size}, batch {cfg.batch_size}, "
          f"{ours.num_parameters() / 1e6:.2f}M params, {cfg.pos_encoding} positions, "
          f"threads {torch.get_num_threads()}")
    print(f"fp32 matmul ceiling (2048^3): {ceiling:.0f} GFLOP/s")
    print(f"{'step':<10}{'ms/step':>10}{'tokens/s':>12}{'MFU':>8}")
    for name in steps:
        sec = statistics.median(times[name])
        tps = tokens_per_step / sec
        print(f"{name:<10}{sec * 1e3:>10.1f}{tps:>12,.0f}{tps * fpt / 1e9 / ceiling:>8.1%}")
    ratio = statistics.median(times["plain"]) / statistics.median(times["ours"])
    muon_ratio = statistics.median(times["plain"]) / statistics.median(times["ours+muon"])
    print(f"throughput_ratio_ours_vs_plain={ratio:.3f}  (adamw, the same arithmetic)")
    print(f"throughput_ratio_ours_muon_vs_plain={muon_ratio:.3f}  (muon: + Newton-Schulz per step)")


if __name__ == "__main__":
    main()
