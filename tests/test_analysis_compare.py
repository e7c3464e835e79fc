"""The comparison table: ranking, formats, and reading the newest results from a real store."""

from __future__ import annotations

import csv
import io

import pytest

from workbench.analysis.compare import StoredValue, build_comparison, latest_results, load_comparison
from workbench.analysis.metrics import metric_spec
from workbench.errors import ExperimentNotFound
from workbench.store import Store


def _table():
    return build_comparison({
        "small": {"test/bpt": StoredValue(2.0, 0.01), "generation/self_bleu": StoredValue(0.30),
                  "infill_baseline/token_accuracy": StoredValue(0.1)},
        "large": {"test/bpt": StoredValue(1.5, 0.02), "generation/self_bleu": StoredValue(0.40),
                  "zero_shot/ptb/ppl_bound": StoredValue(120.0), "infill_baseline/token_accuracy": StoredValue(0.1)},
    })  # fmt: skip


def _row(table, name):
    return next(row for row in table.rows if row.spec.name == name)


def test_compare_lower_is_best():
    table = _table()
    assert table.best_experiments(_row(table, "test/bpt")) == ["large"]


def test_compare_selfbleu_lower_is_best():
    table = _table()
    assert table.best_experiments(_row(table, "generation/self_bleu")) == ["small"]


def test_compare_single_value_unmarked():
    table = _table()
    assert table.best_experiments(_row(table, "zero_shot/ptb/ppl_bound")) == []


def test_compare_baseline_unranked():
    table = _table()
    assert table.best_experiments(_row(table, "infill_baseline/token_accuracy")) == []


def test_compare_rows_in_display_order():
    names = [row.spec.name for row in _table().rows]
    assert names == ["test/bpt", "zero_shot/ptb/ppl_bound", "generation/self_bleu", "infill_baseline/token_accuracy"]


def test_compare_text_marks_best():
    text = _table().to_text()
    line = next(line for line in text.splitlines() if line.startswith("test NLL bound [bits/token]"))
    assert line.split()[-1] == "0.02*"
    assert "2 ± 0.01" in line


def test_compare_markdown_bold_best():
    markdown = _table().to_markdown()
    assert "| metric [unit] | small | large |" in markdown
    assert "| test NLL bound [bits/token] | 2 ± 0.01 | **1.5 ± 0.02** |" in markdown


def test_compare_csv_columns():
    rows = list(csv.DictReader(io.StringIO(_table().to_csv())))
    bpt = next(row for row in rows if row["metric"] == "test/bpt")
    assert bpt["unit"] == "bits/token"
    assert bpt["better"] == "lower"
    assert float(bpt["large"]) == 1.5
    assert float(bpt["large stderr"]) == 0.02
    assert bpt["best"] == "large"
    missing = next(row for row in rows if row["metric"] == "zero_shot/ptb/ppl_bound")
    assert missing["small"] == ""


def test_compare_render_rejects_format():
    with pytest.raises(ValueError, match="html"):
        _table().render("html")


def test_metric_spec_zero_shot():
    spec = metric_spec("zero_shot/lambada/bpt")
    assert spec.unit == "bits/token"
    assert spec.better == "lower"
    assert spec.header == "lambada zero-shot NLL bound [bits/token]"


def test_metric_spec_unknown_name():
    spec = metric_spec("custom/thing")
    assert spec.better is None
    assert spec.header == "custom/thing"


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "experiments.db"))
    for exp_id in ("alpha", "beta"):
        store.create_experiment(exp_id, f"exp_id: {exp_id}\n")
    yield store
    store.close()


def test_compare_store_newest_value(store):
    first = store.create_run("alpha")
    second = store.create_run("alpha")
    store.add_eval_result(first.id, "test/bpt", 3.0, {"stderr": 0.1})
    store.add_eval_result(second.id, "test/bpt", 2.5, {"stderr": 0.05})
    store.add_eval_result(first.id, "generation/self_bleu", 0.2, {})
    results = latest_results(store, "alpha")
    assert results["test/bpt"] == StoredValue(2.5, 0.05)
    assert results["generation/self_bleu"] == StoredValue(0.2, None)


def test_compare_store_two_experiments(store):
    store.add_eval_result(store.create_run("alpha").id, "test/bpt", 2.5, {"stderr": 0.05})
    store.add_eval_result(store.create_run("beta").id, "test/bpt", 2.0, {"stderr": 0.05})
    table = load_comparison(store, ["beta", "alpha"])
    assert table.experiments == ("beta", "alpha")
    assert table.best_experiments(table.rows[0]) == ["beta"]


def test_compare_store_unknown_experiment(store):
    with pytest.raises(ExperimentNotFound):
        load_comparison(store, ["alpha", "gamma"])
