"""Tables and value formats the command line prints (rich loads only when a table is drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from workbench.services import CheckpointInfo
    from workbench.store import ExperimentSummary, Run

STATUS_STYLES = {
    "queued": "cyan",
    "running": "bold green",
    "completed": "green",
    "stopped": "yellow",
    "failed": "bold red",
    "diverged": "red",
    "lost": "magenta",
}


# Width for output that goes to a file or a pipe, where rich would otherwise assume 80 columns
# and cut table cells short.
PIPE_WIDTH = 160


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    out = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out.width = max(out.width, PIPE_WIDTH)
    return out


def number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def throughput(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def steps(step: int | None, total: int | None) -> str:
    if step is None:
        return "-"
    return f"{step}/{total}" if total else str(step)


def devices(values: Sequence[Any] | None) -> str:
    if values is None:
        return "-"
    return "cpu" if not values else "gpu " + ",".join(map(str, values))


def when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M")


def status(value: Any) -> str:
    if value is None:
        return "-"
    text = getattr(value, "value", str(value))
    return f"[{STATUS_STYLES.get(text, '')}]{text}[/]"


def experiments_table(summaries: Sequence[ExperimentSummary]) -> Table:
    from rich.table import Table

    table = Table(title="Experiments", title_justify="left")
    for column in ("experiment", "runs", "run", "status", "step", "best val (nats/tok)", "last val (nats/tok)", "tokens/s", "devices", "tags"):
        table.add_column(column, no_wrap=column in ("experiment", "status"))
    for summary in summaries:
        table.add_row(
            summary.exp_id, str(summary.run_count), "-" if summary.run_id is None else str(summary.run_id),
            status(summary.status), steps(summary.last_step, summary.total_steps), number(summary.best_val_loss),
            number(summary.last_val_loss), throughput(summary.tokens_per_sec), devices(summary.devices),
            ", ".join(map(str, summary.tags)),
        )  # fmt: skip
    return table


def runs_table(runs: Sequence[Run], title: str = "Runs") -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("run", "experiment", "status", "step", "devices", "host", "pid", "started", "message"):
        table.add_column(column, no_wrap=column in ("run", "experiment", "status"))
    for run in runs:
        table.add_row(
            str(run.id), run.experiment.exp_id, status(run.status), steps(run.last_step, run.total_steps),
            devices(run.devices), run.host or "-", "-" if run.pid is None else str(run.pid), when(run.started_at),
            _resumed(run) + (run.message or ""),
        )  # fmt: skip
    return table


def checkpoints_table(checkpoints: Sequence[CheckpointInfo], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("checkpoint", "step", "best", "size", "modified"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("step", "size") else "left")
    for info in checkpoints:
        table.add_row(
            info.name, "-" if info.step is None else str(info.step), "best" if info.is_best else "",
            file_size(info.size), when(info.modified_at),
        )  # fmt: skip
    return table


def file_size(count: int) -> str:
    """Return a byte count in binary units: ``512 B``, ``3.2 MiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _resumed(run: Run) -> str:
    return f"resumed from run {run.resumed_from_id}. " if run.resumed_from_id is not None else ""
