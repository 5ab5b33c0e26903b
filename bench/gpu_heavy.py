"""One prepared GPU run: train `heavy`, score it on the whole val split, time it, write a JSON result.

  python bench/gpu_heavy.py OUT_DIR                       # on a machine with an NVIDIA GPU
  python bench/gpu_heavy.py OUT_DIR --device cpu -- --max_iters 5 --n_layer 1   # CPU smoke test

Everything lands in OUT_DIR: heavy.pt, logs/heavy/ (TensorBoard), train.log, result.json. Other flags go to
train.py unchanged. Prepares the data first (shakespeare/data/input.txt must exist or be downloadable).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="folder for the checkpoint, logs and result.json")
    p.add_argument("--device", default="cuda", help="device for train.py and evaluate.py (default: %(default)s)")
    args, train_args = p.parse_known_args()  # everything else goes to train.py
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    extra = [a for a in train_args if a != "--"]
    py = sys.executable

    if not (ROOT / "shakespeare/data/val.bin").is_file():
        prep = subprocess.run([py, str(ROOT / "shakespeare/tokenizer.py")])
        if prep.returncode:
            return prep.returncode
    cmd = [py, str(ROOT / "shakespeare/train.py"), "--config", "heavy", "--device", args.device, "--run_name",
           "heavy", "--models_dir", str(out), "--logs_dir", str(out / "logs"), "--no_progress", *extra]
    t0 = time.perf_counter()
    with open(out / "train.log", "w") as log:
        train = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    wall = time.perf_counter() - t0
    (out / "train.log").open("a").write(train.stdout)
    if train.returncode:
        print(f"train.py failed with status {train.returncode}; see {out / 'train.log'}", file=sys.stderr)
        return train.returncode
    ev = subprocess.run([py, str(ROOT / "shakespeare/evaluate.py"), "--model", str(out / "heavy.pt"),
                         "--device", args.device], capture_output=True, text=True)
    if ev.returncode:
        print(ev.stderr, file=sys.stderr)
        return ev.returncode
    import torch

    result = {
        "command": " ".join(["python", "bench/gpu_heavy.py", args.out_dir, "--device", args.device, *train_args]),
        "train_wall_seconds": round(wall, 1),
        "evaluate": json.loads(ev.stdout),
        "summary": [line for line in train.stdout.splitlines() if line.startswith("summary:")],
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
        "torch": torch.__version__,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
