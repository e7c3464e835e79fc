"""Tests of StoreTracker and HeartbeatThread against a real SQLite store."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from workbench.store import RunStatus, Store
from workbench.tracking import HeartbeatThread, StoreTracker


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "experiments.db")
    opened.create_experiment("exp", "exp_id: exp\n")
    yield opened
    opened.close()


@pytest.fixture
def run_id(store: Store) -> int:
    return store.create_run("exp").id


def test_tracker_buffers_until_interval(store: Store, run_id: int) -> None:
    tracker = StoreTracker(store, run_id, flush_interval_s=3600, max_buffered_rows=1000)
    tracker.log_metrics(1, {"train_loss": 2.0, "lr": 1e-4})
    assert store.metric_curve(run_id, "train_loss") == []
    tracker.flush()
    assert store.metric_curve(run_id, "train_loss") == [(1, 2.0)]
    assert store.get_run(run_id).last_step == 1


def test_tracker_flushes_full_buffer(store: Store, run_id: int) -> None:
    tracker = StoreTracker(store, run_id, flush_interval_s=3600, max_buffered_rows=4)
    tracker.log_metrics(1, {"a": 1.0, "b": 2.0})
    tracker.log_metrics(2, {"a": 3.0, "b": 4.0})
    assert store.metric_curve(run_id, "a") == [(1, 1.0), (2, 3.0)]


def test_tracker_skips_nan(store: Store, run_id: int) -> None:
    tracker = StoreTracker(store, run_id, flush_interval_s=0)
    tracker.log_metrics(3, {"train_loss": math.nan, "lr": 0.5, "grad_norm": math.inf})
    assert store.metric_curve(run_id, "train_loss") == []
    assert store.metric_curve(run_id, "lr") == [(3, 0.5)]
    assert store.metric_curve(run_id, "grad_norm") == [(3, math.inf)]


def test_tracker_run_lifecycle(store: Store, run_id: int) -> None:
    tracker = StoreTracker(store, run_id, flush_interval_s=3600)
    tracker.run_started({"parameters": 1234, "dtype": object()})
    assert store.get_run(run_id).status is RunStatus.RUNNING

    tracker.log_metrics(10, {"val_loss": 1.5})
    tracker.log_samples(10, "unconditional", ["abc", "def"])
    tracker.checkpoint_saved(10, "/runs/step_10.pt", is_best=True)
    tracker.checkpoint_saved(20, "/runs/step_20.pt", is_best=False)
    tracker.run_finished("stopped", 20, "stop requested")
    tracker.close()

    run = store.get_run(run_id)
    assert run.status is RunStatus.STOPPED
    assert run.message == "stop requested"
    assert run.last_step == 20
    assert run.checkpoint_path == "/runs/step_20.pt"
    assert run.best_checkpoint_path == "/runs/step_10.pt"
    assert run.info["parameters"] == 1234
    assert run.info["dtype"].startswith("<object object")
    assert store.metric_curve(run_id, "val_loss") == [(10, 1.5)]
    assert sorted(sample.text for sample in store.list_samples(run_id)) == ["abc", "def"]


def test_tracker_rejects_unknown_status(store: Store, run_id: int) -> None:
    with pytest.raises(ValueError, match="unknown final status 'paused'"):
        StoreTracker(store, run_id).run_finished("paused", 1)


def test_heartbeat_thread_beats(store: Store, run_id: int) -> None:
    thread = HeartbeatThread(store, run_id, interval_s=0.05)
    thread.start()
    deadline = time.monotonic() + 10
    while store.get_run(run_id).heartbeat_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    thread.stop()
    assert store.get_run(run_id).heartbeat_at is not None
    assert not thread.is_alive()
