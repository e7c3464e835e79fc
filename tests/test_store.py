"""Tests of the experiment store on real SQLite files: CRUD, constraints, records, schema."""

from __future__ import annotations

import sqlite3
from datetime import timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from workbench.store import (
    MIGRATIONS,
    ExperimentExists,
    ExperimentNotFound,
    InvalidConfig,
    Migration,
    RunActive,
    RunNotFound,
    RunStatus,
    SchemaTooNew,
    Store,
    StoreError,
    resolve_url,
)

CONFIG = "exp_id: base\ntraining:\n  steps: 10\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "experiments.db")
    yield opened
    opened.close()


@pytest.fixture
def run_id(store: Store) -> int:
    store.create_experiment("base", CONFIG)
    return store.create_run("base", total_steps=10).id


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_experiment_create_and_get(store: Store) -> None:
    created = store.create_experiment("base", CONFIG, notes="first", tags=["small", "cpu"])
    loaded = store.get_experiment("base")
    assert loaded.id == created.id
    assert loaded.config_text == CONFIG
    assert loaded.notes == "first"
    assert loaded.tags == ["small", "cpu"]
    assert loaded.runs == []
    assert loaded.created_at.tzinfo == timezone.utc


def test_experiment_duplicate_rejected(store: Store) -> None:
    store.create_experiment("base", CONFIG)
    with pytest.raises(ExperimentExists) as caught:
        store.create_experiment("base", "exp_id: base\n")
    assert str(caught.value) == (
        "experiment 'base' already exists; choose another exp_id, or copy it with `workbench clone base NEW_ID`"
    )
    assert count_rows(Path(store.url.database), "experiments") == 1


def test_experiment_missing_names_remedy(store: Store) -> None:
    with pytest.raises(ExperimentNotFound) as caught:
        store.get_experiment("nope")
    assert "experiment 'nope' not found" in str(caught.value)
    assert "`workbench list`" in str(caught.value)


@pytest.mark.parametrize("exp_id", ["", "has space", "x" * 65, "semi;colon"])
def test_experiment_invalid_id(store: Store, exp_id: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        store.create_experiment(exp_id, CONFIG)
    assert caught.value.key_path == "exp_id"
    assert repr(exp_id) in str(caught.value)


def test_experiment_update_fields(store: Store) -> None:
    store.create_experiment("base", CONFIG)
    before = store.get_experiment("base").updated_at
    store.update_experiment("base", notes="edited", tags=["new"])
    after = store.get_experiment("base")
    assert after.notes == "edited"
    assert after.tags == ["new"]
    assert after.config_text == CONFIG
    assert after.updated_at >= before


def test_clone_parent_recorded(store: Store) -> None:
    parent = store.create_experiment("base", CONFIG)
    store.create_experiment("copy", CONFIG.replace("base", "copy"), parent_id=parent.id)
    assert store.get_experiment("copy").parent.exp_id == "base"


def test_run_snapshots_config(store: Store, run_id: int) -> None:
    store.update_experiment("base", config_text="exp_id: base\ntraining:\n  steps: 99\n")
    run = store.get_run(run_id)
    assert run.config_text == CONFIG
    assert run.status is RunStatus.QUEUED
    assert run.total_steps == 10
    assert run.experiment.exp_id == "base"


def test_run_missing_raises(store: Store) -> None:
    with pytest.raises(RunNotFound) as caught:
        store.get_run(42)
    assert str(caught.value) == "run 42 not found; run `workbench status` to see the runs in this store"


def test_run_update_unknown_field(store: Store, run_id: int) -> None:
    with pytest.raises(ValueError, match="cannot update run fields \\['experiment_id'\\]"):
        store.update_run(run_id, experiment_id=5)


def test_finish_run_keeps_reported_status(store: Store, run_id: int) -> None:
    store.finish_run(run_id, RunStatus.COMPLETED, message="done")
    unchanged = store.finish_run(run_id, RunStatus.LOST, message="gone", only_if_active=True)
    run = store.get_run(run_id)
    assert unchanged is None
    assert run.status is RunStatus.COMPLETED
    assert run.message == "done"
    assert run.ended_at is not None


def test_finish_run_rejects_active_status(store: Store, run_id: int) -> None:
    with pytest.raises(ValueError, match="final status"):
        store.finish_run(run_id, RunStatus.RUNNING)


def test_delete_refused_while_running(store: Store, run_id: int) -> None:
    store.update_run(run_id, status=RunStatus.RUNNING)
    with pytest.raises(RunActive) as caught:
        store.delete_experiment("base")
    assert "active runs (1)" in str(caught.value)
    assert store.get_experiment("base").exp_id == "base"


def test_delete_cascades_to_records(store: Store, run_id: int) -> None:
    path = Path(store.url.database)
    store.log_metrics(run_id, 1, {"train_loss": 2.0})
    store.add_samples(run_id, 1, "snapshot", ["text"])
    store.add_eval_result(run_id, "test_bpt", 1.5)
    store.finish_run(run_id, RunStatus.COMPLETED)
    store.delete_experiment("base")
    for table in ("experiments", "runs", "metrics", "samples", "eval_results"):
        assert count_rows(path, table) == 0, table


def test_sqlite_pragmas_on_every_connection(store: Store) -> None:
    for _ in range(2):
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_foreign_key_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError):
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO metrics (run_id, step, name, value, wall_time) VALUES (999, 1, 'x', 1.0, 0.0)")
            )


