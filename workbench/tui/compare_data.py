"""The compare pane's data for two or more runs: a ranked metric table, curves and configs.

The table reuses the analysis suite's ``ComparisonTable`` (cells, best marks, CSV and Markdown
output). Its training rows are the best and the last value of each trainer metric per run,
aggregated in SQL by ``Store.metric_stats``. Its analysis rows are the newest stored
evaluation result of each name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.analysis.compare import Cell, ComparisonRow, ComparisonTable
from workbench.analysis.metrics import MetricSpec, metric_spec, sort_key
from workbench.store import MetricStats, Run, Store
from workbench.tui.curves import Point


@dataclass(frozen=True)
class TrainingRow:
    """A table row from a trainer metric: ``kind`` is ``best`` or ``last``."""

    metric: str
    kind: str
    spec: MetricSpec


def _training_rows() -> tuple[TrainingRow, ...]:
    rows = []
    for metric, label, unit, better in (
        ("val_loss", "val loss", "nats/token", "lower"),
        ("val_bpt", "val bits per token", "bits/token", "lower"),
        ("train_loss", "train loss", "nats/token", "lower"),
        ("tokens_per_sec", "throughput", "tokens/s", "higher"),
    ):
        for kind in ("best", "last"):
            spec = MetricSpec(f"{metric}/{kind}", f"{label}, {kind}", unit, better)
            rows.append(TrainingRow(metric, kind, spec))
    return tuple(rows)


TRAINING_ROWS = _training_rows()
STEP_SPEC = MetricSpec("step", "last step", "steps", None)
CURVE_METRICS = ("val_loss", "train_loss", "val_bpt", "tokens_per_sec")


@dataclass(frozen=True)
class RunComparison:
    """Everything the compare pane shows. ``labels`` name the runs in column order."""

    run_ids: tuple[int, ...]
    labels: tuple[str, ...]
    table: ComparisonTable
    config_texts: tuple[tuple[str, Sequence[str]], ...]
    curves: dict[int, dict[str, list[Point]]] = field(default_factory=dict)


def run_label(run: Run) -> str:
    return f"#{run.id} {run.experiment.exp_id}"


def best_flags(spec: MetricSpec, values: Sequence[float | None]) -> list[bool]:
    """Mark the best value of a row: lowest or highest per ``spec.better``, among two or more finite values."""
    finite = [value for value in values if value is not None and math.isfinite(value)]
    if spec.better is None or len(finite) < 2:
        return [False] * len(values)
    best = min(finite) if spec.better == "lower" else max(finite)
    return [value == best for value in values]


def _row(spec: MetricSpec, values: Sequence[float | None], stderrs: Sequence[float | None] | None = None) -> ComparisonRow:
    flags = best_flags(spec, values)
    stderrs = stderrs or [None] * len(values)
    return ComparisonRow(spec, tuple(Cell(value, stderr, flag) for value, stderr, flag in zip(values, stderrs, flags)))


def build_table(
    labels: Sequence[str],
    steps: Sequence[int],
    stats: Sequence[Mapping[str, MetricStats]],
    analysis: Sequence[Mapping[str, tuple[float, float | None]]],
) -> ComparisonTable:
    """Assemble the table: last step, trainer metrics (rows where some run logged the metric), analysis results."""
    rows = [_row(STEP_SPEC, [float(step) for step in steps])]
    for training in TRAINING_ROWS:
        values = []
        for run_stats in stats:
            found = run_stats.get(training.metric)
            if found is None:
                values.append(None)
            elif training.kind == "last":
                values.append(found.last)
            else:
                values.append(found.minimum if training.spec.better == "lower" else found.maximum)
        if any(value is not None for value in values):
            rows.append(_row(training.spec, values))
    names = sorted({name for results in analysis for name in results}, key=sort_key)
    for name in names:
        found = [results.get(name) for results in analysis]
        rows.append(_row(metric_spec(name), [f[0] if f else None for f in found], [f[1] if f else None for f in found]))
    return ComparisonTable(tuple(labels), tuple(rows))


def newest_eval_results(store: Store, run_id: int) -> dict[str, tuple[float, float | None]]:
    """Return the newest ``(value, stderr)`` of each evaluation result name of a run."""
    newest: dict[str, tuple[float, float | None]] = {}
    for result in store.list_eval_results(run_id):  # insertion order, so later rows win
        stderr = result.details.get("stderr") if isinstance(result.details, dict) else None
        newest[result.name] = (result.value, float(stderr) if isinstance(stderr, (int, float)) else None)
    return newest


def read_comparison(store: Store, run_ids: Sequence[int], *, max_points: int = 1000) -> RunComparison:
    """Read the runs' metrics, curves, configs and analysis results. Raises ``RunNotFound``."""
    runs = [store.get_run(run_id) for run_id in run_ids]
    labels = [run_label(run) for run in runs]
    stats = [store.metric_stats(run.id) for run in runs]
    analysis = [newest_eval_results(store, run.id) for run in runs]
    table = build_table(labels, [run.last_step for run in runs], stats, analysis)
    curves = {run.id: {name: store.metric_curve(run.id, name, max_points=max_points) for name in CURVE_METRICS} for run in runs}
    configs = tuple((run.config_text, list(run.overrides or [])) for run in runs)
    return RunComparison(tuple(run_ids), tuple(labels), table, configs, curves)


def run_config_items(text: str, overrides: Sequence[str]) -> dict[str, Any]:
    """Return a run's config as flat dotted keys, with the overrides it was launched with applied."""
    from sedd.config import ConfigError, config_to_dict, load_config

    from workbench.tui.config_view import config_items, flatten

    try:
        return flatten(config_to_dict(load_config(text, list(overrides))))
    except ConfigError:
        return config_items(text)
