"""The training loop: ``train(config, run_dir)`` runs one SEDD training run to its end.

``train`` builds a ``Trainer`` (``sedd.train.setup``) and runs its loop, a sequence of
titled phases: set lr, evaluate and checkpoint, forward/backward with accumulation, clip,
optimizer and EMA step, log, stop. It returns a ``TrainResult`` for the statuses completed,
stopped and diverged. For any exception it reports failed to the tracker and re-raises.
It never calls ``sys.exit``, so the workbench worker and the tests call it directly.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sedd.config import ExperimentConfig
from sedd.losses import score_entropy_loss
from sedd.sampling import SamplingCancelled
from sedd.train.checkpoint import (
    BEST_NAME,
    CHECKPOINT_FORMAT,
    capture_rng_state,
    checkpoint_dir,
    link_atomically,
    prune_checkpoints,
    save_atomically,
)
from sedd.train.distributed import all_reduce, gather_objects, init_distributed, shutdown
from sedd.train.evaluation import sample_texts, seeded_generator, validation_bound
from sedd.train.optim import learning_rate, set_learning_rate
from sedd.train.setup import RunState, set_up_run
from sedd.train.stopping import StopRequest
from sedd.train.tracking import JsonlTracker, NullTracker, Tracker

logger = logging.getLogger(__name__)

# Seconds between heartbeats, so the workbench can tell a slow run from a dead one.
HEARTBEAT_SECONDS = 10.0
LOG_LINE = "step %*d/%d | loss %.4f | lr %.2e | grad norm %.3f | %.1f ms/step | %.0f tokens/s"


@dataclass
class TrainResult:
    """The outcome of ``train``.

    ``status`` is completed, stopped or diverged (a failed run raises instead). ``timings``
    contains the seconds per loop phase on this process, summed over the run. On CUDA the
    device runs asynchronously, so time spent waiting on it lands in whichever phase
    synchronises.
    """

    status: str
    step: int
    run_dir: Path
    message: str | None = None
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    best_val_loss: float | None = None
    last_val_loss: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def train(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    tracker: Tracker | None = None,
    resume: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train the SEDD model that ``config`` describes, writing checkpoints and logs under ``run_dir``.

    Args:
        config: a validated experiment config (``sedd.config.load_config``).
        run_dir: the run directory, created if needed. A fresh run rejects a directory that
            already contains checkpoints, so nothing is overwritten by accident.
        tracker: where rank 0 reports metrics, samples and status; a ``JsonlTracker`` on
            ``run_dir`` by default. ``train`` closes only a tracker it created itself.
        resume: a checkpoint file or a run directory to continue from (its newest
            ``checkpoints/step_<N>.pt``).

    Under ``torchrun`` every process calls ``train`` with the same arguments.
    """
    started = time.monotonic()
    run_dir = Path(run_dir)
    context = init_distributed(config.gpu)
    owns_tracker = tracker is None and context.is_main
    if not context.is_main:
        reporter: Tracker = NullTracker()
    else:
        reporter = tracker if tracker is not None else JsonlTracker(run_dir)
    stop = StopRequest()
    stop.install()
    trainer: Trainer | None = None
    state: RunState | None = None
    try:
        state = set_up_run(config, run_dir, context, resume)
        trainer = Trainer(config, run_dir, state, reporter, stop, started)
        return trainer.run()
    except KeyboardInterrupt:
        step = trainer.step if trainer else 0
        reporter.run_finished("stopped", step, "interrupted by a second SIGINT before the checkpoint")
        raise
    except BaseException as error:
        step = trainer.step if trainer else 0
        reporter.run_finished("failed", step, f"{type(error).__name__}: {error}")
        raise
    finally:
        stop.uninstall()
        if state is not None:
            state.batches.close()
        if owns_tracker:
            reporter.close()
        shutdown(context)


