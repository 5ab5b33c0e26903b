"""Interrupt and resume exactly, crash-safe saves, refusing unsafe checkpoints, best checkpoint kept.

Training runs here are tiny subprocesses on the synthetic corpus; "bit-identical" means torch.equal on every
tensor. Wall-clock fields (elapsed, train_seconds) are the only things allowed to differ between runs.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import shakespeare.train as train_mod
from shakespeare import REPO_ROOT
from shakespeare.checkpoint import load_model, safe_load
from shakespeare.errors import UserError, run_cli
from shakespeare.io import atomic_torch_save

TRAIN = REPO_ROOT / "shakespeare" / "train.py"
EVALUATE = REPO_ROOT / "shakespeare" / "evaluate.py"
STEPS, EVERY = 240, 20  # long enough that an external signal lands mid-run, short enough to be quick
TINY = ["--n_layer", "1", "--n_embd", "16", "--n_head", "2", "--block_size", "8", "--batch_size", "4",
        "--time_budget", "0", "--eval_windows", "4", "--sample_tokens", "0", "--dropout", "0.1",
        "--seed", "3", "--num_threads", "1", "--warmup_iters", "5", "--log_interval", "1", "--no_progress",
        "--max_iters", str(STEPS), "--eval_interval", str(EVERY)]
WALL_CLOCK = {"elapsed", "train_seconds"}


def child_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != train_mod.STOP_AFTER_STEP_ENV}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def train_cmd(root: Path, data: Path, run: str, *extra: str) -> list[str]:
    return [sys.executable, str(TRAIN), "--data_path", str(data), "--models_dir", str(root / "models"),
            "--logs_dir", str(root / "logs"), "--run_name", run, *TINY, *extra]


def train(root: Path, data: Path, run: str, *extra: str, expect: int = 0, **env: str):
    proc = subprocess.run(train_cmd(root, data, run, *extra), capture_output=True, text=True, timeout=300,
                          env=child_env(**env))
    assert proc.returncode == expect, proc.stderr
    return proc


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_identical(a, b, where: str = "") -> None:
    """Exact equality of nested dicts/lists/tensors, ignoring wall-clock fields."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            if k not in WALL_CLOCK:
                assert_identical(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_run(root_a: Path, run_a: str, root_b: Path, run_b: str) -> None:
    """Final checkpoint (weights, metrics) and final resume state (model, optimizer, RNGs, best) identical."""
    ck_a, ck_b = load(root_a / "models" / f"{run_a}.pt"), load(root_b / "models" / f"{run_b}.pt")
    assert_identical(ck_a, ck_b, "checkpoint")
    st_a, st_b = load(root_a / "logs" / run_a / "resume.pt"), load(root_b / "logs" / run_b / "resume.pt")
    assert st_a["iter"] == st_b["iter"] == STEPS
    for key in ("model", "optimizer", "best", "streams", "torch_rng", "tokens_seen", "train_config", "vocab"):
        assert_identical(st_a[key], st_b[key], f"resume/{key}")


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def assert_same_curves(run_dir: Path, ref_dir: Path) -> None:
    """Each step logged exactly once, with the uninterrupted run's values."""
    for tag in ("loss/train", "opt/lr", "loss/val"):
        got, want = scalars(run_dir, tag), scalars(ref_dir, tag)
        steps = [s for s, _ in got]
        assert len(steps) == len(set(steps)), f"{tag}: duplicate steps"
        assert got == want, tag
    assert [s for s, _ in scalars(ref_dir, "loss/train")] == list(range(1, STEPS + 1))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_data_shared) -> Path:
    """An uninterrupted run named 'ref'; returns its root folder (models/, logs/)."""
    root = tmp_path_factory.mktemp("reference")
    train(root, tiny_data_shared, "ref")
    return root


# ------------------------------------------------------------------------------------ interrupt/resume
def test_sigterm_at_exact_step_then_resume_is_bit_identical(tmp_path, tiny_data_shared, reference):
    # The test hook raises a real SIGTERM in the process right after step 30 (between two validations).
    proc = train(tmp_path, tiny_data_shared, "run", expect=128 + signal.SIGTERM,
                 **{train_mod.STOP_AFTER_STEP_ENV: "30"})
    resume_path = tmp_path / "logs" / "run" / "resume.pt"
    assert f"stopped by SIGTERM after step 30; state saved to {resume_path}" in proc.stderr
    assert "--resume --run_name run" in proc.stderr
    assert "Traceback" not in proc.stderr
    state = load(resume_path)
    assert state["iter"] == 30 and state["best"]["full"]["iter"] == 20
    assert [s for s, _ in scalars(tmp_path / "logs" / "run", "loss/train")] == list(range(1, 31))

    proc = train(tmp_path, tiny_data_shared, "run", "--resume")
    assert "resuming at step 30" in proc.stderr
    assert_same_run(reference, "ref", tmp_path, "run")
    assert_same_curves(tmp_path / "logs" / "run", reference / "logs" / "ref")


