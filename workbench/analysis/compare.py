"""A side-by-side table of stored analysis results, one column per experiment.

``load_comparison`` reads the latest value of every metric of each experiment from the
store's evaluation table. ``build_comparison`` ranks plain values, so the terminal UI can
build the same table from data it has already loaded. Rows are metrics, each
labelled with its unit; the best value of a row is marked when two or more experiments have
one and the metric has a direction (see ``workbench.analysis.metrics``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from workbench.analysis.metrics import MetricSpec, metric_spec, sort_key

if TYPE_CHECKING:
    from rich.table import Table

    from workbench.store import Store

FORMATS = ("table", "csv", "markdown")
BEST_MARK = "*"


class StoredValue(NamedTuple):
    """A metric value with its standard error (None when the analysis gives none)."""

    value: float
    stderr: float | None = None


@dataclass(frozen=True)
class Cell:
    """One experiment's value of one metric; ``value`` is None when it was not measured."""

    value: float | None
    stderr: float | None
    best: bool

    def text(self) -> str:
        """Format as ``value ± stderr`` with four significant digits, ``-`` when missing."""
        if self.value is None:
            return "-"
        shown = _format_number(self.value)
        if self.stderr is not None:
            shown += f" ± {_format_number(self.stderr)}"
        return shown


@dataclass(frozen=True)
class ComparisonRow:
    """One metric across the compared experiments, cells in the table's experiment order."""

    spec: MetricSpec
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class ComparisonTable:
    """Metrics (rows) by experiments (columns)."""

    experiments: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]

    def best_experiments(self, row: ComparisonRow) -> list[str]:
        """Return the experiments whose value is marked best in ``row``."""
        return [exp_id for exp_id, cell in zip(self.experiments, row.cells) if cell.best]

    def to_text(self) -> str:
        """Render as a plain-text table; the best value of each row ends with ``*``."""
        header = ["metric [unit]", *self.experiments]
        body = [[row.spec.header, *(_marked(cell) for cell in row.cells)] for row in self.rows]
        widths = [max(len(line[column]) for line in [header, *body]) for column in range(len(header))]
        lines = [_join(header, widths), _join(["-" * width for width in widths], widths)]
        lines += [_join(line, widths) for line in body]
        return "\n".join(lines) + f"\n({BEST_MARK} best of the row)\n"

    def to_markdown(self) -> str:
        """Render as a GitHub markdown table with the best value of each row in bold."""
        lines = [
            "| metric [unit] | " + " | ".join(self.experiments) + " |",
            "| --- |" + " ---: |" * len(self.experiments),
        ]
        for row in self.rows:
            cells = [f"**{cell.text()}**" if cell.best else cell.text() for cell in row.cells]
            lines.append(f"| {row.spec.header} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """Render as CSV: one line per metric, a value and a stderr column per experiment."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        columns = [column for exp_id in self.experiments for column in (exp_id, f"{exp_id} stderr")]
        writer.writerow(["metric", "unit", "better", *columns, "best"])
        for row in self.rows:
            values = [
                item for cell in row.cells
                for item in (_csv_number(cell.value), _csv_number(cell.stderr))
            ]  # fmt: skip
            writer.writerow([row.spec.name, row.spec.unit, row.spec.better or "", *values,
                             " ".join(self.best_experiments(row))])
        return buffer.getvalue()

    def to_rich(self) -> Table:
        """Return a ``rich`` table with the best value of each row in bold green."""
        from rich.markup import escape
        from rich.table import Table

        # Units are written in square brackets, which rich would read as markup tags.
        table = Table(title="Analysis results", caption=f"{BEST_MARK} best of the row")
        table.add_column(escape("metric [unit]"))
        for exp_id in self.experiments:
            table.add_column(escape(exp_id), justify="right")
        for row in self.rows:
            cells = [
                f"[bold green]{escape(_marked(cell))}[/]" if cell.best else escape(cell.text()) for cell in row.cells
            ]
            table.add_row(escape(row.spec.header), *cells)
        return table

    def render(self, fmt: str) -> str:
        """Render in one of ``FORMATS``: ``table`` (plain text), ``csv`` or ``markdown``."""
        renderers = {"table": self.to_text, "csv": self.to_csv, "markdown": self.to_markdown}
        if fmt not in renderers:
            raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return renderers[fmt]()


def build_comparison(results: Mapping[str, Mapping[str, StoredValue]]) -> ComparisonTable:
    """Rank plain results: ``{exp_id: {metric name: StoredValue}}``, experiments in key order."""
    experiments = tuple(results)
    names = sorted({name for values in results.values() for name in values}, key=sort_key)
    rows = []
    for name in names:
        spec = metric_spec(name)
        found = [results[exp_id].get(name) for exp_id in experiments]
        best = _best_value(spec, [item.value for item in found if item is not None])
        cells = tuple(
            Cell(None, None, False) if item is None else Cell(item.value, item.stderr, item.value == best)
            for item in found
        )
        rows.append(ComparisonRow(spec, cells))
    return ComparisonTable(experiments, tuple(rows))


def latest_results(store: Store, exp_id: str) -> dict[str, StoredValue]:
    """Return the newest stored value of each metric over all runs of an experiment.

    Raises:
        ExperimentNotFound: no experiment has this id.
    """
    newest: dict[str, tuple[Any, StoredValue]] = {}
    for run in store.list_runs(exp_id):
        for result in store.list_eval_results(run.id):
            stderr = result.details.get("stderr") if isinstance(result.details, dict) else None
            stored = StoredValue(result.value, float(stderr) if stderr is not None else None)
            key = (result.created_at, result.id)
            if result.name not in newest or key > newest[result.name][0]:
                newest[result.name] = (key, stored)
    return {name: stored for name, (_, stored) in newest.items()}


def load_comparison(store: Store, exp_ids: Sequence[str]) -> ComparisonTable:
    """Build the comparison of the named experiments from the store, in the order given."""
    if not exp_ids:
        raise ValueError("no experiments to compare; name at least one exp_id")
    return build_comparison({exp_id: latest_results(store, exp_id) for exp_id in dict.fromkeys(exp_ids)})


def _best_value(spec: MetricSpec, values: list[float]) -> float | None:
    finite = [value for value in values if math.isfinite(value)]
    if spec.better is None or len(finite) < 2:
        return None
    return min(finite) if spec.better == "lower" else max(finite)


def _format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _marked(cell: Cell) -> str:
    return cell.text() + (BEST_MARK if cell.best else "")


def _join(cells: Sequence[str], widths: Sequence[int]) -> str:
    first, *rest = cells
    return "  ".join([first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:]))])
