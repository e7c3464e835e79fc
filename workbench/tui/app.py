"""The workbench terminal UI: one Textual app with a screen (mode) per task.

``create_app`` builds the app for the command line and for tests; ``run_tui`` runs it.
Start-up imports Textual, SQLAlchemy and the store only: torch and the model load in
the sampling workers, the first time a sample or an infilling is requested.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from workbench.errors import WorkbenchError
from workbench.tui.panes import PANES
from workbench.tui.requests import EditorRequest
from workbench.tui.system import SystemProbe, SystemReading

if TYPE_CHECKING:
    from workbench.services import Workbench
    from workbench.tui.screens.base import PaneScreen

logger = logging.getLogger(__name__)

KEYMAP_ENV_VAR = "WORKBENCH_KEYMAP"
DEFAULT_KEYMAP_PATH = Path("~/.config/sedd-workbench/keymap.yaml")

# The screen class of each pane, imported when the pane first opens: the editor's syntax
# highlighter, the plots and the analysis tables then cost nothing before the first paint.
SCREEN_CLASSES = {
    "experiments": ("workbench.tui.screens.experiments", "ExperimentsScreen"),
    "editor": ("workbench.tui.screens.editor", "EditorScreen"),
    "monitor": ("workbench.tui.screens.monitor", "MonitorScreen"),
    "sampling": ("workbench.tui.screens.sampling", "SamplingScreen"),
    "infill": ("workbench.tui.screens.infill", "InfillScreen"),
    "compare": ("workbench.tui.screens.compare", "CompareScreen"),
}


def utc_clock() -> datetime:
    return datetime.now(timezone.utc)


def screen_class(mode: str) -> type[PaneScreen]:
    """Import and return the screen class of a pane."""
    module, name = SCREEN_CLASSES[mode]
    return getattr(importlib.import_module(module), name)


def build_screen(mode: str) -> PaneScreen:
    return screen_class(mode)()


class WorkbenchApp(App[None]):
    """Experiments, config editor, run monitor, sampling, infilling and comparison.

    Args:
        workbench: the service layer over one store; every change goes through it.
        clock: returns the current time (aware UTC); tests pass a fixed one.
        probe: returns host resource readings for the monitor; tests pass a fixed one.
        poll_interval: seconds between store polls of the visible pane.
        reconcile_interval: seconds between reconciliations of run state with processes; the
            first runs at start-up. 0 turns reconciliation off (tests on synthetic stores).
    """

    CSS_PATH = "app.tcss"
    TITLE = "SEDD workbench"
    MODES = {mode: partial(build_screen, mode) for mode in SCREEN_CLASSES}
    DEFAULT_MODE = "experiments"
    BINDINGS = [
        *(
            # The pane tabs show these keys, so the footer leaves them out.
            Binding(key, f"show_pane('{mode}')", label, id=f"app.{mode}", show=False)
            for mode, key, label in PANES
        ),
        Binding("question_mark,f1", "help", "Help", id="app.help", tooltip="List every key of every pane"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Quit; runs keep going"),
    ]

    run_id: reactive[int | None] = reactive(None)
    """The run the monitor, sampling and infilling panes show."""

    compare_ids: reactive[tuple[int, ...]] = reactive(())
    """The runs marked for comparison, in the order they were marked."""

    selected_exp_id: str | None = None
    """The experiment under the cursor of the experiments table, or ``None`` when the table is empty."""

    def __init__(
        self,
        workbench: Workbench,
        *,
        clock: Callable[[], datetime] = utc_clock,
        probe: Callable[[], SystemReading] | None = None,
        poll_interval: float = 1.0,
        reconcile_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.workbench = workbench
        self.clock = clock
        self.probe = probe
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.keymap: dict[str, str] = {}

    def apply_keymap(self, keymap: Mapping[str, str]) -> None:
        """Remap keys by binding id (``{"experiments.launch": "ctrl+l"}``), remembered for the help screen."""
        self.keymap = dict(keymap)
        self.set_keymap(self.keymap)

    def on_mount(self) -> None:
        if self.reconcile_interval > 0:
            self.reconcile_runs()
            self.set_interval(self.reconcile_interval, self.reconcile_runs, name="reconcile")

    @work(thread=True, exclusive=True, group="reconcile", exit_on_error=False, description="Reconcile runs")
    def reconcile_runs(self) -> None:
        """Give a final status to runs whose process is gone, so no pane shows a dead run as running."""
        changed = self.workbench.reconcile()
        for run in changed:
            logger.info("reconciled run %d: now %s", run.id, run.status.value)

    async def action_show_pane(self, mode: str) -> None:
        """Show a pane. The config editor opens on the experiment selected in the table."""
        await self.switch_mode(mode)
        if mode == "editor":
            from workbench.tui.screens.editor import EditorScreen

            screen = self.screen
            if isinstance(screen, EditorScreen):
                screen.show_experiment(self.selected_exp_id)

    def action_help(self) -> None:
        from workbench.tui.screens.help import HelpScreen

        sections = [("all panes", list(self.BINDINGS))]
        for mode, _, label in PANES:
            sections.append((label, list(screen_class(mode).BINDINGS)))
        self.push_screen(HelpScreen(sections, self.keymap))

    async def open_editor(self, request: EditorRequest) -> None:
        """Show the config editor with a new, cloned or stored experiment config."""
        from workbench.tui.screens.editor import EditorScreen

        await self.switch_mode("editor")
        screen = self.screen
        if isinstance(screen, EditorScreen):
            screen.open(request)

    def show_run(self, run_id: int, mode: str = "monitor") -> None:
        """Make ``run_id`` the current run and show it in ``mode``."""
        self.run_id = run_id
        self.switch_mode(mode)

    def toggle_compare(self, run_id: int) -> None:
        """Add a run to the comparison, or take it out if it is already there."""
        ids = list(self.compare_ids)
        if run_id in ids:
            ids.remove(run_id)
        else:
            ids.append(run_id)
        self.compare_ids = tuple(ids)

    def report_error(self, error: BaseException, title: str) -> None:
        """Show a failed operation as an error notification with the error's own remedy."""
        if isinstance(error, WorkbenchError):
            message = str(error)
        else:
            logger.error("%s: unexpected %s", title, type(error).__name__, exc_info=error)
            message = f"{type(error).__name__}: {error}. This is a bug in the workbench; please report it."
        # markup=False: messages quote config values and templates such as "[MASK:8]".
        self.notify(message, title=title, severity="error", timeout=10, markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Turn a failed app worker (reconciliation) into a notification. Screens forward their own."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.error, title=event.worker.description or event.worker.name)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, key, label in PANES:
            yield SystemCommand(f"Pane: {label}", f"Show the {label.lower()} pane (key {key})", partial(self.action_show_pane, mode))
        yield SystemCommand("Reconcile runs", "Check every active run's process now", self.reconcile_runs)
        yield from self._pane_commands(screen)

    def _pane_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Every key of the pane the palette opened over, including those the footer leaves
        # out for lack of width, so the palette finds them by name.
        label = next((label for mode, _, label in PANES if mode == getattr(screen, "MODE", None)), None)
        if label is None:
            return
        for binding in screen.BINDINGS:
            if not isinstance(binding, Binding):
                continue
            key = self.keymap.get(binding.id or "", binding.key)
            help_text = f"{binding.tooltip or binding.description} (key {key})"
            yield SystemCommand(f"{label}: {binding.description}", help_text, partial(self.run_action, binding.action, screen))


def load_keymap(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Read a keymap file: a YAML mapping from binding id (``experiments.launch``) to keys.

    Without ``path``, ``$WORKBENCH_KEYMAP`` or ``~/.config/sedd-workbench/keymap.yaml`` is
    read when it exists. Raises ``WorkbenchError`` naming the file when it is missing (given
    explicitly) or not such a mapping, so the command line reports it as one error line.
    """
    explicit = path or os.environ.get(KEYMAP_ENV_VAR)
    file = Path(explicit or DEFAULT_KEYMAP_PATH).expanduser()
    if not file.is_file():
        if explicit:
            raise WorkbenchError(f"keymap file {file} not found; create it or unset {KEYMAP_ENV_VAR}")
        return {}
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise WorkbenchError(
            f"keymap file {file} must map binding ids to keys, e.g. 'experiments.launch: ctrl+l'; "
            "press ? in the workbench to see the ids"
        )
    return dict(data)


def create_app(
    db_url: str | Workbench | None = None,
    *,
    keymap: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] = utc_clock,
    probe: Callable[[], SystemReading] | None = None,
    poll_interval: float = 1.0,
    reconcile_interval: float = 10.0,
) -> WorkbenchApp:
    """Build the app over the store at ``db_url``, or over an open ``Workbench`` passed in its place.

    The store opens here, so a missing folder or a too-new schema fails as one error line from
    the command line, before the terminal switches to full screen. Without ``keymap``, the
    keymap file is read (see ``load_keymap``); pass ``{}`` to ignore it.
    """
    from workbench.services import Workbench

    workbench = db_url if isinstance(db_url, Workbench) else Workbench(db_url)
    app = WorkbenchApp(
        workbench,
        clock=clock,
        probe=probe if probe is not None else SystemProbe().read,
        poll_interval=poll_interval,
        reconcile_interval=reconcile_interval,
    )
    app.apply_keymap(load_keymap() if keymap is None else keymap)
    return app


def run_tui(db_url: str | None = None) -> None:
    """Open the store at ``db_url`` (default ``$WORKBENCH_DB`` or ``./experiments.db``) and run the UI."""
    create_app(db_url).run()
