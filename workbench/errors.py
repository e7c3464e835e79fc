"""Domain exceptions of the workbench.

The store, the launcher and the services raise these; the command line turns each into one
``Error: ...`` line on stderr and exit code 1, and the terminal UI shows it in a notification.
Every message names the value at fault and, where one exists, the command that fixes it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error a workbench user can cause or fix."""


class StoreError(WorkbenchError):
    """The database cannot be opened or does not hold a usable experiment store."""


class SchemaTooNew(StoreError):
    """The database was written by a newer workbench than this one."""


class ExperimentNotFound(WorkbenchError):
    """No experiment has the requested ``exp_id``."""

    def __init__(self, exp_id: str) -> None:
        super().__init__(
            f"experiment '{exp_id}' not found; run `workbench list` to see the experiments "
            "in this store, or create it with `workbench new`"
        )
        self.exp_id = exp_id


class ExperimentExists(WorkbenchError):
    """An experiment with the requested ``exp_id`` is already in the store."""

    def __init__(self, exp_id: str) -> None:
        super().__init__(
            f"experiment '{exp_id}' already exists; choose another exp_id, or copy it with "
            f"`workbench clone {exp_id} NEW_ID`"
        )
        self.exp_id = exp_id


class RunNotFound(WorkbenchError):
    """No run has the requested id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(
            f"run {run_id} not found; run `workbench status` to see the runs in this store"
        )
        self.run_id = run_id


class InvalidConfig(WorkbenchError):
    """An experiment config failed validation.

    ``key_path`` (for example ``training.lr``) and ``line`` (1-based, in the config text) are
    ``None`` when the validator did not report them.
    """

    def __init__(self, message: str, key_path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.key_path = key_path
        self.line = line


class RunActive(WorkbenchError):
    """The operation needs a run (or every run of an experiment) to be finished."""


class RunNotActive(WorkbenchError):
    """The operation needs a queued or running run."""


class RemoteRun(WorkbenchError):
    """The run's process lives on another host, so this host cannot signal it."""


class NoCheckpoint(WorkbenchError):
    """A run has no checkpoint or model folder to resume or sample from."""


class GenerationCancelled(WorkbenchError):
    """The caller cancelled a sample or an infilling before it finished; nothing was saved."""


class DeviceError(WorkbenchError):
    """The ``gpu`` setting names devices that cannot be used on this host."""


class LaunchFailed(WorkbenchError):
    """The run's process could not be started."""
