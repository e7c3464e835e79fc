"""A line plot of metric curves (textual-plotext) with log scale, smoothing and zoom settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import RenderResult
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from workbench.tui.curves import Point, finite, log_safe, smooth, zoom_recent

logger = logging.getLogger(__name__)

# Plotext colour names that stay distinct in 16- and 256-colour terminals.
PALETTE = ("cyan", "orange", "green", "magenta", "yellow", "blue", "red", "white")


def color_for(index: int) -> str:
    """Return a stable colour for a series: the same run id always gets the same colour."""
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class Series:
    """One curve: its label, ``(step, value)`` points in step order and colour.

    ``color`` is a plotext colour name or a 256-colour code. ``in_legend=False`` draws the
    curve without a legend entry. ``label`` must still be unique within a plot.
    """

    label: str
    points: Sequence[Point]
    color: str | int
    in_legend: bool = True


class CurvePlot(PlotextPlot):
    """Draws several curves on one set of axes. Settings are reactive and redraw at once.

    ``smoothing`` is the moving-average weight (0 draws raw values), ``zoom`` the share of
    the step range kept, counted back from the latest step, and ``log_y`` a log value axis.
    """

    DEFAULT_CSS = """
    CurvePlot { height: 1fr; min-height: 8; }
    """

    log_y: reactive[bool] = reactive(False)
    smoothing: reactive[float] = reactive(0.0)
    zoom: reactive[float] = reactive(1.0)

    def __init__(self, title: str, *, empty_text: str = "no points yet", id: str | None = None) -> None:
        super().__init__(id=id)
        self.plot_title = title
        self.empty_text = empty_text
        self._series: list[Series] = []

    @property
    def series(self) -> list[Series]:
        """The curves as last given, before smoothing and zoom."""
        return list(self._series)

    def set_series(self, series: Sequence[Series]) -> None:
        """Replace the curves and redraw."""
        self._series = list(series)
        self._replot()

    def drawn_points(self) -> dict[str, list[Point]]:
        """Return each series' points after zoom, smoothing and the log filter, as drawn."""
        ends = [s.points[-1][0] for s in self._series if s.points]
        last_step = max(ends) if ends else None
        drawn = {}
        for series in self._series:
            points = zoom_recent(finite(series.points), self.zoom, last_step)
            points = smooth(points, self.smoothing)
            drawn[series.label] = log_safe(points) if self.log_y else points
        return drawn

    def watch_log_y(self) -> None:
        self._replot()

    def watch_smoothing(self) -> None:
        self._replot()

    def watch_zoom(self) -> None:
        self._replot()

    def render(self) -> RenderResult:
        try:
            return super().render()
        except IndexError:
            # plotext 5.3 fails to draw the legend of a series whose every point falls
            # outside the canvas after rounding, because its colour list is empty. The
            # curves are drawn again without a legend.
            logger.info("plotext could not draw the legend of %r; drawing the curves without it", self.plot_title)
            self._draw(legend=False)
            return super().render()

    def _replot(self) -> None:
        self._draw(legend=True)
        self.refresh()

    def _draw(self, legend: bool) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        drawn = self.drawn_points()
        plt.title(self._title_text(drawn))
        plt.xlabel("step")
        plt.yscale("log" if self.log_y else "linear")
        for series in self._series:
            points = drawn[series.label]
            if points:
                steps, values = zip(*points)
                label = series.label if legend and series.in_legend else None
                plt.plot(steps, values, label=label, color=series.color, marker="braille")

    def _title_text(self, drawn: dict[str, list[Point]]) -> str:
        settings = []
        if self.log_y:
            settings.append("log")
        if self.smoothing:
            settings.append(f"smooth {self.smoothing:g}")
        if self.zoom < 1.0:
            settings.append(f"last {self.zoom:.0%}")
        suffix = f" ({', '.join(settings)})" if settings else ""
        if not any(drawn.values()):
            suffix += f": {self.empty_text}"
        return self.plot_title + suffix
