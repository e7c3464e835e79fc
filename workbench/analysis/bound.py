"""The likelihood bound of a set of blocks: the Monte Carlo ELBO summed over blocks, per token.

Each block gets its own K stratified times (``sedd.likelihood.elbo``). The reported value is
the total bound divided by the number of tokens, so every token weighs the same. Its standard
error is the Monte Carlo error of that total, ``sqrt(sum_b stderr_b^2) / tokens``. It measures
how far the estimate may be from the exact bound of these blocks, and it shrinks as K grows. The
spread of the per-block values (``block_stderr``), which also contains the variation between
texts, is kept beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sedd.graph import Graph
from sedd.likelihood import elbo
from sedd.noise import Noise
from sedd.sampling import LogScoreFn
from workbench.analysis.progress import ProgressFn
from workbench.analysis.results import Measurement

# Lower end of the time integral, the default of ``sedd.likelihood.elbo``. The part of the
# bound below it is about sigma(1e-5) times the per-sequence NLL, far below the Monte Carlo error.
BOUND_TIME_EPS = 1e-5


@dataclass(frozen=True)
class BoundEstimate:
    """A likelihood bound over blocks, in nats per token, with its Monte Carlo error."""

    nats_per_token: float
    stderr: float
    block_stderr: float
    num_blocks: int
    num_tokens: int
    num_times: int
    time_eps: float

    def measurements(self, prefix: str, *, per_char: bool = False) -> dict[str, Measurement]:
        """Return the bound as stored metrics: ``<prefix>/nll``, ``/bpt`` (``/bpc``), ``/ppl_bound``.

        The perplexity bound's standard error is propagated to first order:
        ``d exp(n) = exp(n) dn``.
        """
        bits = 1.0 / math.log(2)
        perplexity = math.exp(self.nats_per_token)
        bits_name, bits_unit = ("bpc", "bits/char") if per_char else ("bpt", "bits/token")
        return {
            f"{prefix}/nll": Measurement(self.nats_per_token, self.stderr, "nats/token"),
            f"{prefix}/{bits_name}": Measurement(self.nats_per_token * bits, self.stderr * bits, bits_unit),
            f"{prefix}/ppl_bound": Measurement(perplexity, perplexity * self.stderr, "ppl"),
        }

    def protocol(self) -> dict[str, Any]:
        """Return how the bound was estimated."""
        return {
            "estimator": "sedd.likelihood.elbo: K stratified times per block, one forward draw per time",
            "num_times": self.num_times,
            "time_range": [self.time_eps, 1.0],
            "blocks": self.num_blocks,
            "tokens": self.num_tokens,
            "weighting": "total bound / total tokens",
            "stderr": "Monte Carlo error of the total over blocks",
        }


def estimate_bound(
    log_score_fn: LogScoreFn,
    graph: Graph,
    noise: Noise,
    blocks: Tensor,
    *,
    num_times: int,
    batch_size: int,
    seed: int,
    time_eps: float = BOUND_TIME_EPS,
    progress: ProgressFn | None = None,
) -> BoundEstimate:
    """Estimate the likelihood bound of ``blocks`` in nats per token.

    Args:
        log_score_fn: ``(x int64 (N, L), sigma float (N,)) -> float (N, L, D)`` log-scores.
        graph, noise: the forward process of the model.
        blocks: int64 ``(B, L)`` clean blocks of real tokens, on the model's device.
        num_times: K, Monte Carlo times per block (at least 2).
        batch_size: maximum sequences per forward pass, counting each (block, time) pair:
            ``max(1, batch_size // K)`` blocks per ``elbo`` call and ``min(K, batch_size)``
            times per forward pass.
        seed: seeds the times and the forward draws.
        progress: called with ``(blocks done, blocks in total)``.
    """
    if blocks.dim() != 2 or blocks.shape[0] == 0:
        raise ValueError(f"blocks must be a non-empty int64 (B, L) tensor, got shape {tuple(blocks.shape)}")
    generator = torch.Generator(device=blocks.device).manual_seed(seed)
    blocks_per_call = max(1, batch_size // num_times)
    nats = []
    variances = []
    for start in range(0, blocks.shape[0], blocks_per_call):
        x0 = blocks[start : start + blocks_per_call]
        estimate = elbo(
            log_score_fn, graph, noise, x0, num_times=num_times, eps=time_eps,
            times_per_batch=min(num_times, batch_size), generator=generator,
        )  # fmt: skip
        nats.append(estimate.nats.double().cpu())
        variances.append(estimate.stderr.double().cpu() ** 2)
        if progress is not None:
            progress(start + x0.shape[0], blocks.shape[0])

    per_block = torch.cat(nats)  # (B,) nats per block
    num_blocks, length = blocks.shape
    num_tokens = num_blocks * length
    mc_stderr = math.sqrt(float(torch.cat(variances).sum())) / num_tokens
    spread = float(per_block.std()) / math.sqrt(num_blocks) / length if num_blocks > 1 else math.nan
    return BoundEstimate(float(per_block.sum()) / num_tokens, mc_stderr, spread, num_blocks, num_tokens,
                         num_times, time_eps)
