"""Tests of the service layer on a real SQLite store.

Launches use stand-in workers. Checkpoint choice, sampling and cancellation use one tiny model
trained in this process, once per module.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
import yaml

from test_launcher import stand_in
from workbench.errors import (
    ExperimentExists,
    ExperimentNotFound,
    GenerationCancelled,
    InvalidConfig,
    NoCheckpoint,
    RunActive,
    WorkbenchError,
)
from workbench.services import GeneratedText, Segment, Workbench, latest_checkpoint
from workbench.services.checkpoints import load_checkpoint_model
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


# Trains in a few seconds on a CPU, tokenizing included: steps 2 and 4 write step files, and best.pt follows
# the lower of the two validation losses.
TRAINED_CONFIG = """\
exp_id: trained
gpu: cpu
data: {{corpus: stdlib, tokenizer: char, seq_len: 32, max_bytes: 40000, cache_dir: {cache_dir}}}
model: {{hidden_size: 32, cond_dim: 16, n_blocks: 1, n_heads: 2, dropout: 0.0}}
diffusion: {{sampling: {{steps: 4}}}}
training:
  batch_size: 8
  steps: 4
  warmup: 2
  lr: 1.0e-3
  ema: 0.9
  log_every: 1
  eval_every: 2
  eval_blocks: 8
  eval_times: 2
  snapshot_every: 0
  checkpoint_every: 2
  keep_checkpoints: 2
