"""The ELBO against exact computations on the 4-token, length-3 distribution.

Three exact references from ``tests/exact_scores.py``:

- the integral of the ELBO integrand by quadrature, with the expectation over noised
  sequences summed over all states, which the Monte Carlo estimate must match;
- the law ``p_theta`` of the reverse CTMC that a score function defines, by integrating
  its generator, which makes ``-log p_theta(x0)`` exact for any scores;
- the true negative log-likelihood ``-log p0(x0)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from exact_scores import (
    ExactDiffusion,
    elbo_quadrature,
    forward_probs,
    random_joint,
    reverse_marginal,
)
from sedd.graph import Absorbing, Uniform
from sedd.likelihood import ElboEstimate, bits_per_token, elbo, perplexity_bound, prior_kl
from sedd.model import ModelConfig, build_model
from sedd.noise import GeometricNoise, LogLinearNoise
from sedd.sampling import model_log_score_fn

NUM_TOKENS, LENGTH = 4, 3
EPS = 1e-5

SETUPS = {
    "absorbing": (Absorbing(NUM_TOKENS), LogLinearNoise(1e-3)),
    "uniform": (Uniform(NUM_TOKENS), GeometricNoise(1e-4, 20.0)),
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def joint() -> torch.Tensor:
    return random_joint(NUM_TOKENS, LENGTH, seed=0, coupling=1.5)


@pytest.fixture(scope="module", params=sorted(SETUPS))
def setup(request, joint):
    graph, noise = SETUPS[request.param]
    exact = ExactDiffusion(graph, joint)
    clean = exact.states[(exact.states < NUM_TOKENS).all(dim=1)]  # all 64 sequences, (64, L)
    return graph, noise, exact, clean


@pytest.fixture(scope="module")
def exact_integral(setup) -> torch.Tensor:
    """The ELBO integral over [sigma(eps), sigma(1)] with exact scores, by quadrature, (64,)."""
    graph, noise, exact, clean = setup
    return elbo_quadrature(exact, exact.log_score_fn, sigma_at(noise, EPS), sigma_at(noise, 1.0), clean)


def sigma_at(noise, t: float) -> float:
    return float(noise(torch.tensor(t, dtype=torch.float64))[0])


def perturbed(exact: ExactDiffusion, scale: float = 0.5, seed: int = 3):
    """Log-scores of ``exact`` plus a fixed random offset per (state, position, token).

    The factors do not depend on sigma and come from no distribution, so the reverse CTMC
    they define differs from the true one and the bound is not tight.
    """
    noise = scale * torch.randn(exact.num_states, LENGTH, exact.dim, dtype=torch.float64,
                                generator=torch.Generator().manual_seed(seed))
    noise[exact.neighbours == torch.arange(exact.num_states)[:, None, None]] = 0.0  # s(x)_x stays 1

    def log_score_fn(x, sigma):
        return exact.log_score_fn(x, sigma) + noise[exact.index(x)]

    return log_score_fn


def kl_divergence(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) over the last dimension, with 0 log 0 = 0."""
    return (torch.xlogy(q, q) - torch.where(q > 0, q * p.log(), torch.zeros_like(q))).sum(dim=-1)


# The Monte Carlo estimator against the quadrature of its integrand.


def test_elbo_matches_quadrature(setup, exact_integral):
    graph, noise, exact, clean = setup
    reference = exact_integral + prior_kl(graph, noise, clean)

    estimate = elbo(exact.log_score_fn, graph, noise, clean, num_times=256, eps=EPS,
                    generator=torch.Generator().manual_seed(0))

    z_scores = (estimate.nats - reference) / estimate.stderr
    pooled = float((estimate.nats - reference).mean() / (estimate.stderr.square().sum().sqrt() / len(clean)))
    assert float(z_scores.abs().max()) < 5.0
    assert abs(pooled) < 5.0


def test_elbo_stderr_shrinks_with_times(setup):
    graph, noise, exact, clean = setup
    few = elbo(exact.log_score_fn, graph, noise, clean, num_times=16, generator=torch.Generator().manual_seed(1))
    many = elbo(exact.log_score_fn, graph, noise, clean, num_times=256, generator=torch.Generator().manual_seed(1))
    # 16 times more draws: the standard error falls about 4-fold (0.25).
    ratio = float(many.stderr.mean() / few.stderr.mean())
    assert 0.15 < ratio < 0.4


