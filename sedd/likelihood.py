"""The likelihood bound of SEDD: a Monte Carlo estimate of the ELBO, and its unit conversions.

Lou, Meng and Ermon (arXiv:2310.16834) bound the negative log-likelihood of a
clean sequence ``x0`` under the reverse diffusion by the denoising score entropy integrated
over time plus a prior term:

    -log p(x0) <= int_0^1 E_{x_t ~ p_{t|0}(.|x0)} [ dsigma(t) * sum_i score_entropy_i ] dt
                  + KL(p_{1|0}(.|x0) || p_base)

where ``score_entropy_i`` is ``graph.score_entropy`` at position ``i``: the sum over the
neighbours ``y`` of ``x_t`` (weighted by ``Q[x_t, y]``) of ``s_y - r_y log s_y + r_y (log r_y - 1)``
with ``s`` the model's scores and ``r_y = p_{t|0}(y|x0) / p_{t|0}(x_t|x0)``. All values are
nats per sequence.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Callable

import torch
from torch import Tensor

from sedd.graph import Absorbing, Graph, Uniform
from sedd.noise import Noise
from sedd.sampling.score_fns import LogScoreFn

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class ElboEstimate:
    """A Monte Carlo estimate of the ELBO per sequence.

    Attributes:
        nats: float64 ``(B,)`` estimate of the bound on ``-log p(x0)``, prior term included.
        stderr: float64 ``(B,)`` standard error of ``nats`` (the prior term is exact).
        prior_nats: float64 ``(B,)`` the prior term ``KL(p_{1|0}(.|x0) || p_base)``.
        num_times: K, the number of times drawn per sequence.
        sigma_eps: total noise ``sigma(eps)`` at the lower end of the integral; the part of the
            bound below it is left out (see ``elbo``).
    """

    nats: Tensor
    stderr: Tensor
    prior_nats: Tensor
    num_times: int
    sigma_eps: float


@torch.no_grad()
def elbo(
    log_score_fn: LogScoreFn,
    graph: Graph,
    noise: Noise,
    x0: Tensor,
    *,
    num_times: int = 128,
    eps: float = 1e-5,
    times_per_batch: int | None = None,
    generator: torch.Generator | None = None,
    progress: ProgressFn | None = None,
) -> ElboEstimate:
    """Estimate the ELBO (an upper bound on ``-log p(x0)``, in nats) of each sequence of ``x0``.

    Estimator: for each sequence, K = ``num_times`` times are stratified over ``[eps, 1]``
    (one uniform draw in each of K equal intervals, independently per sequence). At each time
    one ``x_t`` is drawn from the forward process, and the integrand
    ``dsigma(t) * sum_i score_entropy_i`` is evaluated with the model's log-scores. The
    estimate is ``(1 - eps)`` times the mean over the K values, plus the prior term. The
    standard error is ``(1 - eps)`` times the sample standard deviation over sqrt(K), as if
    the draws were independent. Stratification only lowers the variance, so in expectation
    this overstates it. The integrand is heavy-tailed (rare noised sequences with a large
    score entropy), though, so one estimate of the error can still come out low.

    Omitted part: the integral starts at ``t = eps``, i.e. at total noise ``sigma(eps)``, and
    a schedule with ``sigma(0) > 0`` (``GeometricNoise``) never reaches the noise levels
    below ``sigma(0)``. Written in sigma, the bound integrates from sigma = 0, so the part
    over ``[0, sigma(eps)]`` is left out, about ``sigma(eps)`` times the integrand there. For
    exact scores on the absorbing graph that integrand tends to the sum over positions of
    ``-log p(x0_i | x0_rest)``, so the omitted part is negligible (1e-4 nats with
    ``LogLinearNoise``, eps = 1e-5). On the uniform graph the integrand grows like
    ``log(1 / sigma)`` and with the ratio of neighbouring sequences' probability to
    ``p(x0)``. In the 64-sequence example of ``tests/test_likelihood.py`` with
    ``GeometricNoise(1e-4, 20)``, the omitted part averages 0.01 nats and reaches 0.11 for
    the rarest sequence.

    Prior term: on the uniform graph it is ``KL(exp(sigma(1) Q)[:, x0_i] || uniform)`` summed
    over positions, computed exactly. On the absorbing graph the base is the all-mask
    sequence, and the literal KL is infinite whenever ``e^-sigma(1) > 0`` (a token may
    survive to t = 1). It is taken as 0, the value for the forward process conditioned on
    being fully masked at t = 1. That conditioning changes the integral by a relative amount
    of order ``L * e^-sigma(1)``, which is neglected. In the same example with
    ``LogLinearNoise(1e-3)`` and exact scores, the expected estimate falls below
    ``-log p(x0)`` by 0.006 nats on average and by 0.01 at most.

    Args:
        log_score_fn: ``(x int64 (N, L), sigma float (N,)) -> float (N, L, D)`` log-scores,
            for example ``sedd.sampling.model_log_score_fn(model)``.
        graph, noise: the forward process the model was trained on.
        x0: int64 ``(B, L)`` clean sequences, real tokens in ``[0, graph.num_tokens)``.
        num_times: K >= 2 times per sequence.
        eps: lower end of the time integral, in (0, 1).
        times_per_batch: how many of the K times go through ``log_score_fn`` at once, so each
            call receives ``B * times_per_batch`` sequences; default all K. Lower it to bound memory.
        generator: ``torch.Generator`` on ``x0.device`` for reproducible estimates.
        progress: called as ``progress(done, K)`` after each batch of times.

    Returns:
        ``ElboEstimate`` with float64 ``(B,)`` tensors (float32 on MPS, which has no float64).
    """
    num_times, times_per_batch = _check_elbo_arguments(graph, x0, num_times, eps, times_per_batch)
    dtype = torch.float32 if x0.device.type == "mps" else torch.float64
    batch_size = x0.shape[0]

    # Stratified times: each sequence gets one time in each of the K equal intervals of [eps, 1].
    offsets = torch.rand(batch_size, num_times, dtype=dtype, device=x0.device, generator=generator)
    strata = torch.arange(num_times, dtype=dtype, device=x0.device)
    times = eps + (1 - eps) * (strata + offsets) / num_times  # (B, K)

    values = torch.empty(batch_size, num_times, dtype=dtype, device=x0.device)
    for start in range(0, num_times, times_per_batch):
        stop = min(start + times_per_batch, num_times)
        values[:, start:stop] = _integrand(log_score_fn, graph, noise, x0, times[:, start:stop], generator)
        if progress is not None:
            progress(stop, num_times)

    integral = (1 - eps) * values.mean(dim=1)
    stderr = (1 - eps) * values.std(dim=1) / math.sqrt(num_times)
    prior = prior_kl(graph, noise, x0).to(dtype)
    sigma_eps = float(noise(torch.tensor(eps, dtype=torch.float64))[0])
    return ElboEstimate(integral + prior, stderr, prior, num_times, sigma_eps)


def _integrand(
    log_score_fn: LogScoreFn, graph: Graph, noise: Noise, x0: Tensor, times: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """Return ``dsigma(t) * sum_i score_entropy_i`` at one forward draw per time, ``(B, T)``."""
    batch_size, num_times = times.shape
    clean = x0.repeat_interleave(num_times, dim=0)  # (B * T, L), rows of a sequence adjacent
    sigma, dsigma = noise(times.reshape(-1))  # (B * T,) each
    noised = graph.sample_transition(clean, sigma[:, None], generator)  # (B * T, L)

    # The score entropy of the uniform graph loses digits in float32 at small sigma, so the
    # log-scores are promoted to the dtype of sigma.
    log_score = log_score_fn(noised, sigma).to(sigma.dtype)  # (B * T, L, D)
    entropy = graph.score_entropy(log_score, sigma[:, None], noised, clean)  # (B * T, L)
    return (dsigma * entropy.sum(dim=-1)).reshape(batch_size, num_times)


def prior_kl(graph: Graph, noise: Noise, x0: Tensor) -> Tensor:
    """Return the prior term ``KL(p_{1|0}(.|x0) || p_base)`` per sequence, float64 ``(B,)``.

    Uniform graph: exact, summed over positions. Absorbing graph: 0, as explained in ``elbo``.

    Raises:
        NotImplementedError: for a graph other than ``Uniform`` or ``Absorbing``, whose base
            distribution this module does not know.
    """
    dtype = torch.float32 if x0.device.type == "mps" else torch.float64
    if isinstance(graph, Absorbing):
        return torch.zeros(x0.shape[0], dtype=dtype, device=x0.device)
    if not isinstance(graph, Uniform):
        raise NotImplementedError(
            f"prior_kl supports the Uniform and Absorbing graphs only, got {type(graph).__name__}; "
            "add a case with its base distribution to sedd.likelihood.prior_kl"
        )
    sigma_1 = noise(torch.ones(x0.shape[0], 1, dtype=dtype, device=x0.device))[0]  # (B, 1)
    probs = graph.transition(x0, sigma_1)  # (B, L, D)
    kl = torch.xlogy(probs, probs * graph.dim).sum(dim=-1)  # KL to 1/D per position, (B, L)
    return kl.sum(dim=-1)


def bits_per_token(nats: Tensor | float, num_tokens: int) -> Tensor | float:
    """Convert a bound in nats per sequence to bits per token: ``nats / (num_tokens * ln 2)``."""
    _check_num_tokens(num_tokens)
    return nats / (num_tokens * math.log(2))


def perplexity_bound(nats: Tensor | float, num_tokens: int) -> Tensor | float:
    """Convert a bound in nats per sequence to a perplexity bound: ``exp(nats / num_tokens)``."""
    _check_num_tokens(num_tokens)
    if isinstance(nats, Tensor):
        return torch.exp(nats / num_tokens)
    return math.exp(nats / num_tokens)


def _check_num_tokens(num_tokens: int) -> None:
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) or num_tokens < 1:
        raise ValueError(f"num_tokens must be a positive integer (tokens per sequence), got {num_tokens!r}")


def _check_elbo_arguments(
    graph: Graph, x0: Tensor, num_times: int, eps: float, times_per_batch: int | None
) -> tuple[int, int]:
    if x0.dtype != torch.int64 or x0.dim() != 2:
        raise ValueError(
            f"x0 must be int64 tokens of shape (B, L), got {x0.dtype} of shape {tuple(x0.shape)}"
        )
    if isinstance(num_times, bool) or not isinstance(num_times, int) or num_times < 2:
        raise ValueError(f"num_times must be an integer >= 2 (needed for a standard error), got {num_times!r}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}; the usual value is 1e-5")
    if times_per_batch is None:
        times_per_batch = num_times
    if isinstance(times_per_batch, bool) or not isinstance(times_per_batch, int) or times_per_batch < 1:
        raise ValueError(f"times_per_batch must be a positive integer, got {times_per_batch!r}")
    if x0.numel() and (int(x0.min()) < 0 or int(x0.max()) >= graph.num_tokens):
        raise ValueError(
            f"x0 tokens must be real tokens in [0, {graph.num_tokens}), got values in "
            f"[{int(x0.min())}, {int(x0.max())}]; the absorbing mask is not a data token"
        )
    return num_times, times_per_batch
