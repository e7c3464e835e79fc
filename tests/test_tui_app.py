"""Headless tests of the terminal UI on a seeded SQLite store (``App.run_test`` and the pilot).

The store contains synthetic runs (``workbench.tui.demo_store``) with fixed timestamps; nothing
trains here. Polling and reconciliation are off unless a test turns them on, so every change
on screen comes from a key press.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.text import Text

from workbench.errors import ExperimentNotFound
from workbench.services import Workbench
from workbench.tui.app import WorkbenchApp, create_app
from workbench.tui.demo_store import DEMO_NOW, seed_demo_store
from workbench.tui.screens.confirm import ConfirmScreen, PromptScreen
from workbench.tui.screens.editor import EditorScreen
from workbench.tui.screens.help import HelpScreen
from workbench.tui.system import SystemReading
from workbench.tui.testing import screen_text, settle
from workbench.tui.widgets.comparison_table import ComparisonView
from workbench.tui.widgets.config_area import ConfigArea
from workbench.tui.widgets.curve_plot import CurvePlot
from workbench.tui.widgets.experiment_table import ExperimentTable
from workbench.tui.widgets.key_diff_table import KeyDiffTable
from workbench.tui.widgets.problem_list import ProblemList
from workbench.tui.widgets.run_panel import RunPanel

pytestmark = pytest.mark.anyio

GIB = 1024**3
SIZE = (100, 32)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio only


def fixed_probe() -> SystemReading:
    return SystemReading(cpu_percent=12.0, ram_used=4 * GIB, ram_total=16 * GIB)


@pytest.fixture
def workbench(tmp_path):
    opened = Workbench(str(tmp_path / "demo.db"))
    seed_demo_store(opened.store)
    yield opened
    opened.close()


def make_app(workbench: Workbench, **options) -> WorkbenchApp:
    settings = dict(keymap={}, clock=lambda: DEMO_NOW, probe=fixed_probe, poll_interval=0, reconcile_interval=0)
    settings.update(options)
    return create_app(workbench, **settings)


def plain(cell: Text | str) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def notifications(app: WorkbenchApp) -> list[str]:
    return [notification.message for notification in app._notifications]


# Experiments pane


async def test_table_lists_experiments(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ExperimentTable)
        assert table.row_count == 8
        assert plain(table.get_row("demo-0003")[1]) == "failed"
        assert plain(table.get_row("demo-0000")[2]) == "75/200"
        assert "8 of 8 experiments" in screen_text(app)


async def test_filter_narrows_and_clears(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ExperimentTable)
        await pilot.press("slash", *"status:failed")
        assert table.row_count == 1
        assert table.current_key == "demo-0003"
        await pilot.press("escape")
        assert table.row_count == 8
        assert table.has_focus


async def test_sort_keys_and_header_click(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ExperimentTable)
        await pilot.press("o", "o")  # experiment -> status -> step
        steps = [plain(table.get_row_at(index)[2]) for index in range(table.row_count)]
        assert steps[0] == "0/200"
        assert steps[-1] == "200/200"
        await pilot.press("O")
        assert plain(table.get_row_at(0)[2]) == "200/200"
        await pilot.click(ExperimentTable, offset=(3, 0))  # the "experiment" header
        await pilot.pause()
        assert table.current_key is not None
        assert plain(table.get_row_at(0)[0]) == "demo-0000"


async def test_space_marks_run_for_compare(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")
        assert app.compare_ids == (1,)
        table = app.screen.query_one(ExperimentTable)
        assert plain(table.get_row("demo-0000")[0]) == "+demo-0000"
        await pilot.press("space")
        assert app.compare_ids == ()


async def test_delete_asks_first(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert workbench.store.get_experiment("demo-0001").exp_id == "demo-0001"
        await pilot.press("d", "y")
        await settle(pilot)
        with pytest.raises(ExperimentNotFound):
            workbench.store.get_experiment("demo-0001")
        assert app.screen.query_one(ExperimentTable).row_count == 7


async def test_resume_error_becomes_notification(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "r")  # demo-0001 completed, but wrote no checkpoint
        await settle(pilot)
        messages = notifications(app)
        assert len(messages) == 1
        assert "run 2" in messages[0]
        assert "checkpoint" in messages[0]
        assert len(workbench.store.list_runs("demo-0001")) == 1


async def test_tab_click_switches_pane(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.click("#pane-compare")
        await settle(pilot)
        assert app.current_mode == "compare"


# Config editor


BAD_CONFIG = "exp_id: from-editor\ndata:\n  max_bytes: 1000\ntraining:\n  steps: 20\n  lr: -1\n"


async def test_editor_marks_bad_value_line(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        editor = app.screen.query_one(ConfigArea)
        assert editor.has_focus
        editor.load_text(BAD_CONFIG)
        await pilot.pause(0.5)
        await settle(pilot)
        problems = app.screen.query_one(ProblemList).problems
        assert [(problem.line, problem.path) for problem in problems] == [(6, "training.lr")]
        assert "expected a value > 0" in problems[0].message
        assert list(editor.problem_lines) == [6]
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert editor.cursor_location == (5, 0)
        assert "training.lr" in str(app.screen.query_one("#problem-here").render())


async def test_editor_bad_save_keeps_text(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        editor = app.screen.query_one(ConfigArea)
        editor.load_text(BAD_CONFIG)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert editor.text == BAD_CONFIG
        assert any("training.lr" in message for message in notifications(app))
        with pytest.raises(ExperimentNotFound):
            workbench.store.get_experiment("from-editor")


async def test_editor_save_creates_experiment(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        editor = app.screen.query_one(ConfigArea)
        editor.load_text(BAD_CONFIG)
        await pilot.pause(0.5)
        await settle(pilot)
        # Fix the value the way a user would: go to the problem and retype the number.
        await pilot.press("ctrl+g", "end", "backspace", "backspace", *"1.0e-3")
        assert editor.text.endswith("lr: 1.0e-3\n")
        await pilot.press("ctrl+s")
        await settle(pilot)
        experiment = workbench.store.get_experiment("from-editor")
        assert "lr: 0.001" in experiment.config_text
        assert "experiment 'from-editor'" in str(app.screen.query_one("#editor-title").render())
        assert not app.screen.is_dirty


async def test_clone_then_diff_against_parent(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "c")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("enter")
        await settle(pilot)
        await settle(pilot)
        assert isinstance(app.screen, EditorScreen)
        clone = workbench.store.get_experiment("demo-0001-copy")
        assert clone.parent.exp_id == "demo-0001"
        editor = app.screen.query_one(ConfigArea)
        editor.load_text(editor.text.replace("n_blocks: 3", "n_blocks: 5"))
        await pilot.press("ctrl+t")
        await settle(pilot)
        diff = app.screen.query_one(KeyDiffTable)
        assert [str(key.value) for key in diff.rows] == ["exp_id", "model.n_blocks"]
        assert [plain(cell) for cell in diff.get_row("model.n_blocks")] == ["model.n_blocks", "3", "5"]


async def test_pane_key_opens_selected_config(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        assert screen.loaded.exp_id == "demo-0001"
        assert screen.query_one(ConfigArea).text == workbench.store.get_experiment("demo-0001").config_text
        assert not screen.query_one(ConfigArea).has_focus  # number keys still switch panes
        await pilot.press("1", "down", "2")
        await settle(pilot)
        assert app.screen.loaded.exp_id == "demo-0002"


async def test_pane_key_template_without_selection(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"no-such-experiment", "enter")
        await settle(pilot)
        assert app.selected_exp_id is None
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        assert screen.loaded.exp_id is None
        assert "exp_id: new-experiment" in screen.query_one(ConfigArea).text


async def test_pane_key_keeps_unsaved_edits(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        editor = app.screen.query_one(ConfigArea)
        editor.load_text(editor.text.replace("n_blocks: 2", "n_blocks: 3"))
        await pilot.press("1", "2")
        await settle(pilot)
        assert app.screen.query_one(ConfigArea).text == editor.text  # same experiment: nothing reloads
        await pilot.press("1", "down", "2")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)  # another experiment: asks before discarding


# Run monitor


async def test_monitor_shows_run_facts(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "monitor"
        panel_text = screen_text(app)
        assert "running" in panel_text
        assert "75/200" in panel_text
        assert "12%" in panel_text  # the probe's CPU reading
        plot = app.screen.query_one("#loss-plot", CurvePlot)
        lengths = {series.label: len(series.points) for series in plot.series}
        assert lengths == {"train_loss": 75, "val_loss": 3}


async def test_monitor_polls_only_new_points(workbench):
    from workbench.store import MetricRow
    from workbench.tui.screens.monitor import MonitorScreen

    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        assert not screen.snapshot.incremental
        run_id = screen.snapshot.run_id
        workbench.store.add_metrics(run_id, [MetricRow(76, "train_loss", 1.5, 0.0), MetricRow(77, "train_loss", 1.4, 0.0)])
        screen.poll()
        await settle(pilot)
        assert screen.snapshot.incremental
        assert screen.snapshot.curves["train_loss"] == [(76, 1.5), (77, 1.4)]
        assert screen.snapshot.curves["val_loss"] == []
        plot = screen.query_one("#loss-plot", CurvePlot)
        train = next(series for series in plot.series if series.label == "train_loss")
        assert len(train.points) == 77
        assert train.points[-2:] == [(76, 1.5), (77, 1.4)]
        assert screen.snapshot.latest["train_loss"] == (77, 1.4)


def add_resumed_run(workbench: Workbench, parent_id: int, first_step: int, last_step: int) -> int:
    """Add a running run that resumed ``parent_id`` from a checkpoint at ``first_step - 1``."""
    from workbench.store import MetricRow, RunStatus

    parent = workbench.store.get_run(parent_id)
    run = workbench.store.create_run(parent.experiment.exp_id, resumed_from_id=parent_id, total_steps=200)
    workbench.store.update_run(run.id, status=RunStatus.RUNNING, last_step=last_step, heartbeat_at=DEMO_NOW)
    rows = [MetricRow(step, "train_loss", 1.0, 0.0) for step in range(first_step, last_step + 1)]
    rows += [MetricRow(step, "val_loss", 1.1, 0.0) for step in range(first_step, last_step + 1) if step % 20 == 0]
    workbench.store.add_metrics(run.id, rows)
    return run.id


async def test_monitor_plots_resumed_history(workbench):
    from workbench.store import MetricRow

    # Run 3 stopped at step 125; its resumed run restarted from a checkpoint at step 100.
    run_id = add_resumed_run(workbench, 3, first_step=101, last_step=150)
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.run_id = run_id
        await pilot.press("3")
        await settle(pilot)
        plot = app.screen.query_one("#loss-plot", CurvePlot)
        by_label = {series.label: series for series in plot.series}
        assert set(by_label) == {"train_loss before resume", "val_loss before resume", "train_loss", "val_loss"}
        earlier = by_label["train_loss before resume"]
        assert [step for step, _ in earlier.points] == list(range(1, 101))
        assert not earlier.in_legend
        assert earlier.color != by_label["train_loss"].color
        assert [step for step, _ in by_label["val_loss before resume"].points] == [20, 40, 60, 80, 100]
        assert by_label["train_loss"].points[0][0] == 101
        assert "from run 3" in screen_text(app)

        # Later polls read only the new points of the resumed run; the history stays drawn.
        workbench.store.add_metrics(run_id, [MetricRow(151, "train_loss", 0.9, 0.0)])
        app.screen.poll()
        await settle(pilot)
        assert app.screen.snapshot.incremental
        assert app.screen.snapshot.history == {}
        by_label = {series.label: series for series in plot.series}
        assert len(by_label["train_loss before resume"].points) == 100
        assert by_label["train_loss"].points[-1] == (151, 0.9)


def test_resume_history_follows_chain(workbench):
    from workbench.tui.run_snapshot import read_run_snapshot

    middle = add_resumed_run(workbench, 3, first_step=101, last_step=150)
    newest = add_resumed_run(workbench, middle, first_step=141, last_step=160)
    snapshot = read_run_snapshot(workbench, newest, now=DEMO_NOW)
    steps = [step for step, _ in snapshot.history["train_loss"]]
    assert steps == list(range(1, 141))  # run 3 up to 100, then the middle run up to 140
    assert snapshot.history["val_loss"][-1][0] == 140
    assert snapshot.resumed_from_id == middle
    assert read_run_snapshot(workbench, 3, now=DEMO_NOW).history == {}


async def test_monitor_plot_toggles(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        plot = app.screen.query_one("#loss-plot", CurvePlot)
        await pilot.press("y", "m", "z")
        assert plot.log_y
        assert plot.smoothing == 0.6
        assert plot.zoom == 0.5
        drawn = plot.drawn_points()["train_loss"]
        assert drawn[0][0] == 38  # steps 1..75 zoomed to the last half: from 75 - 37 = 38
        await pilot.press("a")
        aux = app.screen.query_one("#aux-plot", CurvePlot)
        assert aux.display
        assert [series.label for series in aux.series] == ["lr"]


async def test_monitor_run_picker(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "p")
        await settle(pilot)
        await pilot.press("enter")  # newest run first: run 8
        await settle(pilot)
        assert app.run_id == 8
        assert app.screen.query_one(RunPanel).has_class("-lost")


# Compare


async def test_compare_table_and_config_diff(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "space", "down", "space", "6")
        await settle(pilot)
        view = app.screen.query_one(ComparisonView)
        best = view.table.rows[1]
        assert best.spec.name == "val_loss/best"
        assert [cell.best for cell in best.cells] == [True, False]
        assert plain(view.get_row("val_loss/best")[1]).endswith("*")
        diff = app.screen.query_one(KeyDiffTable)
        assert [str(key.value) for key in diff.rows] == ["model.n_blocks", "tags", "training.lr"]
        assert [plain(cell) for cell in diff.get_row("training.lr")] == ["training.lr", "0.001", "0.0001"]


async def test_compare_curves_stable_colours(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "space", "down", "space", "6")
        await settle(pilot)
        await pilot.press("a")  # train_loss, on the curves tab
        plot = app.screen.query_one(CurvePlot)
        colours = {series.label: series.color for series in plot.series}
        # The colour follows the run id, so a run keeps it whatever else is compared.
        assert colours == {"#2 demo-0001": "green", "#3 demo-0002": "magenta"}


@pytest.mark.slow  # the real-run flow checks the export too
async def test_compare_export_writes_files(workbench, tmp_path):
    app = make_app(workbench)
    stem = tmp_path / "exports" / "two-runs"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down", "space", "down", "space", "6")
        await settle(pilot)
        await pilot.press("x")
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        prompt.query_one("#answer").value = str(stem)
        await pilot.press("enter")
        await settle(pilot)
    rows = list(csv.reader(stem.with_suffix(".csv").open()))
    assert rows[0][3:7] == ["#2 demo-0001", "#2 demo-0001 stderr", "#3 demo-0002", "#3 demo-0002 stderr"]
    names = [row[0] for row in rows[1:]]
    assert names[:3] == ["step", "val_loss/best", "val_loss/last"]
    assert rows[1][3] == "200.0"
    assert rows[2][-1] == "#2 demo-0001"
    markdown = stem.with_suffix(".md").read_text().splitlines()
    assert markdown[0] == "| metric [unit] | #2 demo-0001 | #3 demo-0002 |"
    assert len(markdown) == 2 + len(rows) - 1


# Footer, palette and generation defaults


@pytest.mark.parametrize("width", [80, 100])
async def test_footer_fits_every_pane(workbench, width):
    from workbench.tui.panes import PANES

    app = make_app(workbench)
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        app.run_id = 2
        for mode, key, label in PANES:
            await pilot.press(key)
            await settle(pilot)
            footer = screen_text(app).rstrip("\n").splitlines()[-1]
            shown = [binding for binding in type(app.screen).BINDINGS if binding.show]
            for binding in shown:
                assert f" {binding.description} " in footer, f"{label} footer at {width} columns: {footer!r}"
            assert " Help " in footer, f"{label} footer at {width} columns: {footer!r}"


async def test_palette_lists_hidden_keys(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = {command.title: command for command in app.get_system_commands(app.screen)}
        assert {"Experiments: Clone", "Experiments: Delete", "Experiments: Mark", "Pane: Config"} <= set(commands)
        assert "(key space)" in commands["Experiments: Mark"].help
        await commands["Experiments: Mark"].callback()
        assert app.compare_ids == (1,)


async def test_generation_save_off_like_cli(workbench):
    import inspect

    from workbench import cli_generate
    from workbench.tui.widgets.sampler_form import SamplerForm

    for command in (cli_generate.sample, cli_generate.infill):
        assert inspect.signature(command).parameters["save"].default is False
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.run_id = 2
        for key in ("4", "5"):
            await pilot.press(key)
            await settle(pilot)
            assert app.screen.query_one(SamplerForm).settings().save is False, f"pane {key}"


# Help, keymap and start-up


async def test_help_lists_binding_ids(workbench):
    app = make_app(workbench)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        ids = {plain(app.screen.query_one("DataTable").get_row_at(index)[3]) for index in range(app.screen.query_one("DataTable").row_count)}
        assert {"experiments.launch", "editor.save", "monitor.zoom", "sampling.generate", "compare.export"} <= ids
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keymap_remaps_binding(workbench):
    app = make_app(workbench, keymap={"experiments.mark": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")
        assert app.compare_ids == ()
        await pilot.press("x")
        assert app.compare_ids == (1,)


def test_startup_imports_no_model_code(tmp_path):
    script = f"""
import asyncio, json, sys
from workbench.tui.app import create_app
from workbench.tui.testing import settle

async def main():
    app = create_app({str(tmp_path / "startup.db")!r}, keymap={{}}, reconcile_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
    heavy = ["torch", "sedd.model", "datasets", "transformers"]
    print(json.dumps([name for name in heavy if name in sys.modules]))

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_cli_hook_builds_app_from_workbench(workbench):
    app = create_app(workbench, keymap={})
    assert app.workbench is workbench
    assert Path(workbench.store.url.database).name == "demo.db"
