"""Exponential moving average (EMA) of a model's parameters, used for evaluation and sampling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """A float32 shadow copy of every trainable parameter, updated after each optimizer step.

    The update is ``shadow <- decay_n * shadow + (1 - decay_n) * param`` with
    ``decay_n = min(decay, (1 + n) / (10 + n))`` for the ``n``-th update. Without the ramp a
    decay of 0.9999 would keep the random initial weights in the average for tens of
    thousands of steps, which ruins short runs. The official SEDD training uses the same ramp.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}; SEDD uses 0.9999")
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {
            name: param.detach().float().clone()
            for name, param in model.named_parameters()
            if param.requires_grad
        }

    def current_decay(self) -> float:
        """Return the decay the next update uses."""
        count = self.num_updates + 1
        return min(self.decay, (1 + count) / (10 + count))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards the model's current parameters."""
        weight = 1.0 - self.current_decay()
        params = self._matching_parameters(model)
        shadows = list(self.shadow.values())
        sources = [param.detach().float() for param in params]
        torch._foreach_lerp_(shadows, sources, weight)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's trainable parameters with the averages."""
        for shadow, param in zip(self.shadow.values(), self._matching_parameters(model)):
            param.copy_(shadow)

    @contextmanager
    def applied_to(self, model: nn.Module) -> Iterator[nn.Module]:
        """Swap the averages into ``model`` for the ``with`` block, then restore its weights.

        The weights are restored even when the block raises.
        """
        params = self._matching_parameters(model)
        saved = [param.detach().clone() for param in params]
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for param, original in zip(params, saved):
                    param.copy_(original)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise ValueError(
                f"EMA state does not match the model: parameters {sorted(missing)[:5]} differ; "
                "resume with the same model config"
            )
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)

    def _matching_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        named = dict(model.named_parameters())
        try:
            return [named[name] for name in self.shadow]
        except KeyError as error:
            raise ValueError(
                f"the model has no parameter {error.args[0]!r} that this EMA tracks; pass the "
                "model the EMA was built from (unwrapped from DistributedDataParallel)"
            ) from None
