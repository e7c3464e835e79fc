"""Exact concrete scores of a known joint distribution over short sequences, for tests.

For a distribution ``p0`` over all ``V^L`` sequences of real tokens, the forward process
noises each position independently with ``exp(sigma Q)``, so ``p_sigma`` is ``p0`` pushed
through that matrix along every axis. The exact score of a sequence ``x`` towards the
single-token change ``y`` is ``p_sigma(y) / p_sigma(x)``. Everything here is float64 and
enumerates the ``D^L`` sequences over all states (``D = graph.dim``), so it suits
``D^L`` up to a few thousand.

``Q`` is built from the definitions of the graphs, independently of ``sedd.graph``: ``1 1^T / N - I``
for uniform, and a jump to the mask at rate 1 from every real token for absorbing. Tests
built on it therefore also check the graph code.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from sedd.graph import Graph


class ExactDiffusion:
    """The forward marginals and exact scores of a known ``p0`` under a graph.

    Args:
        graph: ``Uniform`` or ``Absorbing``.
        p0: float ``(V,) * L`` (an L-dimensional table) of probabilities over sequences of
            real tokens, ``V = graph.num_tokens``; normalised here.
    """

    def __init__(self, graph: Graph, p0: Tensor):
        self.graph = graph
        self.length = p0.dim()
        self.dim = graph.dim
        num_tokens = graph.num_tokens
        if tuple(p0.shape) != (num_tokens,) * self.length:
            raise ValueError(f"p0 must have shape {(num_tokens,) * self.length}, got {tuple(p0.shape)}")
        table = torch.zeros((self.dim,) * self.length, dtype=torch.float64)
        table[(slice(0, num_tokens),) * self.length] = p0.to(torch.float64) / p0.sum()
        self.p0 = table.reshape(-1)  # (S,) over all D^L sequences, 0 where a mask appears
        self.q = graph.rate_matrix()  # float64 (D, D), Q[y, x] the rate from x to y

        # states[s] is the sequence with flat index s (row-major, last position fastest).
        self.states = torch.tensor(list(itertools.product(range(self.dim), repeat=self.length)))  # (S, L)
        self._place = self.dim ** torch.arange(self.length - 1, -1, -1)  # (L,)
        # neighbours[s, l, v]: index of states[s] with position l set to v.
        base = self.index(self.states)  # (S,)
        values = torch.arange(self.dim)
        self.neighbours = torch.stack(
            [(base - self.states[:, l] * self._place[l])[:, None] + values * self._place[l]
             for l in range(self.length)],
            dim=1,
        )  # (S, L, D)

    @property
    def num_states(self) -> int:
        return self.p0.numel()

    def index(self, x: Tensor) -> Tensor:
        """Return the flat state index, int64 ``(...)``, of int64 sequences ``(..., L)``."""
        return (x.cpu() * self._place).sum(dim=-1)

    def transition(self, sigma: Tensor) -> Tensor:
        """Return ``exp(sigma Q)``, float64 ``(N, D, D)``, for float ``(N,)`` sigma."""
        return torch.linalg.matrix_exp(sigma.to(torch.float64)[:, None, None] * self.q)

    def marginal(self, sigma: Tensor) -> Tensor:
        """Return ``p_sigma`` over all states, float64 ``(N, S)``, for float ``(N,)`` sigma."""
        kernel = self.transition(sigma)  # (N, D, D)
        shape = (sigma.numel(),) + (self.dim,) * self.length
        probs = self.p0.expand(sigma.numel(), -1).reshape(shape)
        for axis in range(1, self.length + 1):
            moved = probs.movedim(axis, -1)  # (N, ..., D) with this position last
            pushed = (moved.reshape(sigma.numel(), -1, self.dim) @ kernel.transpose(1, 2)).reshape(moved.shape)
            probs = pushed.movedim(-1, axis)
        return probs.reshape(sigma.numel(), -1)

    def scores(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Return exact scores ``p_sigma(y) / p_sigma(x)``, float64 ``(B, L, D)``.

        ``x`` is int64 ``(B, L)`` and ``sigma`` float ``(B,)``; equal sigmas are computed once.
        """
        unique, inverse = torch.unique(sigma.detach().cpu().to(torch.float64), return_inverse=True)
        probs = self.marginal(unique).reshape(-1)  # (U * S,), row u is p at sigma unique[u]
        state = self.index(x)  # (B,)
        offset = inverse * self.num_states  # (B,) start of each sequence's row in probs
        numerator = probs[offset[:, None, None] + self.neighbours[state]]  # (B, L, D)
        denominator = probs[offset + state]  # (B,)
        return (numerator / denominator[:, None, None]).to(x.device)

    def score_fn(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Score function for the samplers: exact scores as float64 ``(B, L, D)``."""
        return self.scores(x, sigma)

    def log_score_fn(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Log-score function for the likelihood bound: float64 ``(B, L, D)``."""
        return self.scores(x, sigma).log()

    def sequence_probs(self) -> Tensor:
        """Return ``p0`` over sequences of real tokens, float64 ``(V^L,)`` in row-major order."""
        real = (self.states < self.graph.num_tokens).all(dim=1)
        return self.p0[real]


def random_joint(num_tokens: int, length: int, *, seed: int, coupling: float = 2.5) -> Tensor:
    """Return a random correlated distribution over ``num_tokens^length`` sequences.

    ``p0(x)`` is proportional to ``exp(sum of pairwise terms J[l, m, x_l, x_m])`` with Gaussian
    couplings of scale ``coupling``, so positions depend strongly on each other and a sampler
    that draws positions independently cannot reproduce it. Float64 ``(V,) * L`` table.
    """
    generator = torch.Generator().manual_seed(seed)
    logits = torch.zeros((num_tokens,) * length, dtype=torch.float64)
    for left, right in itertools.combinations(range(length), 2):
        pair = coupling * torch.randn(num_tokens, num_tokens, generator=generator, dtype=torch.float64)
        shape = [1] * length
        shape[left], shape[right] = num_tokens, num_tokens
        logits = logits + pair.reshape(shape)
    probs = torch.exp(logits - logits.max())
    return probs / probs.sum()


def total_variation(samples: Tensor, probs: Tensor, num_tokens: int) -> float:
    """Return the total variation between the empirical law of int64 ``(N, L)`` samples and
    float ``(V^L,)`` probabilities over sequences of real tokens (row-major)."""
    if int(samples.max()) >= num_tokens:
        raise ValueError(f"samples contain token {int(samples.max())}, outside the {num_tokens} real tokens")
    length = samples.shape[1]
    place = num_tokens ** torch.arange(length - 1, -1, -1)
    counts = torch.bincount((samples.cpu() * place).sum(dim=1), minlength=num_tokens**length)
    empirical = counts.to(torch.float64) / samples.shape[0]
    return 0.5 * float((empirical - probs).abs().sum())


def forward_probs(exact: ExactDiffusion, sigma: float, x0: Tensor) -> Tensor:
    """Return ``q_sigma(x_t | x0)`` over all states, float64 ``(M, S)``, for int64 ``(M, L)`` x0."""
    kernel = exact.transition(torch.tensor([sigma]))[0]  # (D, D), kernel[y, x] = p(y | x)
    per_position = kernel[exact.states[None, :, :], x0[:, None, :]]  # (M, S, L)
    return per_position.prod(dim=-1)


def elbo_integrand(exact: ExactDiffusion, log_score_fn, sigma: float, x0: Tensor) -> Tensor:
    """Return ``E_{x_t ~ q_sigma(.|x0)} sum_l score_entropy_l``, float64 ``(M,)``, exactly.

    The expectation enumerates all states, so no Monte Carlo error enters; this is the
    integrand in sigma of the ELBO (``dsigma dt = d sigma``).
    """
    num_x0, num_states = x0.shape[0], exact.num_states
    sigmas = torch.full((num_states,), sigma, dtype=torch.float64)
    log_score = log_score_fn(exact.states, sigmas)  # (S, L, D)
    noised = exact.states.repeat(num_x0, 1)  # (M * S, L)
    clean = x0.repeat_interleave(num_states, dim=0)  # (M * S, L)
    entropy = exact.graph.score_entropy(
        log_score.repeat(num_x0, 1, 1), sigmas.repeat(num_x0)[:, None], noised, clean
    ).sum(dim=-1).reshape(num_x0, num_states)
    weights = forward_probs(exact, sigma, x0)
    # States that x0 cannot reach have weight 0; their entropy may be inf or NaN.
    return torch.where(weights > 0, weights * entropy, torch.zeros_like(entropy)).sum(dim=-1)


def elbo_quadrature(exact: ExactDiffusion, log_score_fn, sigma_lo: float, sigma_hi: float,
                    x0: Tensor, points: int = 200) -> Tensor:
    """Return the integral of the ELBO integrand over sigma in [sigma_lo, sigma_hi], ``(M,)``.

    Trapezoid rule in log sigma on ``points`` nodes, because the integrand varies on a log
    scale of sigma (``d sigma = sigma d(log sigma)``). With 200 nodes the error on the tests'
    example is below 2e-4 nats.
    """
    log_sigmas = torch.linspace(math.log(sigma_lo), math.log(sigma_hi), points, dtype=torch.float64)
    sigmas = log_sigmas.exp()
    values = torch.stack([elbo_integrand(exact, log_score_fn, float(s), x0) for s in sigmas])  # (P, M)
    return torch.trapezoid(values * sigmas[:, None], log_sigmas, dim=0)


def reverse_generator(exact: ExactDiffusion, score_fn, sigma: float) -> Tensor:
    """Return the generator of the reverse CTMC per unit of sigma, float64 ``(S, S)``.

    ``G[y, x]`` is the rate from state x to its single-token change y, ``Q[x_l, v] s(x)_{l,v}``;
    columns sum to 0.
    """
    sigmas = torch.full((exact.num_states,), sigma, dtype=torch.float64)
    scores = score_fn(exact.states, sigmas)  # (S, L, D)
    forward_rates = exact.q[exact.states[:, :, None], torch.arange(exact.dim)]  # (S, L, D): Q[x_l, v]
    rates = forward_rates * scores
    rates[exact.neighbours == torch.arange(exact.num_states)[:, None, None]] = 0.0  # no self-jumps
    generator = torch.zeros(exact.num_states, exact.num_states, dtype=torch.float64)
    sources = torch.arange(exact.num_states)[:, None, None].expand_as(exact.neighbours)
    generator.index_put_((exact.neighbours.reshape(-1), sources.reshape(-1)), rates.reshape(-1), accumulate=True)
    return generator - torch.diag(generator.sum(dim=0))


def reverse_marginal(exact: ExactDiffusion, score_fn, start: Tensor, sigma_hi: float,
                     sigma_lo: float, points: int = 1500) -> Tensor:
    """Run the reverse CTMC from law ``start`` (float64 ``(S,)``) at sigma_hi down to sigma_lo.

    Each step of a log-spaced grid applies ``matrix_exp(step * G)`` with the generator at the
    step's geometric midpoint, which stays stable where rates grow like 1 / sigma.
    """
    grid = torch.logspace(math.log10(sigma_hi), math.log10(sigma_lo), points, dtype=torch.float64)
    probs = start.clone()
    for upper, lower in zip(grid[:-1], grid[1:]):
        middle = float((upper * lower).sqrt())
        probs = torch.linalg.matrix_exp(float(upper - lower) * reverse_generator(exact, score_fn, middle)) @ probs
    return probs