def test_muon_run_resumes_bit_identical(tmp_path, tiny_data_shared):
    # Muon keeps its own state (momentum buffers, AdamW moments for embeddings/norms): it must round-trip too.
    train(tmp_path / "ref", tiny_data_shared, "ref", "--optimizer", "muon", "--max_iters", "60")
    train(tmp_path / "cut", tiny_data_shared, "run", "--optimizer", "muon", "--max_iters", "60",
          expect=128 + signal.SIGTERM, **{train_mod.STOP_AFTER_STEP_ENV: "30"})
    train(tmp_path / "cut", tiny_data_shared, "run", "--resume", "--max_iters", "60")  # optimizer comes from the state
    ck_a, ck_b = load(tmp_path / "ref" / "models" / "ref.pt"), load(tmp_path / "cut" / "models" / "run.pt")
    assert_identical(ck_a, ck_b, "checkpoint")
    st_a = load(tmp_path / "ref" / "logs" / "ref" / "resume.pt")
    st_b = load(tmp_path / "cut" / "logs" / "run" / "resume.pt")
    assert st_a["iter"] == st_b["iter"] == 60
    for key in ("model", "optimizer", "best", "streams", "torch_rng"):
        assert_identical(st_a[key], st_b[key], f"resume/{key}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_real_signal_mid_run_then_resume_is_bit_identical(tmp_path, tiny_data_shared, reference, signum):
    resume_path = tmp_path / "logs" / "run" / "resume.pt"
    proc = subprocess.Popen(train_cmd(tmp_path, tiny_data_shared, "run"), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not resume_path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # the first state is written at step 20, after the handlers are installed
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signum.name} after step" in err and "Traceback" not in err
    stopped_at = load(resume_path)["iter"]
    assert EVERY <= stopped_at < STEPS
    assert f"after step {stopped_at};" in err

    train(tmp_path, tiny_data_shared, "run", "--resume")
    assert_same_run(reference, "ref", tmp_path, "run")
    assert_same_curves(tmp_path / "logs" / "run", reference / "logs" / "ref")


@pytest.mark.slow
def test_kill_9_mid_run_loses_at_most_one_eval_interval(tmp_path, tiny_data_shared, reference):
    resume_path = tmp_path / "logs" / "run" / "resume.pt"
    proc = subprocess.Popen(train_cmd(tmp_path, tiny_data_shared, "run"), env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not resume_path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)  # somewhere in the middle of training, maybe in the middle of a save
    proc.kill()
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    state = load(resume_path)  # never torn
    assert state["iter"] % EVERY == 0 and 0 < state["iter"] < STEPS
    load_model(tmp_path / "models" / "run.pt")
    train(tmp_path, tiny_data_shared, "run", "--resume")
    # Replaying the lost steps reproduces them exactly, and TensorBoard shows each step once.
    assert_same_run(reference, "ref", tmp_path, "run")
    assert_same_curves(tmp_path / "logs" / "run", reference / "logs" / "ref")


# ----------------------------------------------------------------------------------- crash-safe writes
WRITER = textwrap.dedent("""
    import os, sys, time, torch
    from shakespeare.io import _atomic_write, atomic_torch_save
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "stall":  # write half of the new file, then wait to be killed
        def write(f):
            f.write(b"x" * 100_000)
            f.flush()
            print("mid-write", flush=True)
            time.sleep(600)
        _atomic_write(path, write)
    i = 1
    while True:  # overwrite the same file as fast as possible
        atomic_torch_save({"i": i, "data": torch.full((1_000_000,), float(i))}, path)
        print(i, flush=True)
        i += 1
""")


def check_complete(path: Path) -> int:
    obj = torch.load(path, weights_only=True)
    assert set(obj) == {"i", "data"} and obj["data"].shape == (1_000_000,)
    assert torch.all(obj["data"] == obj["i"]), "torn checkpoint"
    return obj["i"]


def temps(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def test_kill_9_during_save_never_leaves_a_torn_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    atomic_torch_save({"i": 0, "data": torch.zeros(1_000_000)}, path)
    env = child_env(PYTHONPATH=str(REPO_ROOT))

    # 1. Killed exactly in the middle of writing: the old file is intact, a temp file is left behind.
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "stall"], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "mid-write"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert check_complete(path) == 0
    leftovers = temps(path)
    assert len(leftovers) == 1 and str(proc.pid) in leftovers[0].name

    # 2. Killed at random moments of a tight save loop: always an old or a new complete file.
    rng = random.Random(0)
    seen = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "loop"], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "1"  # saving; its first save removed the dead writer's temp
        assert leftovers[0] not in temps(path)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait()
        proc.stdout.close()
        seen = max(seen, check_complete(path))
        leftovers = temps(path) or leftovers
    assert seen >= 1

    # 3. The next save cleans up whatever dead writers left.
    atomic_torch_save({"i": -1, "data": torch.full((1_000_000,), -1.0)}, path)
    assert check_complete(path) == -1
    assert temps(path) == []


