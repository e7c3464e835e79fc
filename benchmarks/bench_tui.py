"""Time the terminal UI against a large store: start-up to first paint, table and plot refresh.

The store contains 1,000 experiments with one run each and about 1,000,000 metric rows, written
by ``workbench.tui.demo_store`` (synthetic curves, nothing trains). One run, ``long-0000``, has
about 30,000 rows, to show what the SQL thinning of a long curve costs.

Measured, each as the median (and min, max) of ``--repeats`` runs:

- start-up: a fresh ``python`` process imports the UI, opens the store and runs the app
  headless. "First paint" is Textual's ``Ready`` event (the first screen is on the terminal),
  and "table filled" the moment the experiments table first shows all 1,000 rows. Both count from
  process start, so they include the interpreter and the imports. The ``_cpu`` variants are
  the CPU time the process used up to the same moments (``time.process_time``): on a shared
  machine the wall times grow with the load, the CPU times much less.
- table refresh: the store query (``Store.experiment_summaries``, aggregated in SQL) and the UI
  update of the table after it; a filter keystroke and a sort change over 1,000 rows.
- plot refresh: one monitor poll (``read_run_snapshot``: run row, five thinned curves, latest
  metrics, log tail) and the redraw of the loss plot, for a typical run and for the long one.

Writes ``benchmarks/results/tui_cpu.json``.

Usage::

    python benchmarks/bench_tui.py                 # build the store in a temporary folder
    python benchmarks/bench_tui.py --db big.db     # reuse (or build once) a store file
    python benchmarks/bench_tui.py --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from workbench.services import Workbench
from workbench.store import Metric, Store
from workbench.tui.demo_store import DEMO_NOW, DemoShape, seed_demo_store

logger = logging.getLogger("bench_tui")

RESULTS = Path(__file__).resolve().parent / "results" / "tui_cpu.json"
# 999 typical runs (about 970 rows each) and one long run: about 1,000,000 rows in all.
TYPICAL = DemoShape(experiments=999, steps=370, log_every=1, eval_every=20)
LONG = DemoShape(experiments=1, steps=20000, log_every=1, eval_every=20)
TERMINAL = (120, 40)

CHILD_STARTUP = """
import time
started = time.perf_counter()
import asyncio, json, sys
from workbench.tui.app import WorkbenchApp, create_app
from workbench.tui.demo_store import DEMO_NOW
from workbench.tui.widgets.experiment_table import ExperimentTable
marks = {"import_s": time.perf_counter() - started, "import_cpu_s": time.process_time()}

def on_ready(self, event):
    marks.setdefault("first_paint_s", time.perf_counter() - started)
    marks.setdefault("first_paint_cpu_s", time.process_time())

WorkbenchApp.on_ready = on_ready

async def main():
    app = create_app(sys.argv[1], keymap={}, clock=lambda: DEMO_NOW, reconcile_interval=0, poll_interval=0)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.query_one(ExperimentTable).row_count < int(sys.argv[2]):
            await pilot.pause(0.01)
        marks["table_filled_s"] = time.perf_counter() - started
        marks["table_filled_cpu_s"] = time.process_time()
    print(json.dumps(marks))

