"""The list of config problems under the editor. Choosing one moves the editor to its line."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from workbench.tui.config_view import Problem


class ProblemList(OptionList):
    """One option per problem, ``line N key: message``. Green text when there are none."""

    DEFAULT_CSS = """
    ProblemList { height: auto; max-height: 6; border: round $error; }
    ProblemList.-valid { border: round $success; color: $success; }
    """

    class ProblemChosen(Message):
        """The user chose a problem. ``line`` is 1-based, ``None`` when the validator gave none."""

        def __init__(self, problem: Problem) -> None:
            super().__init__()
            self.problem = problem

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._problems: list[Problem] = []
        self.border_title = "problems"

    @property
    def problems(self) -> list[Problem]:
        """The problems shown, in validator order."""
        return list(self._problems)

    def show_problems(self, problems: Sequence[Problem]) -> None:
        """Replace the list. An empty list shows that the config is valid."""
        self._problems = list(problems)
        self.clear_options()
        self.set_class(not problems, "-valid")
        if not problems:
            self.border_title = "valid"
            self.add_option(Option(Text("no problems: ctrl+s saves this config"), disabled=True))
            return
        self.border_title = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        self.add_options(Option(Text(problem.describe())) for problem in problems)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self._problems and 0 <= event.option_index < len(self._problems):
            self.post_message(self.ProblemChosen(self._problems[event.option_index]))
