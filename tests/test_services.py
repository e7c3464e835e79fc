"""Tests of the service layer on a real SQLite store, with stand-in workers for launches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from test_launcher import stand_in
from workbench.errors import (
    ExperimentExists,
    ExperimentNotFound,
    InvalidConfig,
    NoCheckpoint,
    RunActive,
    WorkbenchError,
)
from workbench.services import GeneratedText, Segment, Workbench, latest_checkpoint
from workbench.services.configs import load_validated
from workbench.services.generation import parse_template
from workbench.services.quickstart import QUICKSTART_EXP_ID, quickstart_config_path
from workbench.store import RunStatus

TINY_CONFIG = """\
exp_id: tiny
tags: [test]
data:
  corpus: text
  train_files: corpus/*.txt
  seq_len: 32
model: {hidden_size: 32, cond_dim: 16, n_blocks: 1, n_heads: 2}
training: {batch_size: 4, steps: 7, warmup: 1}
"""


@pytest.fixture
def workbench(tmp_path: Path) -> Workbench:
    opened = Workbench(tmp_path / "experiments.db", worker_command=stand_in(steps=3), stop_grace_s=10)
    yield opened
    opened.close()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "tiny.yaml"
    path.write_text(TINY_CONFIG)
    return path


def experiment_count(workbench: Workbench) -> int:
    with sqlite3.connect(workbench.store.url.database) as connection:
        return connection.execute("SELECT count(*) FROM experiments").fetchone()[0]


def test_create_from_file(workbench: Workbench, config_file: Path) -> None:
    experiment = workbench.create_experiment("first", config_path=config_file)
    assert experiment.exp_id == "first"
    assert experiment.tags == ["test"]
    assert "exp_id: first" in experiment.config_text
    # Relative data paths resolve against the config file's folder.
    assert f"train_files: {config_file.parent / 'corpus' / '*.txt'}" in experiment.config_text


def test_create_from_text_resolves_cwd(workbench: Workbench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = workbench.create_experiment(config_text=TINY_CONFIG, overrides=["training.lr=1e-4"])
    assert experiment.exp_id == "tiny"
    assert "lr: 0.0001" in experiment.config_text
    assert f"train_files: {tmp_path / 'corpus' / '*.txt'}" in experiment.config_text


def test_create_resolves_path_lists(workbench: Workbench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = workbench.create_experiment(
        config_text=TINY_CONFIG, overrides=["data.test_files=[a.txt, /abs/b.txt]"]
    )
    test_files = yaml.safe_load(experiment.config_text)["data"]["test_files"]
    assert test_files == [str(tmp_path / "a.txt"), "/abs/b.txt"]


def test_create_bad_config_writes_nothing(workbench: Workbench, config_file: Path) -> None:
    config_file.write_text(TINY_CONFIG.replace("steps: 7", "steps: -1"))
    with pytest.raises(InvalidConfig) as caught:
        workbench.create_experiment("bad", config_path=config_file)
    assert caught.value.key_path == "training.steps"
    assert caught.value.line == 8
    assert str(caught.value).startswith(f"invalid config {config_file}: line 8: training.steps:")
    assert experiment_count(workbench) == 0


def test_create_bad_override(workbench: Workbench, config_file: Path) -> None:
    with pytest.raises(InvalidConfig) as caught:
        workbench.create_experiment("x", config_path=config_file, overrides=["model.n_head=4"])
    assert caught.value.key_path == "model.n_head"
    assert "did you mean 'model.n_heads'" in str(caught.value)
    assert experiment_count(workbench) == 0


def test_create_duplicate(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    with pytest.raises(ExperimentExists):
        workbench.create_experiment("one", config_path=config_file)
    assert experiment_count(workbench) == 1


def test_clone_replaces_exp_id(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    clone = workbench.clone_experiment("one", "two", ["model.n_blocks=2"])
    details = workbench.show_experiment("two")
    assert clone.exp_id == "two"
    assert "exp_id: two" in clone.config_text
    assert "n_blocks: 2" in clone.config_text
    assert details.parent_exp_id == "one"
    assert "n_blocks: 1" in workbench.store.get_experiment("one").config_text


def test_clone_errors(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    with pytest.raises(ExperimentNotFound):
        workbench.clone_experiment("missing", "two")
    with pytest.raises(ExperimentExists):
        workbench.clone_experiment("one", "one")
    with pytest.raises(InvalidConfig, match="invalid exp_id 'bad id'"):
        workbench.clone_experiment("one", "bad id")


def test_update_config_overrides(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    updated = workbench.update_config("one", overrides=["training.steps=50"])
    assert "steps: 50" in updated.config_text


def test_update_config_keeps_exp_id(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    with pytest.raises(InvalidConfig, match="the config's exp_id 'tiny' differs from experiment 'one'"):
        workbench.update_config("one", config_text=TINY_CONFIG)


def test_launch_records_run(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.launch("one", gpu="cpu")
    finished = workbench.wait(run.id, timeout=30)
    assert finished.status is RunStatus.COMPLETED
    assert finished.total_steps == 7
    assert finished.overrides == ["gpu=cpu"]
    assert finished.devices == []
    assert [run.id for run in workbench.status("one")] == [run.id]


def test_launch_unknown_experiment(workbench: Workbench) -> None:
    with pytest.raises(ExperimentNotFound):
        workbench.launch("nope")


def test_delete_refused_while_running(tmp_path: Path, config_file: Path) -> None:
    with Workbench(tmp_path / "experiments.db", worker_command=stand_in(), stop_grace_s=10) as workbench:
        workbench.create_experiment("one", config_path=config_file)
        run = workbench.launch("one")
        with pytest.raises(RunActive, match=r"experiment 'one' has active runs \(1\)"):
            workbench.delete_experiment("one")
        assert workbench.stop(run.id).status is RunStatus.STOPPED
        workbench.delete_experiment("one")
        assert experiment_count(workbench) == 0


def test_follow_run_until_final(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.launch("one")
    snapshots = list(workbench.follow_run(run.id, poll_interval_s=0.05))
    assert snapshots[-1].finished
    assert snapshots[-1].step == 3
    assert snapshots[-1].train_loss == pytest.approx(1 / 3)
    assert [snapshot.step for snapshot in snapshots] == sorted(snapshot.step for snapshot in snapshots)


def test_logs_tail_and_follow(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.launch("one")
    followed = list(workbench.follow_log(run.id, lines=0, poll_interval_s=0.05))
    assert [line for line in followed if line.startswith("step")] == ["step 1", "step 2", "step 3"]
    assert workbench.tail_log(run.id, 2) == ["step 2", "step 3"]
    assert workbench.tail_log(run.id, 0) == []


def test_resume_needs_checkpoint(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.wait(workbench.launch("one").id, timeout=30)
    with pytest.raises(NoCheckpoint, match=f"run {run.id} has no checkpoint in .*; start a fresh run"):
        workbench.resume(run.id)


def test_resume_active_rejected(tmp_path: Path, config_file: Path) -> None:
    with Workbench(tmp_path / "experiments.db", worker_command=stand_in(), stop_grace_s=10) as workbench:
        workbench.create_experiment("one", config_path=config_file)
        run = workbench.launch("one")
        try:
            with pytest.raises(RunActive, match=f"run {run.id} is still"):
                workbench.resume(run.id)
        finally:
            workbench.stop(run.id)


def test_latest_checkpoint_by_step(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.wait(workbench.launch("one").id, timeout=30)
    folder = Path(run.run_dir) / "checkpoints"
    folder.mkdir()
    for step in (90, 100, 1000):
        (folder / f"step_{step}.pt").write_bytes(b"")
    (folder / "best.pt").write_bytes(b"")
    assert latest_checkpoint(run) == folder / "step_1000.pt"


def test_parse_template_parts() -> None:
    assert parse_template("The [MASK:8] of [MASK:5].") == ["The ", 8, " of ", 5, "."]
    assert parse_template("[MASK:3]") == [3]


@pytest.mark.parametrize("template", ["no masks here", "a [MASK] b", "a [MASK:0] b"])
def test_parse_template_invalid(template: str) -> None:
    with pytest.raises(InvalidConfig):
        parse_template(template)


def test_generated_text_marked() -> None:
    text = GeneratedText((Segment("The ", False), Segment("cat", True), Segment(".", False)))
    assert text.text == "The cat."
    assert text.marked() == "The [cat]."
    assert text.marked("«", "»") == "The «cat»."


def test_sample_unstarted_run(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.store.create_run("one")
    with pytest.raises(WorkbenchError, match=f"run {run.id} never started"):
        workbench.sample(run.id)


def test_sample_invalid_count(workbench: Workbench) -> None:
    with pytest.raises(InvalidConfig, match="num must be a positive integer, got 0"):
        workbench.sample(1, num=0)



def test_quickstart_config_packaged() -> None:
    repository_config = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    assert quickstart_config_path() == repository_config.resolve()
    assert load_validated(path=quickstart_config_path()).exp_id == QUICKSTART_EXP_ID
