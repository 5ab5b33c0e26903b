"""Training configurations: one dataclass, two named presets (lite for a laptop CPU, heavy for a GPU)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from shakespeare.model import GPTConfig

LR_SCHEDULES = ("cosine", "wsd", "constant")
OPTIMIZERS = ("adamw", "muon")
DTYPES = ("auto", "float32", "bfloat16")


@dataclass
class TrainConfig:
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128
    dropout: float = 0.0
    attn_dropout: bool = True
    bias: bool = False
    pos_encoding: str = "learned"
    # optimisation
    optimizer: str = "adamw"  # adamw, or muon: orthogonalized momentum for block matrices, AdamW for the rest
    muon_lr: float = 0.02  # peak LR of the Muon matrices (the schedule scales it like --lr)
    muon_momentum: float = 0.95
    batch_size: int = 32  # windows per micro-batch (per process under torchrun)
    grad_accum: int = 1  # micro-batches per optimizer step, summed over all processes
    max_iters: int = 2500
    time_budget: float = 0.0  # seconds of training; 0 = no limit. The LR schedule is planned for the budget.
    lr: float = 2e-3
    min_lr: float = 2e-4
    lr_schedule: str = "cosine"  # cosine: warmup then cosine to min_lr; wsd: flat then linear decay at the end
    decay_fraction: float = 0.2  # wsd: the share of training spent decaying
    warmup_iters: int = 100
    weight_decay: float = 0.1  # decoupled decay on every matrix (embeddings included), never on norms or biases
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    # evaluation and logging
    eval_interval: int = 250  # iterations between validations on the fixed val subset
    eval_windows: int = 64  # windows in the fixed val subset
    log_interval: int = 10
    sample_tokens: int = 200  # characters of generated text logged to TensorBoard at each validation
    # runtime
    seed: int = 1337
    dtype: str = "auto"  # auto: bfloat16 autocast on CUDA, float32 elsewhere
    compile: bool = False  # torch.compile the model (pays off on GPUs; on 2 CPU cores compile time eats the gain)
    num_threads: int = 0  # torch intra-op threads; 0 = PyTorch's default

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(
            vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer, n_head=self.n_head,
            n_embd=self.n_embd, dropout=self.dropout, attn_dropout=self.attn_dropout, bias=self.bias,
            pos_encoding=self.pos_encoding,
        )

    def validate(self) -> None:
        """Raise ValueError naming the first impossible setting."""
        positive = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "grad_accum", "max_iters",
                    "eval_interval", "eval_windows", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "min_lr", "muon_lr", "weight_decay", "grad_clip", "time_budget", "warmup_iters",
                     "sample_tokens", "seed", "num_threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.min_lr > self.lr:
            raise ValueError(f"--min_lr ({self.min_lr}) must not exceed --lr ({self.lr})")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.muon_momentum < 1:
            raise ValueError(f"--muon_momentum must be in [0, 1), got {self.muon_momentum}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError("--beta1 and --beta2 must be in [0, 1)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError(f"--decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}")
        self.model_config(vocab_size=1)  # GPTConfig checks the architecture (head sizes, pos_encoding, dropout)


CONFIGS: dict[str, TrainConfig] = {
    # Tuned for 2 CPU cores and a 10-minute budget (bench/README.md has the experiments behind it).
    # Muon for the block matrices and RoPE each beat the AdamW / learned-position baseline by a wide margin at the
    # same wall time; LRs from 150 s sweeps (muon_lr 0.02/0.04/0.08, AdamW lr 2e-3/4e-3/8e-3).
    "lite": TrainConfig(time_budget=580.0, max_iters=1_000_000, pos_encoding="rope", optimizer="muon", muon_lr=0.04,
                        lr=4e-3, min_lr=4e-4),
    # The GPU-class model: ~10.7M parameters, context 256, dropout against overfitting.
    "heavy": TrainConfig(
        n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, batch_size=64, max_iters=5000,
        lr=1e-3, min_lr=1e-4, warmup_iters=100, eval_interval=250, eval_windows=128, compile=True,
    ),
}


def get_config(name: str) -> TrainConfig:
    """A fresh copy of a named preset."""
    if name not in CONFIGS:
        raise KeyError(name)
    return dataclasses.replace(CONFIGS[name])


FIELD_HELP: dict[str, str] = {
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block",
    "n_embd": "width of the residual stream",
    "block_size": "context length in characters",
    "dropout": "dropout probability (0 = off; doubles CPU step time)",
    "attn_dropout": "apply dropout to attention probabilities too (off: residual and MLP dropout only, cheaper)",
    "bias": "biases in Linear/LayerNorm layers",
    "pos_encoding": "position encoding: learned, sinusoidal, rope or none",
    "optimizer": "adamw, or muon (orthogonalized momentum for the block matrices, AdamW for embeddings and norms)",
    "muon_lr": "muon only: peak learning rate of the block matrices (scheduled like --lr)",
    "muon_momentum": "muon only: Nesterov momentum of the block matrices",
    "batch_size": "windows per micro-batch (per process under torchrun)",
    "grad_accum": "micro-batches per optimizer step, over all processes (must be divisible by their number)",
    "max_iters": "optimizer steps to train for (the LR schedule ends there unless --time_budget ends it first)",
    "time_budget": "seconds of training (evaluations included); 0 = no limit; the LR schedule is planned for it",
    "lr": "peak learning rate",
    "min_lr": "learning rate at the end of the decay",
    "lr_schedule": "cosine (warmup, cosine decay), wsd (warmup, flat, linear decay at the end) or constant",
    "decay_fraction": "wsd only: share of training spent in the final decay",
    "warmup_iters": "linear warmup steps",
    "weight_decay": "decoupled weight decay (p *= 1 - lr * wd) on matrices (embeddings too), never on norms or biases",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "grad_clip": "clip the global gradient norm to this (0 = off)",
    "eval_interval": "steps between validations on the fixed val subset (and resumable-state saves)",
    "eval_windows": "windows of block_size in the fixed val subset",
    "log_interval": "steps between TensorBoard training-loss points",
    "sample_tokens": "characters of text sampled into TensorBoard at each validation (0 = none)",
    "seed": "seed of initialisation, data stream and dropout",
    "dtype": "auto (bfloat16 autocast on CUDA, float32 elsewhere), float32 or bfloat16 (autocast)",
    "compile": "torch.compile the model when training on CUDA",
    "num_threads": "torch intra-op CPU threads (0 = PyTorch's default)",
}
