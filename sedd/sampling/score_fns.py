"""Score functions: the callables that the samplers and the likelihood bound query.

A score function maps int64 tokens ``x`` of shape ``(B, L)`` and float total noise ``sigma``
of shape ``(B,)`` to the concrete scores ``p_sigma(y) / p_sigma(x)``, float ``(B, L, D)``, for
every single-token change ``y`` of ``x`` (``D = graph.dim``). A log-score function returns
their logarithms. Any callable with this signature works, for example exact scores computed
from a known distribution in tests.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

ScoreFn = Callable[[Tensor, Tensor], Tensor]
LogScoreFn = Callable[[Tensor, Tensor], Tensor]


def model_log_score_fn(model: nn.Module) -> LogScoreFn:
    """Wrap a score network as a log-score function that runs in eval mode without gradients.

    Each call switches the model to eval mode (dropout off) and restores its previous mode
    afterwards, so a training loop may sample between steps. ``sigma`` is cast to float32,
    the dtype the network's noise embedding expects.

    Args:
        model: a module mapping ``(x: int64 (B, L), sigma: float (B,))`` to float32
            ``(B, L, D)`` log-scores, such as ``sedd.model.SEDD``.

    Returns:
        A function ``(x, sigma) -> float32 (B, L, D)`` log-scores.
    """

    def log_score_fn(x: Tensor, sigma: Tensor) -> Tensor:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(x, sigma.to(torch.float32)).float()
        finally:
            model.train(was_training)

    return log_score_fn


def model_score_fn(model: nn.Module) -> ScoreFn:
    """Wrap a score network as a score function: ``exp`` of its log-scores, float32 ``(B, L, D)``.

    The mode handling and the sigma cast are those of ``model_log_score_fn``.
    """
    log_score_fn = model_log_score_fn(model)

    def score_fn(x: Tensor, sigma: Tensor) -> Tensor:
        return log_score_fn(x, sigma).exp()

    return score_fn
