"""Positional-encoding ablation: the lite config trained with each encoding under the same time budget.

  python bench/pos_ablation.py                     # 4 runs x 150 s on the CPU, ~11 minutes
  python bench/pos_ablation.py --time_budget 600   # the full lite budget, ~41 minutes

Runs one training at a time (concurrent runs would halve each other's budget), scores each run's best
checkpoint on the whole val split (evaluate.py's metric) and writes bench/results/pos_ablation.json, which
PositionalEncoding.ipynb reads. Checkpoints go to a temporary folder; TensorBoard runs to logs/pos-*/.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

ENCODINGS = ("learned", "sinusoidal", "rope", "none")
OUT = ROOT / "bench" / "results" / "pos_ablation.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--time_budget", type=float, default=150.0, help="seconds of training per encoding")
    p.add_argument("--encodings", nargs="+", default=list(ENCODINGS), choices=ENCODINGS, help="which to train")
    p.add_argument("--out", default=str(OUT), help="JSON written here (default: %(default)s)")
    args, extra = p.parse_known_args()  # any other flag is passed to train.py (e.g. --max_iters 50 for a smoke)
    runs = []
    with tempfile.TemporaryDirectory() as models:
        for enc in args.encodings:
            cmd = [sys.executable, str(ROOT / "shakespeare/train.py"), "--config", "lite", "--device", "cpu",
                   "--pos_encoding", enc, "--time_budget", str(args.time_budget), "--run_name", f"pos-{enc}",
                   "--models_dir", models, "--no_progress", "--sample_tokens", "0", *extra]
            print(f"training {enc} for {args.time_budget:.0f} s ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            if proc.returncode:
                print(f"train.py failed for {enc} (status {proc.returncode})", file=sys.stderr)
                return proc.returncode
            ckpt = torch.load(Path(models) / f"pos-{enc}.pt", weights_only=True)
            m = ckpt["metrics"]
            runs.append({"pos_encoding": enc, "optimizer": ckpt["train_config"]["optimizer"],
                         "val_loss": m["val_loss"], "bpc": m["bpc"], "top1_acc": m["top1_acc"],
                         "top5_acc": m["top5_acc"], "best_iter": m["iter"], "params": m["params"],
                         "wall_seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(runs[-1]), file=sys.stderr)
    result = {
        "command": " ".join(["python", "bench/pos_ablation.py", "--time_budget", f"{args.time_budget:g}", *extra]),
        "time_budget": args.time_budget, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'encoding':<12}{'full-val loss':>14}{'top-5':>8}{'best step':>10}")
    for r in runs:
        print(f"{r['pos_encoding']:<12}{r['val_loss']:>14.4f}{r['top5_acc']:>8.1%}{r['best_iter']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
