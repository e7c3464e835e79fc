"""Unit tests of the terminal UI's presentational helpers: no app, a real SQLite store where needed."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timedelta, timezone

import pytest

from workbench.analysis.metrics import MetricSpec
from workbench.errors import WorkbenchError
from workbench.store import ExperimentSummary, MetricRow, MetricStats, RunStatus, Store
from workbench.tui.app import load_keymap
from workbench.tui.compare_data import best_flags, build_table, newest_eval_results
from workbench.tui.config_view import ABSENT, config_items, differing_keys, render_value, validation_problems
from workbench.tui.curves import append_new, log_safe, next_level, smooth, thin, zoom_recent
from workbench.tui.experiment_rows import matches_filter, row_cells, sort_summaries, visible_rows
from workbench.tui.export import export_table
from workbench.tui.formatting import format_age, format_eta, format_rate, format_step
from workbench.tui.run_snapshot import estimate_eta
from workbench.tui.system import parse_nvidia_smi
from workbench.tui.widgets.sampler_form import parse_count

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def summary(exp_id: str, **fields) -> ExperimentSummary:
    base = dict(
        exp_id=exp_id, tags=[], notes="", parent_exp_id=None, created_at=NOW - timedelta(hours=1),
        updated_at=NOW, run_count=0,
    )  # fmt: skip
    base.update(fields)
    return ExperimentSummary(**base)


@pytest.fixture
def store(tmp_path):
    opened = Store(str(tmp_path / "units.db"))
    yield opened
    opened.close()


# Formatting


def test_format_age_units():
    assert format_age(NOW - timedelta(seconds=42), NOW) == "42s"
    assert format_age(NOW - timedelta(minutes=5, seconds=59), NOW) == "5m"
    assert format_age(NOW - timedelta(hours=3), NOW) == "3h"
    assert format_age(NOW - timedelta(days=2, hours=23), NOW) == "2d"
    assert format_age(None, NOW) == "-"


def test_format_age_future_is_zero():
    assert format_age(NOW + timedelta(seconds=30), NOW) == "0s"


def test_format_eta_forms():
    assert format_eta(3900) == "1h05m"
    assert format_eta(750) == "12m30s"
    assert format_eta(40.4) == "40s"
    assert format_eta(None) == "-"
    assert format_eta(math.inf) == "-"


def test_format_rate_suffixes():
    assert format_rate(950) == "950"
    assert format_rate(12_345) == "12.3k"
    assert format_rate(1_250_000) == "1.25M"


def test_format_step_with_total():
    assert format_step(120, 200) == "120/200"
    assert format_step(120, None) == "120"
    assert format_step(None, 200) == "-"


# Experiment rows


def test_filter_plain_token_matches_tags():
    tagged = summary("alpha", tags=["ablation"])
    assert matches_filter(tagged, "ABLA")
    assert not matches_filter(tagged, "paper")


def test_filter_field_token_restricts():
    running = summary("alpha", status=RunStatus.RUNNING, notes="completed later")
    assert matches_filter(running, "status:run")
    # "completed" appears in the notes, but the status field is what status: searches.
    assert not matches_filter(running, "status:completed")
    assert matches_filter(running, "completed")


def test_filter_every_token_must_match():
    item = summary("sedd-small", tags=["paper"])
    assert matches_filter(item, "small tag:paper")
    assert not matches_filter(item, "small tag:ablation")


def test_filter_unknown_field_is_plain_text():
    item = summary("lr:3e-4-run")
    assert matches_filter(item, "lr:3e-4")


def test_sort_missing_values_last_both_ways():
    items = [summary("a", last_step=5), summary("b"), summary("c", last_step=50)]
    assert [s.exp_id for s in sort_summaries(items, "step")] == ["a", "c", "b"]
    assert [s.exp_id for s in sort_summaries(items, "step", descending=True)] == ["c", "a", "b"]


def test_sort_unknown_column_names_choices():
    with pytest.raises(ValueError, match="unknown column 'speed'; expected one of exp_id"):
        sort_summaries([], "speed")


def test_visible_rows_filter_then_sort():
    items = [summary("b-x", best_val_loss=2.0), summary("a-x", best_val_loss=3.0), summary("c-y", best_val_loss=1.0)]
    assert [s.exp_id for s in visible_rows(items, "x", "best", False)] == ["b-x", "a-x"]


def test_row_cells_without_runs():
    cells = row_cells(summary("fresh"), NOW)
    assert cells[1] == "no runs"
    assert cells[2] == "-"
    assert cells[8] == "1h"


# Curves


def test_smooth_bias_corrected_values():
    points = [(1, 1.0), (2, 3.0)]
    smoothed = smooth(points, 0.5)
    assert smoothed[0] == (1, 1.0)
    # Average after two points: 0.5 * (0.5 * 1) + 0.5 * 3 = 1.75, divided by 1 - 0.25.
    assert smoothed[1][1] == pytest.approx(1.75 / 0.75)


def test_smooth_passes_nan_through():
    smoothed = smooth([(1, 2.0), (2, math.nan), (3, 2.0)], 0.9)
    assert math.isnan(smoothed[1][1])
    assert smoothed[2][1] == pytest.approx(2.0)


def test_smooth_rejects_weight_one():
    with pytest.raises(ValueError, match=r"smoothing weight must be in \[0, 1\), got 1.0"):
        smooth([(1, 1.0)], 1.0)


def test_zoom_recent_window():
    points = [(step, float(step)) for step in range(0, 101, 10)]
    assert zoom_recent(points, 0.2) == [(80, 80.0), (90, 90.0), (100, 100.0)]
    # A later shared last step moves the window even for a curve that stopped earlier.
    assert zoom_recent(points, 0.1, last_step=200) == []


def test_thin_keeps_first_and_last():
    points = [(step, float(step)) for step in range(1001)]
    thinned = thin(points, 101)
    assert len(thinned) <= 101
    assert thinned[0] == (0, 0.0)
    assert thinned[-1] == (1000, 1000.0)
    assert thin(points[:5], 10) == points[:5]


def test_append_new_skips_overlap():
    cached = [(1, 1.0), (2, 2.0)]
    assert append_new(cached, [(2, 2.0), (3, 3.0)], max_points=10) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert append_new([], [(5, 5.0)], max_points=10) == [(5, 5.0)]


def test_append_new_thins_past_double():
    cached = [(step, 0.0) for step in range(20)]
    merged = append_new(cached, [(20, 1.0)], max_points=10)
    assert len(merged) <= 10
    assert merged[0] == (0, 0.0)
    assert merged[-1] == (20, 1.0)


def test_log_safe_drops_nonpositive():
    assert log_safe([(1, 0.0), (2, -1.0), (3, 0.5), (4, math.inf)]) == [(3, 0.5)]


def test_next_level_wraps():
    assert next_level((1.0, 0.5, 0.2), 0.2) == 1.0
    assert next_level((1.0, 0.5, 0.2), 0.33) == 1.0


# Config view


def test_problems_carry_line_and_path():
    problems = validation_problems("exp_id: a\ntraining:\n  lr: -1\n  stepz: 3\n")
    by_path = {problem.path: problem for problem in problems}
    assert by_path["training.lr"].line == 3
    assert "-1.0 is out of range" in by_path["training.lr"].message
    assert by_path["training.stepz"].line == 4
    assert "did you mean 'training.steps'" in by_path["training.stepz"].message


def test_problems_empty_for_valid_config():
    assert validation_problems("exp_id: ok\n") == []


def test_config_items_fill_defaults():
    items = config_items("exp_id: a\ntraining: {lr: 1.0e-3}\n")
    assert items["training.lr"] == 0.001
    assert items["model.n_blocks"] == 12


def test_config_items_invalid_yaml_raises():
    with pytest.raises(ValueError, match="cannot diff: .*invalid YAML"):
        config_items("exp_id: [unclosed\n")


def test_differing_keys_absent_and_ignore():
    diffs = differing_keys([{"exp_id": "a", "x": 1, "y": [1, 2]}, {"exp_id": "b", "x": 1}], ignore=("exp_id",))
    assert [(diff.path, diff.values) for diff in diffs] == [("y", ("[1, 2]", ABSENT))]


def test_render_value_flow_style():
    assert render_value((0.9, 0.999)) == "[0.9, 0.999]"
    assert render_value(None) == "null"


# Comparison data


def test_newest_eval_result_wins(store):
    store.create_experiment("e", "exp_id: e\n")
    run = store.create_run("e")
    store.add_eval_result(run.id, "test/bpt", 3.0, {"stderr": 0.1})
    store.add_eval_result(run.id, "test/bpt", 2.5, {"stderr": 0.05})
    assert newest_eval_results(store, run.id) == {"test/bpt": (2.5, 0.05)}


def test_best_flags_direction():
    lower = MetricSpec("x", "x", "", "lower")
    higher = MetricSpec("x", "x", "", "higher")
    assert best_flags(lower, [2.0, 1.0, None]) == [False, True, False]
    assert best_flags(higher, [2.0, 1.0, None]) == [True, False, False]
    assert best_flags(lower, [2.0, None]) == [False, False]


def test_build_table_rows_and_best():
    stats = [{"val_loss": MetricStats(1.5, 3.0, 1.7)}, {"val_loss": MetricStats(1.6, 3.1, 1.6)}]
    table = build_table(["#1 a", "#2 b"], [100, 80], stats, [{"test/bpt": (2.0, None)}, {}])
    names = [row.spec.name for row in table.rows]
    assert names == ["step", "val_loss/best", "val_loss/last", "test/bpt"]
    best_row, last_row = table.rows[1], table.rows[2]
    assert [cell.best for cell in best_row.cells] == [True, False]
    assert [cell.best for cell in last_row.cells] == [False, True]
    # One measured value has nothing to beat.
    assert [cell.best for cell in table.rows[3].cells] == [False, False]


def test_export_writes_csv_and_markdown(tmp_path):
    stats = [{"val_loss": MetricStats(1.5, 3.0, 1.7)}, {"val_loss": MetricStats(1.6, 3.1, 1.6)}]
    table = build_table(["#1 a", "#2 b"], [100, 80], stats, [{}, {}])
    csv_path, markdown_path = export_table(table, tmp_path / "out" / "cmp")
    rows = list(csv.reader(io.StringIO(csv_path.read_text())))
    assert rows[0][:4] == ["metric", "unit", "better", "#1 a"]
    assert [row[0] for row in rows[1:]] == ["step", "val_loss/best", "val_loss/last"]
    assert rows[2][-1] == "#1 a"
    assert float(rows[2][3]) == 1.5
    markdown = markdown_path.read_text().splitlines()
    assert markdown[0] == "| metric [unit] | #1 a | #2 b |"
    assert "**1.6**" in markdown[4]


def test_export_unwritable_folder_names_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    table = build_table(["a", "b"], [1, 2], [{"val_loss": MetricStats(1, 1, 1)}, {}], [{}, {}])
    with pytest.raises(WorkbenchError, match="cannot write the comparison to .*file"):
        export_table(table, blocker / "cmp")


# Run snapshot and system readings


def test_eta_from_throughput():
    eta = estimate_eta(
        status=RunStatus.RUNNING, last_step=100, total_steps=300, tokens_per_sec=2048.0, tokens_per_step=1024.0,
        first_step=1, started_at=NOW, now=NOW,
    )  # fmt: skip
    assert eta == pytest.approx(100.0)


def test_eta_from_mean_rate_of_resumed_run():
    eta = estimate_eta(
        status=RunStatus.RUNNING, last_step=150, total_steps=200, tokens_per_sec=None, tokens_per_step=None,
        first_step=100, started_at=NOW - timedelta(seconds=100), now=NOW,
    )  # fmt: skip
    # 50 steps in 100 s since the resume: 50 more steps take 100 s.
    assert eta == pytest.approx(100.0)


def test_eta_none_when_finished():
    eta = estimate_eta(
        status=RunStatus.COMPLETED, last_step=100, total_steps=300, tokens_per_sec=1.0, tokens_per_step=1.0,
        first_step=1, started_at=NOW, now=NOW,
    )  # fmt: skip
    assert eta is None


def test_parse_nvidia_smi_lines():
    gpus = parse_nvidia_smi("0, NVIDIA H100, 1024, 81559, 87\n1, NVIDIA H100, 10, 81559, [N/A]\nbad line\n")
    assert [gpu.index for gpu in gpus] == [0, 1]
    assert gpus[0].memory_used == 1024 * 1024 * 1024
    assert gpus[0].utilization == 87.0
    assert gpus[1].utilization is None


# Inputs


def test_parse_count_accepts_and_defaults():
    assert parse_count(" 12 ", "steps", default=None) == 12
    assert parse_count("", "steps", default=None) is None


def test_parse_count_rejects_zero():
    with pytest.raises(ValueError, match="steps must be positive, got 0"):
        parse_count("0", "steps", default=None)


def test_keymap_file_read(tmp_path):
    path = tmp_path / "keymap.yaml"
    path.write_text("experiments.launch: ctrl+l\n")
    assert load_keymap(path) == {"experiments.launch": "ctrl+l"}


def test_keymap_file_invalid(tmp_path):
    path = tmp_path / "keymap.yaml"
    path.write_text("- not a mapping\n")
    with pytest.raises(WorkbenchError, match="must map binding ids to keys"):
        load_keymap(path)


def test_keymap_missing_explicit_file(tmp_path):
    with pytest.raises(WorkbenchError, match="keymap file .*absent.yaml not found"):
        load_keymap(tmp_path / "absent.yaml")
