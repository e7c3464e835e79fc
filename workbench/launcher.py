"""Supervised training processes: start, stop and exit codes of runs.

Each run executes ``python -m workbench.worker --db URL --run-id N`` in its own process
session (``start_new_session=True``). A stop signal then reaches the worker and every process
it started (``torchrun`` ranks, data loader workers) through one process group, and a Ctrl-C
in the launching terminal does not reach the run. Output goes to ``<run_dir>/run.log`` where
``run_dir`` is ``<checkpoint_root>/<exp_id>/<run_id>``. With more than one GPU the worker runs
under ``python -m torch.distributed.run --standalone --nproc_per_node N``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from workbench.devices import cuda_visible_devices
from workbench.errors import LaunchFailed, RemoteRun, RunNotActive
from workbench.reconcile import ProcessState, process_state, reconcile_runs, this_host
from workbench.store import Run, RunStatus, Store
from workbench.store.engine import DB_ENV_VAR, is_in_memory

logger = logging.getLogger(__name__)

WORKER_MODULE = "workbench.worker"
RUN_LOG_NAME = "run.log"
CHECKPOINT_ROOT_ENV_VAR = "WORKBENCH_CHECKPOINTS"

# Seconds a run has to checkpoint and exit after SIGTERM before it gets SIGKILL.
DEFAULT_STOP_GRACE_S = 60.0
POLL_INTERVAL_S = 0.1


class Launcher:
    """Starts and stops the runs of one store from this process.

    Args:
        store: the experiment store the runs live in.
        checkpoint_root: the folder run folders go under; ``$WORKBENCH_CHECKPOINTS``, else
            ``<store.workdir>/checkpoints``, by default.
        worker_command: the command a run executes, before ``--db URL --run-id N``; the
            default is this interpreter with ``-m workbench.worker``. Tests pass stand-ins.
        stop_grace_s: seconds between SIGTERM and SIGKILL when stopping a run.
    """

    def __init__(
        self,
        store: Store,
        *,
        checkpoint_root: str | os.PathLike[str] | None = None,
        worker_command: Sequence[str] | None = None,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
    ) -> None:
        self.store = store
        if checkpoint_root is None:
            checkpoint_root = os.environ.get(CHECKPOINT_ROOT_ENV_VAR) or store.workdir / "checkpoints"
        root = Path(checkpoint_root)
        self.checkpoint_root = root.expanduser().resolve()
        self.worker_command = list(worker_command) if worker_command else None
        self.stop_grace_s = stop_grace_s
        self.host = this_host()
        # Processes this Launcher started; only their parent can learn their exit codes.
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def run_dir(self, exp_id: str, run_id: int) -> Path:
        return self.checkpoint_root / exp_id / str(run_id)

    def command(self, run_id: int, devices: Sequence[int]) -> list[str]:
        """Return the argument list that executes run ``run_id`` on ``devices``."""
        arguments = ["--run-id", str(run_id)]
        if self.store.url.password is None:
            arguments = ["--db", self.store.url_text, *arguments]
        if self.worker_command is not None:
            return [*self.worker_command, *arguments]
        if len(devices) > 1:
            # NOTE: the tests run on CPU only, so this torchrun path is checked as a command, never run.
            return [
                sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", str(len(devices)), "-m", WORKER_MODULE, *arguments,
            ]  # fmt: skip
        return [sys.executable, "-m", WORKER_MODULE, *arguments]

    def environment(self, devices: Sequence[int]) -> dict[str, str]:
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices(devices)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        # Unbuffered output makes run.log, and so `workbench logs -f`, current.
        env["PYTHONUNBUFFERED"] = "1"
        if self.store.url.password is not None:
            # A password on the command line would be visible to every user in `ps`.
            env[DB_ENV_VAR] = self.store.url.render_as_string(hide_password=False)
        return env

    def start(self, run: Run, devices: Sequence[int]) -> Run:
        """Start the worker of a queued run and record its pid, start time, host and devices.

        Raises:
            LaunchFailed: the process could not be started; the run is marked failed.
        """
        if is_in_memory(self.store.url):
            self.store.finish_run(run.id, RunStatus.FAILED, message="in-memory store")
            raise LaunchFailed(
                f"run {run.id}: a worker process cannot open an in-memory store; use a database file with --db"
            )
        run_dir = self.run_dir(run.experiment.exp_id, run.id)
        run_dir.mkdir(parents=True, exist_ok=True)
        command = self.command(run.id, devices)
        logger.info("starting run %d on %s: %s", run.id, _describe(devices), " ".join(command))
        try:
            with open(run_dir / RUN_LOG_NAME, "ab") as log:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.store.workdir,
                    env=self.environment(devices),
                    start_new_session=True,
                )
        except OSError as error:
            message = f"could not start {command[0]}: {error}"
            self.store.finish_run(run.id, RunStatus.FAILED, message=message)
            raise LaunchFailed(f"run {run.id}: {message}") from error

        self._processes[run.id] = process
        try:
            started_at = psutil.Process(process.pid).create_time()
        except psutil.NoSuchProcess:
            started_at = None  # exited already; reconciliation reads the exit code
        return self.store.update_run(
            run.id, run_dir=str(run_dir), host=self.host, devices=list(devices), pid=process.pid,
            process_started_at=started_at,
        )  # fmt: skip

    def exit_code(self, run_id: int) -> int | None:
        """Return the exit code of a run this Launcher started, or ``None`` while it runs or
        when another process started it. Signals give negative codes (``-9`` for SIGKILL)."""
        process = self._processes.get(run_id)
        return None if process is None else process.poll()

    def wait(self, run_id: int, timeout: float | None = None) -> Run:
        """Wait until the run's process exits (or ``timeout`` seconds pass), reconcile, and
        return the run."""
        self._wait_for_exit(self.store.get_run(run_id), timeout)
        self.reconcile()
        return self.store.get_run(run_id)

    def _wait_for_exit(self, run: Run, timeout: float | None) -> bool:
        """Poll until the run's process has exited; return False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while run.pid is not None and self.is_alive(run):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL_S)
        return True

    def is_alive(self, run: Run) -> bool:
        """Return whether the run's own process still runs on this host."""
        if run.id in self._processes:
            return self._processes[run.id].poll() is None
        return run.pid is not None and process_state(run.pid, run.process_started_at) is ProcessState.ALIVE

    def reconcile(self) -> list[Run]:
        """Reconcile the store, with exit codes of the processes this Launcher started."""
        return reconcile_runs(self.store, exit_code_of=self.exit_code, host=self.host)

    def stop(self, run_id: int, grace_s: float | None = None) -> Run:
        """Stop a run: SIGTERM to its process group, then SIGKILL after ``grace_s`` seconds.

        The trainer responds to SIGTERM by finishing its step, writing a checkpoint and reporting
        ``stopped``. A run that needed SIGKILL is marked ``stopped`` here with a message saying
        so, because its last checkpoint may be older than its last step.

        Raises:
            RunNotActive: the run already has a final status.
            RemoteRun: the run's process lives on another host.
        """
        grace_s = self.stop_grace_s if grace_s is None else grace_s
        run = self.store.get_run(run_id)
        if not run.status.is_active:
            raise RunNotActive(f"run {run_id} is already {run.status.value}; there is nothing to stop")
        if run.host is not None and run.host != self.host:
            raise RemoteRun(f"run {run_id} runs on host {run.host}; run `workbench stop {run_id}` there")
        if run.pid is None:
            # A worker that starts later finds the run final and exits at once.
            self.store.finish_run(run_id, RunStatus.STOPPED, only_if_active=True, message="stopped before its process started")
            return self.store.get_run(run_id)
        if not self.is_alive(run):
            self.reconcile()
            return self.store.get_run(run_id)

        logger.info("stopping run %d: SIGTERM to process group %d", run_id, run.pid)
        _signal_group(run.pid, signal.SIGTERM)
        if self._wait_for_exit(run, grace_s):
            exit_code = self.exit_code(run_id)
            if exit_code in (None, -signal.SIGTERM):
                # SIGTERM's default action ended the process before the worker installed its handler.
                self.store.finish_run(
                    run_id, RunStatus.STOPPED, only_if_active=True, exit_code=exit_code,
                    message="ended by SIGTERM before it could report a status or write a checkpoint",
                )  # fmt: skip
        else:
            logger.warning("run %d did not exit %g s after SIGTERM; sending SIGKILL", run_id, grace_s)
            _signal_group(run.pid, signal.SIGKILL)
            self._wait_for_exit(run, timeout=10.0)
            self.store.finish_run(
                run_id, RunStatus.STOPPED, only_if_active=True, exit_code=self.exit_code(run_id),
                message=f"killed with SIGKILL {grace_s:g} s after SIGTERM; the last checkpoint may predate the last step",
            )  # fmt: skip
        # Ranks or loader processes that outlived the worker would hold the GPU.
        _signal_group(run.pid, signal.SIGKILL)
        self.reconcile()
        return self.store.get_run(run_id)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass  # the group has no members left


def _describe(devices: Sequence[int]) -> str:
    return "CPU" if not devices else "GPU " + ",".join(map(str, devices))
