"""End-to-end training on synthetic text: checkpoint format, TensorBoard tags, every positional encoding."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from shakespeare import REPO_ROOT
from shakespeare.checkpoint import load_model
from shakespeare.config import get_config
from shakespeare.evaluate import evaluate_ids
from shakespeare.model import GPTConfig
from shakespeare.tokenizer import load_split
from shakespeare.train import lr_at

TINY = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32", "--block_size", "16", "--batch_size", "8",
        "--eval_windows", "8", "--time_budget", "0", "--no_progress", "--warmup_iters", "5", "--lr", "1e-2"]


def train(tmp_path, data, *extra, run="t"):
    cmd = [sys.executable, str(REPO_ROOT / "shakespeare/train.py"), "--data_path", str(data), "--run_name", run,
           "--models_dir", str(tmp_path / "models"), "--logs_dir", str(tmp_path / "logs"), *TINY, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_short_run_end_to_end(tmp_path, tiny_data):
    proc = train(tmp_path, tiny_data, "--max_iters", "60", "--eval_interval", "20", "--sample_tokens", "50")
    summary = [line for line in proc.stdout.splitlines() if line.startswith("summary:")]
    assert len(summary) == 1 and "best full-val loss" in summary[0] and "top-5" in summary[0]

    ckpt_path = tmp_path / "models" / "t.pt"
    raw = torch.load(ckpt_path, weights_only=True)
    assert set(raw) >= {"model", "config", "vocab", "metrics", "train_config"}
    GPTConfig(**raw["config"])
    assert raw["vocab"] == json.loads((tiny_data / "vocab.json").read_text())
    for key in ("val_loss", "top1_acc", "top5_acc", "iter", "train_seconds"):
        assert key in raw["metrics"]
    # The synthetic chain has ~4 likely successors per character: a trained model is far below uniform.
    assert raw["metrics"]["val_loss"] < math.log(len(raw["vocab"])) - 0.5

    model, _, ckpt = load_model(ckpt_path)
    again = evaluate_ids(model, load_split(tiny_data, "val"), model.config.block_size)
    assert again["val_loss"] == pytest.approx(ckpt["metrics"]["val_loss"], rel=1e-6)

    acc = EventAccumulator(str(tmp_path / "logs" / "t"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"loss/train", "loss/val", "acc/top1_val", "acc/top5_val", "opt/lr", "opt/grad_norm",
            "perf/tokens_per_s"} <= scalars
    assert [e.step for e in acc.Scalars("loss/val")] == [20, 40, 60]
    assert "samples/text_summary" in acc.Tags()["tensors"]  # add_text stores text under TAG/text_summary


@pytest.mark.parametrize("pos", ["sinusoidal", "rope", "none"])
def test_each_positional_encoding_trains(tmp_path, tiny_data, pos):
    train(tmp_path, tiny_data, "--max_iters", "40", "--eval_interval", "40", "--sample_tokens", "0",
          "--pos_encoding", pos)
    raw = torch.load(tmp_path / "models" / "t.pt", weights_only=True)
    assert raw["config"]["pos_encoding"] == pos
    assert raw["metrics"]["val_loss"] < math.log(len(raw["vocab"])) - 0.5


def test_muon_optimizer_trains(tmp_path, tiny_data):
    train(tmp_path, tiny_data, "--max_iters", "40", "--eval_interval", "40", "--sample_tokens", "0",
          "--optimizer", "muon", "--muon_lr", "0.05")
    raw = torch.load(tmp_path / "models" / "t.pt", weights_only=True)
    assert raw["train_config"]["optimizer"] == "muon"
    assert raw["metrics"]["val_loss"] < math.log(len(raw["vocab"])) - 0.5


def test_evaluate_cli_matches_brute_force_per_token_loss(tmp_path, tiny_data):
    train(tmp_path, tiny_data, "--max_iters", "20", "--eval_interval", "20", "--sample_tokens", "0")
    ckpt = tmp_path / "models" / "t.pt"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "shakespeare/evaluate.py"), "--model", str(ckpt),
                           "--data_path", str(tiny_data), "--batch_size", "3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)

    model, _, _ = load_model(ckpt)
    ids = np.asarray(load_split(tiny_data, "val"), dtype=np.int64)
    T = model.config.block_size
    nll, top1, top5 = [], 0, 0
    with torch.no_grad():
        for target_pos in range(1, len(ids)):  # every val token but the first, one at a time
            window_start = ((target_pos - 1) // T) * T  # the consecutive window that holds its input
            ctx = torch.from_numpy(ids[window_start:target_pos])[None]
            logp = model(ctx)[0, -1].log_softmax(-1)
            nll.append(-logp[ids[target_pos]].item())
            rank = (logp > logp[ids[target_pos]]).sum().item()
            top1 += rank == 0
            top5 += rank < 5
    n = len(ids) - 1
    assert got["tokens"] == n
    assert got["val_loss"] == pytest.approx(sum(nll) / n, rel=1e-5)
    assert got["bpc"] == pytest.approx(sum(nll) / n / math.log(2), rel=1e-5)
    assert got["top1_acc"] == pytest.approx(top1 / n, abs=1.5 / n)
    assert got["top5_acc"] == pytest.approx(top5 / n, abs=1.5 / n)


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    cfg = get_config("lite")
    cfg.warmup_iters, cfg.lr, cfg.min_lr = 10, 1e-3, 1e-4
    assert lr_at(cfg, 0, 0.0) == pytest.approx(1e-4)
    assert lr_at(cfg, 9, 0.0) == pytest.approx(1e-3)
    values = [lr_at(cfg, 10 + i, i / 100) for i in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(1e-4)
    cfg.lr_schedule = "wsd"
    assert lr_at(cfg, 50, 0.5) == pytest.approx(1e-3) and lr_at(cfg, 50, 1.0) == pytest.approx(1e-4)


def test_heavy_preset_is_the_10m_gpu_model():
    cfg = get_config("heavy")
    from shakespeare.model import GPT

    n = GPT(cfg.model_config(65)).num_parameters()
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.batch_size) == (6, 6, 384, 256, 64)
    assert 10e6 < n < 11e6 and cfg.dropout == 0.2


def test_fresh_run_keeps_a_better_existing_checkpoint_of_the_same_name(tmp_path, tiny_data):
    train(tmp_path, tiny_data, "--max_iters", "60", "--eval_interval", "20", "--sample_tokens", "0")
    ckpt = tmp_path / "models" / "t.pt"
    before = ckpt.read_bytes()
    # A rerun that stops after 2 steps is far worse: the existing checkpoint must survive it untouched.
    proc = train(tmp_path, tiny_data, "--max_iters", "2", "--eval_interval", "1", "--sample_tokens", "0")
    assert ckpt.read_bytes() == before
    assert "is kept until this run beats it" in proc.stderr and "did not beat" in proc.stderr
