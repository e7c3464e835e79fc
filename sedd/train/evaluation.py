"""Validation bound and sample snapshots, both computed with the EMA weights."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch
from torch import nn

from sedd.graph import Graph
from sedd.likelihood import elbo
from sedd.noise import Noise
from sedd.sampling import model_log_score_fn, model_score_fn, sample
from sedd.train.distributed import DistributedContext, all_reduce


def derived_seed(*parts: Any) -> int:
    """Return a 63-bit seed derived from ``parts``, e.g. ``(seed, "noise", step, chunk)``.

    Seeding every random draw from its position (step, chunk, batch) makes it independent of
    how many processes share the work and of whether the run was resumed.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def seeded_generator(device: torch.device, *parts: Any) -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` seeded with ``derived_seed(*parts)``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derived_seed(*parts))
    return generator


@torch.no_grad()
def validation_bound(
    model: nn.Module,
    graph: Graph,
    noise: Noise,
    dataset: Any,
    *,
    num_blocks: int,
    num_times: int,
    batch_size: int,
    seq_len: int,
    seed: int,
    context: DistributedContext,
) -> tuple[float, int]:
    """Estimate the validation loss in nats per token and return it with the block count.

    The bound is ``sedd.likelihood.elbo`` on the first ``num_blocks`` validation blocks (fewer
    when the split is smaller) with ``num_times`` Monte Carlo times per block. Ranks take
    batches round-robin and sum their nats, so every rank returns the same value. Each batch
    draws its times from a generator seeded by ``(seed, batch index)``, so repeated
    evaluations of the same weights give the same number.
    """
    count = min(num_blocks, len(dataset))
    if count == 0:
        return math.nan, 0
    log_score_fn = model_log_score_fn(model)
    total = torch.zeros((), dtype=torch.float64, device=context.device)
    starts = range(0, count, batch_size)
    for batch_index, start in enumerate(starts):
        if batch_index % context.world_size != context.rank:
            continue
        indices = list(range(start, min(start + batch_size, count)))
        x0 = torch.as_tensor(dataset.get_batch(indices), device=context.device)  # (b, L) int64
        generator = seeded_generator(context.device, seed, "validation", batch_index)
        estimate = elbo(log_score_fn, graph, noise, x0, num_times=num_times, generator=generator)
        total += estimate.nats.double().sum()
    all_reduce(total, context)
    return total.item() / (count * seq_len), count


@torch.no_grad()
def sample_texts(
    model: nn.Module,
    graph: Graph,
    noise: Noise,
    tokenizer: Any,
    *,
    num_samples: int,
    length: int,
    sampling: Any,
    seed: int,
    step: int,
    device: torch.device,
    cancel: Any = None,
) -> list[str]:
    """Draw ``num_samples`` unconditional sequences and decode them with ``tokenizer``.

    ``sampling`` is the config's ``diffusion.sampling`` section. Token ids outside the
    tokenizer's vocabulary (the absorbing mask, left only when ``denoise`` is off) are
    dropped before decoding.
    """
    tokens = sample(
        model_score_fn(model),
        graph,
        noise,
        batch_size=num_samples,
        length=length,
        steps=sampling.steps,
        predictor=sampling.predictor,
        eps=sampling.eps,
        denoise=sampling.denoise,
        generator=seeded_generator(device, seed, "snapshot", step),
        device=device,
        cancel=cancel,
    )
    vocab_size = tokenizer.vocab_size
    return [tokenizer.decode([token for token in row if token < vocab_size]) for row in tokens.tolist()]
