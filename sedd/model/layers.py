"""Building blocks of the DDiT transformer: norm, embeddings, rotary positions, adaLN modulation.

Module and parameter names match the official SEDD implementation
(github.com/louaaron/Score-Entropy-Discrete-Diffusion, ``model/transformer.py``) so that its state
dicts load with ``strict=True``. Letters in shape comments: B batch, L sequence length, H hidden size,
C conditioning width, N heads, E head width (H / N).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Width of the sinusoidal noise-level features, and the period range of their frequencies
# (as in the DiT timestep embedder that the official model follows).
SIGMA_FEATURES = 256
MAX_PERIOD = 10_000.0
ROTARY_BASE = 10_000.0


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """Apply adaLN modulation ``x * (1 + scale) + shift`` (one fused kernel).

    Args:
        x: float ``(B, L, H)``.
        shift, scale: float ``(B, 1, H)``, broadcast over positions.
    """
    return torch.addcmul(shift, x, 1 + scale)


class LayerNorm(nn.Module):
    """Layer norm with a learned scale and no bias, computed in float32 even under autocast."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """Normalise float ``(..., H)`` over the last axis and return float32 ``(..., H)``."""
        # CUDA autocast already runs layer_norm in float32. The explicit cast also covers a
        # model converted to bf16 with .to(), where the statistics would lose precision.
        return F.layer_norm(x.float(), (self.dim,), self.weight.float())


class VocabEmbedding(nn.Module):
    """Token embedding table stored as a bare ``(D, H)`` parameter named ``embedding``."""

    def __init__(self, dim: int, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab_size, dim))
        # The default init of nn.Linear, which the official model also uses for this table.
        nn.init.kaiming_uniform_(self.embedding, a=math.sqrt(5))

    def forward(self, indices: Tensor) -> Tensor:
        """Look up int64 ``(B, L)`` tokens and return ``(B, L, H)`` in the table's dtype."""
        return F.embedding(indices, self.embedding)


class TimestepEmbedder(nn.Module):
    """Map the noise level sigma to a conditioning vector: sinusoidal features, then an MLP."""

    def __init__(self, cond_dim: int, num_features: int = SIGMA_FEATURES) -> None:
        super().__init__()
        self.num_features = num_features
        self.mlp = nn.Sequential(
            nn.Linear(num_features, cond_dim),
            nn.SiLU(),
            nn.Linear(cond_dim, cond_dim),
        )

    def forward(self, sigma: Tensor) -> Tensor:
        """Embed float ``(B,)`` noise levels as ``(B, C)``."""
        return self.mlp(sinusoidal_features(sigma, self.num_features))


def sinusoidal_features(sigma: Tensor, num_features: int) -> Tensor:
    """Return float32 ``(B, num_features)``: ``[cos(sigma * f_k), sin(sigma * f_k)]``.

    Frequencies are ``f_k = MAX_PERIOD^(-k / half)`` for ``k < half = num_features // 2``. An odd
    ``num_features`` gets one zero column at the end.
    """
    half = num_features // 2
    exponents = torch.arange(half, dtype=torch.float32, device=sigma.device) / half
    frequencies = torch.exp(-math.log(MAX_PERIOD) * exponents)  # (half,)
    angles = sigma.float()[:, None] * frequencies[None, :]  # (B, half)
    features = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (B, 2 * half)
    if num_features % 2:
        features = F.pad(features, (0, 1))
    return features


class Rotary(nn.Module):
    """Rotary position tables in the half-split layout: feature ``i`` pairs with ``i + E/2``.

    ``inv_freq`` is a persistent buffer, because the official state dicts contain it.
    """

    def __init__(self, head_dim: int, base: float = ROTARY_BASE) -> None:
        super().__init__()
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        self.register_buffer("inv_freq", 1.0 / (base**exponents))  # (E/2,)

    def forward(self, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Return the float32 tables ``(cos, signed_sin)``, each ``(L, E)``.

        ``signed_sin`` is ``sin`` with its first half negated, the sign that the rotation gives
        to the swapped halves (see ``apply_rotary``). The tables are recomputed on every call
        (an ``(L, E)`` outer product, negligible next to attention), so no cache can go stale
        after ``load_state_dict`` or ``.to()``.
        """
        positions = torch.arange(length, dtype=torch.float32, device=device)
        angles = torch.outer(positions, self.inv_freq.float().to(device))  # (L, E/2)
        cos = angles.cos().repeat(1, 2)  # (L, E)
        sin = angles.sin()  # (L, E/2)
        return cos, torch.cat([-sin, sin], dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
    """Rotate queries and keys by their position: ``x * cos + [-x2, x1] * sin`` for halves x1, x2.

    Args:
        x: float ``(B, L, ..., E)``, e.g. queries and keys stacked as ``(B, L, 2, N, E)``.
        cos, signed_sin: float32 ``(L, E)`` from ``Rotary``.

    Returns:
        ``x``'s shape and dtype. The rotation runs in float32 because bf16 cos and sin tables
        hold only about three significant digits.
    """
    table_shape = (1, cos.shape[0]) + (1,) * (x.dim() - 3) + (cos.shape[1],)  # (1, L, 1, ..., E)
    x32 = x.float()
    swapped = x32.roll(x.shape[-1] // 2, dims=-1)  # [x2, x1]
    # In place on a fresh product: one temporary fewer, which is measurable on CPU at small widths.
    rotated = x32 * cos.view(table_shape)
    return rotated.addcmul_(swapped, signed_sin.view(table_shape)).to(x.dtype)
