"""The run monitor pane: live loss curves, run facts, host load and the log tail of one run."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message

from workbench.tui.curves import SMOOTHING_LEVELS, ZOOM_LEVELS, Point, append_new, next_level
from workbench.tui.run_snapshot import AUX_METRICS, RunSnapshot, read_run_snapshot
from workbench.tui.screens.base import PaneScreen
from workbench.tui.screens.run_picker import RunPickerScreen
from workbench.tui.widgets.curve_plot import CurvePlot, Series
from workbench.tui.widgets.log_tail import LogTail
from workbench.tui.widgets.run_panel import RunPanel

# A whole-curve read returns at most this many points per metric, and the cache of a curve
# is thinned back to it once new points double it. A plot is narrower than that in cells.
MAX_POINTS = 2000
LOSS_COLORS = {"train_loss": "cyan", "val_loss": "orange"}
AUX_COLOR = "green"
# Darker shades (256-colour codes) of the colours above for the curves of the runs a
# resumed run continues: 30 is #008787, 94 is #875f00 and 28 is #008700.
HISTORY_COLORS = {"train_loss": 30, "val_loss": 94, AUX_COLOR: 28}
AUX_LABELS = {"lr": "learning rate", "grad_norm": "gradient norm", "tokens_per_sec": "tokens per second"}


class MonitorScreen(PaneScreen):
    """Follows the app's current run, polling the store every ``poll_interval`` seconds.

    The first poll of a run reads its curves whole, with those of the runs it resumed from.
    Later polls read only the points after the last cached step of each curve and append
    them, so a poll costs the same at step 100 and at step 100,000. The earlier runs of a
    resumed run are drawn in darker colours, without legend entries.
    """

    MODE = "monitor"
    BINDINGS = [
        Binding("p", "pick_run", "Run", id="monitor.pick_run", tooltip="Choose the run to watch"),
        Binding("y", "toggle_log", "Log y", id="monitor.log_scale", show=False, tooltip="Log scale for the loss axis"),
        Binding("m", "cycle_smoothing", "Smooth", id="monitor.smoothing", tooltip="Cycle the smoothing weight"),
        Binding("z", "cycle_zoom", "Zoom", id="monitor.zoom", show=False, tooltip="Zoom to the most recent steps"),
        Binding("a", "cycle_aux", "Aux plot", id="monitor.aux", tooltip="Plot lr, grad norm or throughput"),
        Binding("s", "stop", "Stop", id="monitor.stop", tooltip="Stop this run (it checkpoints first)"),
        Binding("r", "resume", "Resume", id="monitor.resume", tooltip="Continue this run from its checkpoint"),
    ]

    class SnapshotRead(Message):
        """A poll finished. It replaces an older snapshot still in the queue, so the UI draws the newest.

        Dropping an older incremental snapshot loses no points: the newer one was read after
        the same or a later cached step, so it contains them. ``generation`` is the cache
        generation the poll started from, or ``None`` for a snapshot read outside a poll.
        """

        def __init__(self, snapshot: RunSnapshot, generation: int | None = None) -> None:
            super().__init__()
            self.snapshot = snapshot
            self.generation = generation

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, MonitorScreen.SnapshotRead)

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: RunSnapshot | None = None
        self.aux_metric: str | None = None
        # Cached points per metric of ``_cached_run_id``. The generation counts resets, so an
        # incremental snapshot read before a reset is not appended to the emptied cache.
        self.curves: dict[str, list[Point]] = {}
        # Points of the runs the current run resumed from, read once with its whole curves.
        self.history: dict[str, list[Point]] = {}
        self._cached_run_id: int | None = None
        self._generation = 0

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="monitor-main"):
            with Vertical(id="monitor-plots"):
                yield CurvePlot("loss (nats/token)", id="loss-plot")
                yield CurvePlot("", id="aux-plot", empty_text="not logged yet")
            yield RunPanel(id="run-panel")
        yield LogTail(id="run-log")

    def on_mount(self) -> None:
        self.query_one("#aux-plot").display = False
        self.watch(self.app, "run_id", self._run_changed)
        self.poll_every(self.workbench_app.poll_interval, self.poll)

    def on_screen_resume(self) -> None:
        self.poll()

    def _run_changed(self, run_id: int | None) -> None:
        self.snapshot = None
        self._reset_curves()
        if run_id is None:
            self.query_one(RunPanel).show_message("No run chosen: press p, or Enter on an experiment in pane 1")
            return
        self.poll()

    def _reset_curves(self) -> None:
        self.curves = {}
        self.history = {}
        self._cached_run_id = None
        self._generation += 1

    def poll(self) -> None:
        """Read the current run's snapshot in a thread: whole the first time, then only new points."""
        run_id = self.workbench_app.run_id
        if run_id is None:
            return
        since: dict[str, int] | None = None
        first_step = None
        if self._cached_run_id == run_id:
            since = {name: points[-1][0] for name, points in self.curves.items() if points}
            train = self.curves.get("train_loss")
            first_step = train[0][0] if train else None
        self.read_snapshot(run_id, since, first_step, self._generation)

    @work(thread=True, exclusive=True, group="monitor-poll", exit_on_error=False, description="Read run")
    def read_snapshot(self, run_id: int, since: dict[str, int] | None, first_step: int | None, generation: int) -> None:
        snapshot = read_run_snapshot(
            self.workbench,
            run_id,
            now=self.workbench_app.clock(),
            max_points=MAX_POINTS,
            probe=self.workbench_app.probe,
            since=since,
            first_step=first_step,
        )
        self.post_message(self.SnapshotRead(snapshot, generation))

    def on_monitor_screen_snapshot_read(self, message: SnapshotRead) -> None:
        snapshot = message.snapshot
        if snapshot.run_id != self.workbench_app.run_id:
            return  # the user chose another run while this one was read
        if snapshot.incremental:
            if message.generation != self._generation or self._cached_run_id != snapshot.run_id:
                return  # read from a cache that was reset since; the next poll reads the run whole
            for name, points in snapshot.curves.items():
                self.curves[name] = append_new(self.curves.get(name, []), points, MAX_POINTS)
        else:
            self.curves = {name: list(points) for name, points in snapshot.curves.items()}
            self.history = {name: list(points) for name, points in snapshot.history.items()}
            self._cached_run_id = snapshot.run_id
        self.snapshot = snapshot
        self.query_one(RunPanel).show_snapshot(snapshot, self.workbench_app.clock())
        loss = [series for name in LOSS_COLORS for series in self._history_series(name, HISTORY_COLORS[name])]
        loss += [Series(name, self.curves.get(name, []), color) for name, color in LOSS_COLORS.items()]
        self.query_one("#loss-plot", CurvePlot).set_series(loss)
        self._show_aux()

    def _history_series(self, name: str, color: int) -> list[Series]:
        """Return the earlier runs' part of a curve, cut before the current run's first step, or nothing.

        The cut is made here as well as in the snapshot because the current run may have
        logged nothing when the history was read.
        """
        first = min((points[0][0] for points in self.curves.values() if points), default=None)
        points = [point for point in self.history.get(name, []) if first is None or point[0] < first]
        return [Series(f"{name} before resume", points, color, in_legend=False)] if points else []
        self.query_one(LogTail).show_lines(snapshot.log_lines)

    def _show_aux(self) -> None:
        plot = self.query_one("#aux-plot", CurvePlot)
        plot.display = self.aux_metric is not None
        if self.aux_metric is None or self.snapshot is None:
            return
        plot.plot_title = AUX_LABELS[self.aux_metric]
        history = self._history_series(self.aux_metric, HISTORY_COLORS[AUX_COLOR])
        plot.set_series([*history, Series(self.aux_metric, self.curves.get(self.aux_metric, []), AUX_COLOR)])

    # Plot settings

    def action_toggle_log(self) -> None:
        plot = self.query_one("#loss-plot", CurvePlot)
        plot.log_y = not plot.log_y

    def action_cycle_smoothing(self) -> None:
        plot = self.query_one("#loss-plot", CurvePlot)
        plot.smoothing = next_level(SMOOTHING_LEVELS, plot.smoothing)

    def action_cycle_zoom(self) -> None:
        # NOTE: zoom cuts the cached, thinned curves, so a 5% window of a long run shows about
        # 5% of MAX_POINTS points; Store.metric_curve(min_step=...) could read it at full detail.
        zoom = next_level(ZOOM_LEVELS, self.query_one("#loss-plot", CurvePlot).zoom)
        for plot in self.query(CurvePlot):
            plot.zoom = zoom

    def action_cycle_aux(self) -> None:
        choices: list[str | None] = [None, *AUX_METRICS]
        self.aux_metric = choices[(choices.index(self.aux_metric) + 1) % len(choices)]
        self._show_aux()

    # Run control

    def action_pick_run(self) -> None:
        def chosen(run_id: int | None) -> None:
            if run_id is not None:
                self.workbench_app.run_id = run_id

        picker = RunPickerScreen(self.workbench.store, "Run to monitor", current=self.workbench_app.run_id)
        self.app.push_screen(picker, chosen)

    def action_stop(self) -> None:
        run_id = self.workbench_app.run_id
        if run_id is None:
            self.notify("No run chosen; press p to choose one", severity="warning")
            return
        self.notify(f"Stopping run {run_id}: it checkpoints, then exits", title="Stop")
        self.stop_run(run_id)

    @work(thread=True, group="monitor-stop", exit_on_error=False, description="Stop run")
    def stop_run(self, run_id: int) -> None:
        run = self.workbench.stop(run_id)
        self.app.call_from_thread(self.notify, f"Run {run_id} is {run.status.value}", title="Stop")
        self.app.call_from_thread(self.poll)

    def action_resume(self) -> None:
        run_id = self.workbench_app.run_id
        if run_id is None:
            self.notify("No run chosen; press p to choose one", severity="warning")
            return
        self.resume_run(run_id)

    @work(thread=True, group="monitor-resume", exit_on_error=False, description="Resume run")
    def resume_run(self, run_id: int) -> None:
        run = self.workbench.resume(run_id)
        self.app.call_from_thread(self._resumed, run.id, run_id)

    def _resumed(self, new_run_id: int, old_run_id: int) -> None:
        self.notify(f"Run {new_run_id} continues run {old_run_id}; now watching it", title="Resume")
        self.workbench_app.run_id = new_run_id
