"""End-to-end tests of the real worker: ``python -m workbench.worker`` training a tiny model.

One short run completes and is sampled from; a long run is stopped, and the run resuming it
is killed with SIGKILL. Each launch imports torch in a fresh process, so this file takes
about half a minute on 2 CPU cores.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from workbench.services import Workbench, latest_checkpoint
from workbench.store import RunStatus

TINY = """\
exp_id: tiny
data:
  corpus: stdlib
  max_bytes: 100000
  seq_len: 32
  cache_dir: {cache}
model: {{hidden_size: 32, cond_dim: 16, n_blocks: 1, n_heads: 2, dropout: 0.0}}
diffusion: {{sampling: {{steps: 8}}}}
training:
  batch_size: 8
  steps: {steps}
  warmup: 1
  log_every: 5
  eval_every: {eval_every}
  eval_blocks: 8
  eval_times: 2
  snapshot_every: 10
  snapshot_samples: 2
  checkpoint_every: 10
"""


@pytest.fixture(scope="module")
def workbench(tmp_path_factory: pytest.TempPathFactory) -> Workbench:
    folder = tmp_path_factory.mktemp("worker")
    opened = Workbench(folder / "experiments.db", stop_grace_s=60)
    cache = folder / "cache"
    opened.create_experiment("short", config_text=TINY.format(cache=cache, steps=20, eval_every=10))
    opened.create_experiment("long", config_text=TINY.format(cache=cache, steps=1_000_000, eval_every=1_000_000))
    yield opened
    for run in opened.status(active_only=True):
        opened.stop(run.id, grace_s=5)
    opened.close()


@pytest.fixture(scope="module")
def completed_run_id(workbench: Workbench) -> int:
    run = workbench.launch("short")
    return workbench.wait(run.id, timeout=120).id


def wait_for_step(workbench: Workbench, run_id: int, step: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while workbench.get_run(run_id).last_step < step:
        assert workbench.get_run(run_id).status.is_active, workbench.tail_log(run_id, 30)
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.1)


def test_worker_completes_run(workbench: Workbench, completed_run_id: int) -> None:
    run = workbench.get_run(completed_run_id)
    assert run.status is RunStatus.COMPLETED, workbench.tail_log(run.id, 30)
    assert run.exit_code == 0
    assert run.last_step == 20
    assert run.ended_at > run.started_at
    assert run.heartbeat_at is not None
    assert run.info != {}
    assert Path(run.checkpoint_path) == Path(run.run_dir) / "checkpoints" / "step_20.pt"
    assert Path(run.run_dir, "model", "config.json").is_file()


def test_worker_records_metrics(workbench: Workbench, completed_run_id: int) -> None:
    store = workbench.store
    train_steps = [step for step, _ in store.metric_curve(completed_run_id, "train_loss")]
    val_steps = [step for step, _ in store.metric_curve(completed_run_id, "val_loss")]
    assert train_steps == [5, 10, 15, 20]
    assert val_steps == [0, 10, 20]
    for name in ("lr", "grad_norm", "tokens_per_sec", "val_bpt"):
        assert name in store.metric_names(completed_run_id), name
    val_loss = dict(store.metric_curve(completed_run_id, "val_loss"))
    val_bpt = dict(store.metric_curve(completed_run_id, "val_bpt"))
    assert val_bpt[20] == pytest.approx(val_loss[20] / 0.6931471805599453, rel=1e-6)


def test_worker_records_snapshots(workbench: Workbench, completed_run_id: int) -> None:
    # The trainer's snapshots; the sample and infill tests add kinds "sample" and "infill".
    snapshots = [
        sample for sample in workbench.store.list_samples(completed_run_id) if sample.kind not in ("sample", "infill")
    ]
    assert sorted({sample.step for sample in snapshots}) == [10, 20]
    assert len(snapshots) == 4
    assert all(len(sample.text) > 0 for sample in snapshots)


def test_worker_summary_row(workbench: Workbench, completed_run_id: int) -> None:
    summaries = {summary.exp_id: summary for summary in workbench.list_experiments()}
    short = summaries["short"]
    curve = workbench.store.metric_curve(completed_run_id, "val_loss")
    assert short.run_id == completed_run_id
    assert short.best_val_loss == min(value for _, value in curve)
    assert short.last_val_loss == curve[-1][1]
    assert short.tokens_per_sec > 0


def test_sample_same_seed_same_text(workbench: Workbench, completed_run_id: int) -> None:
    first = workbench.sample(completed_run_id, num=2, steps=4, length=16, seed=3, device="cpu", save=True)
    again = workbench.sample(completed_run_id, num=2, steps=4, length=16, seed=3, device="cpu")
    assert [text.text for text in first] == [text.text for text in again]
    assert len(first) == 2
    assert len(workbench.store.list_samples(completed_run_id, kind="sample")) == 2


def test_sample_reports_progress(workbench: Workbench, completed_run_id: int) -> None:
    calls = []
    workbench.sample(completed_run_id, num=1, steps=5, length=8, device="cpu", progress=lambda step, steps: calls.append((step, steps)))
    assert calls == [(step, 5) for step in range(1, 6)]


def test_infill_keeps_template_text(workbench: Workbench, completed_run_id: int) -> None:
    (text,) = workbench.infill(completed_run_id, template="def [MASK:6](self):", steps=4, device="cpu", save=True)
    fixed = [segment.text for segment in text.segments if not segment.generated]
    assert fixed == ["def ", "(self):"]
    assert text.text.startswith("def ")
    assert text.text.endswith("(self):")
    (saved,) = workbench.store.list_samples(completed_run_id, kind="infill")
    assert saved.prompt == "def [MASK:6](self):"
    assert saved.text == text.text


def test_infill_prefix_suffix(workbench: Workbench, completed_run_id: int) -> None:
    (text,) = workbench.infill(completed_run_id, prefix="import ", suffix=" as np", length=5, steps=4, device="cpu")
    assert text.segments[0] == text.segments[0].__class__("import ", False)
    assert text.segments[-1].text == " as np"
    assert [segment.generated for segment in text.segments] == [False, True, False]


def test_stop_writes_checkpoint(workbench: Workbench) -> None:
    run = workbench.launch("long")
    wait_for_step(workbench, run.id, 15)
    stopped = workbench.stop(run.id)
    checkpoint = latest_checkpoint(stopped)
    assert stopped.status is RunStatus.STOPPED, stopped.message
    assert stopped.exit_code == 0
    assert checkpoint.name == f"step_{stopped.last_step}.pt"
    assert stopped.last_step >= 15


def test_resume_continues_then_kill9(workbench: Workbench) -> None:
    stopped = next(run for run in reversed(workbench.status("long")) if run.status is RunStatus.STOPPED)
    resumed = workbench.resume(stopped.id)
    wait_for_step(workbench, resumed.id, stopped.last_step + 5)
    train_steps = [step for step, _ in workbench.store.metric_curve(resumed.id, "train_loss")]
    assert resumed.resumed_from_id == stopped.id
    assert resumed.resume_checkpoint == str(latest_checkpoint(stopped))
    assert resumed.run_dir != stopped.run_dir
    assert min(train_steps) > stopped.last_step

    # A worker killed without warning reports nothing; reconciliation records the exit code.
    os.killpg(resumed.pid, signal.SIGKILL)
    final = workbench.wait(resumed.id, timeout=30)
    assert final.status is RunStatus.FAILED
    assert final.exit_code == -signal.SIGKILL
    assert final.message == f"process {resumed.pid} exited with code -9 without reporting a final status"
