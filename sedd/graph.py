"""Graphs: the forward continuous-time Markov chain applied to every token independently.

A graph is a rate matrix ``Q`` of shape ``(D, D)`` with ``Q[y, x]`` the rate of jumping from
state ``x`` to state ``y`` (columns sum to 0). After total noise ``sigma`` the token law is
``exp(sigma Q) p_0``. The operation names follow the official SEDD ``graph_lib`` so that code
ported from it reads the same.

Shapes used by every method:

- ``i``, ``x``, ``x0``: int64 tokens ``(...)``, usually ``(B, L)``.
- ``sigma``, ``dsigma``: float noise that broadcasts against ``i``, usually ``(B, 1)``.
- Results over states have one more trailing dimension of size ``D = graph.dim``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sedd.categorical import sample_categorical


class Graph:
    """Base class: the rate matrix ``Q`` of a forward process over ``dim`` states."""

    absorb: bool = False

    def __init__(self, num_tokens: int):
        if int(num_tokens) < 2:
            raise ValueError(f"a graph needs at least 2 tokens, got num_tokens={num_tokens}")
        self.num_tokens = int(num_tokens)

    @property
    def dim(self) -> int:
        """Number of states D, the last dimension of every per-state result."""
        return self.num_tokens

    # Columns and rows of Q and of exp(sigma Q).

    def rate(self, i: Tensor) -> Tensor:
        """Return column ``i`` of Q: the rates out of state ``i``, ``(..., D)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement rate()")

    def transp_rate(self, i: Tensor) -> Tensor:
        """Return row ``i`` of Q: the rates into state ``i``, ``(..., D)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transp_rate()")

    def transition(self, i: Tensor, sigma: Tensor) -> Tensor:
        """Return column ``i`` of exp(sigma Q): the law of the noised token given ``i``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transition()")

    def transp_transition(self, i: Tensor, sigma: Tensor) -> Tensor:
        """Return row ``i`` of exp(sigma Q): ``p(x_t = i | x_0 = y)`` for every ``y``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement transp_transition()")

    # Sampling.

    def sample_transition(
        self, i: Tensor, sigma: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``x_t ~ exp(sigma Q)[:, i]`` for every token of ``i``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sample_transition()")

    def sample_limit(
        self, *batch_dims: int, device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw int64 tokens ``batch_dims`` from the limiting distribution (t = 1)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sample_limit()")

    def sample_rate(
        self, i: Tensor, rate: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw the next tokens from ``one_hot(i) + rate``, an Euler step of a CTMC.

        ``rate`` is a rate times a step size, with the diagonal entry negative, so each row
        is an unnormalised probability vector once added to the one-hot of ``i``.
        """
        return sample_categorical(F.one_hot(i, num_classes=self.dim).to(rate) + rate, generator)

    # Scores.

    def staggered_score(self, score: Tensor, dsigma: Tensor) -> Tensor:
        """Return ``exp(-dsigma Q) score`` over the last dimension, for the analytic sampler.

        ``score`` is ``(..., D)`` ratios; ``dsigma`` is a noise step broadcasting as ``(B, 1)``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement staggered_score()")

    def score_entropy(self, log_score: Tensor, sigma: Tensor, x: Tensor, x0: Tensor) -> Tensor:
        """Return the denoising score entropy per token, ``(...)``, non-negative.

        For noised token ``x`` from clean token ``x0`` after noise ``sigma``, with
        ``r_y = p(y | x0) / p(x | x0)`` the true ratios and ``s_y = exp(log_score_y)``, it is
        the sum over the neighbours ``y`` of ``x`` (weighted by ``Q[x, y]``) of
        ``s_y - r_y log s_y + r_y (log r_y - 1)``, which is 0 exactly when ``s = r``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement score_entropy()")

    def reverse_rate(self, i: Tensor, score: Tensor) -> Tensor:
        """Return the reverse-time rates out of ``i``: ``Q[i, y] * score_y`` off the diagonal.

        The entry at ``i`` is set to minus the sum of the others, so each row sums to 0.
        """
        normalized_rate = self.transp_rate(i) * score
        normalized_rate = normalized_rate.scatter(-1, i[..., None], 0.0)
        return normalized_rate.scatter(-1, i[..., None], -normalized_rate.sum(dim=-1, keepdim=True))

    # Whole matrices, for tests and exact computations on small vocabularies.

    def rate_matrix(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """Return Q as a dense ``(D, D)`` matrix with ``Q[y, x]`` the rate from x to y."""
        states = torch.arange(self.dim)
        return self.rate(states).to(dtype).T


class Uniform(Graph):
    """Every token jumps to a uniformly drawn token: ``Q = 1 1^T / N - I``.

    exp(sigma Q) keeps a token with probability ``e^-sigma + (1 - e^-sigma) / N`` and moves it
    to each other token with probability ``(1 - e^-sigma) / N``.
    """

    def rate(self, i: Tensor) -> Tensor:
        n = self.num_tokens
        edge = torch.full((*i.shape, n), 1.0 / n, device=i.device)
        return edge.scatter(-1, i[..., None], -(n - 1) / n)

    def transp_rate(self, i: Tensor) -> Tensor:
        return self.rate(i)  # Q is symmetric

    def transition(self, i: Tensor, sigma: Tensor) -> Tensor:
        n = self.num_tokens
        # -expm1(-sigma) is the move probability, exact for small sigma.
        move = -torch.expm1(-sigma)[..., None]
        trans = (move / n).expand(*i.shape, n).clone()
        stay = 1 - move * (n - 1) / n
        return trans.scatter(-1, i[..., None], stay.expand(*i.shape, 1))

    def transp_transition(self, i: Tensor, sigma: Tensor) -> Tensor:
        return self.transition(i, sigma)  # exp(sigma Q) is symmetric

    def sample_transition(
        self, i: Tensor, sigma: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        move_chance = -torch.expm1(-sigma)
        u = torch.rand(i.shape, device=i.device, generator=generator)
        jump_to = torch.randint(0, self.num_tokens, i.shape, device=i.device, generator=generator)
        return torch.where(u < move_chance, jump_to, i)

    def sample_limit(
        self, *batch_dims: int, device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return torch.randint(0, self.num_tokens, batch_dims, device=device, generator=generator)

    def staggered_score(self, score: Tensor, dsigma: Tensor) -> Tensor:
        # exp(-dsigma Q) = e^dsigma I - expm1(dsigma) 1 1^T / N.
        n = score.shape[-1]
        dsigma = dsigma[..., None]
        return torch.exp(dsigma) * score - torch.expm1(dsigma) / n * score.sum(dim=-1, keepdim=True)

    def score_entropy(self, log_score: Tensor, sigma: Tensor, x: Tensor, x0: Tensor) -> Tensor:
        # NOTE: when x != x0 the true ratio towards x0 is about N / sigma, so in float32 at
        # small sigma the loss carries an absolute error near (N / sigma) * 6e-8 from the
        # rounding of its inputs alone; pass float64 tensors where that matters.
        n = self.num_tokens
        esigm1 = torch.expm1(sigma)
        # True ratio p(y | x0) / p(x0 | x0) for y != x0, written as e / (e + n) rather than
        # 1 - n / (e + n) so that small sigma keeps its digits.
        ratio = esigm1 / (esigm1 + n)
        log_ratio = torch.log(ratio)
        same = x == x0

        score_at_x = log_score.gather(-1, x[..., None]).squeeze(-1)
        score_at_x0 = log_score.gather(-1, x0[..., None]).squeeze(-1)

        # Negative term: sum_y r_y log s_y / N over y != x. If x = x0 every r_y equals
        # `ratio`; otherwise r_y = 1 except r_x0 = 1 + n / esigm1, the only ratio above 1.
        neg_term = log_score.mean(dim=-1) - score_at_x / n
        neg_term = torch.where(same, ratio * neg_term, score_at_x0 / esigm1 + neg_term)

        # Constant: sum_y r_y (log r_y - 1) / N, which makes the loss 0 at the true ratios.
        const = torch.where(
            same,
            (n - 1) / n * ratio * (log_ratio - 1),
            ((-log_ratio - 1) / ratio - (n - 2)) / n,
        )

        # Positive term: sum_y s_y / N over y != x.
        exp_score = log_score.exp()
        pos_term = exp_score.mean(dim=-1) - exp_score.gather(-1, x[..., None]).squeeze(-1) / n
        return pos_term - neg_term + const


class Absorbing(Graph):
    """Every token jumps to a mask state at rate 1: ``Q = e_mask 1^T - I`` on non-mask columns.

    The mask is the last state, ``mask_index = num_tokens``, so ``dim = num_tokens + 1``.
    exp(sigma Q) keeps a token with probability ``e^-sigma`` and masks it otherwise; the mask
    never changes.
    """

    absorb = True

    @property
    def dim(self) -> int:
        return self.num_tokens + 1

    @property
    def mask_index(self) -> int:
        return self.num_tokens

    def rate(self, i: Tensor) -> Tensor:
        mask = torch.full_like(i, self.mask_index)
        return (F.one_hot(mask, self.dim) - F.one_hot(i, self.dim)).float()

    def transp_rate(self, i: Tensor) -> Tensor:
        # Row i of Q: -1 at i for a real token; for the mask row, 1 from every real token.
        edge = -F.one_hot(i, self.dim).float()
        return edge + (i == self.mask_index).float()[..., None]

    def transition(self, i: Tensor, sigma: Tensor) -> Tensor:
        # A real token stays with e^-sigma and is masked with 1 - e^-sigma; the mask stays.
        # (The official graph_lib leaves this operation unimplemented.)
        is_mask = (i == self.mask_index)[..., None]
        stay = torch.exp(-sigma)[..., None]
        masked = -torch.expm1(-sigma)[..., None]
        one_hot_i = F.one_hot(i, self.dim).float()
        one_hot_mask = F.one_hot(torch.full_like(i, self.mask_index), self.dim).float()
        real = stay * one_hot_i + masked * one_hot_mask
        return torch.where(is_mask, one_hot_mask, real)

    def transp_transition(self, i: Tensor, sigma: Tensor) -> Tensor:
        # Row i: a real token i is reached only from itself (e^-sigma); the mask is reached
        # from every real token with 1 - e^-sigma and from itself with 1.
        is_mask = (i == self.mask_index)[..., None]
        stay = torch.exp(-sigma)[..., None]
        masked = -torch.expm1(-sigma)[..., None]
        edge = stay * F.one_hot(i, self.dim).float()
        return edge + torch.where(is_mask, masked, torch.zeros_like(masked))

    def sample_transition(
        self, i: Tensor, sigma: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        move_chance = -torch.expm1(-sigma)
        u = torch.rand(i.shape, device=i.device, generator=generator)
        return torch.where(u < move_chance, torch.full_like(i, self.mask_index), i)

    def sample_limit(
        self, *batch_dims: int, device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return torch.full(batch_dims, self.mask_index, dtype=torch.int64, device=device)

    def staggered_score(self, score: Tensor, dsigma: Tensor) -> Tensor:
        # exp(-dsigma Q) scales real-token entries by e^dsigma and moves
        # -expm1(dsigma) times their sum onto the mask entry.
        scale = torch.exp(dsigma)[..., None]
        real_sum = score[..., :-1].sum(dim=-1)
        staggered = score * scale
        mask_entry = score[..., -1] - torch.expm1(dsigma) * real_sum
        return torch.cat([staggered[..., :-1], mask_entry[..., None]], dim=-1)

    def score_entropy(self, log_score: Tensor, sigma: Tensor, x: Tensor, x0: Tensor) -> Tensor:
        # Only masked positions contribute: from the mask, the true ratio to the clean token
        # x0 is e^-sigma / (1 - e^-sigma) = 1 / expm1(sigma) and 0 to every other token.
        is_mask = x == self.mask_index
        # Zero the log-scores of unmasked positions before exponentiating, so large values
        # there cannot produce inf and then NaN gradients through torch.where.
        log_score = torch.where(is_mask[..., None], log_score, torch.zeros_like(log_score))
        esigm1 = torch.expm1(sigma).expand_as(x)
        ratio = 1 / esigm1

        neg_term = ratio * log_score.gather(-1, x0[..., None]).squeeze(-1)
        pos_term = log_score[..., :-1].exp().sum(dim=-1)
        const = ratio * (-torch.log(esigm1) - 1)
        entropy = pos_term - neg_term + const
        return torch.where(is_mask, entropy, torch.zeros_like(entropy))


_GRAPHS = {"uniform": Uniform, "absorbing": Absorbing, "absorb": Absorbing}


def get_graph(graph_type: str, num_tokens: int) -> Graph:
    """Build a graph by type name: ``uniform`` or ``absorbing`` (``absorb`` as in the official code)."""
    try:
        factory = _GRAPHS[graph_type]
    except KeyError:
        raise ValueError(
            f"unknown graph type {graph_type!r}; choose 'absorbing' or 'uniform'"
        ) from None
    return factory(num_tokens)
