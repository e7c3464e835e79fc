"""The base of every pane screen: pane tabs above, footer below, polling and typed app access."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from workbench.tui.panes import PANES
from workbench.tui.widgets.pane_tabs import PaneTabs

if TYPE_CHECKING:
    from workbench.services import Workbench
    from workbench.tui.app import WorkbenchApp


class ReportsWorkerErrors:
    """Mixin for screens: a worker that fails becomes an error notification.

    ``Worker.StateChanged`` goes to the node that started the worker and does not bubble,
    so each screen forwards failures to ``WorkbenchApp.report_error``.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            app = cast("WorkbenchApp", self.app)  # type: ignore[attr-defined]
            app.report_error(event.worker.error, title=event.worker.description or event.worker.name)


class PaneScreen(ReportsWorkerErrors, Screen[None]):
    """A pane: subclasses set ``MODE`` and yield their body from ``compose_body``.

    The footer shows only bindings without ``show=False``. Each pane keeps those few enough
    to fit 80 columns, and the help screen (?) and the command palette list every key.
    """

    MODE: ClassVar[str] = ""

    def compose(self) -> ComposeResult:
        yield PaneTabs(PANES, current=self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError(f"{type(self).__name__} must yield its widgets from compose_body")

    @property
    def workbench_app(self) -> WorkbenchApp:
        """The app, typed, for its services, clock and shared selection."""
        return cast("WorkbenchApp", self.app)

    @property
    def workbench(self) -> Workbench:
        return self.workbench_app.workbench

    @property
    def is_shown(self) -> bool:
        """Whether this screen is the one on display, so polls of hidden panes can skip work."""
        return self.app.screen is self

    def poll_every(self, interval: float, callback: Callable[[], object]) -> Timer | None:
        """Call ``callback`` every ``interval`` seconds while this pane is shown. 0 disables polling."""
        if interval <= 0:
            return None

        def tick() -> None:
            if self.is_shown:
                callback()

        return self.set_interval(interval, tick)

    async def on_pane_tabs_pane_chosen(self, event: PaneTabs.PaneChosen) -> None:
        await self.workbench_app.action_show_pane(event.mode)
