"""Train the character-level GPT on Tiny Shakespeare.

  python shakespeare/train.py --config lite                 # ~10 minutes on 2 CPU cores
  python shakespeare/train.py --config heavy                # GPU-class model (bf16 autocast, torch.compile on CUDA)
  torchrun --standalone --nproc_per_node=2 shakespeare/train.py --config lite --grad_accum 2

Writes TensorBoard logs to logs/RUN/, the best checkpoint (by full-validation loss) to shakespeare/models/RUN.pt
and a resumable state to logs/RUN/resume.pt at every validation and on SIGINT/SIGTERM (continue with --resume).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: put the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from shakespeare import DATA_DIR, LOGS_DIR, MODELS_DIR
from shakespeare.checkpoint import safe_load, save_checkpoint
from shakespeare.config import CONFIGS, FIELD_HELP, TrainConfig, get_config
from shakespeare.dataset import RandomWindows
from shakespeare.device import DEVICES, resolve_device
from shakespeare.errors import UserError, run_cli
from shakespeare.evaluate import evaluate_ids, evaluate_windows
from shakespeare.io import atomic_torch_save
from shakespeare.model import GPT, loss
from shakespeare.muon import Muon
from shakespeare.sampling import sample_text
from shakespeare.tokenizer import CharTokenizer, load_split, load_vocab

# Settings that may change when a run is resumed (to train longer); anything else must match the saved run.
RESUMABLE_OVERRIDES = ("max_iters", "time_budget", "eval_interval", "log_interval", "sample_tokens", "num_threads")
RESUME_KEYS = ("model", "optimizer", "iter", "elapsed", "tokens_seen", "best", "streams", "torch_rng",
               "train_config", "vocab")
# Test hook (not a user feature): SHAKESPEARE_STOP_AFTER_STEP=K makes each process raise SIGTERM on itself right
# after step K, so tests can interrupt a run at an exact step through the real signal path.
STOP_AFTER_STEP_ENV = "SHAKESPEARE_STOP_AFTER_STEP"


# ----------------------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="lite", choices=sorted(CONFIGS), help="preset to start from (default: lite)")
    p.add_argument("--data_path", default=str(DATA_DIR), help="folder with vocab.json, train.bin, val.bin")
    p.add_argument("--device", default="auto", choices=DEVICES, help="auto = cuda, else mps, else cpu")
    p.add_argument("--run_name", default=None, help="names logs/RUN/ and models/RUN.pt (default: the config name)")
    p.add_argument("--resume", action="store_true", help="continue logs/RUN/resume.pt of the run named --run_name")
    p.add_argument("--models_dir", default=str(MODELS_DIR), help="where RUN.pt is written (default: %(default)s)")
    p.add_argument("--logs_dir", default=str(LOGS_DIR), help="where the run's folder is made (default: %(default)s)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar (logs still go to TensorBoard)")
    group = p.add_argument_group("config overrides (default: the preset's value)")
    for f in dataclasses.fields(TrainConfig):
        kind = f.type if isinstance(f.type, type) else eval(f.type)  # noqa: S307 - annotations are plain names
        if kind is bool:
            group.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, default=None,
                               help=FIELD_HELP[f.name])
        else:
            group.add_argument(f"--{f.name}", type=kind, default=None, metavar=kind.__name__.upper(),
                               help=FIELD_HELP[f.name])
    return p


def overrides_from(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None}


# ----------------------------------------------------------------------------------------------- distributed
@dataclasses.dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> Dist:
    """Under torchrun (WORLD_SIZE > 1) join the process group: nccl on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    d = Dist(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")), world=dist.get_world_size())
    if use_cuda:
        torch.cuda.set_device(d.local_rank)
    return d


def gather(obj, d: Dist) -> list:
    if not d.enabled:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


# ----------------------------------------------------------------------------------------------- pieces
def lr_at(cfg: TrainConfig, it: int, progress: float) -> float:
    """Learning rate at step `it`; `progress` in [0, 1] is the share of the run done (by steps or by time)."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / cfg.warmup_iters
    t = min(max(progress, 0.0), 1.0)
    if cfg.lr_schedule == "cosine":
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))
    if cfg.lr_schedule == "wsd":
        start = 1 - cfg.decay_fraction
        return cfg.lr if t <= start else cfg.lr - (cfg.lr - cfg.min_lr) * (t - start) / cfg.decay_fraction
    return cfg.lr


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (or Muon for the block matrices); weight decay on matrices (and embeddings), never on norms or biases.

    Every group keeps its peak LR in "peak_lr"; the schedule multiplies it by lr_at(...) / cfg.lr.
    """
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    if cfg.optimizer == "adamw":
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        for g in groups:
            g["peak_lr"] = cfg.lr
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                 fused=device.type in ("cuda", "cpu"))
    fused_qkv = {id(b.attn.qkv.weight) for b in model.blocks}
    matrices = [p for name, p in model.named_parameters() if name.startswith("blocks.") and p.dim() == 2]
    chosen = {id(p) for p in matrices}
    muon = dict(muon=True, lr=cfg.muon_lr, peak_lr=cfg.muon_lr, momentum=cfg.muon_momentum,
                weight_decay=cfg.weight_decay)
    adamw = dict(muon=False, lr=cfg.lr, peak_lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    groups = [
        {**muon, "params": [p for p in matrices if id(p) in fused_qkv], "split": 3},  # q, k, v: three maps
        {**muon, "params": [p for p in matrices if id(p) not in fused_qkv]},
        {**adamw, "params": [p for p in decay if id(p) not in chosen], "weight_decay": cfg.weight_decay},
        {**adamw, "params": no_decay, "weight_decay": 0.0},
    ]
    return Muon([g for g in groups if g["params"]])


def val_subset(val_ids: np.ndarray, block_size: int, n_windows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set of evenly spaced val windows: cheap, identical at every validation."""
    starts = np.linspace(0, len(val_ids) - block_size - 1, num=n_windows).astype(np.int64)
    chunks = np.stack([val_ids[s : s + block_size + 1].astype(np.int64) for s in starts])  # (N, T+1)
    chunks = torch.from_numpy(chunks)
    return chunks[:, :-1], chunks[:, 1:]


class StopSignal:
    """SIGINT/SIGTERM ask the loop to stop after the current step; a second SIGINT stops at once."""

    def __init__(self):
        self.signum: int | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum


def prepare_run_dir(logs_dir: Path, run_name: str, resume: bool) -> Path:
    run_dir = logs_dir / run_name
    if not resume and run_dir.exists() and any(run_dir.iterdir()):
        # A fresh run never mixes its curves with an old one's, and never deletes them either.
        kept = run_dir.with_name(f"{run_name}-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(kept)
        print(f"note: earlier logs of run {run_name!r} moved to {kept}", file=sys.stderr)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


# ----------------------------------------------------------------------------------------------- training
def load_config(args: argparse.Namespace, resume_state: dict | None) -> TrainConfig:
    over = overrides_from(args)
    if resume_state is None:
        cfg = dataclasses.replace(get_config(args.config), **over)
    else:
        try:
            cfg = TrainConfig(**resume_state["train_config"])
        except TypeError as err:
            raise UserError(f"the resume state was written by another version of train.py ({err}); "
                            f"start a new --run_name") from err
        for name, value in over.items():
            if name in RESUMABLE_OVERRIDES:
                setattr(cfg, name, value)
            elif value != getattr(cfg, name):
                raise UserError(f"--{name} cannot change when resuming (the run used {getattr(cfg, name)!r}); "
                                f"drop the flag or start a new --run_name")
    try:
        cfg.validate()
    except ValueError as err:
        raise UserError(f"{err}; fix the flag") from err
    return cfg


def existing_val_loss(path: Path, vocab: list[str]) -> float | None:
    """Full-val loss of a checkpoint already at `path` for the same vocabulary (None if absent or unusable)."""
    if not path.is_file():
        return None
    try:
        ckpt = safe_load(path)
    except UserError:
        return None  # a damaged file may be replaced
    loss_value = ckpt.get("metrics", {}).get("val_loss") if isinstance(ckpt.get("metrics"), dict) else None
    return float(loss_value) if ckpt.get("vocab") == vocab and isinstance(loss_value, float) else None


def check_data(train_ids: np.ndarray, val_ids: np.ndarray, tok: CharTokenizer, block_size: int, data_path) -> None:
    for name, ids in (("train", train_ids), ("val", val_ids)):
        if len(ids) < block_size + 2:
            raise UserError(f"{data_path}/{name}.bin has {len(ids)} tokens, too few for --block_size {block_size}; "
                            f"use more text or a smaller --block_size")
        if int(ids.max()) >= tok.vocab_size:
            raise UserError(f"{data_path}/{name}.bin holds ids outside vocab.json; rerun shakespeare/tokenizer.py")


def main() -> int:
    args = build_parser().parse_args()
    run_name = args.run_name or args.config
    if not run_name or any(c in run_name for c in "/\\") or run_name.startswith("."):
        raise UserError(f"--run_name {run_name!r} must be a plain name (no slashes); pick another")
    d = setup_distributed(args.device)
    device = resolve_device(args.device)
    if device.type == "cuda" and d.enabled:
        device = torch.device("cuda", d.local_rank)
    logs_dir, models_dir = Path(args.logs_dir), Path(args.models_dir)
    resume_path = logs_dir / run_name / "resume.pt"
    state = None
    if args.resume:
        if not resume_path.is_file():
            raise UserError(f"nothing to resume: {resume_path} not found; start without --resume or fix --run_name")
        state = safe_load(resume_path, "resume state")
        missing = [k for k in RESUME_KEYS if k not in state]
        if missing:
            raise UserError(f"{resume_path} is not a resume state of train.py (missing {', '.join(missing)}); "
                            f"start without --resume or use a new --run_name")
    cfg = load_config(args, state)
    if cfg.grad_accum % d.world:
        raise UserError(f"--grad_accum {cfg.grad_accum} is not divisible by {d.world} processes; "
                        f"use a multiple of {d.world}")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)

    tok = load_vocab(args.data_path)
    train_ids, val_ids = load_split(args.data_path, "train"), load_split(args.data_path, "val")
    check_data(train_ids, val_ids, tok, cfg.block_size, args.data_path)
    if state is not None and state["vocab"] != tok.chars:
        raise UserError(f"the data in {args.data_path} has another vocabulary than run {run_name!r}; "
                        f"pass the --data_path it was trained on")

    torch.manual_seed(cfg.seed)  # same initial weights on every rank
    model = GPT(cfg.model_config(tok.vocab_size)).to(device)
    optimizer = make_optimizer(model, cfg, device)
    # One data stream per micro-batch slot of a step; process `rank` owns slots rank*a .. rank*a + a - 1, so a
    # torchrun run reads exactly the batches a single process with the same --grad_accum would read.
    per_rank = cfg.grad_accum // d.world
    slots = [RandomWindows(train_ids, cfg.block_size, seed=cfg.seed, rank=d.rank * per_rank + j)
             for j in range(per_rank)]
    # Made before the dropout RNG is seeded or restored: starting a DataLoader iterator draws a number from torch's
    # global RNG, which would otherwise shift the dropout stream of a resumed run against an uninterrupted one.
    loaders = [iter(DataLoader(ds, batch_size=cfg.batch_size, num_workers=0)) for ds in slots]
    start_iter, elapsed, tokens_seen = 0, 0.0, 0
    best = {"subset": math.inf, "full": None, "kept": None}
    if state is not None:
        model.load_state_dict(state["model"])
        peaks = [g["peak_lr"] for g in optimizer.param_groups]
        optimizer.load_state_dict(state["optimizer"])  # replaces the group dicts with the saved ones
        for group, peak in zip(optimizer.param_groups, peaks, strict=True):
            group["peak_lr"] = peak  # states written before groups carried a peak LR resume too
        start_iter, elapsed, tokens_seen = state["iter"], state["elapsed"], state["tokens_seen"]
        best = state["best"]
        for ds, s in zip(slots, state["streams"][d.rank * per_rank : (d.rank + 1) * per_rank], strict=True):
            ds.load_state_dict(s)
        if d.rank < len(state["torch_rng"]):
            torch.set_rng_state(state["torch_rng"][d.rank])
        else:  # resumed with more processes than saved it: a known start for the new ranks
            torch.manual_seed(cfg.seed + 1 + d.rank)
        if device.type == "cuda" and state.get("cuda_rng") and d.rank < len(state["cuda_rng"]):
            torch.cuda.set_rng_state(state["cuda_rng"][d.rank])
    else:
        torch.manual_seed(cfg.seed + 1 + d.rank)  # the dropout stream: a known start, distinct per rank
    raw_model = model
    amp_dtype = torch.bfloat16 if cfg.dtype == "bfloat16" or (cfg.dtype == "auto" and device.type == "cuda") else None
    if cfg.compile and device.type == "cuda":
        model = torch.compile(model)
    if d.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[d.local_rank] if device.type == "cuda" else None)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext

    run_dir = ckpt_path = writer = None
    if d.main:
        from torch.utils.tensorboard import SummaryWriter

        run_dir = prepare_run_dir(logs_dir, run_name, args.resume)
        ckpt_path = models_dir / f"{run_name}.pt"
        # A resumed run logs steps start_iter + 1, ...; purge what the interrupted run logged after its saved state.
        writer = SummaryWriter(str(run_dir), purge_step=start_iter + 1 if state is not None else None)
        n_params = raw_model.num_parameters()
        if state is None:
            # A fresh run never replaces an existing, better checkpoint of the same name (e.g. the shipped model
            # when `make train` is interrupted early): it writes RUN.pt only once it beats it.
            best["kept"] = existing_val_loss(ckpt_path, tok.chars)
            if best["kept"] is not None:
                print(f"note: {ckpt_path} (full-val loss {best['kept']:.4f}) is kept until this run beats it",
                      file=sys.stderr)
            writer.add_text("config", "\n".join(f"    {k} = {v!r}" for k, v in dataclasses.asdict(cfg).items()), 0)
        print(f"run {run_name}: {n_params / 1e6:.2f}M parameters, device {device}, {d.world} process(es), "
              f"{'resuming at step ' + str(start_iter) if state else 'fresh start'}", file=sys.stderr)
    val_x, val_y = val_subset(val_ids, cfg.block_size, cfg.eval_windows)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
    stop = StopSignal()
    stop.install()

    def progress_of(it: int, secs: float) -> float:
        return max(it / cfg.max_iters, secs / cfg.time_budget if cfg.time_budget else 0.0)

    def save_resume(it: int) -> None:
        streams = [s for rank_streams in gather([ds.state_dict() for ds in slots], d) for s in rank_streams]
        torch_rng = gather(torch.get_rng_state(), d)
        cuda_rng = gather(torch.cuda.get_rng_state(), d) if device.type == "cuda" else None
        if d.main:
            writer.flush()  # after a kill -9, the logs on disk then reach at least the saved step
            atomic_torch_save({
                "model": {k: v.detach().cpu() for k, v in raw_model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "iter": it, "elapsed": elapsed, "tokens_seen": tokens_seen,
                "best": best, "streams": streams, "torch_rng": torch_rng, "cuda_rng": cuda_rng,
                "train_config": dataclasses.asdict(cfg), "vocab": tok.chars, "run_name": run_name,
            }, resume_path)

    def validate(it: int) -> dict:
        """Fixed-subset validation; full-val (and a checkpoint) whenever the subset loss is the best so far."""
        m = evaluate_windows(raw_model, val_x, val_y, device=device)
        writer.add_scalar("loss/val", m["val_loss"], it)
        writer.add_scalar("acc/top1_val", m["top1_acc"], it)
        writer.add_scalar("acc/top5_val", m["top5_acc"], it)
        if m["val_loss"] < best["subset"]:
            best["subset"] = m["val_loss"]
            full = evaluate_ids(raw_model, val_ids, cfg.block_size, device=device)
            writer.add_scalar("loss/val_full", full["val_loss"], it)
            if best["full"] is None or full["val_loss"] < best["full"]["val_loss"]:
                best["full"] = {**full, "iter": it, "train_seconds": elapsed, "tokens_seen": tokens_seen,
                                "params": raw_model.num_parameters()}
                if best.get("kept") is None or full["val_loss"] < best["kept"]:
                    save_checkpoint(ckpt_path, raw_model, tok.chars, best["full"], dataclasses.asdict(cfg))
                    best["kept"] = None
        if cfg.sample_tokens:
            gen = torch.Generator(device=device).manual_seed(cfg.seed)  # own generator: training RNG untouched
            text = sample_text(raw_model, tok, "\n", cfg.sample_tokens, generator=gen)
            writer.add_text("samples", "    " + text.replace("\n", "\n    "), it)
        return m

    it = start_iter
    bar = None
    if d.main and not args.no_progress:
        total = cfg.time_budget if cfg.time_budget else cfg.max_iters
        bar = tqdm(total=total, initial=min(elapsed if cfg.time_budget else it, total), dynamic_ncols=True,
                   unit="s" if cfg.time_budget else "it", bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} "
                   "[{elapsed}<{remaining}{postfix}]", mininterval=1.0)
    window_tokens, window_secs = 0, 0.0
    exit_code = 0
    model.train()
    t_prev = time.perf_counter()
    while progress_of(it, elapsed) < 1.0:
        t0 = time.perf_counter()
        lr = lr_at(cfg, it, progress_of(it, elapsed))
        for group in optimizer.param_groups:
            group["lr"] = group["peak_lr"] * lr / cfg.lr
        loss_sum = torch.zeros((), device=device)
        for j, loader in enumerate(loaders):
            x, y = (t.to(device, non_blocking=True) for t in next(loader))  # (B, T) each
            # No gradient all-reduce until the last micro-batch; forward and backward both inside the context.
            with model.no_sync() if d.enabled and j < per_rank - 1 else contextlib.nullcontext():
                with autocast():
                    step_loss = loss(model(x), y)
                (step_loss / per_rank).backward()
            loss_sum += step_loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip or math.inf)
        train_loss = loss_sum / per_rank
        if d.enabled:
            dist.all_reduce(train_loss, op=dist.ReduceOp.AVG)
        if not (math.isfinite(train_loss.item()) and math.isfinite(grad_norm.item())):
            where = f"; the last good checkpoint is {ckpt_path}" if ckpt_path and ckpt_path.exists() else ""
            if writer is not None:
                writer.close()  # keep the curves up to the failure
            raise UserError(f"loss became {train_loss.item()} at step {it + 1}{where}; "
                            f"lower --lr or raise --warmup_iters")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        it += 1
        tokens_seen += tokens_per_step
        now = time.perf_counter()
        window_tokens += tokens_per_step
        window_secs += now - t0
        elapsed += now - t_prev
        t_prev = now
        if os.environ.get(STOP_AFTER_STEP_ENV) == str(it):
            signal.raise_signal(signal.SIGTERM)  # test hook: the handler runs before raise_signal returns
        stop_now = stop.signum is not None
        if d.enabled:  # every rank must see the same clock (time budget, LR schedule) and the same stop decision
            shared = torch.tensor([elapsed, float(stop_now)], dtype=torch.float64, device=device)
            dist.all_reduce(shared, op=dist.ReduceOp.MAX)
            elapsed, stop_now = shared[0].item(), bool(shared[1].item())
        done = progress_of(it, elapsed) >= 1.0
        if d.main:
            if it % cfg.log_interval == 0 or done:
                writer.add_scalar("loss/train", train_loss.item(), it)
                writer.add_scalar("opt/lr", lr, it)
                writer.add_scalar("opt/grad_norm", grad_norm.item(), it)
                writer.add_scalar("perf/tokens_per_s", window_tokens / window_secs, it)
            if bar is not None:
                bar.update((min(elapsed, cfg.time_budget) - bar.n) if cfg.time_budget else 1)
                if it % cfg.log_interval == 0:
                    speed = window_tokens / window_secs
                    bar.set_postfix_str(f"step {it} loss {train_loss.item():.3f} {speed:,.0f} tok/s", refresh=False)
            if it % cfg.log_interval == 0:
                window_tokens, window_secs = 0, 0.0
            if it % cfg.eval_interval == 0 or done:
                m = validate(it)
                (bar.write if bar is not None else print)(
                    f"step {it}: val {m['val_loss']:.4f} (subset), top-5 {m['top5_acc']:.1%}, {elapsed:.0f} s")
        if it % cfg.eval_interval == 0 or done or stop_now:
            save_resume(it)
        if stop_now:
            signum = stop.signum or signal.SIGTERM
            exit_code = 128 + signum
            if d.main:
                print(f"\nstopped by {signal.Signals(signum).name} after step {it}; state saved to {resume_path}; "
                      f"continue with: --resume --run_name {run_name}", file=sys.stderr)
            break
    if bar is not None:
        bar.close()
    if d.main:
        b = best["full"]
        if exit_code == 0 and b is not None:
            hparams = {k: v for k, v in dataclasses.asdict(cfg).items() if isinstance(v, (int, float, str, bool))}
            writer.add_hparams(hparams, {"hparam/val_loss": b["val_loss"], "hparam/top5_acc": b["top5_acc"]},
                               run_name=".", global_step=it)
        writer.close()
        if b is not None:
            print(f"summary: run {run_name} | best full-val loss {b['val_loss']:.4f} (bpc {b['bpc']:.3f}), "
                  f"top-1 {b['top1_acc']:.2%}, top-5 {b['top5_acc']:.2%} at step {b['iter']} | {it} steps, "
                  f"{tokens_seen / 1e6:.1f}M tokens, {elapsed:.0f} s | {ckpt_path}")
            if best.get("kept") is not None:
                print(f"note: this run did not beat the existing {ckpt_path} (full-val loss {best['kept']:.4f}), "
                      f"which was kept; use another --run_name to keep both", file=sys.stderr)
    if d.enabled:
        dist.destroy_process_group()
    return exit_code


if __name__ == "__main__":
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, end without Python's finalization: gloo's worker threads may still be releasing the
        # tensors of finished collectives, and if finalization has begun they abort the process ("terminate
        # called without an active exception"), which torchrun reports as a failure of a run that ended cleanly.
        try:
            run_cli(main)
        except SystemExit as end:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(end.code if isinstance(end.code, int) else 0 if end.code is None else 1)
    run_cli(main)
