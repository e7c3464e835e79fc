"""The row of pane tabs at the top of every screen. Clicking a tab switches pane."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message
from textual.widgets import Tab, Tabs


class PaneTabs(Tabs):
    """Tabs labelled with each pane's number key. The tab of ``current`` is active.

    The tabs never take the keyboard focus, so left and right stay with the pane's widgets;
    the number keys switch panes instead.
    """

    DEFAULT_CSS = """
    PaneTabs { height: 2; }
    PaneTabs Tab { padding: 0 1; }
    """
    can_focus = False

    class PaneChosen(Message):
        """The user clicked the tab of another pane."""

        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    def __init__(self, panes: Sequence[tuple[str, str, str]], current: str) -> None:
        super().__init__(*(Tab(f"{key} {label}", id=f"pane-{mode}") for mode, key, label in panes), active=f"pane-{current}")
        self.current = current

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        mode = (event.tab.id or "").removeprefix("pane-")
        if mode and mode != self.current:
            # Keep this screen's own tab lit. The next screen shows its own tabs.
            self.active = f"pane-{self.current}"
            self.post_message(self.PaneChosen(mode))
