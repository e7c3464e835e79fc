"""The help screen: every key of every pane, with the binding id a keymap file can remap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

TIPS = (
    "Filter (/): words match id, status, tags, notes; status:, tag:, exp_id:, notes:, parent:, devices: one field.",
    "Remap keys by id in ~/.config/sedd-workbench/keymap.yaml or $WORKBENCH_KEYMAP, e.g. 'experiments.launch: ctrl+l'.",
    "ctrl+p opens the command palette. Runs keep going when the UI quits.",
)


class HelpScreen(ModalScreen[None]):
    """Lists the bindings of each section. ``keymap`` maps binding ids to remapped keys."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[Binding]]], keymap: Mapping[str, str]) -> None:
        super().__init__()
        self.sections = sections
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-full"):
            yield Label("Keys (Escape closes)", classes="dialog-question")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            for tip in TIPS:
                yield Label(tip, classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("pane", "key", "action", "binding id")
        for title, bindings in self.sections:
            for binding in bindings:
                key = self.keymap.get(binding.id or "", binding.key)
                action = binding.description or binding.action
                table.add_row(Text(title, style="bold"), Text(key), Text(action), Text(binding.id or ""))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
