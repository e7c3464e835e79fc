"""The compare pane: metric table, overlaid curves and config differences of two or more runs."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabbedContent, TabPane

from workbench.tui.compare_data import CURVE_METRICS, RunComparison, read_comparison, run_config_items
from workbench.tui.config_view import KeyDiff, differing_keys
from workbench.tui.curves import SMOOTHING_LEVELS, ZOOM_LEVELS, next_level
from workbench.tui.export import export_table
from workbench.tui.screens.base import PaneScreen
from workbench.tui.screens.confirm import PromptScreen
from workbench.tui.screens.run_picker import RunsChooserScreen
from workbench.tui.widgets.comparison_table import ComparisonView
from workbench.tui.widgets.curve_plot import CurvePlot, Series, color_for
from workbench.tui.widgets.key_diff_table import KeyDiffTable

CURVE_TITLES = {
    "val_loss": "validation loss (nats/token)",
    "train_loss": "train loss (nats/token)",
    "val_bpt": "validation bits per token",
    "tokens_per_sec": "tokens per second",
}


class CompareScreen(PaneScreen):
    """Compares the runs marked in the experiments pane (space) or chosen here (c)."""

    MODE = "compare"
    BINDINGS = [
        Binding("c", "choose_runs", "Runs", id="compare.choose_runs", tooltip="Choose the runs to compare"),
        Binding("a", "cycle_metric", "Metric", id="compare.metric", tooltip="Plot another metric"),
        Binding("y", "toggle_log", "Log y", id="compare.log_scale", show=False),
        Binding("m", "cycle_smoothing", "Smooth", id="compare.smoothing"),
        Binding("z", "cycle_zoom", "Zoom", id="compare.zoom", show=False),
        Binding("x", "export", "Export", id="compare.export", tooltip="Write the table as CSV and Markdown"),
        Binding("f5", "refresh", "Refresh", id="compare.refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.comparison: RunComparison | None = None
        self.curve_metric = CURVE_METRICS[0]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="compare-title", classes="title-line")
        with TabbedContent(id="compare-tabs"):
            with TabPane("metrics", id="metrics-tab"):
                yield ComparisonView(id="comparison")
            with TabPane("curves", id="curves-tab"):
                yield CurvePlot(CURVE_TITLES[self.curve_metric], id="compare-plot")
            with TabPane("config", id="config-tab"):
                yield KeyDiffTable(id="compare-config")

    def on_mount(self) -> None:
        self.watch(self.app, "compare_ids", lambda _: self.load_comparison())

    def on_screen_resume(self) -> None:
        self.load_comparison()

    @work(thread=True, exclusive=True, group="compare-load", exit_on_error=False, description="Compare runs")
    def load_comparison(self) -> None:
        run_ids = list(self.workbench_app.compare_ids)
        if len(run_ids) < 2:
            self.app.call_from_thread(self._show_hint, len(run_ids))
            return
        comparison = read_comparison(self.workbench.store, run_ids)
        configs = [run_config_items(text, overrides) for text, overrides in comparison.config_texts]
        diffs = differing_keys(configs, ignore=("exp_id",))
        self.app.call_from_thread(self._show, comparison, diffs)

    def _show_hint(self, count: int) -> None:
        self.comparison = None
        marked = f"{count} run marked" if count == 1 else "no runs marked"
        self.query_one("#compare-title", Static).update(f"{marked}: mark 2 or more with space in pane 1, or press c")

    def _show(self, comparison: RunComparison, diffs: list[KeyDiff]) -> None:
        self.comparison = comparison
        self.query_one("#compare-title", Static).update(Text("comparing " + ", ".join(comparison.labels)))
        self.query_one(ComparisonView).show_table(comparison.table)
        self.query_one(KeyDiffTable).show_diff(comparison.labels, diffs, empty_text="the run configs are the same")
        self._plot()

    def _plot(self) -> None:
        plot = self.query_one(CurvePlot)
        plot.plot_title = CURVE_TITLES[self.curve_metric]
        if self.comparison is None:
            plot.set_series([])
            return
        plot.set_series(
            [
                Series(label, self.comparison.curves[run_id].get(self.curve_metric, []), color_for(run_id))
                for run_id, label in zip(self.comparison.run_ids, self.comparison.labels)
            ]
        )

    def action_choose_runs(self) -> None:
        def chosen(run_ids: list[int] | None) -> None:
            if run_ids is not None:
                self.workbench_app.compare_ids = tuple(run_ids)

        self.app.push_screen(RunsChooserScreen(self.workbench.store, self.workbench_app.compare_ids), chosen)

    def action_cycle_metric(self) -> None:
        self.curve_metric = CURVE_METRICS[(CURVE_METRICS.index(self.curve_metric) + 1) % len(CURVE_METRICS)]
        self.query_one(TabbedContent).active = "curves-tab"
        self._plot()

    def action_toggle_log(self) -> None:
        plot = self.query_one(CurvePlot)
        plot.log_y = not plot.log_y

    def action_cycle_smoothing(self) -> None:
        plot = self.query_one(CurvePlot)
        plot.smoothing = next_level(SMOOTHING_LEVELS, plot.smoothing)

    def action_cycle_zoom(self) -> None:
        plot = self.query_one(CurvePlot)
        plot.zoom = next_level(ZOOM_LEVELS, plot.zoom)

    def action_refresh(self) -> None:
        self.load_comparison()

    def action_export(self) -> None:
        if self.comparison is None:
            self.notify("Nothing to export: choose two or more runs first (c)", severity="warning")
            return
        ids = "-".join(str(run_id) for run_id in self.comparison.run_ids)
        default = self.workbench.store.workdir / "comparisons" / f"runs-{ids}"

        def export(stem: str | None) -> None:
            if stem and self.comparison is not None:
                self.export_files(stem)

        self.app.push_screen(PromptScreen("Export to (.csv and .md are added):", str(default)), export)

    @work(thread=True, group="compare-export", exit_on_error=False, description="Export comparison")
    def export_files(self, stem: str) -> None:
        if self.comparison is None:
            return
        csv_path, markdown_path = export_table(self.comparison.table, stem)
        self.app.call_from_thread(self.notify, f"Wrote {csv_path} and {markdown_path}", title="Export", markup=False)
