"""Helpers for headless tests of the UI (``App.run_test``): screen text and waiting for workers."""

from __future__ import annotations

import io

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot


def screen_text(app: App[object]) -> str:
    """Return the screen as plain text, as a terminal of ``app.size`` would show it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def settle(pilot: Pilot[object], rounds: int = 3) -> None:
    """Wait until the workers are done and the messages they posted are processed.

    A worker's result arrives as a message that may start another worker (a poll after a
    stop, for example), so the wait repeats a few rounds.
    """
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
