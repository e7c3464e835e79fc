"""The operations the command line and the terminal UI share.

``Workbench`` bundles a store and a launcher. Each method is one user-level operation: it
validates its input, raises a ``workbench.errors.WorkbenchError`` subclass on bad input (with
a remedy in the message), and never prints. Operations that take a while yield progress
(``follow_run``, ``follow_log``) or take ``progress`` and ``cancel`` callbacks (``sample``,
``infill``). Torch and the model load only inside the operations that need them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from workbench.launcher import DEFAULT_STOP_GRACE_S, Launcher
from workbench.services.checkpoints import CheckpointInfo, CheckpointServices
from workbench.services.experiments import ExperimentDetails, ExperimentServices
from workbench.services.generation import GeneratedText, GenerationServices, Segment
from workbench.services.logs import LogServices
from workbench.services.quickstart import QuickstartResult, QuickstartServices
from workbench.services.runs import RunProgress, RunServices, latest_checkpoint
from workbench.store import Store

__all__ = [
    "CheckpointInfo",
    "ExperimentDetails",
    "GeneratedText",
    "QuickstartResult",
    "RunProgress",
    "Segment",
    "Workbench",
    "latest_checkpoint",
]


class Workbench(
    QuickstartServices, ExperimentServices, RunServices, LogServices, CheckpointServices, GenerationServices
):
    """The workbench's operations on one experiment store.

    Args:
        db: a store URL or SQLite path; ``None`` for ``$WORKBENCH_DB`` or ``./experiments.db``.
        checkpoint_root: folder for run folders; ``<store folder>/checkpoints`` by default.
        stop_grace_s: seconds a stopped run has to checkpoint before SIGKILL.
        worker_command: replaces ``python -m workbench.worker`` (tests only).
    """

    def __init__(
        self,
        db: str | None = None,
        *,
        checkpoint_root: str | os.PathLike[str] | None = None,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
        worker_command: Sequence[str] | None = None,
    ) -> None:
        self.store = Store(db)
        self.launcher = Launcher(
            self.store, checkpoint_root=checkpoint_root, stop_grace_s=stop_grace_s, worker_command=worker_command
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workbench({self.store.url_text!r})"
