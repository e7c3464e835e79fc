"""Rows of the experiments table: cell text, sort keys and the incremental filter.

The store aggregates each experiment's latest run in SQL (``Store.experiment_summaries``);
this module only turns those summaries into display rows, so filtering and sorting 1,000
experiments is a pass over 1,000 small tuples on the UI side, with no query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workbench.store import ExperimentSummary
from workbench.tui.formatting import (
    format_age,
    format_devices,
    format_loss,
    format_rate,
    format_step,
    format_tags,
)


@dataclass(frozen=True)
class Column:
    """A column of the experiments table: key, header and the summary value it sorts by."""

    key: str
    label: str
    sort_value: Callable[[ExperimentSummary], Any]


def _heartbeat_seconds(summary: ExperimentSummary) -> float | None:
    # Newest heartbeat first when sorting ascending by age, so a timestamp sorts reversed.
    return None if summary.heartbeat_at is None else -summary.heartbeat_at.timestamp()


COLUMNS: tuple[Column, ...] = (
    Column("exp_id", "experiment", lambda s: s.exp_id.lower()),
    Column("status", "status", lambda s: s.status.value if s.status else None),
    Column("step", "step", lambda s: s.last_step),
    Column("best", "best", lambda s: s.best_val_loss),
    Column("last", "last", lambda s: s.last_val_loss),
    Column("tps", "tok/s", lambda s: s.tokens_per_sec),
    Column("devices", "dev", lambda s: format_devices(s.devices) if s.devices is not None else None),
    Column("beat", "beat", _heartbeat_seconds),
    Column("age", "age", lambda s: -s.created_at.timestamp()),
    Column("tags", "tags", lambda s: format_tags(s.tags) or None),
)
COLUMN_KEYS = tuple(column.key for column in COLUMNS)

# Words a filter token may start with to search one field only, as in ``status:running``.
FILTER_FIELDS = ("exp_id", "status", "tag", "notes", "parent", "devices")


def row_cells(summary: ExperimentSummary, now: datetime) -> tuple[str, ...]:
    """Return the cell text of one experiment, in ``COLUMNS`` order."""
    return (
        summary.exp_id,
        summary.status.value if summary.status else "no runs",
        format_step(summary.last_step, summary.total_steps),
        format_loss(summary.best_val_loss),
        format_loss(summary.last_val_loss),
        format_rate(summary.tokens_per_sec),
        format_devices(summary.devices),
        format_age(summary.heartbeat_at, now),
        format_age(summary.created_at, now),
        format_tags(summary.tags),
    )


def _field_texts(summary: ExperimentSummary) -> dict[str, str]:
    return {
        "exp_id": summary.exp_id.lower(),
        "status": summary.status.value if summary.status else "no runs",
        "tag": " ".join(str(tag).lower() for tag in summary.tags or ()),
        "notes": (summary.notes or "").lower(),
        "parent": (summary.parent_exp_id or "").lower(),
        "devices": format_devices(summary.devices),
    }


def matches_filter(summary: ExperimentSummary, query: str) -> bool:
    """Return whether an experiment matches every whitespace-separated token of ``query``.

    A plain token matches a substring of the id, status, tags, notes or parent id, case
    insensitively. ``field:text`` restricts a token to one of ``FILTER_FIELDS``; an unknown
    field name makes the whole token plain text, so typing never hides everything by surprise.
    """
    fields = _field_texts(summary)
    for token in query.lower().split():
        name, sep, text = token.partition(":")
        if sep and name in FILTER_FIELDS:
            if text not in fields[name]:
                return False
        elif not any(token in value for value in fields.values()):
            return False
    return True


def sort_summaries(
    summaries: Iterable[ExperimentSummary], column_key: str, descending: bool = False
) -> list[ExperimentSummary]:
    """Return the summaries ordered by one column. Missing values go last in either direction."""
    column = next((c for c in COLUMNS if c.key == column_key), None)
    if column is None:
        raise ValueError(f"unknown column {column_key!r}; expected one of {', '.join(COLUMN_KEYS)}")
    present: list[tuple[Any, ExperimentSummary]] = []
    missing: list[ExperimentSummary] = []
    for summary in summaries:
        value = column.sort_value(summary)
        if value is None:
            missing.append(summary)
        else:
            present.append((value, summary))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [summary for _, summary in present] + missing


def visible_rows(
    summaries: Sequence[ExperimentSummary], query: str, column_key: str, descending: bool
) -> list[ExperimentSummary]:
    """Return the experiments the table shows: filtered by ``query``, then sorted."""
    if query.strip():
        summaries = [summary for summary in summaries if matches_filter(summary, query)]
    return sort_summaries(summaries, column_key, descending)
