"""Device selection shared by the CLIs: auto = cuda if available, else mps, else cpu."""

from __future__ import annotations

import torch

from shakespeare.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise UserError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise UserError("--device cuda was asked for but no CUDA GPU is available; use --device cpu (or auto)")
    if name == "mps" and not mps:
        raise UserError("--device mps was asked for but MPS is not available; use --device cpu (or auto)")
    return torch.device(name)
