"""SVG snapshots of every pane at 80x24 on the seeded demo store (pytest-textual-snapshot).

The store, the clock and the host readings are fixed, so a changed snapshot means a changed
screen. One snapshot per pane runs by default; the variants (a filter, a config problem, the
config diff) are marked slow. After an intended change, review the new screens and accept them with
``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pytest
from textual.pilot import Pilot

from textual.widgets import Input, TextArea

from workbench.services import Workbench
from workbench.tui.app import WorkbenchApp, create_app
from workbench.tui.demo_store import DEMO_NOW, seed_demo_store
from workbench.tui.system import SystemReading
from workbench.tui.testing import settle

# NOTE: under load the compare table's SVG is sometimes cut into text segments of other
# lengths although the screen reads the same, so a failed comparison is retried.
pytestmark = pytest.mark.flaky(reruns=2)

TERMINAL = (80, 24)
GIB = 1024**3


def fixed_probe() -> SystemReading:
    return SystemReading(cpu_percent=37.0, ram_used=5.5 * GIB, ram_total=31.3 * GIB)


@pytest.fixture
def demo_app(tmp_path) -> WorkbenchApp:
    workbench = Workbench(str(tmp_path / "snapshots.db"))
    seed_demo_store(workbench.store)
    return create_app(
        workbench, keymap={}, clock=lambda: DEMO_NOW, probe=fixed_probe, poll_interval=0, reconcile_interval=0
    )


def keys_then_settle(
    *keys: str, run_id: int | None = None, compare: Sequence[int] = (), validate: bool = False,
    focus: str | None = None,
) -> Callable[[Pilot], Awaitable[None]]:
    """Return a ``run_before`` that sets the current and compared runs, presses keys and waits.

    With ``validate`` it also waits out the editor's typing pause, so the problems are shown.
    ``focus`` names a widget to focus last: the app moves focus after a refresh, which on a
    loaded machine can land after the snapshot is taken.
    """

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        app = pilot.app
        if run_id is not None:
            app.run_id = run_id
        if compare:
            app.compare_ids = tuple(compare)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if validate:
            await pilot.pause(0.4)
            await settle(pilot)
        if focus is not None:
            pilot.app.screen.query_one(focus).focus()
            await settle(pilot)
        freeze_cursors(pilot)

    return run_before


def freeze_cursors(pilot: Pilot) -> None:
    """Stop cursor blinking, so a snapshot never catches the cursor half-way."""
    for widget in pilot.app.screen.query("TextArea, Input"):
        if isinstance(widget, (TextArea, Input)):
            widget.cursor_blink = False


def test_snapshot_experiments(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("down", "space"))


@pytest.mark.slow
def test_snapshot_experiments_filtered(snap_compare, demo_app):
    run_before = keys_then_settle("slash", *"tag:abla", "enter")
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=run_before)


def test_snapshot_editor(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("e", validate=True, focus="#config-text"))


@pytest.mark.slow
def test_snapshot_editor_problem(snap_compare, demo_app):
    async def run_before(pilot: Pilot) -> None:
        await keys_then_settle("e", validate=True)(pilot)
        editor = pilot.app.screen.query_one("#config-text")
        editor.load_text(editor.text.replace("n_heads: 4", "n_heads: 5"))
        await keys_then_settle(validate=True)(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()

    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=run_before)


def test_snapshot_monitor(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("enter"))


def test_snapshot_sampling(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("4", run_id=2))


def test_snapshot_infill(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("5", run_id=2))


def test_snapshot_compare(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("6", compare=(2, 3, 5)))


@pytest.mark.slow
def test_snapshot_compare_config(snap_compare, demo_app):
    run_before = keys_then_settle("6", "right", "right", compare=(2, 3, 5))
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=run_before)


def test_snapshot_help(snap_compare, demo_app):
    assert snap_compare(demo_app, terminal_size=TERMINAL, run_before=keys_then_settle("f1"))
