"""The experiments pane: the table of experiments and the keys that act on them."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from workbench.store import ExperimentSummary
from workbench.tui.experiment_rows import COLUMN_KEYS, COLUMNS, row_cells, visible_rows
from workbench.tui.requests import EditorRequest
from workbench.tui.screens.base import PaneScreen
from workbench.tui.screens.confirm import ConfirmScreen, PromptScreen
from workbench.tui.widgets.experiment_table import ExperimentTable, TableRow

# The table polls the store half as often as the monitor: it shows coarser facts.
TABLE_POLL_FACTOR = 2.0


class ExperimentsScreen(PaneScreen):
    """Every experiment with its latest run. Filter with ``/``, sort with ``o``."""

    MODE = "experiments"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="experiments.filter", show=False, tooltip="Type to filter; Esc returns"),
        Binding("o", "sort_next", "Sort", id="experiments.sort", show=False, tooltip="Sort by the next column"),
        Binding("O", "sort_reverse", "Reverse", id="experiments.reverse", show=False),
        Binding("n", "new", "New", id="experiments.new", tooltip="Write a new experiment config"),
        Binding("e", "edit", "Edit", id="experiments.edit", tooltip="Edit the config of this experiment"),
        Binding("c", "clone", "Clone", id="experiments.clone", show=False, tooltip="Copy this experiment under a new id"),
        Binding("d", "delete", "Delete", id="experiments.delete", show=False, tooltip="Delete this experiment and its run records"),
        Binding("l", "launch", "Launch", id="experiments.launch", tooltip="Start a new run of this experiment"),
        Binding("s", "stop", "Stop", id="experiments.stop", tooltip="Stop the latest run (it checkpoints first)"),
        Binding("r", "resume", "Resume", id="experiments.resume", tooltip="Continue the latest run from its checkpoint"),
        Binding("space", "mark", "Mark", id="experiments.mark", show=False, tooltip="Mark the latest run for comparison"),
        Binding("f5", "refresh", "Refresh", id="experiments.refresh", show=False),
    ]

    class SummariesLoaded(Message):
        """The store returned fresh summaries. A newer one replaces an unprocessed older one."""

        def __init__(self, summaries: list[ExperimentSummary]) -> None:
            super().__init__()
            self.summaries = summaries

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ExperimentsScreen.SummariesLoaded)

    def __init__(self) -> None:
        super().__init__()
        self._summaries: list[ExperimentSummary] = []
        self._by_id: dict[str, ExperimentSummary] = {}
        self._sort_key = "exp_id"
        self._descending = False

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="/ filter: text, status:running, tag:paper ...", id="filter", compact=True)
        yield ExperimentTable(id="experiments")
        yield Static("loading experiments ...", id="experiments-status", classes="status-line")

    def on_mount(self) -> None:
        self.query_one(ExperimentTable).focus()
        self.load_summaries()
        self.poll_every(self.workbench_app.poll_interval * TABLE_POLL_FACTOR, self.load_summaries)
        self.watch(self.app, "compare_ids", lambda _: self._show(), init=False)

    def on_screen_resume(self) -> None:
        self.load_summaries()

    @work(thread=True, exclusive=True, group="experiments-load", exit_on_error=False, description="Load experiments")
    def load_summaries(self) -> None:
        """Read every experiment's summary. The store aggregates metrics in SQL."""
        self.post_message(self.SummariesLoaded(self.workbench.store.experiment_summaries()))

    def on_experiments_screen_summaries_loaded(self, message: SummariesLoaded) -> None:
        self._summaries = message.summaries
        self._by_id = {summary.exp_id: summary for summary in message.summaries}
        self._show()

    def _show(self) -> None:
        query = self.query_one("#filter", Input).value
        rows = visible_rows(self._summaries, query, self._sort_key, self._descending)
        now = self.workbench_app.clock()
        marked = set(self.workbench_app.compare_ids)
        table = self.query_one(ExperimentTable)
        table.show_rows([TableRow(s.exp_id, row_cells(s, now), s.run_id in marked) for s in rows])
        label = next(column.label for column in COLUMNS if column.key == self._sort_key)
        direction = "descending" if self._descending else "ascending"
        counts = f"{len(rows)} of {len(self._summaries)} experiments"
        filter_note = f" · filter {query!r}" if query.strip() else ""
        self.query_one("#experiments-status", Static).update(Text(f"{counts} · sorted by {label}, {direction}{filter_note}"))
        self._remember_selection()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._remember_selection()

    def _remember_selection(self) -> None:
        # The config editor (key 2) opens the experiment selected here.
        current = self.current
        self.workbench_app.selected_exp_id = current.exp_id if current is not None else None

    @property
    def current(self) -> ExperimentSummary | None:
        """The experiment under the table cursor."""
        key = self.query_one(ExperimentTable).current_key
        return self._by_id.get(key) if key is not None else None

    def _require_current(self) -> ExperimentSummary | None:
        summary = self.current
        if summary is None:
            self.notify("No experiment selected; press n to create one", severity="warning")
        return summary

    def _require_run(self) -> ExperimentSummary | None:
        summary = self._require_current()
        if summary is not None and summary.run_id is None:
            self.notify(f"Experiment '{summary.exp_id}' has no runs yet; press l to launch one", severity="warning", markup=False)
            return None
        return summary

    # Filter and sort

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._show()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self.query_one(ExperimentTable).focus()

    def key_escape(self) -> None:
        if self.query_one("#filter", Input).has_focus:
            self.query_one("#filter", Input).value = ""
            self.query_one(ExperimentTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_sort_next(self) -> None:
        index = COLUMN_KEYS.index(self._sort_key)
        self._set_sort(COLUMN_KEYS[(index + 1) % len(COLUMN_KEYS)], False)

    def action_sort_reverse(self) -> None:
        self._set_sort(self._sort_key, not self._descending)

    def on_experiment_table_sort_requested(self, message: ExperimentTable.SortRequested) -> None:
        same = message.column_key == self._sort_key
        self._set_sort(message.column_key, not self._descending if same else False)

    def _set_sort(self, column_key: str, descending: bool) -> None:
        self._sort_key, self._descending = column_key, descending
        self.query_one(ExperimentTable).set_sort(column_key, descending)
        self._show()

    def action_refresh(self) -> None:
        self.load_summaries()

    # Experiments

    async def action_new(self) -> None:
        await self.workbench_app.open_editor(EditorRequest.new())

    async def action_edit(self) -> None:
        summary = self._require_current()
        if summary is not None:
            await self.workbench_app.open_editor(EditorRequest.edit(summary.exp_id))

    def action_clone(self) -> None:
        summary = self._require_current()
        if summary is None:
            return
        source = summary.exp_id

        def clone(new_id: str | None) -> None:
            if new_id:
                self.clone_experiment(source, new_id)

        self.app.push_screen(PromptScreen(f"Clone '{source}' as:", f"{source}-copy"), clone)

    @work(thread=True, group="experiments-change", exit_on_error=False, description="Clone experiment")
    def clone_experiment(self, source: str, new_id: str) -> None:
        self.workbench.clone_experiment(source, new_id)
        self.app.call_from_thread(self._after_clone, new_id)

    async def _after_clone(self, new_id: str) -> None:
        self.notify(f"Cloned as '{new_id}'; edit it here, then save with ctrl+s", title="Clone", markup=False)
        self.load_summaries()
        await self.workbench_app.open_editor(EditorRequest.edit(new_id))

    def action_delete(self) -> None:
        summary = self._require_current()
        if summary is None:
            return
        exp_id = summary.exp_id
        runs = f" and its {summary.run_count} run records" if summary.run_count else ""
        question = f"Delete experiment '{exp_id}'{runs}? Run folders on disk are kept."

        def delete(confirmed: bool | None) -> None:
            if confirmed:
                self.delete_experiment(exp_id)

        self.app.push_screen(ConfirmScreen(question), delete)

    @work(thread=True, group="experiments-change", exit_on_error=False, description="Delete experiment")
    def delete_experiment(self, exp_id: str) -> None:
        self.workbench.delete_experiment(exp_id)
        self.app.call_from_thread(self._changed, f"Deleted experiment '{exp_id}'", "Delete")

    # Runs

    def action_launch(self) -> None:
        summary = self._require_current()
        if summary is not None:
            self.launch_run(summary.exp_id)

    @work(thread=True, group="experiments-change", exit_on_error=False, description="Launch run")
    def launch_run(self, exp_id: str) -> None:
        run = self.workbench.launch(exp_id)
        devices = ",".join(map(str, run.devices)) if run.devices else "cpu"
        self.app.call_from_thread(self._changed, f"Started run {run.id} of '{exp_id}' on {devices}", "Launch")

    def action_stop(self) -> None:
        summary = self._require_run()
        if summary is not None and summary.run_id is not None:
            self.notify(f"Stopping run {summary.run_id}: it checkpoints, then exits", title="Stop")
            self.stop_run(summary.run_id)

    @work(thread=True, group="experiments-stop", exit_on_error=False, description="Stop run")
    def stop_run(self, run_id: int) -> None:
        run = self.workbench.stop(run_id)
        self.app.call_from_thread(self._changed, f"Run {run_id} is {run.status.value}", "Stop")

    def action_resume(self) -> None:
        summary = self._require_run()
        if summary is not None and summary.run_id is not None:
            self.resume_run(summary.run_id)

    @work(thread=True, group="experiments-change", exit_on_error=False, description="Resume run")
    def resume_run(self, run_id: int) -> None:
        run = self.workbench.resume(run_id)
        self.app.call_from_thread(self._changed, f"Run {run.id} continues run {run_id} from its checkpoint", "Resume")

    def action_mark(self) -> None:
        summary = self._require_run()
        if summary is not None and summary.run_id is not None:
            self.workbench_app.toggle_compare(summary.run_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        summary = self._require_run()
        if summary is not None and summary.run_id is not None:
            self.workbench_app.show_run(summary.run_id)

    def _changed(self, message: str, title: str) -> None:
        self.notify(message, title=title, markup=False)
        self.load_summaries()
