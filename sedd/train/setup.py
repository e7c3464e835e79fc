"""Start-up of a training run: data, model, optimizer, EMA and batches, fresh or from a checkpoint."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sedd.config import ExperimentConfig, config_to_dict, config_to_yaml
from sedd.graph import Graph, get_graph
from sedd.model import SEDD, ModelConfig
from sedd.noise import Noise, get_noise
from sedd.train.batches import BatchStream
from sedd.train.checkpoint import (
    checkpoint_dir,
    load_checkpoint,
    resolve_resume_path,
    restore_rng_state,
    step_checkpoints,
)
from sedd.train.distributed import DistributedContext, barrier
from sedd.train.ema import EMA
from sedd.train.optim import build_optimizer
from sedd.train.tracking import write_text_atomically

logger = logging.getLogger(__name__)

# Characters of the decoded training block logged at start-up as a data check.
DATA_CHECK_CHARS = 300


class TrainingSetupError(ValueError):
    """A problem with the run's arguments that the user can fix before training starts."""


@dataclass
class RunState:
    """Everything the loop needs, built once at start-up."""

    context: DistributedContext
    model: SEDD  # the bare model: EMA, checkpoints and evaluation use it
    ddp: DistributedDataParallel | None  # the wrapper the loss calls under torchrun
    model_config: ModelConfig
    optimizer: torch.optim.Optimizer
    ema: EMA
    graph: Graph
    noise: Noise
    tokenizer: Any
    validation: Any
    batches: BatchStream
    seq_len: int
    eval_batch_size: int
    start_step: int
    resumed_from: Path | None
    best_val_loss: float | None
    config_dict: dict[str, Any]
    info: dict[str, Any]
    data_check: str


def micro_batch_size(batch_size: int, world_size: int, accum: int) -> int:
    """Return the sequences each process takes per micro-step, ``batch_size / (world_size * accum)``."""
    shards = world_size * accum
    if batch_size % shards:
        raise TrainingSetupError(
            f"training.batch_size={batch_size} is not divisible by world size {world_size} x "
            f"training.accum={accum} = {shards}; every process takes the same share of the global "
            f"batch, so choose a batch_size that is a multiple of {shards}"
        )
    return batch_size // shards


def set_up_run(
    config: ExperimentConfig,
    run_dir: Path,
    context: DistributedContext,
    resume: str | os.PathLike[str] | None,
) -> RunState:
    """Build the run's state on ``context.device``, restoring a checkpoint when ``resume`` is set."""
    training = config.training
    micro = micro_batch_size(training.batch_size, context.world_size, training.accum)
    checkpoint_path = _checkpoint_to_resume(run_dir, resume)
    bundle = _prepare_data(config, run_dir, context, checkpoint_path)
    seq_len = config.data.seq_len

    # Every rank builds the same initial weights (DDP would also broadcast rank 0's).
    seed_everything(training.seed)
    model_config = build_model_config(config, bundle.tokenizer.vocab_size)
    model = SEDD(model_config).to(context.device)
    ddp = _wrap_ddp(model, context)
    optimizer = build_optimizer(model, training, context.device)
    ema = EMA(model, training.ema)
    batches = BatchStream(
        bundle.train, micro_batch=micro, accum=training.accum, seed=training.seed,
        context=context, num_workers=training.num_workers,
    )
    noise_cfg = config.diffusion.noise
    noise = get_noise(noise_cfg.type, eps=noise_cfg.eps, sigma_min=noise_cfg.sigma_min, sigma_max=noise_cfg.sigma_max)
    graph = get_graph(config.diffusion.graph_type, bundle.tokenizer.vocab_size)

    start_step, best_val_loss = 0, None
    # Dropout draws from the global generator; give each rank its own stream.
    torch.manual_seed(training.seed + 1 + context.rank)
    if checkpoint_path is not None:
        start_step, best_val_loss = _restore(checkpoint_path, model, optimizer, ema, batches, model_config, context)

    if context.is_main:
        _write_run_files(config, run_dir, bundle.tokenizer)
    barrier(context)
    return RunState(
        context=context, model=model, ddp=ddp, model_config=model_config, optimizer=optimizer,
        ema=ema, graph=graph, noise=noise, tokenizer=bundle.tokenizer, validation=bundle.validation,
        batches=batches, seq_len=seq_len, eval_batch_size=max(1, micro // training.eval_times),
        start_step=start_step, resumed_from=checkpoint_path, best_val_loss=best_val_loss,
        config_dict=config_to_dict(config),
        info=_run_info(config, context, model, bundle, micro, checkpoint_path, start_step),
        data_check=_decode_first_block(bundle),
    )


def build_model_config(config: ExperimentConfig, num_tokens: int) -> ModelConfig:
    """Return the model's hyperparameters: the ``model`` section, the graph, the block length."""
    return ModelConfig(
        num_tokens=num_tokens,
        graph=config.diffusion.graph_type,
        hidden_size=config.model.hidden_size,
        cond_dim=config.model.cond_dim,
        n_blocks=config.model.n_blocks,
        n_heads=config.model.n_heads,
        length=config.data.seq_len,
        dropout=config.model.dropout,
        scale_by_sigma=config.model.scale_by_sigma,
    )


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CUDA included)."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _checkpoint_to_resume(run_dir: Path, resume: str | os.PathLike[str] | None) -> Path | None:
    if resume is not None:
        try:
            return resolve_resume_path(resume)
        except FileNotFoundError as error:
            raise TrainingSetupError(str(error)) from None
    existing = step_checkpoints(checkpoint_dir(run_dir))
    if existing:
        raise TrainingSetupError(
            f"run directory {str(run_dir)!r} already has checkpoints (newest: {existing[-1][1].name}); "
            "pass resume=<run dir or checkpoint> (--resume) to continue it, or choose a new run directory"
        )
    return None


