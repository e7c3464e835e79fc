"""A table of the config keys whose values differ, one value column per config."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from workbench.tui.config_view import ABSENT, KeyDiff


class KeyDiffTable(DataTable[Text | str]):
    """Rows are differing keys. An absent key shows dimmed, so additions and removals stand out."""

    DEFAULT_CSS = """
    KeyDiffTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def show_diff(self, labels: Sequence[str], diffs: Sequence[KeyDiff], empty_text: str = "no differences") -> None:
        """Show one column per label. ``diffs`` carry one value per label in the same order."""
        # Text, not str: DataTable reads str as markup, and YAML lists are written in brackets.
        self.clear(columns=True)
        self.add_column(Text("key"), key="key")
        for index, label in enumerate(labels):
            self.add_column(Text(label), key=f"config-{index}")
        if not diffs:
            self.add_row(Text(empty_text, style="italic"), *([""] * len(labels)))
            return
        for diff in diffs:
            values = [Text(value, style="dim italic") if value == ABSENT else Text(value) for value in diff.values]
            self.add_row(Text(diff.path), *values, key=diff.path)
