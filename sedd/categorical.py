"""Categorical draws from unnormalised probabilities, with float64 noise.

Sampling by an exponential race: the argmax of ``p_k / E_k`` with ``E_k ~ Exp(1)`` is
distributed as ``p_k / sum(p)``. In float32 the uniform draws behind ``E_k`` have 24 bits, so
``E_k`` never falls below about 6e-8 and the race can never be won by a token whose
probability is far below the leader's. That cuts off the tail of large vocabularies, which
acts like a lowered temperature and makes generative perplexity look better than it is
(Zheng et al., "Masked Diffusion Models are Secretly Time-Agnostic Masked Models and Exploit
Inaccurate Categorical Sampling", arXiv:2409.02908). The noise here is float64.
"""

from __future__ import annotations

import torch
from torch import Tensor


# Rows are drawn in chunks of at most this many float64 elements (256 MiB), because a
# (B, L, V) float64 copy for a 50k vocabulary and length 1024 would take several GB.
_CHUNK_ELEMENTS = 1 << 25


def sample_categorical(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Draw one index per row of non-negative, unnormalised probabilities.

    Args:
        probs: float tensor ``(..., K)``; rows need not sum to 1 and may contain zeros.
        generator: optional ``torch.Generator`` on ``probs.device`` for reproducible draws.

    Returns:
        int64 tensor ``(...)`` of indices in ``[0, K)``.
    """
    num_classes = probs.shape[-1]
    rows = probs.reshape(-1, num_classes)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(num_classes, 1))
    draws = [
        _race(chunk, generator) for chunk in torch.split(rows, rows_per_chunk, dim=0)
    ]
    return torch.cat(draws).reshape(probs.shape[:-1])


def _race(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    # Exp(1) noise as -log(1 - U) in float64: the smallest U step is 2^-53 rather than 2^-24.
    uniform = torch.rand(probs.shape, dtype=torch.float64, device=probs.device, generator=generator)
    # An exponential of exactly 0 would turn a zero probability into 0/0 = NaN, which argmax
    # would pick; clamping to the smallest normal float64 keeps such rows at 0.
    exponential = (-torch.log1p(-uniform)).clamp_min(torch.finfo(torch.float64).tiny)
    return (probs.to(torch.float64) / exponential).argmax(dim=-1)