def _prepare_data(
    config: ExperimentConfig, run_dir: Path, context: DistributedContext, checkpoint_path: Path | None
) -> Any:
    from sedd.data import has_saved_tokenizer, prepare_data

    # prepare_data saves a new tokenizer into run_dir/tokenizer. A resumed run loads the one
    # beside its checkpoints instead, because a retrained BPE vocabulary could number the
    # tokens differently.
    tokenizer_dir = run_dir / "tokenizer"
    if checkpoint_path is not None:
        saved = checkpoint_path.resolve().parent.parent / "tokenizer"
        if has_saved_tokenizer(saved):
            tokenizer_dir = saved
    # Rank 0 fills the tokenized-data cache and saves the tokenizer first; the other ranks
    # then read both.
    if not context.is_main:
        barrier(context)
    bundle = prepare_data(config.data, tokenizer_dir=tokenizer_dir)
    if context.is_main:
        barrier(context)
    return bundle


def _wrap_ddp(model: nn.Module, context: DistributedContext) -> DistributedDataParallel | None:
    if not context.distributed:
        return None
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _restore(
    path: Path,
    model: SEDD,
    optimizer: torch.optim.Optimizer,
    ema: EMA,
    batches: BatchStream,
    model_config: ModelConfig,
    context: DistributedContext,
) -> tuple[int, float | None]:
    checkpoint = load_checkpoint(path)
    saved_config = ModelConfig(**checkpoint["model_config"])
    if saved_config != model_config:
        changed = {
            key: (value, getattr(model_config, key))
            for key, value in saved_config.to_dict().items()
            if getattr(model_config, key) != value
        }
        raise TrainingSetupError(
            f"cannot resume from {path}: the model differs from the checkpoint's "
            f"(key: (checkpoint, now) = {changed}); resume with the config the run started with"
        )
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    ema.load_state_dict(checkpoint["ema"])
    # The sampler position counts blocks of the global stream, so it carries over to any
    # number of processes. The global generators (dropout) are per rank and carry over only
    # to the same number of processes.
    batches.load_state_dict(checkpoint["sampler"])
    if checkpoint["world_size"] == context.world_size:
        restore_rng_state(checkpoint["rng"][context.rank])
    else:
        logger.warning(
            "checkpoint %s was written by %d processes and this run has %d: the global random "
            "generators (dropout) restart from the seed instead of their saved states",
            path, checkpoint["world_size"], context.world_size,
        )
    return int(checkpoint["step"]), checkpoint.get("best_val_loss")


def _write_run_files(config: ExperimentConfig, run_dir: Path, tokenizer: Any) -> None:
    from sedd.data import has_saved_tokenizer

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(run_dir / "config.yaml", config_to_yaml(config))
    if not has_saved_tokenizer(run_dir / "tokenizer"):
        tokenizer.save(run_dir / "tokenizer")


def _run_info(
    config: ExperimentConfig,
    context: DistributedContext,
    model: SEDD,
    bundle: Any,
    micro: int,
    checkpoint_path: Path | None,
    start_step: int,
) -> dict[str, Any]:
    from sedd.data.hashing import fingerprint_digest

    return {
        "exp_id": config.exp_id,
        "parameters": sum(param.numel() for param in model.parameters()),
        "device": str(context.device),
        "dtype": "bfloat16 autocast" if context.device.type == "cuda" else "float32",
        "world_size": context.world_size,
        "backend": context.backend,
        "tokens_per_step": config.training.batch_size * config.data.seq_len,
        "micro_batch_size": micro,
        "vocab_size": bundle.tokenizer.vocab_size,
        "corpus": config.data.corpus,
        "data_fingerprint": fingerprint_digest(bundle.fingerprint),
        "data": bundle.fingerprint,
        "train_blocks": len(bundle.train),
        "validation_blocks": len(bundle.validation),
        "resumed_from": str(checkpoint_path) if checkpoint_path else None,
        "start_step": start_step,
    }


def _decode_first_block(bundle: Any) -> str:
    if len(bundle.train) == 0:
        return ""
    tokens = bundle.train.get_batch([0])[0]
    return bundle.tokenizer.decode([int(token) for token in tokens])[:DATA_CHECK_CHARS]