def test_elbo_exact_scores_near_nll(setup, exact_integral):
    # With exact scores the bound is tight. What is left is the part below sigma(eps) and,
    # on the absorbing graph, the prior term taken as 0 (see sedd.likelihood.elbo).
    graph, noise, exact, clean = setup
    nll = -exact.sequence_probs().log()
    gap = exact_integral + prior_kl(graph, noise, clean) - nll
    assert float(gap.abs().mean()) < 0.015
    assert float(gap.abs().max()) < 0.12


def test_elbo_above_entropy_inexact_scores(setup):
    # E_{x0 ~ p0}[-log p_theta(x0)] >= H(p0) for any p_theta (Gibbs' inequality), and the
    # ELBO is above -log p_theta up to its omitted parts (below 0.02 nats on average here).
    graph, noise, exact, clean = setup
    estimate = elbo(perturbed(exact), graph, noise, clean, num_times=256, generator=torch.Generator().manual_seed(2))
    weights = exact.sequence_probs()
    entropy = float(-(weights * weights.log()).sum())
    mean_bound = float((weights * estimate.nats).sum())
    mean_stderr = float((weights.square() * estimate.stderr.square()).sum().sqrt())
    assert mean_bound > entropy + 4 * mean_stderr


# The bound against the exact likelihood of the reverse process.


@pytest.mark.parametrize("scores", ["exact", "perturbed"])
def test_bound_above_reverse_process_nll(setup, exact_integral, scores):
    """int DSE + KL(q_hi(.|x0) || start) >= KL(q_lo(.|x0) || p_theta,lo) for every x0.

    The reverse CTMC starts from the true marginal at sigma_hi, a full-support law, so the
    prior term is finite on both graphs. With q_lo(.|x0) close to a point mass at x0, the
    right side is close to -log p_theta(x0).
    """
    graph, noise, exact, clean = setup
    log_score_fn = exact.log_score_fn if scores == "exact" else perturbed(exact)
    sigma_lo, sigma_hi = sigma_at(noise, EPS), sigma_at(noise, 1.0)
    start = exact.marginal(torch.tensor([sigma_hi]))[0]  # (S,)

    if scores == "exact":
        integral = exact_integral
    else:
        integral = elbo_quadrature(exact, log_score_fn, sigma_lo, sigma_hi, clean)
    bound = integral + kl_divergence(forward_probs(exact, sigma_hi, clean), start)
    p_theta = reverse_marginal(exact, lambda x, s: log_score_fn(x, s).exp(), start, sigma_hi, sigma_lo, points=400)
    target = kl_divergence(forward_probs(exact, sigma_lo, clean), p_theta)

    gap = bound - target
    # 1e-3 covers the quadrature and the CTMC integration error (about 2e-4 each).
    assert float(gap.min()) > -1e-3
    if scores == "exact":
        assert float(gap.max()) < 1e-3
    else:
        assert float(gap.min()) > 0.1


# Prior term, batching, reproducibility and unit conversions.


def test_prior_kl_uniform_closed_form():
    graph, noise = Uniform(NUM_TOKENS), GeometricNoise(1e-4, 2.0)
    clean = torch.tensor([[0, 1, 2], [3, 3, 3]])
    keep = math.exp(-2.0)
    stay = keep + (1 - keep) / NUM_TOKENS
    move = (1 - keep) / NUM_TOKENS
    per_token = stay * math.log(stay * NUM_TOKENS) + (NUM_TOKENS - 1) * move * math.log(move * NUM_TOKENS)
    torch.testing.assert_close(prior_kl(graph, noise, clean), torch.full((2,), LENGTH * per_token, dtype=torch.float64))


def test_prior_kl_absorbing_is_zero():
    clean = torch.tensor([[0, 1, 2]])
    assert prior_kl(Absorbing(NUM_TOKENS), LogLinearNoise(1e-3), clean).tolist() == [0.0]


