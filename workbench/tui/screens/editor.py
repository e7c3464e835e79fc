"""The config editor pane: YAML with live validation, save, and a diff against the parent config."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Static, TextArea

from workbench.tui.config_view import KeyDiff, Problem, config_items, differing_keys, validation_problems
from workbench.tui.requests import EditorRequest
from workbench.tui.screens.base import PaneScreen
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.widgets.config_area import ConfigArea
from workbench.tui.widgets.key_diff_table import KeyDiffTable
from workbench.tui.widgets.problem_list import ProblemList

logger = logging.getLogger(__name__)

# Seconds of quiet typing before the text is validated again.
VALIDATE_DELAY_S = 0.3
NEW_EXPERIMENT_ID = "new-experiment"
EXP_ID_LINE = re.compile(r"^exp_id:.*$", re.MULTILINE)


@dataclass(frozen=True)
class LoadedConfig:
    """A config opened in the editor with what its diff compares against."""

    exp_id: str | None
    text: str
    base_text: str
    base_label: str


def template_text() -> str:
    """Return the config a new experiment starts from.

    That is the quickstart config (a small model that trains in minutes on a CPU, with its
    comments) under a new id. An installation without it starts from the schema defaults.
    """
    from sedd.config import ExperimentConfig, config_to_yaml

    from workbench.errors import WorkbenchError
    from workbench.services.quickstart import quickstart_config_path

    try:
        text = quickstart_config_path().read_text(encoding="utf-8")
    except (WorkbenchError, OSError) as error:
        logger.warning("new configs start from the schema defaults: %s", error)
        return config_to_yaml(ExperimentConfig(exp_id=NEW_EXPERIMENT_ID))
    return EXP_ID_LINE.sub(f"exp_id: {NEW_EXPERIMENT_ID}", text, count=1)


class EditorScreen(PaneScreen):
    """Edits one experiment config. ctrl+s saves it and creates the experiment if it is new."""

    MODE = "editor"
    # The text area would swallow the number keys that switch panes, so it gets the focus
    # only when the user opens a config for editing (or clicks it). Escape leaves it.
    AUTO_FOCUS = "#problems"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Create or update the experiment"),
        Binding("ctrl+t", "toggle_diff", "Diff", id="editor.diff", tooltip="Show keys that differ from the parent"),
        Binding("ctrl+g", "next_problem", "Next problem", id="editor.next_problem", show=False),
        Binding("ctrl+r", "revert", "Revert", id="editor.revert", tooltip="Reload the stored config"),
        Binding("escape", "leave_text", "Leave text", id="editor.leave", tooltip="Hand the keys back to the panes"),
    ]

    class Validated(Message):
        """Validation of one version of the text finished. Stale versions are dropped."""

        def __init__(self, text: str, problems: list[Problem]) -> None:
            super().__init__()
            self.text = text
            self.problems = problems

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, EditorScreen.Validated)

    def __init__(self) -> None:
        super().__init__()
        self.loaded: LoadedConfig | None = None
        self.saved_text = ""
        self._validate_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="editor-title", classes="title-line")
        with ContentSwitcher(initial="config-text", id="editor-views"):
            yield ConfigArea(id="config-text")
            yield KeyDiffTable(id="config-diff")
        yield Static("", id="problem-here", classes="status-line")
        yield ProblemList(id="problems")


    @property
    def editor(self) -> ConfigArea:
        return self.query_one(ConfigArea)

    @property
    def is_dirty(self) -> bool:
        """Whether the text differs from what was last loaded or saved."""
        return self.loaded is not None and self.editor.text != self.saved_text

    # Opening

    def open(self, request: EditorRequest, *, focus: bool = True) -> None:
        """Load a config into the editor, asking first if unsaved text would be lost.

        With ``focus`` the text area takes the keys, so typing edits the config at once.
        """
        if focus:
            # set_focus acts at once, where focus() waits a turn and could lose to AUTO_FOCUS.
            self.set_focus(self.editor)
        if not self.is_dirty:
            self.load_config(request)
            return

        def discard(confirmed: bool | None) -> None:
            if confirmed:
                self.load_config(request)

        self.app.push_screen(ConfirmScreen("Discard the unsaved changes in the editor?", confirm_label="Discard"), discard)

    def show_experiment(self, exp_id: str | None) -> None:
        """Show the config of ``exp_id`` (the pane key's choice), or the new-experiment template for ``None``.

        The text area keeps its text when it already shows that experiment, or when no
        experiment is chosen and it shows anything, so switching panes never loses edits.
        The keys stay with the panes, so a number key still switches away.
        """
        if exp_id is None:
            if self.loaded is None:
                self.load_config(EditorRequest.new())
        elif self.loaded is None or self.loaded.exp_id != exp_id:
            self.open(EditorRequest.edit(exp_id), focus=False)

    @work(thread=True, exclusive=True, group="editor-load", exit_on_error=False, description="Open config")
    def load_config(self, request: EditorRequest) -> None:
        if request.exp_id is None:
            text = template_text()
            loaded = LoadedConfig(None, text, text, "defaults")
        else:
            experiment = self.workbench.store.get_experiment(request.exp_id)
            parent = experiment.parent
            if parent is not None:
                loaded = LoadedConfig(experiment.exp_id, experiment.config_text, parent.config_text, parent.exp_id)
            else:
                loaded = LoadedConfig(experiment.exp_id, experiment.config_text, experiment.config_text, "stored")
        self.app.call_from_thread(self._show_loaded, loaded)

    def _show_loaded(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.saved_text = loaded.text
        self.editor.load_text(loaded.text)
        self.query_one(ContentSwitcher).current = "config-text"
        self._update_title()
        self.validate_text(loaded.text)

    def _update_title(self) -> None:
        if self.loaded is None:
            return
        name = "new experiment" if self.loaded.exp_id is None else f"experiment '{self.loaded.exp_id}'"
        base = f" · cloned from '{self.loaded.base_label}'" if self.loaded.base_label not in ("stored", "defaults") else ""
        state = " · unsaved" if self.is_dirty else ""
        self.query_one("#editor-title", Static).update(Text(f"{name}{base}{state}"))

    # Validation

    @on(TextArea.Changed, "#config-text")
    def _text_changed(self) -> None:
        self._update_title()
        if self._validate_timer is not None:
            self._validate_timer.stop()
        self._validate_timer = self.set_timer(VALIDATE_DELAY_S, lambda: self.validate_text(self.editor.text))

    @work(thread=True, exclusive=True, group="editor-validate", exit_on_error=False, description="Validate config")
    def validate_text(self, text: str) -> None:
        self.post_message(self.Validated(text, validation_problems(text)))

    def on_editor_screen_validated(self, message: Validated) -> None:
        if message.text != self.editor.text:
            return  # the user typed since; a newer validation is on its way
        self.query_one(ProblemList).show_problems(message.problems)
        lines: dict[int, str] = {}
        for problem in message.problems:
            if problem.line is not None:
                lines.setdefault(problem.line, problem.describe())
        self.editor.set_problem_lines(lines)
        self._show_problem_here()

    @on(TextArea.SelectionChanged, "#config-text")
    def _show_problem_here(self) -> None:
        row = self.editor.cursor_location[0] + 1
        message = self.editor.problem_lines.get(row, "")
        self.query_one("#problem-here", Static).update(Text(message))

    def on_problem_list_problem_chosen(self, message: ProblemList.ProblemChosen) -> None:
        if message.problem.line is not None:
            self.query_one(ContentSwitcher).current = "config-text"
            self.editor.go_to_line(message.problem.line)

    def action_next_problem(self) -> None:
        lines = sorted(self.editor.problem_lines)
        if not lines:
            self.notify("The config has no problems", severity="information")
            return
        row = self.editor.cursor_location[0] + 1
        following = [line for line in lines if line > row]
        self.editor.go_to_line(following[0] if following else lines[0])

    def action_leave_text(self) -> None:
        self.query_one(ProblemList).focus()

    # Saving

    def action_save(self) -> None:
        if self.loaded is None:
            return
        self.save_config(self.loaded.exp_id, self.editor.text)

    @work(thread=True, exclusive=True, group="editor-save", exit_on_error=False, description="Save config")
    def save_config(self, exp_id: str | None, text: str) -> None:
        """Create or update the experiment. On failure the text stays and a notification explains."""
        if exp_id is None:
            experiment = self.workbench.create_experiment(config_text=text)
        else:
            experiment = self.workbench.update_config(exp_id, text)
        self.app.call_from_thread(self._saved, experiment.exp_id, text, exp_id is None)

    def _saved(self, exp_id: str, text: str, created: bool) -> None:
        base_text, base_label = (self.loaded.base_text, self.loaded.base_label) if self.loaded else (text, "stored")
        if base_label in ("stored", "defaults"):
            base_text, base_label = text, "stored"
        self.loaded = LoadedConfig(exp_id, text, base_text, base_label)
        self.saved_text = text
        self._update_title()
        verb = "Created" if created else "Saved"
        self.notify(f"{verb} experiment '{exp_id}'; press 1 then l to launch it", title="Config", markup=False)

    def action_revert(self) -> None:
        if self.loaded is None or self.loaded.exp_id is None:
            self.notify("Nothing stored to revert to: this experiment is not saved yet", severity="warning")
            return
        exp_id = self.loaded.exp_id

        def revert(confirmed: bool | None) -> None:
            if confirmed:
                self.load_config(EditorRequest.edit(exp_id))

        self.app.push_screen(ConfirmScreen(f"Reload the stored config of '{exp_id}'?", confirm_label="Revert"), revert)

    # Diff

    def action_toggle_diff(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "config-diff":
            switcher.current = "config-text"
            self.editor.focus()
            return
        if self.loaded is not None:
            self.compute_diff(self.loaded.base_text, self.loaded.base_label, self.editor.text)

    @work(thread=True, exclusive=True, group="editor-diff", exit_on_error=False, description="Diff config")
    def compute_diff(self, base_text: str, base_label: str, text: str) -> None:
        diffs = differing_keys([config_items(base_text), config_items(text)])
        self.app.call_from_thread(self._show_diff, base_label, diffs)

    def _show_diff(self, base_label: str, diffs: list[KeyDiff]) -> None:
        table = self.query_one(KeyDiffTable)
        table.show_diff([base_label, "editor"], diffs, empty_text=f"same settings as {base_label}")
        self.query_one(ContentSwitcher).current = "config-diff"
        table.focus()