def test_stale_temp_of_a_live_writer_is_left_alone(tmp_path):
    path = tmp_path / "ckpt.pt"
    live = tmp_path / f".ckpt.pt.{os.getppid()}.abc.tmp"  # the parent process is alive
    live.write_bytes(b"in progress")
    atomic_torch_save({"x": torch.ones(1)}, path)
    assert live.exists()


# -------------------------------------------------------------------------------------------- security
class Payload:
    """Unpickling this runs `touch MARKER` (os.system): exactly what weights_only loading must refuse."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    good = {"model": {"w": torch.zeros(2)}, "config": {}, "vocab": ["a"], "metrics": {}, "train_config": {}}
    files = {name: tmp_path / f"{name}.pt" for name in ("raw_pickle", "torch_save", "nested")}
    files["raw_pickle"].write_bytes(pickle.dumps(Payload(marker), protocol=2))
    torch.save(Payload(marker), files["torch_save"])
    torch.save({**good, "metrics": {"val_loss": Payload(marker)}}, files["nested"])
    return files


def test_the_payload_really_runs_code_when_loaded_unsafely(tmp_path):
    marker = tmp_path / "pwned"
    for path in malicious_files(tmp_path, marker).values():
        with contextlib.suppress(RuntimeError):  # raw pickle: not a torch file, but the payload already ran
            torch.load(path, weights_only=False)  # what the project must never do: it runs `touch MARKER`
        assert marker.exists(), path
        marker.unlink()


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    for name, path in malicious_files(tmp_path, marker).items():
        for loader in (safe_load, load_model):
            with pytest.raises(UserError, match=r"^refused to load .*nothing in it was run") as exc:
                loader(path)
            assert "\n" not in str(exc.value), name
        assert not marker.exists(), name


def test_malicious_checkpoint_refused_by_evaluate_cli(tmp_path, tiny_data):
    marker = tmp_path / "pwned"
    path = malicious_files(tmp_path, marker)["torch_save"]
    cmd = [sys.executable, str(EVALUATE), "--model", str(path), "--data_path", str(tiny_data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=child_env())
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: refused to load {path}")
    assert proc.stdout == "" and not marker.exists()


def test_malicious_resume_state_refused_by_train(tmp_path, tiny_data):
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "logs" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "resume.pt").write_bytes(malicious_files(tmp_path, marker)["torch_save"].read_bytes())
    proc = train(tmp_path, tiny_data, "run", "--resume", expect=2)
    assert proc.stderr.strip().splitlines()[-1].startswith("error: refused to load")
    assert not marker.exists() and not (tmp_path / "models").exists()
    assert sorted(p.name for p in run_dir.iterdir()) == ["resume.pt"]


# ------------------------------------------------------------------------------------- best checkpoint


def test_best_checkpoint_is_never_replaced_by_a_worse_one(tmp_path, tiny_data, monkeypatch, capsys,
                                                          in_process):
    # Script the validation results: the subset loss always improves (so full-val runs every time) while the
    # full-val loss goes up and down; only improvements may reach the checkpoint file.
    full_losses = iter([3.0, 2.0, 2.5, 1.5, 1.8, 1.6])
    subset_losses = iter([10.0, 9.0, 8.0, 7.0, 6.0, 5.0])

    def fake_subset(*args, **kwargs):
        return {"val_loss": next(subset_losses), "bpc": 0.0, "top1_acc": 0.0, "top5_acc": 0.0, "tokens": 1}

    def fake_full(*args, **kwargs):
        return {"val_loss": next(full_losses), "bpc": 0.0, "top1_acc": 0.0, "top5_acc": 0.0, "tokens": 1}

    saved_at = []
    real_save = train_mod.save_checkpoint

    def spy_save(path, model, vocab, metrics, train_config):
        saved_at.append((metrics["iter"], metrics["val_loss"]))
        real_save(path, model, vocab, metrics, train_config)

    monkeypatch.setattr(train_mod, "evaluate_windows", fake_subset)
    monkeypatch.setattr(train_mod, "evaluate_ids", fake_full)
    monkeypatch.setattr(train_mod, "save_checkpoint", spy_save)
    argv = train_cmd(tmp_path, tiny_data, "run", "--max_iters", "30", "--eval_interval", "5")[1:]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        run_cli(train_mod.main)
    assert exc.value.code == 0, capsys.readouterr().err
    assert saved_at == [(5, 3.0), (10, 2.0), (20, 1.5)]
    ckpt = load(tmp_path / "models" / "run.pt")
    assert ckpt["metrics"]["val_loss"] == 1.5 and ckpt["metrics"]["iter"] == 20
