"""End-to-end flows of the terminal UI with real tiny training runs on a real SQLite store.

Each run is a real worker subprocess training a one-block model on a few kilobytes of the
Python standard library, so these tests take seconds each. The file took about 30 s on two
lightly loaded cores, half of it in the launch, stop and resume flow.
"""

from __future__ import annotations

import csv
from pathlib import Path

import psutil
import pytest

from workbench.services import Workbench
from workbench.store import RunStatus
from workbench.tui.app import WorkbenchApp, create_app
from workbench.tui.screens.generation import GenerationScreen
from workbench.tui.screens.monitor import MonitorScreen
from workbench.tui.system import SystemReading
from workbench.tui.testing import settle
from workbench.tui.widgets.comparison_table import ComparisonView
from workbench.tui.widgets.config_area import ConfigArea
from workbench.tui.widgets.curve_plot import CurvePlot
from workbench.tui.widgets.experiment_table import ExperimentTable
from workbench.tui.widgets.generated_view import GeneratedView
from workbench.tui.widgets.key_diff_table import KeyDiffTable
from workbench.tui.widgets.problem_list import ProblemList

pytestmark = pytest.mark.anyio

SIZE = (100, 32)


def tiny_config(exp_id: str, cache_dir: Path, *, lr: str = "1.0e-3", steps: int = 30) -> str:
    """A config that trains in seconds on a CPU: 32-token blocks, one block of width 32."""
    return f"""exp_id: {exp_id}
gpu: cpu
data:
  corpus: stdlib
  seq_len: 32
  max_bytes: 40000
  cache_dir: {cache_dir}
model:
  hidden_size: 32
  cond_dim: 16
  n_blocks: 1
  n_heads: 2
  dropout: 0.0
diffusion:
  sampling:
    steps: 8
training:
  batch_size: 8
  steps: {steps}
  lr: {lr}
  warmup: 5
  ema: 0.9
  log_every: 2
  eval_every: 10
  eval_blocks: 8
  eval_times: 2
  snapshot_every: 0
  checkpoint_every: 10
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixed_probe() -> SystemReading:
    return SystemReading(cpu_percent=1.0, ram_used=1.0, ram_total=2.0)


def make_app(workbench: Workbench, **options) -> WorkbenchApp:
    settings = dict(keymap={}, probe=fixed_probe, poll_interval=0, reconcile_interval=0)
    settings.update(options)
    return create_app(workbench, **settings)


async def wait_until(pilot, condition, timeout: float = 60.0, step: float = 0.2) -> None:
    """Pause the pilot until ``condition()`` holds; fail after ``timeout`` seconds."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(step)
        waited += step


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with two completed tiny runs that differ in learning rate and length."""
    root = tmp_path_factory.mktemp("trained")
    workbench = Workbench(str(root / "store.db"))
    cache = root / "cache"
    workbench.create_experiment(config_text=tiny_config("tiny-a", cache, lr="1.0e-3", steps=30))
    workbench.create_experiment(config_text=tiny_config("tiny-b", cache, lr="3.0e-3", steps=20))
    runs = [workbench.launch("tiny-a"), workbench.launch("tiny-b")]
    finished = [workbench.wait(run.id, timeout=240) for run in runs]
    for run in finished:
        if run.status is not RunStatus.COMPLETED:
            log = (Path(run.run_dir) / "run.log").read_text() if run.run_dir else ""
            pytest.fail(f"tiny run {run.id} ended {run.status.value}: {run.message}\n{log[-2000:]}")
    yield workbench, [run.id for run in finished]
    workbench.close()


async def test_sample_pane_generates_and_saves(trained):
    workbench, (run_a, _) = trained
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.run_id = run_a
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GenerationScreen)
        screen.query_one("#num").value = "3"
        screen.query_one("#steps").value = "8"
        screen.query_one("#length").value = "24"
        screen.query_one("#save").value = True
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not screen.is_generating, timeout=120)
        await settle(pilot)
        texts = screen.query_one(GeneratedView).texts
        assert len(texts) == 3
        assert all(text.text for text in texts)
        assert "done: 3 texts" in str(screen.query_one("#progress-text").render())
    stored = workbench.store.list_samples(run_a, kind="sample")
    assert [sample.text for sample in reversed(stored)] == [text.text for text in texts]


async def test_sample_pane_chosen_checkpoint(trained):
    workbench, (run_a, _) = trained
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.run_id = run_a
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        select = screen.query_one("#checkpoint")
        names = [value for _, value in select._options if isinstance(value, str)]
        assert names == ["step_10.pt", "step_20.pt", "step_30.pt", "best.pt"]
        select.value = "step_10.pt"
        screen.query_one("#num").value = "1"
        screen.query_one("#steps").value = "4"
        screen.query_one("#save").value = True
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not screen.is_generating, timeout=120)
        await settle(pilot)
        assert "done: 1 texts" in str(screen.query_one("#progress-text").render())
        generated = screen.query_one(GeneratedView).texts[0].text
    # Samples are stored at the step of the checkpoint that drew them.
    at_step_10 = [sample.text for sample in workbench.store.list_samples(run_a, kind="sample") if sample.step == 10]
    assert at_step_10 == [generated]


async def test_infill_pane_keeps_prompt(trained):
    workbench, (run_a, _) = trained
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.run_id = run_a
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#template").value = "def [MASK:4](self, [MASK:3]):"
        screen.query_one("#num").value = "2"
        screen.query_one("#save").value = True
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not screen.is_generating, timeout=120)
        await settle(pilot)
        texts = screen.query_one(GeneratedView).texts
        assert len(texts) == 2
        for text in texts:
            fixed = "".join(segment.text for segment in text.segments if not segment.generated)
            assert fixed == "def (self, ):"
            assert any(segment.generated for segment in text.segments)
            assert text.text.startswith("def ")
    stored = workbench.store.list_samples(run_a, kind="infill")
    assert len(stored) == 2
    assert stored[0].prompt == "def [MASK:4](self, [MASK:3]):"


async def test_sample_cancel_saves_nothing(trained):
    workbench, (_, run_b) = trained
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.run_id = run_b
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        screen.query_one("#steps").value = "100000"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: "step " in str(screen.query_one("#progress-text").render()), timeout=120)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.is_generating, timeout=60)
        await settle(pilot)
        assert str(screen.query_one("#progress-text").render()) == "cancelled"
    assert workbench.store.list_samples(run_b, kind="sample") == []


async def test_compare_real_runs(trained, tmp_path):
    workbench, (run_a, run_b) = trained
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.compare_ids = (run_a, run_b)
        await pilot.press("6")
        await settle(pilot)
        diff = app.screen.query_one(KeyDiffTable)
        assert [str(key.value) for key in diff.rows] == ["training.lr", "training.steps"]
        view = app.screen.query_one(ComparisonView)
        rows = {row.spec.name: row for row in view.table.rows}
        assert [cell.value for cell in rows["step"].cells] == [30.0, 20.0]
        best = rows["val_loss/best"]
        values = [cell.value for cell in best.cells]
        winner = values.index(min(values))
        assert [cell.best for cell in best.cells] == [index == winner for index in range(2)]
        stored_best = min(value for _, value in workbench.store.metric_curve((run_a, run_b)[winner], "val_loss"))
        assert values[winner] == stored_best
        await pilot.press("x")
        app.screen.query_one("#answer").value = str(tmp_path / "real")
        await pilot.press("enter")
        await settle(pilot)
    rows = list(csv.reader((tmp_path / "real.csv").open()))
    by_name = {row[0]: row for row in rows[1:]}
    assert float(by_name["val_loss/best"][3]) == values[0]
    assert float(by_name["val_loss/best"][5]) == values[1]
    assert by_name["val_loss/best"][-1] == f"#{(run_a, run_b)[winner]} tiny-{'ab'[winner]}"


async def test_editor_launch_watch_stop_resume(tmp_path):
    workbench = Workbench(str(tmp_path / "flow.db"))
    config = tiny_config("flow", tmp_path / "cache", steps=20000)

    # Create the experiment in the editor; a bad value is reported first.
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        editor = app.screen.query_one(ConfigArea)
        editor.load_text(config.replace("lr: 1.0e-3", "lr: -1"))
        await pilot.pause(0.5)
        await settle(pilot)
        assert [problem.path for problem in app.screen.query_one(ProblemList).problems] == ["training.lr"]
        editor.load_text(config)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert workbench.store.get_experiment("flow").exp_id == "flow"

        # Launch from the experiments pane, then quit the UI.
        await pilot.press("escape", "1")
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        run = workbench.store.list_runs("flow")[0]
        assert run.pid is not None

    # The run outlives the UI; a new UI reconciles and shows it running.
    process = psutil.Process(run.pid)
    assert process.is_running()
    reopened = Workbench(str(tmp_path / "flow.db"))
    app = make_app(reopened, poll_interval=0.3, reconcile_interval=5)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ExperimentTable)
        await wait_until(pilot, lambda: "running" in str(table.get_row("flow")[1]), timeout=120)
        await pilot.press("enter")
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        plot = monitor.query_one("#loss-plot", CurvePlot)

        def train_points() -> int:
            return len(plot.series[0].points) if plot.series else 0

        await wait_until(pilot, lambda: train_points() >= 2, timeout=120)
        seen = train_points()
        await wait_until(pilot, lambda: train_points() > seen, timeout=60)

        # Stop: the trainer checkpoints and reports stopped.
        await pilot.press("s")
        await wait_until(pilot, lambda: reopened.store.get_run(run.id).status is RunStatus.STOPPED, timeout=120)
        stopped = reopened.store.get_run(run.id)
        assert stopped.checkpoint_path is not None

        # Resume: a new run continues from the checkpoint, and the monitor follows it.
        await pilot.press("r")
        await wait_until(pilot, lambda: app.run_id not in (None, run.id), timeout=60)
        resumed = reopened.store.get_run(app.run_id)
        assert resumed.resumed_from_id == run.id
        await wait_until(pilot, lambda: reopened.store.get_run(resumed.id).last_step > stopped.last_step, timeout=120)
        await pilot.press("s")
        await wait_until(pilot, lambda: not reopened.store.get_run(resumed.id).status.is_active, timeout=120)
        await settle(pilot)
    reopened.close()
    workbench.close()
