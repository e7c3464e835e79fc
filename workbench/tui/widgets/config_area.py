"""A YAML code editor that marks the lines holding config problems."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual.widgets import TextArea

logger = logging.getLogger(__name__)


class ConfigArea(TextArea):
    """TextArea with YAML highlighting, line numbers and a background on problem lines.

    ``set_problem_lines`` takes 1-based line numbers, as the config validator reports them.
    YAML highlighting needs the ``tree-sitter`` and ``tree-sitter-yaml`` packages
    (``textual[syntax]``); without them the text shows plain and a warning is logged.
    """

    DEFAULT_CSS = """
    ConfigArea { height: 1fr; }
    ConfigArea > .config-area--problem { background: $error 30%; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = TextArea.COMPONENT_CLASSES | {"config-area--problem"}

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        language = "yaml" if importlib.util.find_spec("tree_sitter_yaml") is not None else None
        if language is None:
            logger.warning("tree-sitter-yaml is not installed; the config editor shows YAML without colours")
        super().__init__(
            text,
            language=language,
            theme="monokai",
            show_line_numbers=True,
            tab_behavior="indent",
            soft_wrap=False,
            id=id,
        )
        self.indent_width = 2
        self._problem_lines: dict[int, str] = {}

    @property
    def problem_lines(self) -> dict[int, str]:
        """Problem messages keyed by 1-based line number."""
        return dict(self._problem_lines)

    def set_problem_lines(self, problems: Mapping[int, str]) -> None:
        """Mark these 1-based lines. The previous marks are cleared."""
        if dict(problems) == self._problem_lines:
            return
        self._problem_lines = dict(problems)
        # TextArea caches rendered lines. A style update drops that cache.
        self.notify_style_update()
        self.refresh()

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        if line_index + 1 in self._problem_lines:
            line.stylize(self.get_component_rich_style("config-area--problem", partial=True))
        return line

    def go_to_line(self, line: int) -> None:
        """Move the cursor to the start of a 1-based line and scroll it into view."""
        row = max(0, min(line - 1, self.document.line_count - 1))
        self.move_cursor((row, 0), center=True)
        self.focus()
