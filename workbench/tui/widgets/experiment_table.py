"""The experiments table: one row per experiment, status cells coloured by run status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from workbench.tui.experiment_rows import COLUMNS

STATUS_CLASSES = {
    status: f"experiment-table--{status.replace(' ', '-')}"
    for status in ("queued", "running", "completed", "stopped", "failed", "diverged", "lost", "no runs")
}
# The marker in the first column of an experiment whose latest run is chosen for comparison.
MARK = "+"


@dataclass(frozen=True)
class TableRow:
    """One row to show: the experiment id (the row key) and its cells in ``COLUMNS`` order."""

    key: str
    cells: tuple[str, ...]
    marked: bool = False


class ExperimentTable(DataTable[Text | str]):
    """A row-cursor DataTable that updates changed cells in place between refreshes.

    A refresh that keeps the row order only touches the cells whose text changed, so the
    cursor, the scroll position and the frame rate survive a store poll every second.
    """

    DEFAULT_CSS = """
    ExperimentTable { height: 1fr; }
    ExperimentTable > .experiment-table--queued { color: $warning; }
    ExperimentTable > .experiment-table--running { color: $success; text-style: bold; }
    ExperimentTable > .experiment-table--completed { color: $accent; }
    ExperimentTable > .experiment-table--stopped { color: $text-muted; }
    ExperimentTable > .experiment-table--failed { color: $error; text-style: bold; }
    ExperimentTable > .experiment-table--diverged { color: $error; }
    ExperimentTable > .experiment-table--lost { color: $secondary; }
    ExperimentTable > .experiment-table--no-runs { color: $text-muted; }
    ExperimentTable > .experiment-table--marked { color: $accent; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | set(STATUS_CLASSES.values()) | {
        "experiment-table--marked"
    }

    class SortRequested(Message):
        """The user clicked a column header to sort by that column."""

        def __init__(self, column_key: str) -> None:
            super().__init__()
            self.column_key = column_key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._order: list[str] = []
        self._positions: dict[str, int] = {}
        self._cells: dict[str, tuple[str, ...]] = {}
        self._marks: dict[str, bool] = {}
        self._sort: tuple[str, bool] = ("exp_id", False)
        self._pending_cursor: str | None = None

    def on_mount(self) -> None:
        self._add_columns()

    @property
    def current_key(self) -> str | None:
        """The experiment id under the cursor, or ``None`` for an empty table."""
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    def set_sort(self, column_key: str, descending: bool) -> None:
        """Mark the sorted column in its header with an arrow. Rows come sorted from the caller."""
        self._sort = (column_key, descending)
        cursor_key = self.current_key
        self.clear(columns=True)
        self._order, self._positions, self._cells, self._marks = [], {}, {}, {}
        self._add_columns()
        self._pending_cursor = cursor_key

    def show_rows(self, rows: Sequence[TableRow]) -> None:
        """Show ``rows`` in order, keeping the cursor on the same experiment where it still shows."""
        order = [row.key for row in rows]
        if order == self._order:
            for row in rows:
                self._update_row(row)
            return
        cursor_key = self._pending_cursor or self.current_key
        self._pending_cursor = None
        self.clear()
        self._order = order
        self._positions = {key: index for index, key in enumerate(order)}
        self._cells = {row.key: row.cells for row in rows}
        self._marks = {row.key: row.marked for row in rows}
        for row in rows:
            self.add_row(*self._render_cells(row.cells, row.marked), key=row.key)
        if cursor_key in self._positions:
            self.move_cursor(row=self._positions[cursor_key], animate=False)

    def _add_columns(self) -> None:
        sort_key, descending = self._sort
        arrow = " ▼" if descending else " ▲"
        for column in COLUMNS:
            label = column.label + arrow if column.key == sort_key else column.label
            self.add_column(label, key=column.key)

    def _update_row(self, row: TableRow) -> None:
        old = self._cells[row.key]
        if old == row.cells and self._marks[row.key] == row.marked:
            return
        rendered = self._render_cells(row.cells, row.marked)
        row_index = self._positions[row.key]
        for column_index, (before, after) in enumerate(zip(old, row.cells)):
            if before != after or (column_index == 0 and self._marks[row.key] != row.marked):
                self.update_cell_at((row_index, column_index), rendered[column_index], update_width=True)
        self._cells[row.key] = row.cells
        self._marks[row.key] = row.marked

    def _render_cells(self, cells: tuple[str, ...], marked: bool) -> list[Text | str]:
        # Text, not str: DataTable reads str as markup, and tags or notes may hold brackets.
        rendered: list[Text | str] = [Text(cell) for cell in cells]
        if marked:
            rendered[0] = Text(f"{MARK}{cells[0]}", style=self.get_component_rich_style("experiment-table--marked"))
        status_class = STATUS_CLASSES.get(cells[1])
        if status_class is not None:
            rendered[1] = Text(cells[1], style=self.get_component_rich_style(status_class))
        return rendered

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.post_message(self.SortRequested(str(event.column_key.value)))
