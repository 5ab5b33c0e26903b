"""Draw a run's loss curves from its TensorBoard logs into a PNG (the images in shakespeare/res/).

  python shakespeare/plot_curves.py --run lite        # logs/lite/ -> shakespeare/res/lite_loss.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from shakespeare import LOGS_DIR, PACKAGE_DIR
from shakespeare.errors import UserError, run_cli

CURVES = {"loss/train": "train (batch)", "loss/val": "val (fixed subset)", "loss/val_full": "val (whole split)"}


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall_time)] for the loss tags present in the run."""
    if not run_dir.is_dir():
        raise UserError(f"no TensorBoard run at {run_dir}; train one first or pass --logs_dir")
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    if "loss/train" not in tags:
        raise UserError(f"{run_dir} has no loss/train scalars; is it a run of shakespeare/train.py?")
    return {t: [(e.step, e.value, e.wall_time) for e in acc.Scalars(t)] for t in CURVES if t in tags}


def plot(curves: dict, title: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for tag, label in CURVES.items():
        if tag in curves:
            steps, values = zip(*[(s, v) for s, v, _ in curves[tag]], strict=True)
            ax.plot(steps, values, label=label, lw=1 if tag == "loss/train" else 2,
                    alpha=0.6 if tag == "loss/train" else 1, marker=None if tag == "loss/train" else "o", ms=3)
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats / char)", title=title, ylim=(1.0, 3.0))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="lite", help="run name (folder under --logs_dir)")
    p.add_argument("--logs_dir", default=str(LOGS_DIR), help="TensorBoard root (default: %(default)s)")
    p.add_argument("--out", default=None, help="PNG path (default: shakespeare/res/RUN_loss.png)")
    args = p.parse_args()
    out = Path(args.out) if args.out else PACKAGE_DIR / "res" / f"{args.run}_loss.png"
    curves = read_scalars(Path(args.logs_dir) / args.run)
    plot(curves, f"run {args.run}: loss curves", out)
    print(out)
    return 0


if __name__ == "__main__":
    run_cli(main)
