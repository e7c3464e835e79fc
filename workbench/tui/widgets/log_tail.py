"""The last lines of a run's log, redrawn only when they change."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Log


class LogTail(Log):
    """A read-only log view that shows a given list of lines and keeps the view at the end."""

    DEFAULT_CSS = """
    LogTail { height: 7; border: round $primary-darken-2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, auto_scroll=True)
        self._shown: list[str] = []
        self.border_title = "log"

    def show_lines(self, lines: Sequence[str]) -> None:
        """Show exactly ``lines``. A tail that only grew appends, anything else redraws."""
        lines = list(lines)
        if lines == self._shown:
            return
        grown = len(lines) > len(self._shown) and lines[: len(self._shown)] == self._shown
        if grown and self._shown:
            self.write_lines(lines[len(self._shown) :])
        else:
            self.clear()
            self.write_lines(lines)
        self._shown = lines