"""


def train_tiny_run(root: Path) -> tuple[Path, int]:
    """Train a tiny model in this process and record it as a completed run; return the store path and run id."""
    from sedd.config import load_config
    from sedd.train import train

    from workbench.store import Store

    config_text = TRAINED_CONFIG.format(cache_dir=root / "cache")
    run_dir = root / "checkpoints" / "trained" / "1"
    train(load_config(config_text), run_dir)
    store = Store(root / "experiments.db")
    try:
        store.create_experiment("trained", config_text)
        run = store.create_run("trained", total_steps=4)
        store.update_run(run.id, run_dir=str(run_dir), last_step=4)
        store.finish_run(run.id, RunStatus.COMPLETED)
    finally:
        store.close()
    return root / "experiments.db", run.id


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workbench, int]:
    db, run_id = train_tiny_run(tmp_path_factory.mktemp("trained"))
    opened = Workbench(db)
    yield opened, run_id
    opened.close()


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



def test_list_checkpoints_steps_and_best(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    found = workbench.list_checkpoints(run_id)
    assert [info.name for info in found] == ["step_2.pt", "step_4.pt", "best.pt"]
    assert [info.step for info in found[:2]] == [2, 4]
    best = found[-1]
    assert best.is_best
    assert best.step in (2, 4)
    # best.pt is a hard link of the step file written with it, which is marked best too.
    assert [info.is_best for info in found[:2]] == [best.step == 2, best.step == 4]
    assert all(info.size > 0 for info in found)
    assert all(info.modified_at.tzinfo is not None for info in found)


def test_list_checkpoints_copied_best(trained: tuple[Workbench, int], workbench: Workbench, config_file: Path, tmp_path: Path) -> None:
    trained_workbench, trained_id = trained
    source = Path(trained_workbench.store.get_run(trained_id).run_dir) / "checkpoints"
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    # A copy, not a hard link: the step is read from the file itself.
    shutil.copyfile(source / "step_2.pt", folder / "best.pt")
    shutil.copyfile(source / "step_4.pt", folder / "step_4.pt")
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.store.create_run("one")
    workbench.store.update_run(run.id, run_dir=str(tmp_path / "run"))
    found = workbench.list_checkpoints(run.id)
    assert [(info.name, info.step, info.is_best) for info in found] == [("step_4.pt", 4, False), ("best.pt", 2, True)]


def test_list_checkpoints_unstarted_run(workbench: Workbench, config_file: Path) -> None:
    workbench.create_experiment("one", config_path=config_file)
    run = workbench.store.create_run("one")
    assert workbench.list_checkpoints(run.id) == []


def test_latest_checkpoint_equals_model_folder(trained: tuple[Workbench, int]) -> None:
    from sedd.model import load_pretrained

    workbench, run_id = trained
    run_dir = Path(workbench.store.get_run(run_id).run_dir)
    rebuilt, step = load_checkpoint_model(run_dir / "checkpoints" / "step_4.pt", "cpu")
    saved = load_pretrained(run_dir / "model").state_dict()
    assert step == 4
    assert not rebuilt.training
    for name, tensor in rebuilt.state_dict().items():
        assert tensor.equal(saved[name]), name


def test_older_checkpoint_has_other_weights(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    folder = Path(workbench.store.get_run(run_id).run_dir) / "checkpoints"
    older, _ = load_checkpoint_model(folder / "step_2.pt", "cpu")
    newer, _ = load_checkpoint_model(folder / "step_4.pt", "cpu")
    differing = [name for name, tensor in older.state_dict().items() if not tensor.equal(newer.state_dict()[name])]
    assert differing


def test_sample_from_checkpoint_matches_latest(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    latest = workbench.sample(run_id, num=2, length=16, seed=3)
    from_file = workbench.sample(run_id, num=2, length=16, seed=3, checkpoint="step_4.pt")
    assert [text.text for text in from_file] == [text.text for text in latest]


def test_sample_unknown_checkpoint_lists_present(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    with pytest.raises(NoCheckpoint) as raised:
        workbench.sample(run_id, checkpoint="step_9.pt")
    message = str(raised.value)
    assert f"run {run_id} has no checkpoint 'step_9.pt'" in message
    assert "it has step_2.pt, step_4.pt, best.pt" in message
    assert f"`workbench checkpoints {run_id}`" in message


def test_sample_missing_checkpoint_path(trained: tuple[Workbench, int], tmp_path: Path) -> None:
    workbench, run_id = trained
    with pytest.raises(NoCheckpoint, match="checkpoint file .*nothing.pt' not found"):
        workbench.sample(run_id, checkpoint=str(tmp_path / "nothing.pt"))


def test_sample_corrupt_checkpoint(trained: tuple[Workbench, int], tmp_path: Path) -> None:
    workbench, run_id = trained
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(NoCheckpoint, match=f"cannot load checkpoint {corrupt}"):
        workbench.sample(run_id, checkpoint=str(corrupt))


def test_infill_from_best_saves_its_step(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    best = workbench.list_checkpoints(run_id)[-1]
    texts = workbench.infill(run_id, template="def [MASK:4](self):", checkpoint="best.pt", save=True)
    stored = workbench.store.list_samples(run_id, kind="infill", limit=1)
    assert texts[0].text.startswith("def ")
    assert stored[0].step == best.step
    assert stored[0].text == texts[0].text


def test_sample_cancel_event_before_start(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    cancel = threading.Event()
    cancel.set()
    before = len(workbench.store.list_samples(run_id))
    with pytest.raises(GenerationCancelled, match="cancelled before step 1 of 4; nothing was saved"):
        workbench.sample(run_id, num=1, cancel=cancel, save=True)
    assert len(workbench.store.list_samples(run_id)) == before


def test_infill_cancel_callable_mid_run(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    steps_done: list[int] = []
    with pytest.raises(GenerationCancelled, match="before step 3 of 8"):
        workbench.infill(
            run_id, prefix="import ", length=4, steps=8,
            progress=lambda step, _: steps_done.append(step), cancel=lambda: len(steps_done) >= 2,
        )  # fmt: skip
    assert steps_done == [1, 2]


def test_quickstart_config_packaged() -> None:
    repository_config = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    assert quickstart_config_path() == repository_config.resolve()
    assert load_validated(path=quickstart_config_path()).exp_id == QUICKSTART_EXP_ID


@pytest.mark.parametrize("marker", ["[MASK:abc]", "[MASK:0]", "[MASK]", "[MASK:]", "[MASK 5]"])
def test_parse_template_malformed_marker(marker: str) -> None:
    with pytest.raises(InvalidConfig) as caught:
        parse_template(f"Hi {marker} there")
    assert str(caught.value) == (
        f"invalid mask marker {marker!r} at character 3 of the template; "
        "expected [MASK:N] with N >= 1 tokens, such as [MASK:8]"
    )


def test_parse_template_keeps_masked_word() -> None:
    assert parse_template("[MASKED] [MASK:2]") == ["[MASKED] ", 2]


def test_infill_rejects_unencodable_characters(trained: tuple[Workbench, int]) -> None:
    workbench, run_id = trained
    with pytest.raises(InvalidConfig) as caught:
        workbench.infill(run_id, template="Café [MASK:5] ☕é")
    assert str(caught.value) == (
        "the prompt contains characters that the run's char tokenizer cannot encode: "
        "'é' (U+00E9), '☕' (U+2615); its vocabulary is the characters of the training text, "
        "so remove or replace these"
    )
