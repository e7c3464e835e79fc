"""Run the analysis suite on one experiment and keep the results.

``analyze_experiment`` picks the run, loads its model, runs the requested analyses in order,
writes ``analysis_results/<exp_id>/`` and adds every metric to the store's evaluation table.
An analysis that fails on bad data or a runtime error is recorded as failed with the error,
and the others still run. The test blocks are read once and shared by the bound and
infilling.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.analysis.data import EvalBlocks, evenly_spaced, test_blocks
from workbench.analysis.generation import run_generation
from workbench.analysis.infill import run_infill
from workbench.analysis.likelihood import run_bound, run_zero_shot
from workbench.analysis.loading import LoadedRun, choose_run, load_run
from workbench.analysis.outputs import RESULTS_DIR_NAME, record_in_store, write_report_files
from workbench.analysis.progress import Progress
from workbench.analysis.results import AnalysisReport, AnalysisResult
from workbench.analysis.settings import AnalysisSettings
from workbench.store import Store

logger = logging.getLogger(__name__)

# The errors an analysis can meet on valid code: bad or missing data (ValueError, including
# DataConfigError), an unreachable corpus (RuntimeError, including DataUnavailableError),
# unreadable files (OSError), and device errors such as CUDA out of memory (RuntimeError).
ANALYSIS_ERRORS = (ValueError, RuntimeError, OSError)


class _Context:
    """State shared by the analyses of one run: the loaded run and the lazily read test blocks."""

    def __init__(self, loaded: LoadedRun, settings: AnalysisSettings, progress: Progress) -> None:
        self.loaded = loaded
        self.settings = settings
        self.progress = progress
        self._test: EvalBlocks | None = None

    def test_data(self) -> EvalBlocks:
        if self._test is None:
            with self.progress.task("reading the test split", 1) as update:
                # The bound uses all bound_blocks; infilling takes infill_examples of them.
                self._test = test_blocks(self.loaded, self.settings.bound_blocks)
                update(1, 1)
        return self._test

    def data_fingerprints(self) -> dict[str, Any]:
        """Return the fingerprint of the test blocks under ``test``, if they were read."""
        return {} if self._test is None else {"test": self._test.fingerprint}


def _bound(context: _Context) -> AnalysisResult:
    return run_bound(context.loaded, context.test_data(), context.settings, context.progress)


def _zero_shot(context: _Context) -> AnalysisResult:
    return run_zero_shot(context.loaded, context.settings, context.progress)


def _generation(context: _Context) -> AnalysisResult:
    return run_generation(context.loaded, context.settings, context.progress)


def _infill(context: _Context) -> AnalysisResult:
    data = context.test_data()
    picked = torch.from_numpy(evenly_spaced(len(data.blocks), context.settings.infill_examples))
    chosen = torch.zeros(len(data.blocks), dtype=torch.bool, device=data.blocks.device)
    chosen[picked.to(chosen.device)] = True
    examples, rest = data.blocks[chosen], data.blocks[~chosen]
    result = run_infill(context.loaded, examples, rest, context.settings, context.progress)
    result.protocol["source"] = data.protocol()
    return result


ANALYSIS_FUNCTIONS: dict[str, Callable[[_Context], AnalysisResult]] = {
    "bound": _bound,
    "zero_shot": _zero_shot,
    "generation": _generation,
    "infill": _infill,
}


def analyze_experiment(
    store: Store,
    exp_id: str,
    settings: AnalysisSettings,
    *,
    run_id: int | None = None,
    output_root: str | Path | None = None,
    progress: Progress | None = None,
) -> AnalysisReport:
    """Analyse the newest trained run of ``exp_id`` (or run ``run_id``) and keep the results.

    Results go to ``<output_root>/analysis_results/<exp_id>/`` (``output_root`` defaults to
    the store's folder) and to the store's evaluation table of the run.

    Raises:
        ExperimentNotFound, RunNotFound, NoCheckpoint, AnalysisError: nothing to analyse.
    """
    progress = progress or Progress()
    started = time.perf_counter()
    run = choose_run(store, exp_id, run_id)
    loaded = load_run(run, settings.device)
    context = _Context(loaded, settings, progress)
    report = AnalysisReport(
        exp_id=exp_id,
        run_id=run.id,
        analysed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        checkpoint=loaded.checkpoint_facts(),
        data={},
        settings=settings.to_dict(),
    )
    for name in settings.analyses:
        report.results.append(_run_one(name, context))
    report.data = context.data_fingerprints()
    report.wall_time_s = time.perf_counter() - started

    folder = Path(output_root) if output_root is not None else store.workdir
    folder = folder / RESULTS_DIR_NAME / exp_id
    report.output_dir = str(folder)
    write_report_files(report, folder)
    record_in_store(store, report)
    return report


def _run_one(name: str, context: _Context) -> AnalysisResult:
    started = time.perf_counter()
    try:
        result = ANALYSIS_FUNCTIONS[name](context)
    except ANALYSIS_ERRORS as error:
        logger.exception("analysis %s of run %d failed", name, context.loaded.run.id)
        result = AnalysisResult(name, status="failed", message=f"{type(error).__name__}: {error}")
    result.wall_time_s = time.perf_counter() - started
    logger.info("analysis %s: %s in %.1f s", name, result.status, result.wall_time_s)
    return result