class Trainer:
    """The state of a run between steps, and one method per phase of the loop."""

    def __init__(
        self,
        config: ExperimentConfig,
        run_dir: Path,
        state: RunState,
        tracker: Tracker,
        stop: StopRequest,
        started: float,
    ):
        self.config = config
        self.training = config.training
        self.run_dir = run_dir
        self.state = state
        self.context = state.context
        self.tracker = tracker
        self.stop = stop
        self.started = started
        self.step = state.start_step
        self.stop_reason: str | None = None
        self.timings: dict[str, float] = defaultdict(float)
        self.last_checkpoint_step = state.start_step if state.resumed_from else None
        self.last_eval_step = state.start_step if state.resumed_from else None
        self.last_checkpoint: Path | None = None
        self.best_checkpoint: Path | None = None
        self.last_val_loss: float | None = None
        self.last_heartbeat = 0.0
        # -1 until a step produces a non-finite loss or gradient norm, then that step.
        self.first_bad_step = torch.full((), -1, dtype=torch.int64, device=self.context.device)
        self._reset_window()

    def run(self) -> TrainResult:
        training = self.training
        self.tracker.run_started(self.state.info)
        self._log_start()
        # A signal during start-up (data preparation can take minutes) ends the run at once.
        self.stop_reason = self._check_stop()
        while True:
            # Set lr: linear warmup to the peak, then constant.
            lr = learning_rate(self.step, training.lr, training.warmup)
            set_learning_rate(self.state.optimizer, lr)

            # Evaluate and checkpoint at their intervals and when the run ends. A non-finite
            # loss is looked for first, so a diverged state is never written.
            ending = self.step >= training.steps or self.stop_reason is not None
            if self._sync_point(ending) and self._diverged():
                return self._finish("diverged", self._divergence_message())
            paused = time.perf_counter()
            improved = self._maybe_evaluate(ending)
            self._maybe_snapshot()
            self._maybe_checkpoint(ending, improved)
            self.window_start += time.perf_counter() - paused  # ms/step counts training only
            if ending:
                return self._finish(*self._end_status())

            # Forward/backward over `accum` micro-batches; DDP averages the gradients.
            with self._phase("data"):
                micro_batches = self.state.batches.next_step()
            with self._phase("compute"):
                loss_sum = self._forward_backward(micro_batches)

                # Clip the global gradient norm (with grad_clip 0 the norm is only measured).
                max_norm = training.grad_clip if training.grad_clip > 0 else math.inf
                grad_norm = torch.nn.utils.clip_grad_norm_(self.state.model.parameters(), max_norm)

                # Optimizer and EMA step.
                self.state.optimizer.step()
                self.state.optimizer.zero_grad(set_to_none=True)
            with self._phase("ema"):
                self.state.ema.update(self.state.model)
            self.step += 1

            # Log: `.item()` waits for the device, so values are read only every log_every steps.
            with self._phase("metrics"):
                self._accumulate(loss_sum, grad_norm)
                if self.step % training.log_every == 0:
                    self._log(lr)
                self._maybe_heartbeat()

            # Stop on SIGTERM/SIGINT or the wall-clock limit; the next pass checkpoints.
            with self._phase("stop_check"):
                self.stop_reason = self._check_stop()

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        """Add the block's wall time to ``timings[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] += time.perf_counter() - start

    # Forward and backward.

    def _forward_backward(self, micro_batches: list[torch.Tensor]) -> torch.Tensor:
        """Accumulate gradients over the micro-batches; return the summed loss in nats, a device scalar.

        Each micro-batch is int64 ``(b, L)``. The noise of micro-batch ``m`` on rank ``r`` comes
        from a generator seeded by ``(seed, step, r * accum + m)``: that index is the chunk's
        position in the global batch, so one process with ``accum = W * A`` draws the same
        noise as ``W`` processes with ``accum = A``.
        """
        state = self.state
        accum = len(micro_batches)
        total = torch.zeros((), device=self.context.device)
        for micro, x0 in enumerate(micro_batches):
            last = micro == accum - 1
            # Only the last micro-batch all-reduces gradients under DDP.
            sync = nullcontext() if last or state.ddp is None else state.ddp.no_sync()
            chunk = self.context.rank * accum + micro
            generator = seeded_generator(self.context.device, self.training.seed, "noise", self.step, chunk)
            with sync, self._autocast():
                loss = score_entropy_loss(
                    state.ddp or state.model,
                    state.graph,
                    state.noise,
                    x0,
                    eps=self.config.diffusion.time_eps,
                    antithetic=self.config.diffusion.antithetic,
                    generator=generator,
                )  # (b,) float32 nats per sequence
                (loss.mean() / accum).backward()
            total += loss.detach().sum()
        return total

    def _autocast(self) -> torch.autocast:
        # bf16 autocast on CUDA only; the CPU and MPS train in float32. The loss function
        # forms the score entropy in float32 in either case.
        # NOTE: the CUDA paths (bf16 autocast, fused AdamW, NCCL) have not been run. Compare a
        # short run with a CPU run of the same config before a long one.
        device_type = self.context.device.type
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda")

    # Metrics between log rows, kept on the device so no step waits for it.

    def _reset_window(self) -> None:
        device = self.context.device
        self.window_loss = torch.zeros((), dtype=torch.float64, device=device)
        self.window_grad = torch.zeros((), dtype=torch.float64, device=device)
        self.window_steps = 0
        self.window_start = time.perf_counter()

    def _accumulate(self, loss_sum: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.window_loss += loss_sum.double()
        self.window_grad += grad_norm.double()
        self.window_steps += 1
        bad = ~(torch.isfinite(loss_sum) & torch.isfinite(grad_norm))
        fresh = bad & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(fresh, torch.full_like(self.first_bad_step, self.step), self.first_bad_step)

    def _log(self, lr: float) -> None:
        if self.window_steps == 0:
            return
        elapsed = time.perf_counter() - self.window_start
        totals = torch.stack([self.window_loss, self.window_grad])
        all_reduce(totals, self.context)
        loss_total, grad_total = totals.tolist()
        steps = self.window_steps
        sequences = steps * self.training.batch_size
        train_loss = loss_total / (sequences * self.state.seq_len)
        grad_norm = grad_total / (steps * self.context.world_size)
        tokens_per_sec = sequences * self.state.seq_len / elapsed
        logger.info(
            LOG_LINE, len(str(self.training.steps)), self.step, self.training.steps, train_loss,
            lr, grad_norm, 1000 * elapsed / steps, tokens_per_sec,
        )
        self.tracker.log_metrics(
            self.step,
            {"train_loss": train_loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_sec": tokens_per_sec},
        )
        self._reset_window()

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat >= HEARTBEAT_SECONDS:
            self.tracker.heartbeat(self.step)
            self.last_heartbeat = now

    def _log_start(self) -> None:
        info = self.state.info
        logger.info(
            "device %s (%s), world size %d, %s parameters, %d tokens per step "
            "(%d sequences x %d tokens, %d per micro-batch x %d accumulation steps per process)",
            info["device"], info["dtype"], info["world_size"], f"{info['parameters']:,}",
            info["tokens_per_step"], self.training.batch_size, self.state.seq_len,
            info["micro_batch_size"], self.training.accum,
        )
        logger.info(
            "data: %s, %d training and %d validation blocks, fingerprint %s",
            info["corpus"], info["train_blocks"], info["validation_blocks"], info["data_fingerprint"],
        )
        logger.info("data check, training block 0 decoded: %r", self.state.data_check)
        if self.state.resumed_from:
            logger.info("resumed from %s at step %d", self.state.resumed_from, self.step)

    # Divergence.

    def _sync_point(self, ending: bool) -> bool:
        """True when this pass reads device values anyway (log, eval, checkpoint or end)."""
        training = self.training
        return ending or any(
            every > 0 and self.step % every == 0
            for every in (training.log_every, training.eval_every, training.checkpoint_every, training.snapshot_every)
        )

    def _diverged(self) -> bool:
        flag = self.first_bad_step.clone()
        all_reduce(flag, self.context, op="max")
        return int(flag.item()) >= 0

    def _divergence_message(self) -> str:
        bad_step = int(self.first_bad_step.item())
        where = f"at step {bad_step}" if bad_step >= 0 else "on another rank"
        saved = f"; last good checkpoint: {self.last_checkpoint}" if self.last_checkpoint else ""
        return (
            f"non-finite loss or gradient norm {where} (detected at step {self.step}); "
            f"no checkpoint written after it{saved}. Lower training.lr or raise training.warmup"
        )

    # Evaluation, snapshots and checkpoints.

    def _maybe_evaluate(self, ending: bool) -> bool:
        """Run the validation bound when due; return True when it is the best so far."""
        every = self.training.eval_every
        due = (every > 0 and self.step % every == 0) or (ending and self.stop_reason != "signal")
        if not due or self.last_eval_step == self.step:
            return False
        timer = time.perf_counter()
        state = self.state
        with state.ema.applied_to(state.model):
            val_loss, blocks = validation_bound(
                state.model, state.graph, state.noise, state.validation,
                num_blocks=self.training.eval_blocks, num_times=self.training.eval_times,
                batch_size=state.eval_batch_size, seq_len=state.seq_len,
                seed=self.training.seed, context=self.context,
            )
        self.last_eval_step = self.step
        self.timings["eval"] += time.perf_counter() - timer
        if blocks == 0:
            logger.warning("no validation blocks: the validation split is empty, so val_loss is not reported")
            return False
        val_bpt = val_loss / math.log(2)
        self.last_val_loss = val_loss
        logger.info(
            "step %d | val loss %.4f nats/token (%.4f bits/token) on %d blocks x %d times",
            self.step, val_loss, val_bpt, blocks, self.training.eval_times,
        )
        self.tracker.log_metrics(self.step, {"val_loss": val_loss, "val_bpt": val_bpt})
        improved = math.isfinite(val_loss) and (state.best_val_loss is None or val_loss < state.best_val_loss)
        if improved:
            state.best_val_loss = val_loss
        return improved

    def _maybe_snapshot(self) -> None:
        every = self.training.snapshot_every
        if every == 0 or self.step % every or self.step in (0, self.state.start_step) or self.stop_reason:
            return
        if not self.context.is_main:
            return
        timer = time.perf_counter()
        state = self.state
        try:
            with state.ema.applied_to(state.model):
                texts = sample_texts(
                    state.model, state.graph, state.noise, state.tokenizer,
                    num_samples=self.training.snapshot_samples, length=state.seq_len,
                    sampling=self.config.diffusion.sampling, seed=self.training.seed,
                    step=self.step, device=self.context.device, cancel=lambda: self.stop.requested,
                )
        except SamplingCancelled:
            logger.info("snapshot at step %d cancelled by the stop request", self.step)
            return
        for index, text in enumerate(texts):
            logger.info("sample %d at step %d: %r", index, self.step, text[:200])
        self.tracker.log_samples(self.step, "unconditional", texts)
        self.timings["snapshot"] += time.perf_counter() - timer

    def _maybe_checkpoint(self, ending: bool, improved: bool) -> None:
        every = self.training.checkpoint_every
        periodic = every > 0 and self.step > 0 and self.step % every == 0
        write_step = (ending or periodic) and self.last_checkpoint_step != self.step
        if not (write_step or improved):
            return
        timer = time.perf_counter()
        payload = self._checkpoint_payload()  # collective: every rank takes part
        if self.context.is_main:
            self._write_checkpoint(payload, write_step, improved)
        if write_step:
            self.last_checkpoint_step = self.step
        self.timings["checkpoint"] += time.perf_counter() - timer

    def _checkpoint_payload(self) -> dict:
        state = self.state
        rng = gather_objects(capture_rng_state(), self.context)
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "ema": state.ema.state_dict(),
            "rng": rng,
            "sampler": state.batches.state_dict(),
            "best_val_loss": state.best_val_loss,
            "val_loss": self.last_val_loss if self.last_eval_step == self.step else None,
            "world_size": self.context.world_size,
            "config": state.config_dict,
            "model_config": state.model_config.to_dict(),
            "data_fingerprint": state.info["data_fingerprint"],
        }

    def _write_checkpoint(self, payload: dict, write_step: bool, improved: bool) -> None:
        """Write ``step_<N>.pt`` and/or ``best.pt`` and report each file to the tracker.

        ``best.pt`` is reported first, so the tracker's latest checkpoint ends as the step
        file, which pruning may delete later, while its best checkpoint stays ``best.pt``.
        """
        directory = checkpoint_dir(self.run_dir)
        best_path = directory / BEST_NAME
        path = directory / f"step_{self.step}.pt"
        if write_step:
            save_atomically(payload, path)
        if improved:
            if write_step:
                link_atomically(path, best_path)
            else:
                save_atomically(payload, best_path)
            self.best_checkpoint = best_path
            logger.info("step %d | best checkpoint %s", self.step, best_path)
            self.tracker.checkpoint_saved(self.step, str(best_path), True)
        if write_step:
            prune_checkpoints(directory, self.training.keep_checkpoints)
            self._save_model_folder()
            self.last_checkpoint = path
            logger.info("step %d | checkpoint %s", self.step, path)
            self.tracker.checkpoint_saved(self.step, str(path), False)

    def _save_model_folder(self) -> None:
        from sedd.model import save_pretrained

        with self.state.ema.applied_to(self.state.model):
            save_pretrained(self.state.model, self.run_dir / "model")

    # Stopping.

    def _check_stop(self) -> str | None:
        """Return "signal", "time" or None. Under DDP every rank returns the same value."""
        limit = self.training.max_minutes
        out_of_time = limit is not None and time.monotonic() - self.started >= 60 * limit
        signal_flag, time_flag = float(self.stop.requested), float(out_of_time)
        if self.context.distributed:
            # One small all-reduce per step, so that all ranks stop at the same step.
            flags = torch.tensor([signal_flag, time_flag], device=self.context.device)
            all_reduce(flags, self.context, op="max")
            signal_flag, time_flag = flags.tolist()
        if signal_flag:
            return "signal"
        return "time" if time_flag else None

    def _end_status(self) -> tuple[str, str | None]:
        if self.stop_reason == "signal":
            signal_name = self.stop.signal_name or "a stop request"
            return "stopped", f"stopped by {signal_name} at step {self.step}"
        if self.stop_reason == "time":
            return "completed", (
                f"reached max_minutes={self.training.max_minutes} at step {self.step} of {self.training.steps}"
            )
        return "completed", None

    def _finish(self, status: str, message: str | None) -> TrainResult:
        if status == "diverged":
            logger.error("run diverged: %s", message)
        else:
            logger.info("run %s at step %d%s", status, self.step, f": {message}" if message else "")
        self.tracker.heartbeat(self.step)
        self.tracker.run_finished(status, self.step, message)
        return TrainResult(
            status=status,
            step=self.step,
            run_dir=self.run_dir,
            message=message,
            last_checkpoint=self.last_checkpoint,
            best_checkpoint=self.best_checkpoint,
            best_val_loss=self.state.best_val_loss,
            last_val_loss=self.last_val_loss,
            timings=dict(self.timings),
        )
