"""Noise schedules: the total noise sigma(t) and its rate d sigma / dt for t in [0, 1].

The forward process at time ``t`` is ``exp(sigma(t) Q)``, so a schedule only has to say how
much noise has accumulated by ``t`` (``total_noise``) and how fast it accumulates
(``rate_noise``). Graphs never look at ``t`` itself, which is why new schedules need no graph
changes.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import torch
from torch import Tensor


class Noise:
    """Base class of noise schedules; calling one with ``t`` returns ``(sigma, dsigma)``.

    Subclasses implement ``total_noise`` and ``rate_noise``. Both take a float tensor ``t`` of
    any shape with values in [0, 1] and return a tensor of the same shape and dtype.
    """

    def total_noise(self, t: Tensor) -> Tensor:
        """Return sigma(t) = integral of the rate from 0 to t."""
        raise NotImplementedError(f"{type(self).__name__} must implement total_noise(t)")

    def rate_noise(self, t: Tensor) -> Tensor:
        """Return d sigma / dt at t."""
        raise NotImplementedError(f"{type(self).__name__} must implement rate_noise(t)")

    def __call__(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.total_noise(t), self.rate_noise(t)


class GeometricNoise(Noise):
    """sigma(t) = sigma_min^(1 - t) * sigma_max^t, geometric interpolation between the two.

    The rate is sigma(t) * log(sigma_max / sigma_min). SEDD uses (1e-4, 20) for the uniform
    graph, so that sigma(1) = 20 leaves essentially no information about the data.
    """

    def __init__(self, sigma_min: float = 1e-4, sigma_max: float = 20.0):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(
                f"geometric noise needs 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, "
                f"sigma_max={sigma_max}; the paper uses sigma_min=1e-4, sigma_max=20"
            )
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def total_noise(self, t: Tensor) -> Tensor:
        return torch.exp(math.log(self.sigma_min) + t * self._log_ratio)

    def rate_noise(self, t: Tensor) -> Tensor:
        return self.total_noise(t) * self._log_ratio

    def __repr__(self) -> str:
        return f"GeometricNoise(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"


class LogLinearNoise(Noise):
    """sigma(t) = -log(1 - (1 - eps) t), so the masking probability 1 - e^-sigma is (1 - eps) t.

    Built for the absorbing graph: the chance a token is masked grows linearly in t, and
    ``eps`` keeps sigma(1) = -log(eps) finite (6.9 for the default 1e-3).
    """

    def __init__(self, eps: float = 1e-3):
        if not 0 < eps < 1:
            raise ValueError(f"log-linear noise needs 0 < eps < 1, got eps={eps}; the paper uses 1e-3")
        self.eps = float(eps)

    def total_noise(self, t: Tensor) -> Tensor:
        return -torch.log1p(-(1 - self.eps) * t)

    def rate_noise(self, t: Tensor) -> Tensor:
        return (1 - self.eps) / (1 - (1 - self.eps) * t)

    def __repr__(self) -> str:
        return f"LogLinearNoise(eps={self.eps})"


_NOISES: dict[str, Callable[..., Noise]] = {
    "geometric": GeometricNoise,
    "loglinear": LogLinearNoise,
}


def get_noise(name: str, **kwargs: float) -> Noise:
    """Build a schedule by name (``geometric`` or ``loglinear``) from its keyword arguments.

    Keyword arguments that the schedule does not take are ignored, so a config section that
    lists every schedule's parameters can be passed whole.
    """
    try:
        factory = _NOISES[name]
    except KeyError:
        raise ValueError(
            f"unknown noise schedule {name!r}; choose one of {sorted(_NOISES)}"
        ) from None
    accepted = inspect.signature(factory).parameters
    return factory(**{key: value for key, value in kwargs.items() if key in accepted})
