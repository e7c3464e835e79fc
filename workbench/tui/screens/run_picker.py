"""Modal lists of runs: pick one (monitor, sampling, infilling) or several (compare)."""

from __future__ import annotations

from collections.abc import Sequence

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, SelectionList
from textual.widgets.option_list import Option

from workbench.store import Run, Store
from workbench.tui.formatting import format_step
from workbench.tui.screens.base import ReportsWorkerErrors


def describe_run(run: Run) -> str:
    """Return a run as one line: id, experiment, status and progress."""
    return f"#{run.id} {run.experiment.exp_id}  {run.status.value}  step {format_step(run.last_step, run.total_steps)}"


class RunPickerScreen(ReportsWorkerErrors, ModalScreen[int | None]):
    """Lists the store's runs, newest first. Dismisses with the chosen run id or ``None``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick_run.cancel")]

    def __init__(self, store: Store, title: str = "Choose a run", current: int | None = None) -> None:
        super().__init__()
        self.store = store
        self.title_text = title
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-tall"):
            yield Label(self.title_text, classes="dialog-question")
            yield OptionList(id="runs")
            yield Label("Enter to choose, Escape to cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.load_runs()

    @work(thread=True, exclusive=True, group="pick-run", exit_on_error=False, description="List runs")
    def load_runs(self) -> None:
        runs = list(reversed(self.store.list_runs()))
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: Sequence[Run]) -> None:
        options = self.query_one(OptionList)
        options.add_options(Option(describe_run(run), id=str(run.id)) for run in runs)
        if not runs:
            options.add_option(Option("no runs yet: launch one from the experiments pane (1, then l)", disabled=True))
        ids = [run.id for run in runs]
        if ids:
            options.highlighted = ids.index(self.current) if self.current in ids else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)


class RunsChooserScreen(ReportsWorkerErrors, ModalScreen[list[int] | None]):
    """Lists the store's runs with check boxes. Dismisses with the checked ids in list order."""

    BINDINGS = [
        Binding("enter", "accept", "Compare", id="choose_runs.accept", priority=True),
        Binding("escape", "cancel", "Cancel", id="choose_runs.cancel"),
    ]

    def __init__(self, store: Store, checked: Sequence[int] = ()) -> None:
        super().__init__()
        self.store = store
        self.checked = list(checked)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-tall"):
            yield Label("Runs to compare (space checks, Enter compares)", classes="dialog-question")
            yield SelectionList[int](id="runs")
            yield Label("Escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.load_runs()

    @work(thread=True, exclusive=True, group="choose-runs", exit_on_error=False, description="List runs")
    def load_runs(self) -> None:
        runs = list(reversed(self.store.list_runs()))
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: Sequence[Run]) -> None:
        selection = self.query_one(SelectionList)
        selection.add_options((describe_run(run), run.id, run.id in self.checked) for run in runs)
        selection.focus()

    def action_accept(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        self.dismiss(None)
