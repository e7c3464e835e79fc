"""The score entropy training loss (Lou et al., arXiv:2310.16834, the denoising score entropy).

For clean sequences ``x0``, a time ``t ~ U[eps, 1]`` and ``x_t`` drawn from the forward
process, the per-sequence loss is ``sum_i dsigma(t) * score_entropy_i``. Its expectation over
``t ~ U[0, 1]`` bounds ``-log p(x0)`` from above up to the prior term, so it is both the
training objective and, averaged over many times, the likelihood bound.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from sedd.graph import Graph
from sedd.noise import Noise

LogScoreFn = Callable[[Tensor, Tensor], Tensor]


def sample_times(
    batch_size: int,
    *,
    eps: float = 1e-3,
    antithetic: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw diffusion times in ``[eps, 1]``, float32 ``(batch_size,)``.

    With ``antithetic`` the batch is stratified: one uniform offset ``u`` gives the times
    ``(u + k / B) mod 1`` for ``k = 0 .. B-1``, so every interval of width ``1/B`` holds
    exactly one time. Each time is still marginally uniform, so the loss stays unbiased,
    while its variance across batches drops.
    """
    if not 0 <= eps < 1:
        raise ValueError(f"time eps must be in [0, 1), got {eps}; the usual value is 1e-3")
    if antithetic:
        offset = torch.rand((), device=device, generator=generator)
        u = (offset + torch.arange(batch_size, device=device) / batch_size) % 1.0
    else:
        u = torch.rand(batch_size, device=device, generator=generator)
    return eps + (1 - eps) * u


def score_entropy_loss(
    model: LogScoreFn,
    graph: Graph,
    noise: Noise,
    x0: Tensor,
    *,
    t: Tensor | None = None,
    xt: Tensor | None = None,
    eps: float = 1e-3,
    antithetic: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Return the per-sequence score entropy loss in nats, float32 ``(B,)``.

    Args:
        model: maps ``(x_t int64 (B, L), sigma float (B,))`` to log-scores ``(B, L, D)``.
        graph, noise: the forward process.
        x0: int64 ``(B, L)`` clean tokens.
        t: optional float ``(B,)`` times; drawn with ``sample_times`` when omitted.
        xt: optional int64 ``(B, L)`` noised tokens; drawn from ``x0`` when omitted.
        eps: lower end of the time range when times are drawn.
        antithetic: stratify the drawn times across the batch.
        generator: optional ``torch.Generator`` on ``x0.device`` for the times and the noise.
    """
    if t is None:
        t = sample_times(
            x0.shape[0], eps=eps, antithetic=antithetic, generator=generator, device=x0.device
        )
    sigma, dsigma = noise(t)
    if xt is None:
        xt = graph.sample_transition(x0, sigma[:, None], generator=generator)

    log_score = model(xt, sigma)
    # The network may run under bf16 autocast; the loss sums thousands of terms of very
    # different sizes, so it is always formed in float32.
    with torch.autocast(device_type=x0.device.type, enabled=False):
        sigma32 = sigma.float()[:, None]
        entropy = graph.score_entropy(log_score.float(), sigma32, xt, x0)
        return (dsigma.float()[:, None] * entropy).sum(dim=-1)
