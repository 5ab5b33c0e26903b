"""Bad input to train.py and evaluate.py: one clear line, exit status 2, nothing on disk written or changed.

Most cases call the CLIs' main() in-process through run_cli (fast); a few run the real scripts.
Every case starts from a finished run (models/run.pt, logs/run/...) and checks those bytes are untouched.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import shakespeare.evaluate as evaluate_mod
import shakespeare.train as train_mod
from shakespeare import REPO_ROOT
from shakespeare.errors import run_cli
from shakespeare.tokenizer import prepare

TINY = ["--n_layer", "1", "--n_embd", "16", "--n_head", "2", "--block_size", "8", "--batch_size", "4",
        "--time_budget", "0", "--eval_windows", "4", "--sample_tokens", "0", "--max_iters", "10",
        "--eval_interval", "5", "--warmup_iters", "2", "--log_interval", "1", "--no_progress"]
NO_GPU = not torch.cuda.is_available()
NO_MPS = not torch.backends.mps.is_available()


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def train_argv(root: Path, data: Path, *extra: str, run: str = "run") -> list[str]:
    return ["train.py", "--data_path", str(data), "--models_dir", str(root / "models"),
            "--logs_dir", str(root / "logs"), "--run_name", run, *TINY, *extra]


def run_in_process(main, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run_cli(main)
    return exc.value.code, capsys.readouterr().err




@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data_shared) -> Path:
    """A folder with data/ (a copy of the tiny data) and a finished run 'run' (models/run.pt, logs/run/)."""
    root = tmp_path_factory.mktemp("finished")
    shutil.copytree(tiny_data_shared, root / "data")
    cmd = [sys.executable, *train_argv(root, root / "data", "--num_threads", "1")]
    cmd[1] = str(REPO_ROOT / "shakespeare" / "train.py")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (root / "models" / "run.pt").is_file() and (root / "logs" / "run" / "resume.pt").is_file()
    return root


@pytest.fixture
def root(finished, tmp_path) -> Path:
    """A private copy of the finished run that a case may damage before the bad call."""
    dest = tmp_path / "root"
    shutil.copytree(finished, dest)
    return dest


def other_vocab_data(dest: Path) -> Path:
    """Tokenized text over another alphabet (capitals): a vocabulary that matches no checkpoint here."""
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("ABCDEFGHIJ \n"), size=3000))
    (dest.parent / "other.txt").write_text(text, encoding="utf-8")
    prepare(dest.parent / "other.txt", dest)
    return dest


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# --------------------------------------------------------------------------- train.py: flags and sizes
@pytest.mark.parametrize("flags, says", [
    (["--max_iters", "0"], "--max_iters must be >= 1"),
    (["--max_iters", "-3"], "--max_iters must be >= 1"),
    (["--batch_size", "0"], "--batch_size must be >= 1"),
    (["--block_size", "-1"], "--block_size must be >= 1"),
    (["--n_layer", "0"], "--n_layer must be >= 1"),
    (["--n_embd", "0"], "--n_embd must be >= 1"),
    (["--n_head", "0"], "--n_head must be >= 1"),
    (["--n_embd", "15"], "divisible"),
    (["--grad_accum", "0"], "--grad_accum must be >= 1"),
    (["--eval_interval", "0"], "--eval_interval must be >= 1"),
    (["--eval_windows", "-1"], "--eval_windows must be >= 1"),
    (["--time_budget", "-5"], "--time_budget must be >= 0"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--lr=-0.001"], "--lr must be >= 0"),
    (["--dropout", "1.0"], "dropout"),
    (["--optimizer", "sgd"], "--optimizer must be one of adamw, muon"),
    (["--muon_momentum", "1"], "--muon_momentum must be in [0, 1)"),
    (["--muon_lr=-1"], "--muon_lr must be >= 0"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--num_threads", "-2"], "--num_threads must be >= 0"),
    (["--run_name", "../escape"], "plain name"),
])
def test_train_rejects_bad_settings(root, monkeypatch, capsys, in_process, flags, says):
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, root / "data", *flags), monkeypatch, capsys)
    assert_one_line_error(code, err, says, "pick another" if "--run_name" in flags else "fix the flag")
    assert snapshot(root) == before


def test_train_unknown_config_is_an_argparse_error(root, monkeypatch, capsys):
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, root / "data", "--config", "nope"),
                               monkeypatch, capsys)
    assert code == 2 and "invalid choice: 'nope'" in err and err.startswith("usage:")
    assert snapshot(root) == before


@pytest.mark.parametrize("device, unavailable", [("cuda", NO_GPU), ("mps", NO_MPS)])
def test_train_missing_device(root, monkeypatch, capsys, device, unavailable):
    if not unavailable:
        pytest.skip(f"this machine has {device}")
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, root / "data", "--device", device),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, f"--device {device}", "use --device cpu")
    assert snapshot(root) == before


# -------------------------------------------------------------------------------------- train.py: data
def _no_dir(data: Path) -> Path:
    return data.parent / "no_such_folder"


def _unlink(name: str):
    def damage(data: Path) -> Path:
        (data / name).unlink()
        return data
    return damage


def _empty(name: str):
    def damage(data: Path) -> Path:
        (data / name).write_bytes(b"")
        return data
    return damage


def _odd_bytes(data: Path) -> Path:
    (data / "train.bin").write_bytes((data / "train.bin").read_bytes()[:-1])  # half a uint16 id
    return data


def _bad_vocab(data: Path) -> Path:
    (data / "vocab.json").write_text("{not json", encoding="utf-8")
    return data


def _short_val(data: Path) -> Path:
    (data / "val.bin").write_bytes((data / "val.bin").read_bytes()[:10])  # 5 tokens < block_size + 2
    return data


@pytest.mark.parametrize("damage, says", [
    (_no_dir, "vocabulary not found"),
    (_unlink("vocab.json"), "vocabulary not found"),
    (_unlink("train.bin"), "train.bin not found"),
    (_unlink("val.bin"), "val.bin not found"),
    (_empty("train.bin"), "train.bin is empty or truncated"),
    (_empty("val.bin"), "val.bin is empty or truncated"),
    (_odd_bytes, "train.bin is empty or truncated"),
    (_bad_vocab, "not a valid vocabulary"),
    (_short_val, "val.bin has 5 tokens, too few for --block_size 8"),
], ids=["no_folder", "no_vocab", "no_train", "no_val", "empty_train", "empty_val", "odd_bytes", "bad_vocab",
        "short_val"])
def test_train_rejects_missing_or_empty_data(root, monkeypatch, capsys, in_process, damage, says):
    data = damage(root / "data")
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, data), monkeypatch, capsys)
    assert_one_line_error(code, err, says)
    assert snapshot(root) == before


# ------------------------------------------------------------------------------------ train.py: resume
def test_resume_with_data_of_another_vocabulary(root, monkeypatch, capsys, in_process):
    other = other_vocab_data(root / "other_data")
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, other, "--resume"), monkeypatch, capsys)
    assert_one_line_error(code, err, "another vocabulary than run 'run'", "--data_path")
    assert snapshot(root) == before


def test_resume_without_a_saved_state(root, monkeypatch, capsys, in_process):
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, root / "data", "--resume", run="other"),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "nothing to resume")
    assert snapshot(root) == before


def test_resume_cannot_change_the_model(root, monkeypatch, capsys, in_process):
    before = snapshot(root)
    code, err = run_in_process(train_mod.main, train_argv(root, root / "data", "--resume", "--n_embd", "32"),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "--n_embd cannot change when resuming")
    assert snapshot(root) == before


@pytest.mark.parametrize("keep", [0, 100, 1000, 5000, -200], ids=lambda k: f"cut{k}")
def test_resume_from_truncated_state(root, monkeypatch, capsys, in_process, keep):
    state = root / "logs" / "run" / "resume.pt"
    state.write_bytes(state.read_bytes()[:keep])
    before = snapshot(root)
    argv = train_argv(root, root / "data", "--resume")
    code, err = run_in_process(train_mod.main, argv, monkeypatch, capsys)
    assert_one_line_error(code, err, str(state))
    assert snapshot(root) == before


def test_resume_from_a_model_checkpoint_instead_of_a_state(root, monkeypatch, capsys, in_process):
    shutil.copy(root / "models" / "run.pt", root / "logs" / "run" / "resume.pt")
    before = snapshot(root)
    argv = train_argv(root, root / "data", "--resume")
    code, err = run_in_process(train_mod.main, argv, monkeypatch, capsys)
    assert_one_line_error(code, err, "is not a resume state of train.py")
    assert snapshot(root) == before


# ------------------------------------------------------------------------------ train.py: NaN/inf loss
def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data, monkeypatch,
                                                                          capsys, in_process):
    calls = {"n": 0}
    real_loss = train_mod.loss

    def loss_turning_nan(logits, targets):
        calls["n"] += 1
        out = real_loss(logits, targets)
        return out * float("nan") if calls["n"] > 12 else out  # step 13 (1-based) goes bad

    monkeypatch.setattr(train_mod, "loss", loss_turning_nan)
    argv = train_argv(tmp_path, tiny_data, "--max_iters", "30")
    code, err = run_in_process(train_mod.main, argv, monkeypatch, capsys)
    ckpt_path = tmp_path / "models" / "run.pt"
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last == (f"error: loss became nan at step 13; the last good checkpoint is {ckpt_path}; "
                    f"lower --lr or raise --warmup_iters")
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["metrics"]["iter"] in (5, 10) and math.isfinite(ckpt["metrics"]["val_loss"])
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    state = torch.load(tmp_path / "logs" / "run" / "resume.pt", weights_only=True)
    assert state["iter"] == 10 and all(torch.isfinite(t).all() for t in state["model"].values())
    acc = EventAccumulator(str(tmp_path / "logs" / "run"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/train")] == list(range(1, 13))  # flushed, nothing after the NaN


def test_exploding_lr_ends_in_a_clear_error(tmp_path, tiny_data):
    cmd = [sys.executable, *train_argv(tmp_path, tiny_data, "--lr", "1e30", "--min_lr", "0",
                                       "--lr_schedule", "constant")]
    cmd[1] = str(REPO_ROOT / "shakespeare" / "train.py")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: loss became nan at step ")
    assert not (tmp_path / "models").exists() and not (tmp_path / "logs" / "run" / "resume.pt").exists()


# ----------------------------------------------------------------------------------------- evaluate.py
def eval_argv(model: Path, data: Path, *extra: str) -> list[str]:
    return ["evaluate.py", "--model", str(model), "--data_path", str(data), *extra]


def _truncate(keep: int):
    def damage(path: Path) -> None:
        path.write_bytes(path.read_bytes()[:keep])
    return damage


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a checkpoint\n" * 20)


def _flip_zip_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:4] = b"XXXX"
    path.write_bytes(bytes(data))


def _wrong_config(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["n_embd"] = 32  # weights are 16 wide
    torch.save(ckpt, path)


def _wrong_vocab(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["vocab"] = ckpt["vocab"][:-1]
    torch.save(ckpt, path)


def _not_ours(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


@pytest.mark.parametrize("damage, says", [
    (_truncate(0), "corrupt or truncated"),
    (_truncate(200), "corrupt or truncated"),
    (_truncate(3000), "corrupt or truncated"),
    (_garbage, "run.pt"),
    (_flip_zip_header, "run.pt"),
    (_wrong_config, "weights do not fit the model config"),
    (_wrong_vocab, "inconsistent"),
    (_not_ours, "not a checkpoint of this project"),
], ids=["empty", "cut200", "cut3000", "garbage", "bad_header", "wrong_config", "wrong_vocab", "not_ours"])
def test_evaluate_rejects_a_bad_checkpoint(root, monkeypatch, capsys, damage, says):
    damage(root / "models" / "run.pt")
    before = snapshot(root)
    code, err = run_in_process(evaluate_mod.main, eval_argv(root / "models" / "run.pt", root / "data"),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, says)
    assert snapshot(root) == before


def test_evaluate_rejects_data_of_another_vocabulary(root, monkeypatch, capsys):
    other = other_vocab_data(root / "other_data")
    before = snapshot(root)
    code, err = run_in_process(evaluate_mod.main, eval_argv(root / "models" / "run.pt", other),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "another vocabulary")
    assert snapshot(root) == before


@pytest.mark.parametrize("extra, says", [
    (["--batch_size", "0"], "--batch_size must be >= 1"),
    pytest.param(["--device", "cuda"], "--device cuda",
                 marks=pytest.mark.skipif(not NO_GPU, reason="this machine has cuda")),
])
def test_evaluate_rejects_bad_flags(root, monkeypatch, capsys, extra, says):
    argv = eval_argv(root / "models" / "run.pt", root / "data", *extra)
    code, err = run_in_process(evaluate_mod.main, argv, monkeypatch, capsys)
    assert_one_line_error(code, err, says)


def test_evaluate_rejects_missing_model_and_data(root, monkeypatch, capsys):
    code, err = run_in_process(evaluate_mod.main, eval_argv(root / "models" / "nope.pt", root / "data"),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "checkpoint not found")
    code, err = run_in_process(evaluate_mod.main, eval_argv(root / "models" / "run.pt", root / "nodata"),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "vocabulary not found")
    (root / "data" / "val.bin").write_bytes((root / "data" / "val.bin").read_bytes()[:2])  # a single token
    code, err = run_in_process(evaluate_mod.main, eval_argv(root / "models" / "run.pt", root / "data"),
                               monkeypatch, capsys)
    assert_one_line_error(code, err, "nothing to score")


# ------------------------------------------------------------------------------------ the real scripts
@pytest.mark.parametrize("script, args, says", [
    ("train.py", ["--max_iters", "0"], "error: --max_iters must be >= 1"),
    ("train.py", ["--device", "cuda"] if NO_GPU else ["--device", "mps"], "error: --device"),
    ("train.py", ["--data_path", "MISSING"], "error: vocabulary not found"),
    ("evaluate.py", ["--model", "CORRUPT"], "error: "),
], ids=["train_zero_iters", "train_device", "train_no_data", "evaluate_corrupt"])
def test_real_cli_exits_2_with_one_line(root, script, args, says):
    if args == ["--device", "mps"] and not NO_MPS:
        pytest.skip("this machine has both cuda and mps")
    (root / "models" / "corrupt.pt").write_bytes((root / "models" / "run.pt").read_bytes()[:500])
    args = [str(root / "missing") if a == "MISSING" else str(root / "models" / "corrupt.pt") if a == "CORRUPT"
            else a for a in args]
    if script == "train.py":
        argv = train_argv(root, root / "data")[1:] + args
    else:
        argv = eval_argv(root / "models" / "run.pt", root / "data")[1:] + args
    before = snapshot(root)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "shakespeare" / script), *argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
    assert proc.stderr.startswith(says), proc.stderr
    assert snapshot(root) == before