def test_elbo_batches_times_within_limit(setup):
    graph, noise, exact, clean = setup
    sizes, calls = [], []

    def recording(x, sigma):
        sizes.append(x.shape[0])
        return exact.log_score_fn(x, sigma)

    chunked = elbo(recording, graph, noise, clean[:8], num_times=64, times_per_batch=16,
                   generator=torch.Generator().manual_seed(4), progress=lambda done, total: calls.append((done, total)))
    whole = elbo(exact.log_score_fn, graph, noise, clean[:8], num_times=64, generator=torch.Generator().manual_seed(5))

    assert sizes == [8 * 16] * 4
    assert calls == [(16, 64), (32, 64), (48, 64), (64, 64)]
    combined = (chunked.stderr.square() + whole.stderr.square()).sqrt()
    assert float(((chunked.nats - whole.nats).abs() / combined).max()) < 5.0


def test_elbo_same_seed_same_estimate(setup):
    graph, noise, exact, clean = setup
    first = elbo(exact.log_score_fn, graph, noise, clean[:4], num_times=8, generator=torch.Generator().manual_seed(9))
    second = elbo(exact.log_score_fn, graph, noise, clean[:4], num_times=8, generator=torch.Generator().manual_seed(9))
    assert torch.equal(first.nats, second.nats)
    assert first.num_times == 8
    assert first.sigma_eps == pytest.approx(sigma_at(noise, 1e-5))


def test_elbo_with_model_log_scores():
    graph, noise = SETUPS["absorbing"]
    config = ModelConfig(num_tokens=NUM_TOKENS, hidden_size=32, cond_dim=16, n_blocks=1, n_heads=2, length=8)
    torch.manual_seed(0)
    model = build_model(config)
    clean = torch.randint(0, NUM_TOKENS, (3, 8), generator=torch.Generator().manual_seed(0))

    estimate = elbo(model_log_score_fn(model), graph, noise, clean, num_times=16,
                    generator=torch.Generator().manual_seed(0))

    # The model path only: the estimator's accuracy is checked with exact scores above.
    assert isinstance(estimate, ElboEstimate)
    assert estimate.nats.shape == (3,)
    assert estimate.nats.dtype == torch.float64
    assert bool(torch.isfinite(estimate.nats).all())
    assert bool((estimate.nats > 0).all())
    assert bool((estimate.stderr > 0).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_times": 1}, "num_times must be an integer >= 2"),
        ({"eps": 0.0}, "eps must be in"),
        ({"times_per_batch": 0}, "times_per_batch must be a positive integer"),
    ],
)
def test_elbo_rejects_invalid_arguments(kwargs, message):
    graph, noise = SETUPS["absorbing"]
    with pytest.raises(ValueError, match=message):
        elbo(lambda x, s: torch.zeros(*x.shape, graph.dim), graph, noise, torch.zeros(2, 3, dtype=torch.int64), **kwargs)


def test_elbo_rejects_mask_in_data():
    graph, noise = SETUPS["absorbing"]
    x0 = torch.tensor([[0, graph.mask_index, 1]])
    with pytest.raises(ValueError, match=r"real tokens in \[0, 4\), got values in \[0, 4\]"):
        elbo(lambda x, s: torch.zeros(*x.shape, graph.dim), graph, noise, x0)


def test_elbo_rejects_float_tokens():
    graph, noise = SETUPS["uniform"]
    with pytest.raises(ValueError, match="x0 must be int64 tokens of shape"):
        elbo(lambda x, s: torch.zeros(*x.shape, graph.dim), graph, noise, torch.zeros(2, 3))


def test_bits_per_token_converts_nats():
    nats = torch.tensor([3 * 2 * math.log(2), 0.0], dtype=torch.float64)
    torch.testing.assert_close(bits_per_token(nats, 3), torch.tensor([2.0, 0.0], dtype=torch.float64))
    assert bits_per_token(4 * math.log(2), 4) == pytest.approx(1.0)


def test_perplexity_bound_converts_nats():
    assert perplexity_bound(3 * math.log(5.0), 3) == pytest.approx(5.0)
    torch.testing.assert_close(perplexity_bound(torch.tensor([0.0]), 7), torch.tensor([1.0]))


@pytest.mark.parametrize("num_tokens", [0, -2, 1.5])
def test_unit_conversions_reject_bad_count(num_tokens):
    with pytest.raises(ValueError, match="num_tokens must be a positive integer"):
        bits_per_token(1.0, num_tokens)
    with pytest.raises(ValueError, match="num_tokens must be a positive integer"):
        perplexity_bound(1.0, num_tokens)
