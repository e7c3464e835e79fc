"""The run monitor's view of one run at one instant, read from the store in a worker thread.

``read_run_snapshot`` makes a handful of indexed queries: the run row, each plotted metric
thinned in SQL to ``max_points`` (``Store.metric_curve``) and the latest value of each
plotted metric. It adds the tail of the run's log (``Workbench.tail_log``) and a host
resource reading. A run's full metric history never reaches Python: SQLite scans the index
and sends at most ``max_points`` rows per curve.

The monitor reads each run whole once, then passes ``since`` (its last cached step per
curve) so that later polls read only the new points. Their cost then depends on the points
logged since the last poll, not on the length of the run.

A resumed run logs only the steps after its checkpoint. The whole read also follows its
``resumed_from_id`` chain and reads the earlier runs' curves (``RunSnapshot.history``), so
the plot shows the whole training history. Those runs have ended, so later polls skip them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from workbench.errors import RunNotFound
from workbench.store import Run, RunStatus
from workbench.tui.curves import Point
from workbench.tui.system import SystemReading

if TYPE_CHECKING:
    from workbench.services import Workbench

# A resume chain longer than this is cut at the oldest runs, so a corrupt chain cannot stall a poll.
MAX_RESUME_CHAIN = 50
LOSS_METRICS = ("train_loss", "val_loss")
AUX_METRICS = ("lr", "grad_norm", "tokens_per_sec")


@dataclass(frozen=True)
class RunSnapshot:
    """A run's state, curves, latest metrics, log tail and host readings at ``read_at``.

    With ``incremental`` the curves hold only the points after the steps the reader passed
    as ``since``, and the caller appends them to the curves it has. ``history`` contains the
    points of the runs this one resumed from, oldest first. It is read only when
    ``incremental`` is false and is empty for a run that was not resumed.
    """

    run_id: int
    exp_id: str
    status: RunStatus
    last_step: int
    total_steps: int | None
    devices: list[Any]
    host: str | None
    started_at: datetime | None
    ended_at: datetime | None
    heartbeat_at: datetime | None
    message: str | None
    run_dir: str | None
    read_at: datetime
    curves: dict[str, list[Point]] = field(default_factory=dict)
    incremental: bool = False
    latest: dict[str, tuple[int, float]] = field(default_factory=dict)
    eta_seconds: float | None = None
    log_lines: list[str] = field(default_factory=list)
    system: SystemReading | None = None
    resumed_from_id: int | None = None
    history: dict[str, list[Point]] = field(default_factory=dict)


def read_run_snapshot(
    workbench: Workbench,
    run_id: int,
    *,
    now: datetime,
    max_points: int = 2000,
    log_lines: int = 200,
    probe: Callable[[], SystemReading] | None = None,
    since: Mapping[str, int] | None = None,
    first_step: int | None = None,
) -> RunSnapshot:
    """Read one run's monitor state. Raises ``RunNotFound`` when the run was deleted.

    Without ``since`` every curve is read whole. With ``since``, a mapping from metric name
    to the last step the caller has, only later points of those curves are read, and a curve
    missing from it is read whole. ``first_step``, the first ``train_loss`` step the caller
    has, is then used as the curve's start in the ETA.
    """
    store = workbench.store
    run = store.get_run(run_id)
    names = LOSS_METRICS + AUX_METRICS
    after = since or {}
    curves = {
        name: store.metric_curve(
            run_id, name, max_points=max_points, min_step=after[name] + 1 if name in after else None
        )
        for name in names
    }
    history = {} if since is not None else read_resume_history(workbench, run, names, curves, max_points)
    if first_step is None and curves["train_loss"]:
        first_step = curves["train_loss"][0][0]
    latest = store.last_metrics(run_id, names)
    tokens_per_sec = latest.get("tokens_per_sec", (0, None))[1]
    eta = estimate_eta(
        status=run.status,
        last_step=run.last_step,
        total_steps=run.total_steps,
        tokens_per_sec=tokens_per_sec,
        tokens_per_step=_tokens_per_step(run.info),
        first_step=first_step,
        started_at=run.started_at,
        now=now,
    )
    return RunSnapshot(
        run_id=run.id,
        exp_id=run.experiment.exp_id,
        status=run.status,
        last_step=run.last_step,
        total_steps=run.total_steps,
        devices=list(run.devices or []),
        host=run.host,
        started_at=run.started_at,
        ended_at=run.ended_at,
        heartbeat_at=run.heartbeat_at,
        message=run.message,
        run_dir=run.run_dir,
        read_at=now,
        curves=curves,
        incremental=since is not None,
        latest=latest,
        eta_seconds=eta,
        # A queued run has no folder and no log yet.
        log_lines=workbench.tail_log(run_id, log_lines) if run.run_dir else [],
        system=probe() if probe is not None and run.status.is_active else None,
        resumed_from_id=run.resumed_from_id,
        history=history,
    )


def read_resume_history(
    workbench: Workbench, run: Run, names: Sequence[str], curves: Mapping[str, list[Point]], max_points: int
) -> dict[str, list[Point]]:
    """Return the curves of the runs ``run`` resumed from, oldest run first, joined per metric.

    Each earlier run's points stop before the first step the run after it logged, because
    the later run restarted from a checkpoint and logged those steps again. Each earlier
    curve is thinned to ``max_points`` on its own. A run missing from the store (deleted)
    ends the chain there.
    """
    store = workbench.store
    boundary = _first_step(curves)
    parts: list[dict[str, list[Point]]] = []
    seen = {run.id}
    parent_id = run.resumed_from_id
    while parent_id is not None and parent_id not in seen and len(parts) < MAX_RESUME_CHAIN:
        try:
            parent = store.get_run(parent_id)
        except RunNotFound:
            break
        seen.add(parent_id)
        part = {}
        for name in names:
            points = store.metric_curve(parent_id, name, max_points=max_points)
            part[name] = [point for point in points if boundary is None or point[0] < boundary]
        parts.append(part)
        boundary = _first_step(part) if any(part.values()) else boundary
        parent_id = parent.resumed_from_id
    history: dict[str, list[Point]] = {}
    for part in reversed(parts):
        for name, points in part.items():
            history.setdefault(name, []).extend(points)
    return history


def _first_step(curves: Mapping[str, list[Point]]) -> int | None:
    # The earliest step any curve logged: where the run started, or restarted from a checkpoint.
    firsts = [points[0][0] for points in curves.values() if points]
    return min(firsts) if firsts else None


def estimate_eta(
    *,
    status: RunStatus,
    last_step: int,
    total_steps: int | None,
    tokens_per_sec: float | None,
    tokens_per_step: float | None,
    first_step: int | None,
    started_at: datetime | None,
    now: datetime,
) -> float | None:
    """Return the seconds a running run needs to reach ``total_steps``, or ``None`` if unknown.

    The latest throughput divided by the tokens of one step gives the current step rate.
    Without those, the mean rate since ``started_at`` is used instead. It counts from the
    first logged step, so a resumed run's earlier steps do not inflate it.
    """
    if status != RunStatus.RUNNING or not total_steps:
        return None
    remaining = max(0, total_steps - last_step)
    if tokens_per_sec and tokens_per_step:
        return remaining * tokens_per_step / tokens_per_sec
    if started_at is None:
        return None
    elapsed = (now - started_at).total_seconds()
    done = last_step - (first_step or 0)
    if elapsed <= 0 or done <= 0:
        return None
    return remaining * elapsed / done


def _tokens_per_step(info: dict[str, Any] | None) -> float | None:
    # The trainer's start-up facts (``Run.info``) give the tokens of one optimizer step.
    value = (info or {}).get("tokens_per_step")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
