"""The DDiT score network: a bidirectional transformer conditioned on the noise level by adaLN.

Follows the model of Lou, Meng and Ermon (arXiv:2310.16834), itself a DiT (Peebles and Xie,
arXiv:2212.09748) over token sequences with rotary positions. Parameter names equal those of the
official implementation (github.com/louaaron/Score-Entropy-Discrete-Diffusion), so its state
dicts load with ``strict=True``.

Letters in shape comments: B batch, L sequence length, H hidden size, C conditioning width,
N heads, E head width (H / N), D number of states (``graph.dim``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sedd.model.config import ModelConfig
from sedd.model.layers import LayerNorm, Rotary, TimestepEmbedder, VocabEmbedding, apply_rotary, modulate

MLP_RATIO = 4


class DDiTBlock(nn.Module):
    """Pre-norm transformer block whose norms are shifted, scaled and gated by the conditioning."""

    def __init__(self, hidden_size: int, n_heads: int, cond_dim: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout

        self.norm1 = LayerNorm(hidden_size)
        self.attn_qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.attn_out = nn.Linear(hidden_size, hidden_size, bias=False)

        self.norm2 = LayerNorm(hidden_size)
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, MLP_RATIO * hidden_size),
            nn.GELU(approximate="tanh"),
            nn.Linear(MLP_RATIO * hidden_size, hidden_size),
        )

        # Zero init makes every gate 0, so a fresh block is the identity (the DiT "adaLN-Zero").
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * hidden_size)
        nn.init.zeros_(self.adaLN_modulation.weight)
        nn.init.zeros_(self.adaLN_modulation.bias)

    def forward(self, x: Tensor, cos: Tensor, signed_sin: Tensor, c: Tensor) -> Tensor:
        """Update the residual stream.

        Args:
            x: float32 ``(B, L, H)`` residual stream.
            cos, signed_sin: float32 ``(L, E)`` rotary tables from ``Rotary``.
            c: float ``(B, C)`` conditioning, after the SiLU.

        Returns:
            float32 ``(B, L, H)``.
        """
        modulation = self.adaLN_modulation(c)[:, None, :]  # (B, 1, 6H)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation.chunk(6, dim=-1)  # (B, 1, H) each

        attended = self._attention(modulate(self.norm1(x), shift_msa, scale_msa), cos, signed_sin)
        x = torch.addcmul(x, gate_msa, F.dropout(attended, self.dropout, self.training))

        transformed = self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return torch.addcmul(x, gate_mlp, F.dropout(transformed, self.dropout, self.training))

    def _attention(self, x: Tensor, cos: Tensor, signed_sin: Tensor) -> Tensor:
        batch, length, hidden = x.shape
        qkv = self.attn_qkv(x).view(batch, length, 3, self.n_heads, hidden // self.n_heads)  # (B, L, 3, N, E)
        # Queries and keys rotate together in one pass; values keep no position.
        q, k = apply_rotary(qkv[:, :, :2], cos, signed_sin).unbind(dim=2)  # (B, L, N, E) each
        v = qkv[:, :, 2]  # (B, L, N, E)

        # scaled_dot_product_attention takes heads before positions. Without a mask every
        # position attends to every other, as the model is bidirectional.
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, N, L, E)
        out = out.transpose(1, 2).reshape(batch, length, hidden)  # (B, L, H)
        return self.attn_out(out)


class DDiTFinalLayer(nn.Module):
    """Modulated norm and linear head from the residual stream to D log-scores per position."""

    def __init__(self, hidden_size: int, vocab_size: int, cond_dim: int) -> None:
        super().__init__()
        self.norm_final = LayerNorm(hidden_size)
        self.linear = nn.Linear(hidden_size, vocab_size)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * hidden_size)
        # Zero init: a fresh model outputs log-score 0 (all ratios 1) before any shift.
        for layer in (self.linear, self.adaLN_modulation):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """Map float32 ``(B, L, H)`` and conditioning ``(B, C)`` to ``(B, L, D)`` log-scores."""
        shift, scale = self.adaLN_modulation(c)[:, None, :].chunk(2, dim=-1)  # (B, 1, H) each
        return self.linear(modulate(self.norm_final(x), shift, scale))


class SEDD(nn.Module):
    """DDiT score network: ``(tokens, sigma) -> log-scores`` with the current token's entry 0.

    On CUDA the blocks run under bf16 autocast, while norms, rotary embeddings and the residual
    stream stay in float32. On every other device the whole forward runs in float32.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_embed = VocabEmbedding(config.hidden_size, config.vocab_size)
        self.sigma_map = TimestepEmbedder(config.cond_dim)
        self.rotary_emb = Rotary(config.head_dim)
        self.blocks = nn.ModuleList(
            DDiTBlock(config.hidden_size, config.n_heads, config.cond_dim, config.dropout)
            for _ in range(config.n_blocks)
        )
        self.output_layer = DDiTFinalLayer(config.hidden_size, config.vocab_size, config.cond_dim)

    def forward(self, indices: Tensor, sigma: Tensor) -> Tensor:
        """Estimate ``log p_sigma(y) / p_sigma(x)`` for every state y at every position.

        Args:
            indices: int64 ``(B, L)`` current tokens x in ``[0, D)``, with ``1 <= L <= config.length``.
            sigma: float ``(B,)`` (or ``(B, 1)``) total noise per sequence. The absorbing shift
                needs ``sigma > 0``, because ``log(e^sigma - 1)`` is ``-inf`` at 0.

        Returns:
            float32 ``(B, L, D)`` log-scores; the entry at the current token is exactly 0.
        """
        sigma = self._check_inputs(indices, sigma)

        x = self.vocab_embed(indices)  # (B, L, H)
        c = F.silu(self.sigma_map(sigma))  # (B, C)
        cos, signed_sin = self.rotary_emb(indices.shape[1], indices.device)  # (L, E) each

        with torch.autocast(indices.device.type, dtype=torch.bfloat16, enabled=indices.device.type == "cuda"):
            for block in self.blocks:
                x = block(x, cos, signed_sin, c)
            log_score = self.output_layer(x, c)  # (B, L, D)
        log_score = log_score.float()
        current = indices[..., None]  # (B, L, 1)

        # Each pass over (B, L, D) is costly for a 50k vocabulary. The head's output is a view of
        # a matmul result, and autograd copies the whole gradient for an in-place op on a view,
        # so only the fresh tensor after the shift is modified in place.
        if self.config.scale_by_sigma:
            # An uninformed absorbing model has ratio 1 / ((e^sigma - 1) (D - 1)) from the mask
            # to each token. With this shift the network learns only the residual.
            shift = _log_expm1(sigma.float())[:, None, None] + math.log(self.config.vocab_size - 1)  # (B, 1, 1)
            return (log_score - shift).scatter_(-1, current, 0.0)
        return torch.scatter(log_score, -1, current, 0.0)

    def _check_inputs(self, indices: Tensor, sigma: Tensor) -> Tensor:
        """Validate shapes and dtypes and return sigma as ``(B,)``.

        Token values are not checked, because reading them would force a device sync.
        """
        if indices.dtype != torch.int64 or indices.dim() != 2:
            raise ValueError(
                f"Invalid indices: expected int64 tokens of shape (B, L), got {indices.dtype} of shape "
                f"{tuple(indices.shape)}; convert with .long() and add a batch axis if needed."
            )
        length = indices.shape[1]
        if not 1 <= length <= self.config.length:
            raise ValueError(
                f"Invalid sequence length {length}: this model accepts 1 to length={self.config.length} "
                "tokens; crop the input or build the model with a larger length."
            )
        if sigma.dim() == 2 and sigma.shape[1] == 1:
            sigma = sigma[:, 0]
        if not sigma.is_floating_point() or sigma.shape != indices.shape[:1]:
            raise ValueError(
                f"Invalid sigma: expected a float tensor of shape ({indices.shape[0]},), one noise level "
                f"per sequence, got {sigma.dtype} of shape {tuple(sigma.shape)}."
            )
        return sigma


def _log_expm1(sigma: Tensor) -> Tensor:
    """Return ``log(e^sigma - 1)`` for float ``(B,)`` sigma >= 0, accurate for small and large sigma."""
    # expm1 keeps precision for small sigma. For sigma >= 0.5 the form sigma + log(1 - e^-sigma)
    # avoids the overflow of e^sigma, which in float32 is inf past sigma ~ 88.
    small = torch.log(torch.expm1(sigma))
    large = sigma + torch.log1p(-torch.exp(-sigma))
    return torch.where(sigma < 0.5, small, large)
