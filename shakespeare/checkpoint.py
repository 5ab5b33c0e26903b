"""Checkpoints: a plain dict saved atomically and loaded only with torch.load(weights_only=True).

Format (DESIGN.md): {"model": state_dict, "config": GPTConfig fields, "vocab": characters,
"metrics": {...}, "train_config": TrainConfig fields}.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from shakespeare.errors import UserError
from shakespeare.io import atomic_torch_save
from shakespeare.model import GPT, GPTConfig
from shakespeare.tokenizer import CharTokenizer

REQUIRED_KEYS = ("model", "config", "vocab")


def save_checkpoint(path: str | Path, model: GPT, vocab: list[str], metrics: dict, train_config: dict) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(
        {"model": state, "config": model.config.to_dict(), "vocab": list(vocab), "metrics": dict(metrics),
         "train_config": dict(train_config)},
        path,
    )


def _one_line(err: BaseException, limit: int = 120) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_load(path: str | Path, what: str = "checkpoint") -> dict:
    """torch.load with weights_only=True and one clear UserError for every way a file can be bad."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found at {path}; check the path (train one with shakespeare/train.py)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses any pickle that would build arbitrary Python objects (and so could run code);
        # random bytes end up here too. Nothing of the file was executed.
        reason = _one_line(err.__context__ or err)
        raise UserError(
            f"refused to load {path}: not a plain tensors-only {what} ({reason}); it may be corrupt or hold "
            f"code, and nothing in it was run; use a checkpoint written by shakespeare/train.py"
        ) from err
    except Exception as err:  # torch.load raises many types on damaged files (zip, pickle, utf-8, ...)
        raise UserError(f"{path} is corrupt or truncated ({err.__class__.__name__}: {_one_line(err)}); "
                        f"retrain or re-download it") from err
    if not isinstance(obj, dict):
        raise UserError(f"{path} is not a {what} of this project (expected a dict); use one written by train.py")
    return obj


def load_checkpoint(path: str | Path) -> dict:
    ckpt = safe_load(path)
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise UserError(f"{path} is not a checkpoint of this project (missing {', '.join(missing)})")
    vocab = ckpt["vocab"]
    if not (isinstance(ckpt["model"], dict) and isinstance(ckpt["config"], dict) and isinstance(vocab, list)
            and all(isinstance(c, str) for c in vocab)):
        raise UserError(f"{path} is not a checkpoint of this project (model/config/vocab have the wrong "
                        f"types); use one written by shakespeare/train.py")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, CharTokenizer, dict]:
    """Rebuild the model (in eval mode) and its tokenizer from a checkpoint."""
    ckpt = load_checkpoint(path)
    try:
        config = GPTConfig(**ckpt["config"])
    except (TypeError, ValueError) as err:
        raise UserError(f"{path} has an incompatible model config ({err}); retrain it with this code") from err
    tokenizer = CharTokenizer(ckpt["vocab"])
    if tokenizer.vocab_size != config.vocab_size:
        raise UserError(f"{path} is inconsistent: {tokenizer.vocab_size} characters for vocab_size "
                        f"{config.vocab_size}; retrain it")
    model = GPT(config)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not fit the model config ({first}); retrain it") from err
    return model.to(device).eval(), tokenizer, ckpt
