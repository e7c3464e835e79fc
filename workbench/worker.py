"""Entry point a launched run executes: ``python -m workbench.worker --db URL --run-id N``.

The worker loads the run's config snapshot from the store, marks the run running, and calls
``sedd.train.train`` with a ``StoreTracker``. Only rank 0 reports, so other ``torchrun`` ranks
train without a tracker. The trainer reports completed, stopped, diverged or failed itself.
The rank-0 worker records any exception that escapes it, and a SIGTERM before training starts,
so a run ends with a final status unless the process is killed with SIGKILL; reconciliation
(``workbench.reconcile``) covers that case. The exit code is 0 for
completed and stopped, 2 for diverged and 1 otherwise; it is stored on the run as well.

A queued run can also be started by hand (on a cluster node, say) with the same command;
the worker then records its own pid and host.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import psutil

from workbench.errors import InvalidConfig, WorkbenchError
from workbench.launcher import Launcher
from workbench.reconcile import this_host
from workbench.store import Run, RunStatus, Store
from workbench.store.models import utc_now
from workbench.tracking import HeartbeatThread, StoreTracker

logger = logging.getLogger(__name__)

EXIT_CODES = {
    RunStatus.COMPLETED: 0,
    RunStatus.STOPPED: 0,
    RunStatus.DIVERGED: 2,
    RunStatus.FAILED: 1,
    RunStatus.LOST: 1,
}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StopBeforeTraining(BaseException):
    """SIGTERM arrived before the trainer installed its own handler."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workbench.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=None, help="store URL or SQLite path (default: $WORKBENCH_DB or ./experiments.db)")
    parser.add_argument("--run-id", type=int, required=True, help="id of the queued run to execute")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    rank = int(os.environ.get("RANK", "0"))
    try:
        store = Store(args.db)
        if rank != 0:
            return train_follower(store, args.run_id)
        return run_worker(store, args.run_id)
    except WorkbenchError as error:
        logger.error("run %d: %s", args.run_id, error)
        return 1


def run_worker(store: Store, run_id: int) -> int:
    """Execute run ``run_id`` as rank 0 and return the process exit code."""
    run = store.get_run(run_id)
    if not run.status.is_active:
        logger.error("run %d is already %s; start a new run with `workbench run` or `workbench resume`", run_id, run.status.value)
        return 1
    run = _claim(store, run)
    previous_handler = signal.signal(signal.SIGTERM, _raise_stop)
    heartbeat = HeartbeatThread(store, run_id)
    heartbeat.start()
    tracker = StoreTracker(store, run_id)
    try:
        _train(run, tracker)
    except BaseException as error:  # noqa: BLE001 - a run must never stay `running`
        return _record_failure(store, tracker, run_id, error)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        heartbeat.stop()
    tracker.close()
    return _record_exit(store, run_id)


def train_follower(store: Store, run_id: int) -> int:
    """Execute a non-zero ``torchrun`` rank: train without reporting to the store."""
    run = store.get_run(run_id)
    _train(run, tracker=None)
    return 0


def _train(run: Run, tracker: StoreTracker | None) -> None:
    # Lazy imports: torch and the data pipeline load only in the worker process.
    from sedd.config import ConfigError, load_config
    from sedd.train import train

    try:
        config = load_config(run.config_text, list(run.overrides))
    except ConfigError as error:
        raise InvalidConfig(f"the config of run {run.id} is invalid: {error}", error.path, error.line) from error
    # The trainer replaces the SIGTERM handler with its own, which checkpoints before stopping.
    train(config, Path(run.run_dir), tracker=tracker, resume=run.resume_checkpoint)


def _claim(store: Store, run: Run) -> Run:
    fields = {"status": RunStatus.RUNNING, "started_at": run.started_at or utc_now(), "heartbeat_at": utc_now()}
    if run.pid is None:
        process = psutil.Process()
        fields.update(pid=process.pid, process_started_at=process.create_time(), host=this_host())
    if run.run_dir is None:
        fields["run_dir"] = str(Launcher(store).run_dir(run.experiment.exp_id, run.id))
    Path(fields.get("run_dir", run.run_dir)).mkdir(parents=True, exist_ok=True)
    return store.update_run(run.id, **fields)


def _raise_stop(signum: int, frame: types.FrameType | None) -> None:
    raise StopBeforeTraining()


def _record_failure(store: Store, tracker: StoreTracker, run_id: int, error: BaseException) -> int:
    try:
        tracker.close()
    except Exception:  # noqa: BLE001 - the original error matters more than lost metric rows
        logger.exception("run %d: could not flush metrics after the failure", run_id)
    if isinstance(error, StopBeforeTraining):
        logger.info("run %d: stopped by SIGTERM before training started", run_id)
        store.finish_run(run_id, RunStatus.STOPPED, message="stopped before training started", only_if_active=True)
        return _record_exit(store, run_id)

    logger.error("run %d failed", run_id, exc_info=(type(error), error, error.__traceback__))
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    store.finish_run(run_id, RunStatus.FAILED, message=message, only_if_active=True)
    return _record_exit(store, run_id)


def _record_exit(store: Store, run_id: int) -> int:
    run = store.get_run(run_id)
    if run.status.is_active:
        run = store.finish_run(run_id, RunStatus.FAILED, message="the trainer returned without reporting a final status")
    code = EXIT_CODES[run.status]
    store.update_run(run_id, exit_code=code)
    logger.info("run %d ended %s (exit code %d)", run_id, run.status.value, code)
    return code


if __name__ == "__main__":
    sys.exit(main())
