"""Tests of the ``workbench`` command line: exact error lines, exit codes, light start-up."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.store import Store
from typer.testing import CliRunner

from workbench.cli import app

CONFIG = """\
exp_id: tiny
data:
  corpus: stdlib
  seq_len: 32
model: {hidden_size: 32, cond_dim: 16, n_blocks: 1, n_heads: 2}
training: {batch_size: 4, steps: 7, warmup: 1}
"""
HEAVY_MODULES = ("torch", "transformers", "datasets", "sedd.model", "sqlalchemy")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "experiments.db")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG)
    return path


def invoke(db: str, *arguments: str):
    return CliRunner().invoke(app, ["--db", db, *arguments])


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from workbench.cli import app\n"
        "for command in ([], ['new'], ['run'], ['sample'], ['infill'], ['quickstart'], ['logs']):\n"
        "    assert CliRunner().invoke(app, [*command, '--help']).exit_code == 0, command\n"
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY_MODULES!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_is_fast() -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", "from workbench.cli import main; main()", "--help"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0
    assert "quickstart" in result.stdout
    # The target is 0.5 s; the margin absorbs a loaded CI machine.
    assert elapsed < 1.5


def test_no_arguments_prints_help(db: str) -> None:
    result = invoke(db)
    assert result.exit_code == 0
    assert "Commands" in result.stdout


def test_init_reports_store(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_CHECKPOINTS", raising=False)
    result = invoke(db, "init")
    assert result.exit_code == 0
    assert result.stdout == (
        f"Store sqlite:///{db} is ready (schema version 1).\nRun folders go under {tmp_path / 'checkpoints'}.\n"
    )
    assert Path(db).is_file()


def test_new_then_list_and_show(db: str, config_file: Path) -> None:
    created = invoke(db, "new", "first", "--config", str(config_file), "--set", "training.steps=9")
    listed = invoke(db, "list")
    shown = invoke(db, "show", "first")
    assert created.exit_code == 0
    assert created.stdout == "Created experiment first. Train it with `workbench run first`.\n"
    assert "first" in listed.stdout
    assert "exp_id: first" in shown.stdout
    assert "steps: 9" in shown.stdout
    assert "No runs yet" in shown.stdout


def test_new_duplicate_exp_id(db: str, config_file: Path) -> None:
    invoke(db, "new", "first", "--config", str(config_file))
    result = invoke(db, "new", "first", "--config", str(config_file))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: experiment 'first' already exists; choose another exp_id, or copy it with "
        "`workbench clone first NEW_ID`\n"
    )


def test_new_bad_config_key_path(db: str, config_file: Path) -> None:
    config_file.write_text(CONFIG.replace("steps: 7", "steps: 0"))
    result = invoke(db, "new", "first", "--config", str(config_file))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: invalid config {config_file}: line 6: training.steps: 0 is out of range; expected a value >= 1\n"
    )
    assert invoke(db, "show", "first").exit_code == 1


def test_new_unknown_key_suggests(db: str, config_file: Path) -> None:
    result = invoke(db, "new", "first", "--config", str(config_file), "--set", "training.lerning_rate=1")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: invalid config: --set training.lerning_rate=1: training.lerning_rate: ")
    assert "did you mean 'training.lr'?" in result.stderr


def test_new_bad_override_value_names_set(db: str, config_file: Path) -> None:
    result = invoke(db, "new", "first", "--config", str(config_file), "--set", "training.lr=fast")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: invalid config: --set training.lr=fast: training.lr: expected a number, got string 'fast'\n"
    )


def test_new_missing_config_file(db: str, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    result = invoke(db, "new", "first", "--config", str(missing))
    assert result.exit_code == 1
    assert result.stderr == f"Error: invalid config {missing}: config file not found: '{missing}'; check the path\n"


def test_show_unknown_experiment(db: str) -> None:
    result = invoke(db, "show", "nope")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: experiment 'nope' not found; run `workbench list` to see the experiments in this "
        "store, or create it with `workbench new`\n"
    )


def test_show_lists_runs(db: str, config_file: Path) -> None:
    invoke(db, "new", "first", "--config", str(config_file))
    run = Store(db).create_run("first")
    result = invoke(db, "show", "first")
    assert result.exit_code == 0, result.stderr
    assert "exp_id: first" in result.stdout
    assert f"│ {run.id} " in result.stdout
    assert "queued" in result.stdout


def test_run_unknown_experiment(db: str) -> None:
    result = invoke(db, "run", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: experiment 'nope' not found;")


def test_run_invalid_gpu(db: str, config_file: Path) -> None:
    invoke(db, "new", "first", "--config", str(config_file))
    result = invoke(db, "run", "first", "--gpu", "gpu0")
    assert result.exit_code == 1
    assert result.stderr == "Error: invalid gpu 'gpu0': use cpu, auto, an index such as 0, or a list such as 0,1\n"


def test_clone_and_list(db: str, config_file: Path) -> None:
    invoke(db, "new", "first", "--config", str(config_file))
    result = invoke(db, "clone", "first", "second", "--set", "model.n_blocks=2")
    assert result.exit_code == 0
    assert result.stdout == "Created experiment second from first.\n"
    assert "cloned from first" in invoke(db, "show", "second").stdout


def test_update_changes_config(db: str, config_file: Path) -> None:
    invoke(db, "new", "first", "--config", str(config_file))
    result = invoke(db, "update", "first", "--set", "training.steps=70")
    assert result.exit_code == 0
    assert "steps: 70" in invoke(db, "show", "first").stdout


def test_delete_experiment(db: str, config_file: Path) -> None:
    invoke(db, "new", "first", "--config", str(config_file))
    result = invoke(db, "delete", "first", "--yes")
    assert result.exit_code == 0
    assert result.stdout == "Deleted experiment first.\n"
    assert invoke(db, "show", "first").exit_code == 1


def test_unknown_run_errors(db: str) -> None:
    for command in (["logs", "5"], ["stop", "5"], ["resume", "5"], ["sample", "5"]):
        result = invoke(db, *command)
        assert result.exit_code == 1, command
        assert result.stderr == "Error: run 5 not found; run `workbench status` to see the runs in this store\n", command


def test_status_empty(db: str) -> None:
    result = invoke(db, "status")
    assert result.exit_code == 0
    assert result.stdout == "No runs.\n"


def test_infill_template_with_prefix(db: str) -> None:
    result = invoke(db, "infill", "1", "--template", "a [MASK:3]", "--prefix", "b")
    assert result.exit_code == 1
    assert result.stderr == "Error: use either --template or --prefix/--suffix, not both\n"


def test_predictor_choice_enforced(db: str) -> None:
    result = invoke(db, "sample", "1", "--predictor", "tweedie")
    assert result.exit_code == 2
    assert "'tweedie' is not one of 'euler', 'analytic'" in result.stderr


def test_newer_store_rejected(db: str) -> None:
    import sqlite3

    invoke(db, "init")
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (50, 'x', '2030-01-01')")
    result = invoke(db, "list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the store sqlite:///{db} has schema version 50, but this workbench supports versions up to 1; "
        "upgrade the workbench (`pip install -U sedd-workbench`) or open another store with --db\n"
    )


def test_tui_hook_builds_app(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tui_app = pytest.importorskip("workbench.tui.app")
    opened = []

    class RecordingApp:
        def __init__(self, workbench) -> None:
            self.workbench = workbench

        def run(self) -> None:
            opened.append(self.workbench.store.url_text)

    monkeypatch.setattr(tui_app, "create_app", RecordingApp)
    result = invoke(db, "tui")
    assert result.exit_code == 0
    assert opened == [f"sqlite:///{db}"]


@pytest.fixture
def finished_run(db: str, tmp_path: Path) -> int:
    from workbench.store import RunStatus, Store

    store = Store(db)
    store.create_experiment("first", "exp_id: first\n")
    run = store.create_run("first", total_steps=5)
    run_dir = tmp_path / "checkpoints" / "first" / str(run.id)
    run_dir.mkdir(parents=True)
    (run_dir / "run.log").write_text("".join(f"line {number}\n" for number in range(1, 101)))
    store.update_run(run.id, run_dir=str(run_dir), last_step=5)
    store.finish_run(run.id, RunStatus.COMPLETED)
    store.close()
    return run.id


def test_logs_tail_lines(db: str, finished_run: int) -> None:
    result = invoke(db, "logs", str(finished_run), "-n", "2")
    assert result.exit_code == 0
    assert result.stdout == "line 99\nline 100\n"


def test_logs_follow_ends_with_run(db: str, finished_run: int) -> None:
    result = invoke(db, "logs", str(finished_run), "-f", "-n", "1")
    assert result.exit_code == 0
    assert result.stdout == "line 100\n"


def test_stop_finished_run(db: str, finished_run: int) -> None:
    result = invoke(db, "stop", str(finished_run))
    assert result.exit_code == 1
    assert result.stderr == f"Error: run {finished_run} is already completed; there is nothing to stop\n"


def test_status_lists_runs(db: str, finished_run: int) -> None:
    listed = invoke(db, "status")
    active = invoke(db, "status", "--active")
    assert listed.exit_code == 0
    assert "completed" in listed.stdout
    assert "5/5" in listed.stdout
    assert active.stdout == "No active runs.\n"


@pytest.fixture(scope="module")
def trained_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    from test_services import train_tiny_run

    db, run_id = train_tiny_run(tmp_path_factory.mktemp("trained"))
    return str(db), run_id


def test_checkpoints_lists_files(trained_db: tuple[str, int]) -> None:
    db, run_id = trained_db
    result = invoke(db, "checkpoints", str(run_id))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].rstrip() == f"Checkpoints of run {run_id}"
    names = [line.split()[1] for line in lines if ".pt" in line]
    assert names == ["step_2.pt", "step_4.pt", "best.pt"]
    assert "best" in next(line for line in lines if "best.pt" in line).split()[3:]


def test_checkpoints_none_yet(db: str, finished_run: int) -> None:
    result = invoke(db, "checkpoints", str(finished_run))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Run {finished_run} has no checkpoints yet;")


def test_sample_with_checkpoint(trained_db: tuple[str, int]) -> None:
    db, run_id = trained_db
    result = invoke(db, "sample", str(run_id), "--checkpoint", "best.pt", "--num", "1", "--length", "8")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1 ─")
    assert len(lines) >= 2


def test_infill_unknown_checkpoint(trained_db: tuple[str, int]) -> None:
    db, run_id = trained_db
    result = invoke(db, "infill", str(run_id), "--prefix", "a", "--checkpoint", "step_9.pt")
    assert result.exit_code == 1
    folder = Path(db).parent / "checkpoints" / "trained" / "1" / "checkpoints"
    assert result.stderr == (
        f"Error: run {run_id} has no checkpoint 'step_9.pt' in {folder}; it has step_2.pt, step_4.pt, "
        f"best.pt. Run `workbench checkpoints {run_id}` to list them\n"
    )