def test_status_check_constraint(store: Store, run_id: int) -> None:
    with pytest.raises(IntegrityError):
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE runs SET status = 'paused' WHERE id = :id"), {"id": run_id})


def test_metrics_bulk_insert_and_curve(store: Store, run_id: int) -> None:
    rows = [(step, "train_loss", 10.0 / (step + 1), 1000.0 + step) for step in range(5000)]
    rows += [(step, "val_loss", 3.0 - step / 1000, 2000.0) for step in range(0, 5000, 500)]
    assert store.add_metrics(run_id, rows) == 5010
    curve = store.metric_curve(run_id, "train_loss")
    assert len(curve) == 5000
    assert curve[0] == (0, 10.0)
    assert curve[-1] == (4999, 10.0 / 5000)
    assert [step for step, _ in curve] == list(range(5000))
    assert store.metric_names(run_id) == ["train_loss", "val_loss"]


def test_metric_curve_downsampled(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [(step, "lr", float(step), 0.0) for step in range(1001)])
    curve = store.metric_curve(run_id, "lr", max_points=101)
    assert len(curve) <= 101
    assert curve[0] == (0, 0.0)
    assert curve[-1] == (1000, 1000.0)
    assert all(step == value for step, value in curve)
    assert [step for step, _ in curve] == sorted(step for step, _ in curve)


def test_metric_curve_short_not_thinned(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [(step, "lr", 1.0, 0.0) for step in range(5)])
    assert len(store.metric_curve(run_id, "lr", max_points=10)) == 5


def test_metric_curve_rejects_one_point(store: Store, run_id: int) -> None:
    with pytest.raises(ValueError, match="max_points must be at least 2"):
        store.metric_curve(run_id, "lr", max_points=1)


def test_metric_curve_min_step_window(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [(step, "lr", float(step), 0.0) for step in range(100)])
    assert store.metric_curve(run_id, "lr", min_step=97) == [(97, 97.0), (98, 98.0), (99, 99.0)]
    assert store.metric_curve(run_id, "lr", min_step=100) == []
    assert len(store.metric_curve(run_id, "lr", min_step=None)) == 100


def test_metric_curve_min_step_thinned(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [(step, "lr", float(step), 0.0) for step in range(1000)])
    window = store.metric_curve(run_id, "lr", max_points=11, min_step=500)
    assert len(window) <= 11
    assert window[0] == (500, 500.0)
    assert window[-1] == (999, 999.0)


def test_metric_stats_min_max_last(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [(1, "val_loss", 3.0, 0.0), (2, "val_loss", 2.0, 1.0), (3, "val_loss", 2.5, 2.0)])
    store.add_metrics(run_id, [(1, "lr", 0.1, 0.0)])
    stats = store.metric_stats(run_id)
    assert set(stats) == {"val_loss", "lr"}
    assert stats["val_loss"].minimum == 2.0
    assert stats["val_loss"].maximum == 3.0
    assert stats["val_loss"].last == 2.5
    assert stats["lr"].last == 0.1


def test_metric_stats_empty_run(store: Store, run_id: int) -> None:
    assert store.metric_stats(run_id) == {}


def test_last_metrics_of_names(store: Store, run_id: int) -> None:
    store.add_metrics(run_id, [(step, "train_loss", 10.0 - step, 0.0) for step in range(5)])
    store.add_metrics(run_id, [(step, "lr", float(step), 0.0) for step in range(3)])
    assert store.last_metrics(run_id, ["train_loss", "missing"]) == {"train_loss": (4, 6.0)}
    assert store.last_metrics(run_id) == {"train_loss": (4, 6.0), "lr": (2, 2.0)}


def test_metrics_unknown_run(store: Store) -> None:
    with pytest.raises(RunNotFound):
        store.add_metrics(7, [(1, "lr", 1.0, 0.0)])


