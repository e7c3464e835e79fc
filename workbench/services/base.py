"""State the service mixins share: the store and the launcher of one ``Workbench``."""

from __future__ import annotations

from workbench.launcher import Launcher
from workbench.store import Run, Store


class ServiceBase:
    store: Store
    launcher: Launcher

    def reconcile(self) -> list[Run]:
        """Give a final status to active runs whose process is gone; return those runs."""
        return self.launcher.reconcile()
