"""The compare pane's metric table: one column per run, the best value of each row highlighted."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widgets import DataTable

from workbench.analysis.compare import ComparisonTable


class ComparisonView(DataTable[Text | str]):
    """Shows a ``ComparisonTable``. A best cell gets the highlight style and a ``*`` mark."""

    DEFAULT_CSS = """
    ComparisonView { height: 1fr; }
    ComparisonView > .comparison-view--best { color: $success; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {"comparison-view--best"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.table: ComparisonTable | None = None

    def show_table(self, table: ComparisonTable) -> None:
        self.table = table
        self.clear(columns=True)
        # Text, not str: DataTable reads str as markup, which would drop "[unit]".
        self.add_column(Text("metric [unit]"), key="metric")
        for index, label in enumerate(table.experiments):
            self.add_column(Text(label), key=f"run-{index}")
        best_style = self.get_component_rich_style("comparison-view--best")
        for row in table.rows:
            cells: list[Text | str] = [Text(row.spec.header)]
            for cell in row.cells:
                cells.append(Text(cell.text() + " *", style=best_style, justify="right") if cell.best else Text(cell.text(), justify="right"))
            self.add_row(*cells, key=row.spec.name)