asyncio.run(main())
"""


def build_store(path: Path) -> None:
    """Write the benchmark store unless the file at ``path`` exists (a store built earlier)."""
    if path.exists():
        logger.info("reusing the store %s", path)
        return
    started = time.perf_counter()
    store = Store(str(path))
    seed_demo_store(store, LONG, prefix="long", seed=1)
    seed_demo_store(store, TYPICAL, prefix="typical", seed=2)
    store.close()
    logger.info("built the store %s in %.1f s", path, time.perf_counter() - started)


def count_rows(store: Store) -> tuple[int, int]:
    with store.read() as session:
        metrics = session.scalar(select(func.count()).select_from(Metric)) or 0
    return len(store.list_experiments()), metrics


def summarize(samples: list[float]) -> dict[str, float]:
    """Return the median, min and max of ``samples`` (seconds) in milliseconds."""
    return {
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "min_ms": round(min(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
        "repeats": len(samples),
    }


def time_call(call: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def measure_startup(db: Path, experiments: int, repeats: int) -> dict[str, dict[str, float]]:
    """Run the UI in fresh processes and return the import, first-paint and table-filled times."""
    names = ("import", "first_paint", "table_filled")
    marks: dict[str, list[float]] = {f"{name}{kind}": [] for name in names for kind in ("_s", "_cpu_s")}
    for _ in range(repeats):
        result = subprocess.run(
            [sys.executable, "-c", CHILD_STARTUP, str(db), str(experiments)],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        values = json.loads(result.stdout.strip().splitlines()[-1])
        for name in marks:
            marks[name].append(values[name])
    return {name.removesuffix("_s"): summarize(samples) for name, samples in marks.items()}


async def measure_in_app(db: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Time the table and plot refreshes inside a running headless app."""
    from workbench.tui.app import create_app
    from workbench.tui.run_snapshot import read_run_snapshot
    from workbench.tui.screens.experiments import ExperimentsScreen
    from workbench.tui.screens.monitor import MAX_POINTS, MonitorScreen
    from workbench.tui.system import SystemProbe
    from workbench.tui.testing import settle
    from workbench.tui.widgets.curve_plot import CurvePlot

    workbench = Workbench(str(db))
    store = workbench.store
    app = create_app(workbench, keymap={}, clock=lambda: DEMO_NOW, reconcile_interval=0, poll_interval=0)
    results: dict[str, dict[str, float]] = {}
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        results["table_query"] = summarize(time_call(store.experiment_summaries, repeats))
        summaries = store.experiment_summaries()
        message = ExperimentsScreen.SummariesLoaded(summaries)
        results["table_update"] = summarize(time_call(lambda: screen.on_experiments_screen_summaries_loaded(message), repeats))
        filter_input = screen.query_one("#filter")

        def filter_keystroke() -> None:
            filter_input.value = "tag:abla" if filter_input.value == "" else ""
            screen._show()

        results["table_filter_keystroke"] = summarize(time_call(filter_keystroke, repeats))
        results["table_sort_change"] = summarize(time_call(screen.action_sort_next, repeats))

        probe = SystemProbe().read
        for label, exp_id in (("typical", "typical-0001"), ("long", "long-0000")):
            run_id = store.get_experiment(exp_id).runs[-1].id
            rows = store.last_metrics(run_id)
            snapshot_call = lambda: read_run_snapshot(workbench, run_id, now=DEMO_NOW, max_points=MAX_POINTS, probe=probe)  # noqa: E731
            results[f"plot_poll_{label}"] = summarize(time_call(snapshot_call, repeats))
            app.show_run(run_id)
            await settle(pilot)
            monitor = app.screen
            assert isinstance(monitor, MonitorScreen)
            snapshot = snapshot_call()
            plot = monitor.query_one("#loss-plot", CurvePlot)

            def redraw() -> None:
                monitor.on_monitor_screen_snapshot_read(MonitorScreen.SnapshotRead(snapshot))
                plot.render()

            results[f"plot_redraw_{label}"] = summarize(time_call(redraw, repeats))
            results[f"plot_poll_{label}"]["train_loss_last_step"] = rows["train_loss"][0]
            app.switch_mode("experiments")
            await settle(pilot)
    workbench.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="store file to reuse or build (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The store logs every experiment and run it creates: 2,000 lines while building.
    logging.getLogger("workbench").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as folder:
        db = args.db or Path(folder) / "bench_tui.db"
        build_store(db)
        store = Store(str(db))
        experiments, metric_rows = count_rows(store)
        store.close()
        logger.info("store: %d experiments, %d metric rows", experiments, metric_rows)
        startup = measure_startup(db, experiments, args.repeats)
        in_app = asyncio.run(measure_in_app(db, args.repeats))

    record = {
        "benchmark": "benchmarks/bench_tui.py",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "store": {"experiments": experiments, "metric_rows": metric_rows, "terminal": list(TERMINAL)},
        "startup": startup,
        "refresh": in_app,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    logger.info("%s", json.dumps(record, indent=2))
    logger.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
