"""Predictors: one reverse-time step of the diffusion, and the final denoising step.

Every predictor implements the same narrow contract, ``update(score_fn, x, t, step_size,
generator=None) -> x``, that moves tokens ``x`` from time ``t`` to ``t - step_size``:

- ``x``: int64 ``(B, L)`` current tokens in ``[0, graph.dim)``.
- ``t``: float ``(B, 1)`` current times in ``(0, 1]``; ``step_size`` a float in ``(0, t]``.
- ``score_fn``: ``(x (B, L) int64, sigma (B,) float) -> (B, L, D)`` concrete scores.
- ``generator``: optional ``torch.Generator`` on ``x.device`` for reproducible draws.
- result: int64 ``(B, L)`` tokens at ``t - step_size``.

Predictors are looked up by name (``get_predictor("analytic")``); ``register_predictor`` adds
new ones. The Euler (tau-leaping) and analytic (Tweedie) steps follow Lou, Meng and Ermon,
arXiv:2310.16834.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import torch
from torch import Tensor

from sedd.categorical import sample_categorical
from sedd.graph import Graph
from sedd.noise import Noise
from sedd.sampling.score_fns import ScoreFn

logger = logging.getLogger(__name__)


class Predictor:
    """Base class of reverse-time steps over a graph and a noise schedule."""

    def __init__(self, graph: Graph, noise: Noise):
        self.graph = graph
        self.noise = noise

    def update(
        self,
        score_fn: ScoreFn,
        x: Tensor,
        t: Tensor,
        step_size: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Move int64 ``(B, L)`` tokens from time ``t`` (float ``(B, 1)``) to ``t - step_size``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement update(); subclass EulerPredictor or "
            "AnalyticPredictor for a working example"
        )


PredictorT = TypeVar("PredictorT", bound=type[Predictor])

_PREDICTORS: dict[str, type[Predictor]] = {}


def register_predictor(name: str) -> Callable[[PredictorT], PredictorT]:
    """Return a class decorator that registers a predictor under ``name``.

    Raises:
        ValueError: if ``name`` is already registered.
    """

    def decorator(cls: PredictorT) -> PredictorT:
        if name in _PREDICTORS:
            raise ValueError(
                f"predictor name {name!r} is already registered to "
                f"{_PREDICTORS[name].__qualname__}; register {cls.__qualname__} under another name"
            )
        _PREDICTORS[name] = cls
        return cls

    return decorator


def get_predictor(name: str) -> type[Predictor]:
    """Return the predictor class registered under ``name``.

    Raises:
        ValueError: if no predictor has that name; the message lists the registered names.
    """
    try:
        return _PREDICTORS[name]
    except KeyError:
        raise ValueError(
            f"unknown predictor {name!r}; registered predictors: {predictor_names()}"
        ) from None


def predictor_names() -> list[str]:
    """Return the registered predictor names, sorted."""
    return sorted(_PREDICTORS)


@register_predictor("euler")
class EulerPredictor(Predictor):
    """Tau-leaping: one Euler step of the reverse CTMC with rates frozen at time ``t``.

    The reverse rate from ``x`` to ``y`` is ``dsigma(t) Q[x, y] s(x, sigma(t))_y``. Each token
    jumps with probability ``step_size`` times that rate, independently of the other tokens.
    """

    def update(
        self,
        score_fn: ScoreFn,
        x: Tensor,
        t: Tensor,
        step_size: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        sigma, dsigma = self.noise(t)  # (B, 1) each
        score = score_fn(x, sigma[:, 0])  # (B, L, D)
        rate = (dsigma * step_size)[..., None] * self.graph.reverse_rate(x, score)  # (B, L, D)

        # When the step overshoots (total jump probability above 1) the stay entry of
        # one_hot(x) + rate turns negative. Clamping it to 0 makes the token jump for sure,
        # and keeps every weight of the categorical draw non-negative.
        stay = rate.gather(-1, x[..., None]).clamp_min(-1.0)
        rate = rate.scatter(-1, x[..., None], stay)
        return self.graph.sample_rate(x, rate, generator)


@register_predictor("analytic")
class AnalyticPredictor(Predictor):
    """Tweedie tau-leaping: draw each token from the one-token posterior that the score implies.

    With ``d = sigma(t) - sigma(t - step_size)``, the token at a position moves to ``y`` with
    probability proportional to ``(exp(-d Q) s)_y * exp(d Q)[x, y]``. The first factor estimates
    ``p_{t - step_size}(y) / p_t(x)`` (``graph.staggered_score``), the second is the forward
    probability of reaching ``x`` from ``y`` (``graph.transp_transition``).
    """

    def update(
        self,
        score_fn: ScoreFn,
        x: Tensor,
        t: Tensor,
        step_size: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        sigma = self.noise(t)[0]  # (B, 1)
        next_sigma = self.noise((t - step_size).clamp_min(0.0))[0]  # (B, 1)
        dsigma = sigma - next_sigma

        score = score_fn(x, sigma[:, 0])  # (B, L, D)
        probs = self.graph.staggered_score(score, dsigma) * self.graph.transp_transition(x, dsigma)
        # exp(-d Q) has negative entries, so an inexact score can give slightly negative weights.
        return sample_categorical(probs.clamp_min(0.0), generator)


@register_predictor("none")
class NonePredictor(Predictor):
    """No move: returns ``x`` unchanged, to run the denoiser alone or to debug the loop."""

    def update(
        self,
        score_fn: ScoreFn,
        x: Tensor,
        t: Tensor,
        step_size: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return x


class Denoiser:
    """Final step from ``t = eps`` to ``t = 0``: the analytic step with all remaining noise.

    ``sigma(eps)`` plays the role of the step ``d`` of ``AnalyticPredictor``. On the absorbing
    graph the mask column is dropped before the draw, so no mask token survives, even where
    the score gives the mask weight.
    """

    def __init__(self, graph: Graph, noise: Noise):
        self.graph = graph
        self.noise = noise

    def update(
        self,
        score_fn: ScoreFn,
        x: Tensor,
        t: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Denoise int64 ``(B, L)`` tokens at time ``t`` (float ``(B, 1)``, usually ``eps``).

        Returns:
            int64 ``(B, L)`` tokens; on the absorbing graph all in ``[0, num_tokens)``.
        """
        sigma = self.noise(t)[0]  # (B, 1)
        score = score_fn(x, sigma[:, 0])  # (B, L, D)
        probs = self.graph.staggered_score(score, sigma) * self.graph.transp_transition(x, sigma)
        if self.graph.absorb:
            probs = probs[..., : self.graph.mask_index]
        # NOTE: a row whose weights are all 0 (an absorbing score of 0 for every real token)
        # yields token 0, because the categorical draw takes the argmax of zeros.
        return sample_categorical(probs.clamp_min(0.0), generator)
