"""The sampling loop: from the limiting distribution at t = 1 to clean tokens at t = 0."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

from sedd.graph import Graph
from sedd.noise import Noise
from sedd.sampling.predictors import Denoiser, get_predictor
from sedd.sampling.score_fns import ScoreFn

if TYPE_CHECKING:
    from sedd.infill import InfillTemplate

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
CancelCheck = threading.Event | Callable[[], bool]


class SamplingCancelled(RuntimeError):
    """Raised by ``sample`` when its cancellation check fires before a step."""

    def __init__(self, step: int, steps: int):
        super().__init__(f"sampling cancelled before step {step + 1} of {steps}")
        self.step = step
        self.steps = steps


def sample(
    score_fn: ScoreFn,
    graph: Graph,
    noise: Noise,
    *,
    batch_size: int,
    length: int,
    steps: int,
    predictor: str = "analytic",
    eps: float = 1e-5,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    template: InfillTemplate | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelCheck | None = None,
) -> Tensor:
    """Draw sequences by running a predictor backwards over ``steps`` uniform times.

    The loop starts from ``graph.sample_limit`` and applies the predictor at the times
    ``1, 1 - dt, ..., eps + dt`` with ``dt = (1 - eps) / steps``, then (with ``denoise``) the
    ``Denoiser`` from ``t = eps`` to 0. The loop body launches device work only: it reads no
    tensor value on the host, so the sole host-device synchronisation is the caller's read
    of the result.

    Args:
        score_fn: ``(x int64 (B, L), sigma float (B,)) -> float (B, L, D)`` concrete scores,
            for example ``model_score_fn(model)``.
        graph, noise: the forward process the scores belong to.
        batch_size, length: B and L of the result.
        steps: number of predictor steps, at least 1.
        predictor: a registered predictor name (``"analytic"``, ``"euler"``, ``"none"``).
        eps: last time of the predictor grid, in (0, 1).
        denoise: run the final denoising step; on the absorbing graph it removes every mask.
        generator: ``torch.Generator`` on ``device``; the same seed gives the same tokens.
        device: device of the tokens and of every tensor the loop creates.
        template: fixed tokens written into ``x`` at the start, after every step and after
            denoising (conditional sampling, see ``sedd.infill``).
        progress: called as ``progress(step, steps)`` after each predictor step.
        cancel: a ``threading.Event`` or a callable returning True to stop; checked before
            each step.

    Returns:
        int64 ``(batch_size, length)`` tokens on ``device``.

    Raises:
        ValueError: for invalid sizes, ``eps``, predictor name, generator device or template.
        SamplingCancelled: when ``cancel`` fires.
    """
    device = torch.device(device)
    _check_arguments(batch_size, length, steps, eps, generator, device)
    step_fn = get_predictor(predictor)(graph, noise)
    project = _projection(template, graph, length, device)
    logger.debug(
        "sampling %d x %d tokens: predictor=%s steps=%d eps=%g denoise=%s device=%s",
        batch_size, length, predictor, steps, eps, denoise, device,
    )

    x = project(graph.sample_limit(batch_size, length, device=device, generator=generator))
    times = torch.linspace(1.0, eps, steps + 1, device=device)  # (steps + 1,)
    step_size = (1.0 - eps) / steps

    for step in range(steps):
        if _cancel_requested(cancel):
            raise SamplingCancelled(step, steps)
        t = times[step].expand(batch_size, 1)  # (B, 1), indexing keeps it on the device
        x = project(step_fn.update(score_fn, x, t, step_size, generator))
        if progress is not None:
            progress(step + 1, steps)

    if denoise:
        t = times[-1].expand(batch_size, 1)
        x = project(Denoiser(graph, noise).update(score_fn, x, t, generator))
    return x


def _check_arguments(
    batch_size: int,
    length: int,
    steps: int,
    eps: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> None:
    for name, value in (("batch_size", batch_size), ("length", length), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}; the usual value is 1e-5")
    if generator is not None and not _same_device(generator.device, device):
        raise ValueError(
            f"the generator is on {generator.device} but sampling runs on {device}; "
            f"create it with torch.Generator(device={str(device)!r})"
        )


def _same_device(a: torch.device, b: torch.device) -> bool:
    # "cuda" and "cuda:0" name the same device when the index is left out.
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def _projection(
    template: InfillTemplate | None, graph: Graph, length: int, device: torch.device
) -> Callable[[Tensor], Tensor]:
    if template is None:
        return lambda x: x
    template.check_graph(graph)
    if template.length != length:
        raise ValueError(
            f"the template has length {template.length} but length={length} was requested; "
            "build the template for the sequence length you sample"
        )
    # Moved once here, so that the loop makes no host-to-device copy.
    return template.to(device).apply


def _cancel_requested(cancel: CancelCheck | None) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
