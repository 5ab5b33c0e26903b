"""Positional encodings shared by the model and PositionalEncoding.ipynb.

- sinusoidal_encoding: the fixed absolute encoding of "Attention Is All You Need".
- apply_rope: rotary position embedding (RoFormer) applied to queries and keys.
"""

from __future__ import annotations

import math

import torch


def inverse_frequencies(dim: int, base: float = 10000.0) -> torch.Tensor:
    """theta_i = base^(-2i/dim) for i = 0 .. dim/2 - 1: the angular frequency of channel pair i."""
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)


def wavelengths(dim: int, base: float = 10000.0) -> torch.Tensor:
    """Period in positions of each channel pair: 2*pi / theta_i (from 2*pi up to ~2*pi*base)."""
    return 2 * math.pi / inverse_frequencies(dim, base)


def sinusoidal_encoding(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """PE[p, 2i] = sin(p * theta_i), PE[p, 2i+1] = cos(p * theta_i); returns (n_positions, dim) float32."""
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * inverse_frequencies(dim, base)  # (P, dim/2)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (P, dim) interleaved sin, cos
    return pe.float()


def rope_cos_sin(positions: torch.Tensor, dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * theta_i, each (T, dim/2) float32: precompute once, rotate many tensors."""
    angles = positions.to(torch.float64)[:, None] * inverse_frequencies(dim, base).to(positions.device)
    return angles.cos().float(), angles.sin().float()


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (x[2i], x[2i+1]) of x[..., T, dim] by the angles whose cos/sin are (T, dim/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, dim/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, dim/2, 2)
    return out.flatten(-2)  # (..., T, dim)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary embedding of x[..., T, dim] at integer positions[T]: pair i rotated by position * theta_i."""
    cos, sin = rope_cos_sin(positions, x.shape[-1], base)
    return rotate_pairs(x, cos, sin)


def rope_relative_upper_bound(max_distance: int, dim: int = 128, base: float = 10000.0) -> torch.Tensor:
    """RoFormer's long-term-decay bound (1/(d/2)) * sum_j |S_j|, S_j = sum_{k<j} exp(i * r * theta_k).

    Returns a (max_distance + 1,) tensor over relative distances r = 0 .. max_distance.
    """
    theta = inverse_frequencies(dim, base)  # (d/2,)
    r = torch.arange(max_distance + 1, dtype=torch.float64)[:, None]  # (R, 1)
    phase = r * theta  # (R, d/2)
    partial = torch.complex(phase.cos(), phase.sin()).cumsum(dim=-1)  # S_j for j = 1 .. d/2
    return partial.abs().mean(dim=-1)  # (R,)