def test_summaries_use_latest_run(store: Store, run_id: int) -> None:
    store.create_experiment("empty", "exp_id: empty\n")
    store.log_metrics(run_id, 100, {"val_loss": 2.5})
    second = store.create_run("base", total_steps=20)
    store.update_run(second.id, status=RunStatus.RUNNING, devices=[0, 1], last_step=300)
    store.add_metrics(
        second.id,
        [(100, "val_loss", 2.0, 0.0), (200, "val_loss", 1.5, 0.0), (300, "val_loss", 1.7, 0.0),
         (300, "tokens_per_sec", 1234.0, 0.0)],
    )  # fmt: skip
    summaries = {summary.exp_id: summary for summary in store.experiment_summaries()}
    base = summaries["base"]
    assert base.run_count == 2
    assert base.run_id == second.id
    assert base.status is RunStatus.RUNNING
    assert base.last_step == 300
    assert base.total_steps == 20
    assert base.best_val_loss == 1.5
    assert base.last_val_loss == 1.7
    assert base.tokens_per_sec == 1234.0
    assert base.devices == [0, 1]
    assert summaries["empty"].run_id is None
    assert summaries["empty"].run_count == 0


def test_last_metrics_per_name(store: Store, run_id: int) -> None:
    store.log_metrics(run_id, 1, {"train_loss": 3.0, "lr": 1e-4})
    store.log_metrics(run_id, 2, {"train_loss": 2.5})
    assert store.last_metrics(run_id) == {"train_loss": (2, 2.5), "lr": (1, 1e-4)}


def test_samples_newest_first(store: Store, run_id: int) -> None:
    store.add_samples(run_id, 10, "snapshot", ["a", "b"])
    store.add_samples(run_id, 20, "infill", ["c"], prompts=["p[MASK:3]"])
    samples = store.list_samples(run_id)
    assert [sample.text for sample in samples] == ["c", "b", "a"]
    assert samples[0].prompt == "p[MASK:3]"
    assert [sample.text for sample in store.list_samples(run_id, kind="snapshot", limit=1)] == ["b"]


def test_samples_prompt_count_checked(store: Store, run_id: int) -> None:
    with pytest.raises(ValueError, match="got 1 prompts for 2 texts"):
        store.add_samples(run_id, 1, "infill", ["a", "b"], prompts=["p"])


def test_eval_result_details_round_trip(store: Store, run_id: int) -> None:
    store.add_eval_result(run_id, "test_bpt", 1.25, {"blocks": 256, "times": [0.1, 0.5]})
    (result,) = store.list_eval_results(run_id)
    assert result.value == 1.25
    assert result.details == {"blocks": 256, "times": [0.1, 0.5]}


def test_heartbeat_sets_step(store: Store, run_id: int) -> None:
    store.record_heartbeat(run_id, 17)
    run = store.get_run(run_id)
    assert run.last_step == 17
    assert run.heartbeat_at is not None
    with pytest.raises(RunNotFound):
        store.record_heartbeat(999)


def test_schema_fresh_version(store: Store) -> None:
    path = Path(store.url.database)
    assert store.schema_version == MIGRATIONS[-1].version
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    assert rows == [(migration.version, migration.name) for migration in MIGRATIONS]


def test_schema_upgrade_applies_new_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store(path).close()

    def add_priority(connection) -> None:
        connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN priority INTEGER DEFAULT 0")

    newer = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "add_run_priority", add_priority))
    upgraded = Store(path, migrations=newer)
    upgraded.close()
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(runs)")]
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_version ORDER BY version")]
    assert upgraded.schema_version == len(MIGRATIONS) + 1
    assert "priority" in columns
    assert versions == list(range(1, len(MIGRATIONS) + 2))


def test_schema_newer_rejected(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', '2030-01-01')")
    with pytest.raises(SchemaTooNew) as caught:
        Store(path)
    message = str(caught.value)
    assert "has schema version 99" in message
    assert f"supports versions up to {MIGRATIONS[-1].version}" in message
    assert "pip install -U sedd-workbench" in message


def test_schema_unversioned_tables_rejected(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="no schema_version table"):
        Store(path)


def test_migrations_must_be_ordered(tmp_path: Path) -> None:
    shuffled = (Migration(2, "b", lambda connection: None), Migration(1, "a", lambda connection: None))
    with pytest.raises(ValueError, match="must be 1, 2, 3"):
        Store(tmp_path / "x.db", migrations=shuffled)


def test_store_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="folder .* does not exist"):
        Store(tmp_path / "absent" / "experiments.db")


def test_resolve_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_DB", raising=False)
    assert resolve_url(None).database == str(tmp_path / "experiments.db")
    assert resolve_url("sub/x.db").database == str(tmp_path / "sub" / "x.db")
    monkeypatch.setenv("WORKBENCH_DB", "postgresql://user@localhost/workbench")
    assert resolve_url(None).get_backend_name() == "postgresql"
    assert resolve_url("other.db").database == str(tmp_path / "other.db")


def test_in_memory_store_shared_connection() -> None:
    store = Store("sqlite://")
    store.create_experiment("base", CONFIG)
    run = store.create_run("base")
    store.log_metrics(run.id, 1, {"lr": 0.1})
    assert store.metric_curve(run.id, "lr") == [(1, 0.1)]
    assert store.workdir == Path.cwd()
