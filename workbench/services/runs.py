"""Run services: launch, stop, resume, status and progress of training runs.

``resume`` creates a new run record that continues from the latest checkpoint of an earlier
run, rather than reopening that run. Each record then describes one process: its own status,
exit code, log and metrics, with ``resumed_from_id`` linking the chain, and the earlier run's
folder is never written to again. The new run trains with the experiment's current config.
Raising ``training.steps`` with ``update_config`` and resuming therefore extends a finished
run, while a change to the model's shape makes the checkpoint fail to load.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.devices import choose_devices, parse_gpu_setting
from workbench.errors import NoCheckpoint, RunActive
from workbench.services.base import ServiceBase
from workbench.services.configs import load_validated
from workbench.store import ACTIVE_STATUSES, Run

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"step_(\d+)\.pt")
FOLLOW_POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class RunProgress:
    """A snapshot of a run for progress displays.

    Losses are in nats per token and ``val_bpt`` in bits per token, each the latest logged
    value or ``None``. ``eta_s`` extrapolates the step rate seen since the follower started.
    """

    run: Run
    step: int
    total_steps: int | None
    train_loss: float | None
    val_loss: float | None
    val_bpt: float | None
    tokens_per_sec: float | None
    eta_s: float | None

    @property
    def finished(self) -> bool:
        return not self.run.status.is_active


class RunServices(ServiceBase):
    """Operations on runs; mixed into ``Workbench``."""

    def launch(self, exp_id: str, *, gpu: str | None = None, resume_from: Run | None = None) -> Run:
        """Validate the experiment's config, choose devices, and start a run in the background.

        ``gpu`` overrides the config's ``gpu`` (``cpu``, ``auto``, ``0`` or ``0,1``) and is kept
        on the run as an override, so the run's config shows what it used.

        Raises:
            InvalidConfig, DeviceError, LaunchFailed.
        """
        overrides = [] if gpu is None else [f"gpu={_gpu_yaml(gpu)}"]
        experiment = self.store.get_experiment(exp_id)
        config = load_validated(text=experiment.config_text, overrides=overrides)
        self.reconcile()
        devices = choose_devices(config.gpu, busy=self._busy_devices())
        run = self.store.create_run(
            exp_id,
            overrides=overrides,
            total_steps=config.training.steps,
            resumed_from_id=resume_from.id if resume_from is not None else None,
            resume_checkpoint=str(latest_checkpoint(resume_from)) if resume_from is not None else None,
        )
        return self.launcher.start(run, devices)

    def resume(self, run_id: int, *, gpu: str | None = None) -> Run:
        """Start a new run of the same experiment from the latest checkpoint of run ``run_id``.

        Raises:
            RunActive: the run is still queued or running.
            NoCheckpoint: the run wrote no checkpoint.
        """
        self.reconcile()
        source = self.store.get_run(run_id)
        if source.status.is_active:
            raise RunActive(f"run {run_id} is still {source.status.value}; stop it first with `workbench stop {run_id}`")
        latest_checkpoint(source)  # raise NoCheckpoint before anything is written
        return self.launch(source.experiment.exp_id, gpu=gpu, resume_from=source)

    def stop(self, run_id: int, grace_s: float | None = None) -> Run:
        """Ask a run to checkpoint and stop, wait for it, and return its final state."""
        return self.launcher.stop(run_id, grace_s)

    def wait(self, run_id: int, timeout: float | None = None) -> Run:
        """Wait until a run's process exits; return the run with its final status."""
        return self.launcher.wait(run_id, timeout)

    def get_run(self, run_id: int) -> Run:
        return self.store.get_run(run_id)

    def status(self, exp_id: str | None = None, active_only: bool = False) -> list[Run]:
        """Reconcile, then return the runs (of one experiment, or only active ones)."""
        self.reconcile()
        return self.store.list_runs(exp_id, statuses=ACTIVE_STATUSES if active_only else None)

    def progress(self, run_id: int) -> RunProgress:
        """Return the run's latest step, losses and throughput."""
        run = self.store.get_run(run_id)
        last = self.store.last_metrics(run_id)
        value = lambda name: last[name][1] if name in last else None  # noqa: E731
        return RunProgress(
            run=run, step=run.last_step, total_steps=run.total_steps, train_loss=value("train_loss"),
            val_loss=value("val_loss"), val_bpt=value("val_bpt"), tokens_per_sec=value("tokens_per_sec"), eta_s=None,
        )  # fmt: skip

    def follow_run(
        self,
        run_id: int,
        *,
        poll_interval_s: float = FOLLOW_POLL_INTERVAL_S,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[RunProgress]:
        """Yield the run's progress on every change until it reaches a final status.

        Each poll reconciles, so a worker killed without reporting ends the iteration too.
        ``should_stop`` lets a caller (a UI worker) end the iteration early.
        """
        first: tuple[int, float] | None = None
        previous = None
        while True:
            self.reconcile()
            progress = self.progress(run_id)
            now = time.monotonic()
            if first is None or progress.step < first[0]:
                first = (progress.step, now)
            progress = _with_eta(progress, first, now)
            key = (progress.step, progress.run.status, progress.train_loss, progress.val_loss)
            if key != previous or progress.finished:
                yield progress
                previous = key
            if progress.finished or (should_stop is not None and should_stop()):
                return
            time.sleep(poll_interval_s)

    def _busy_devices(self) -> set[int]:
        busy: set[int] = set()
        for run in self.store.list_runs(statuses=ACTIVE_STATUSES):
            if run.host == self.launcher.host:
                busy.update(run.devices)
        return busy


def latest_checkpoint(run: Run) -> Path:
    """Return the newest ``step_<N>.pt`` of a run, else its recorded checkpoint path.

    Raises:
        NoCheckpoint: the run has neither.
    """
    folder = Path(run.run_dir) / "checkpoints" if run.run_dir else None
    if folder is not None and folder.is_dir():
        steps = [
            (int(match.group(1)), path)
            for path in folder.iterdir()
            if (match := CHECKPOINT_PATTERN.fullmatch(path.name))
        ]
        if steps:
            return max(steps)[1]
    if run.checkpoint_path and Path(run.checkpoint_path).is_file():
        return Path(run.checkpoint_path)
    raise NoCheckpoint(
        f"run {run.id} has no checkpoint in {folder or 'its run folder'}; start a fresh run with "
        f"`workbench run {run.experiment.exp_id}`"
    )


def _gpu_yaml(gpu: str) -> str:
    """Return a command-line ``--gpu`` value as the YAML of a ``gpu=`` override."""
    parsed = parse_gpu_setting(gpu)
    if isinstance(parsed, str):
        return parsed
    if len(parsed) == 1:
        return str(parsed[0])
    return str(parsed)


def _with_eta(progress: RunProgress, first: tuple[int, float], now: float) -> RunProgress:
    first_step, first_time = first
    done = progress.step - first_step
    if progress.total_steps is None or done <= 0 or progress.finished:
        return progress
    rate = done / (now - first_time)
    eta = max(progress.total_steps - progress.step, 0) / rate
    return RunProgress(**{**progress.__dict__, "eta_s": eta})

