"""AdamW and the learning-rate schedule: linear warmup, then constant, as in SEDD."""

from __future__ import annotations

import torch
from torch import nn

from sedd.config import TrainingConfig


def build_optimizer(model: nn.Module, training: TrainingConfig, device: torch.device) -> torch.optim.AdamW:
    """Build AdamW over the trainable parameters.

    Weight decay applies to matrices and embeddings only. Decaying biases and norm scales
    pulls them towards 0, which no transformer recipe wants. With the SEDD default of 0
    the split changes nothing.
    """
    decayed = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    plain = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decayed, "weight_decay": training.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups,
        lr=training.lr,
        betas=tuple(training.betas),
        eps=training.adam_eps,
        # The fused kernel is the fastest on CUDA; elsewhere the default multi-tensor path is used.
        fused=device.type == "cuda",
    )


def learning_rate(step: int, peak: float, warmup: int) -> float:
    """Return the learning rate for optimizer step ``step`` (0-based).

    It rises linearly to ``peak`` over ``warmup`` steps, ``peak * (step + 1) / warmup``, so
    the first step already moves the weights, then stays at ``peak``. The official SEDD
    code has no decay after the warmup either.
    """
    if warmup <= 0:
        return peak
    return peak * min(1.0, (step + 1) / warmup)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set ``lr`` on every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
