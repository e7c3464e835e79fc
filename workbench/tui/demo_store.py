"""Synthetic experiments, runs and metric curves for trying, testing and benchmarking the UI.

``seed_demo_store`` fills a store without training anything: every value comes from a seeded
random generator and every timestamp from ``now``, so two stores seeded alike show the same
screens (the snapshot tests rely on it). Runs point at host ``demo-host`` and have no process,
so the UI's reconciliation would mark the active ones lost: pass ``reconcile_interval=0`` to
``create_app`` to keep them as seeded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from workbench.store import Experiment, MetricRow, RunStatus, Store

DEMO_NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=timezone.utc)
DEMO_HOST = "demo-host"
STATUS_CYCLE = (
    RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED,
    RunStatus.COMPLETED, RunStatus.QUEUED, RunStatus.DIVERGED, RunStatus.LOST,
)  # fmt: skip
TAG_CYCLE = (["baseline"], ["absorbing", "small"], ["uniform"], ["ablation", "lr"], [])


@dataclass(frozen=True)
class DemoShape:
    """How much to write: experiments, steps per run, and the step interval of validation rows."""

    experiments: int = 8
    steps: int = 200
    log_every: int = 1
    eval_every: int = 20


def demo_config_text(exp_id: str, tags: list[str], lr: float, n_blocks: int) -> str:
    """Return a small valid config: a char-level stdlib model sized for a CPU."""
    tag_list = ", ".join(tags)
    return (
        f"exp_id: {exp_id}\ngpu: cpu\ntags: [{tag_list}]\n"
        "data:\n  corpus: stdlib\n  seq_len: 64\n  max_bytes: 200000\n"
        f"model:\n  hidden_size: 64\n  cond_dim: 32\n  n_blocks: {n_blocks}\n  n_heads: 4\n"
        f"training:\n  batch_size: 16\n  steps: 200\n  lr: {lr}\n  warmup: 20\n  log_every: 1\n  eval_every: 20\n"
    )


def seed_demo_store(
    store: Store, shape: DemoShape = DemoShape(), *, now: datetime = DEMO_NOW, seed: int = 0, prefix: str = "demo"
) -> list[int]:
    """Write ``shape.experiments`` experiments ``<prefix>-0000``, ... with one run each. Return the run ids."""
    rng = random.Random(seed)
    run_ids = []
    for index in range(shape.experiments):
        exp_id = f"{prefix}-{index:04d}"
        tags = TAG_CYCLE[index % len(TAG_CYCLE)]
        lr = [3e-4, 1e-3, 1e-4][index % 3]
        n_blocks = 2 + index % 3
        store.create_experiment(exp_id, demo_config_text(exp_id, tags, lr, n_blocks), tags=tags)
        created = now - timedelta(hours=3 * (shape.experiments - index))
        with store.write() as session:
            session.execute(update(Experiment).where(Experiment.exp_id == exp_id).values(created_at=created, updated_at=created))
        status = STATUS_CYCLE[index % len(STATUS_CYCLE)]
        run_ids.append(_seed_run(store, exp_id, status, shape, rng, now, created, lr, index))
    return run_ids


def _seed_run(
    store: Store, exp_id: str, status: RunStatus, shape: DemoShape, rng: random.Random,
    now: datetime, created: datetime, lr: float, index: int,
) -> int:  # fmt: skip
    run = store.create_run(exp_id, total_steps=shape.steps)
    if status is RunStatus.QUEUED:
        return run.id
    # Active runs stopped part-way. Finished ones ran to the end unless they failed early.
    last_step = shape.steps if status is RunStatus.COMPLETED else shape.steps * (3 + index % 5) // 8
    started = created + timedelta(minutes=5)
    beat = now - timedelta(seconds=5 + index) if status.is_active else started + timedelta(seconds=last_step)
    store.update_run(
        run.id, status=status, host=DEMO_HOST, devices=[] if index % 2 else [index % 4], started_at=started,
        heartbeat_at=beat, last_step=last_step,
        ended_at=None if status.is_active else beat,
        message="loss became NaN at step 75" if status is RunStatus.DIVERGED else None,
        info={"tokens_per_step": 16 * 64},
    )  # fmt: skip
    store.add_metrics(run.id, _curves(shape, last_step, rng, started, lr, index))
    return run.id


def _curves(shape: DemoShape, last_step: int, rng: random.Random, started: datetime, lr: float, index: int) -> list[MetricRow]:
    rows = []
    floor = 1.2 + 0.15 * (index % 4)
    start = started.timestamp()
    for step in range(shape.log_every, last_step + 1, shape.log_every):
        wall = start + step
        progress = step / shape.steps
        train = floor + 3.0 * math.exp(-5 * progress) + rng.gauss(0, 0.05)
        warm = min(1.0, step / 20)
        rows += [
            MetricRow(step, "train_loss", train, wall),
            MetricRow(step, "lr", lr * warm, wall),
            MetricRow(step, "grad_norm", 0.5 + 2.0 * math.exp(-3 * progress) + abs(rng.gauss(0, 0.1)), wall),
            MetricRow(step, "tokens_per_sec", 20000 + 500 * index + rng.gauss(0, 300), wall),
        ]
        if step % shape.eval_every == 0:
            val = floor + 0.05 + 3.0 * math.exp(-5 * progress) + rng.gauss(0, 0.02)
            rows += [MetricRow(step, "val_loss", val, wall), MetricRow(step, "val_bpt", val / math.log(2), wall)]
    return rows


def seed_resumed_run(
    store: Store, parent_id: int, *, from_step: int, last_step: int, now: datetime = DEMO_NOW, seed: int = 0
) -> int:
    """Write a running run that resumed run ``parent_id`` from a checkpoint at ``from_step``. Return its id.

    Its curves continue the parent's curve shape from ``from_step + 1`` to ``last_step``, so the
    monitor can show a resume chain. ``from_step`` may lie before the parent's last step, as
    for a run stopped between checkpoints.
    """
    parent = store.get_run(parent_id)
    exp_id = parent.experiment.exp_id
    # Demo experiments are named <prefix>-<index>, and the index sets the curve's level and lr.
    suffix = exp_id.rsplit("-", 1)[-1]
    index = int(suffix) if suffix.isdigit() else 0
    shape = DemoShape(steps=parent.total_steps or DemoShape.steps)
    lr = [3e-4, 1e-3, 1e-4][index % 3]
    started = now - timedelta(seconds=last_step - from_step + 10)
    run = store.create_run(exp_id, total_steps=shape.steps, resumed_from_id=parent_id)
    store.update_run(
        run.id, status=RunStatus.RUNNING, host=DEMO_HOST, devices=[], started_at=started,
        heartbeat_at=now - timedelta(seconds=5), last_step=last_step, info={"tokens_per_step": 16 * 64},
    )  # fmt: skip
    rows = _curves(shape, last_step, random.Random(seed), started - timedelta(seconds=from_step), lr, index)
    store.add_metrics(run.id, [row for row in rows if row.step > from_step])
    return run.id
