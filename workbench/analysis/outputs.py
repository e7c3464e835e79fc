"""Writing an analysis report: result files under ``analysis_results/<exp_id>/`` and store rows.

The folder contains ``summary.yaml`` (metrics, standard errors, protocol, fingerprints),
``samples.jsonl`` (unconditional samples) and ``infill_examples.jsonl``. Each file is
written to a temporary name, flushed and renamed, so a reader never sees half a file; a
new analysis of the same experiment replaces the files.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from workbench.analysis.results import AnalysisReport

logger = logging.getLogger(__name__)

RESULTS_DIR_NAME = "analysis_results"
SUMMARY_NAME = "summary.yaml"
# Analysis name -> the JSON lines file of its examples.
EXAMPLE_FILES = {"generation": "samples.jsonl", "infill": "infill_examples.jsonl"}


def write_atomic(target: Path, text: str) -> None:
    """Replace ``target`` with ``text`` (UTF-8) through a synced temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A plain open (not mkstemp, which creates mode 0600) gives the file the usual umask mode.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def jsonl_text(rows: Iterable[dict[str, Any]]) -> str:
    """Return one compact JSON object per line, non-ASCII text kept readable."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_report_files(report: AnalysisReport, folder: Path) -> list[Path]:
    """Write the summary and the example files of ``report`` into ``folder``; return the paths."""
    written = []
    for result in report.results:
        file_name = EXAMPLE_FILES.get(result.name)
        if file_name is None:
            continue
        path = folder / file_name
        write_atomic(path, jsonl_text(result.examples))
        written.append(path)
    summary = folder / SUMMARY_NAME
    write_atomic(summary, yaml.safe_dump(report.to_dict(), sort_keys=False, allow_unicode=True, width=100))
    written.append(summary)
    logger.info("wrote analysis of %s to %s", report.exp_id, folder)
    return written


def store_rows(report: AnalysisReport) -> list[tuple[str, float, dict[str, Any]]]:
    """Return ``(name, value, details)`` for each metric, as the store's evaluation table keeps them.

    ``details`` carries the standard error, the unit, the analysis, its protocol and the
    summary file's path, so a row alone describes what it measured.
    """
    rows = []
    for result in report.results:
        for name, measurement in result.metrics.items():
            details: dict[str, Any] = {
                **measurement.to_dict(),
                "analysis": result.name,
                "analysed_at": report.analysed_at,
                "protocol": result.protocol,
            }
            details.pop("value")
            if report.output_dir:
                details["summary"] = str(Path(report.output_dir) / SUMMARY_NAME)
            rows.append((name, measurement.value, details))
    return rows


def record_in_store(store: Any, report: AnalysisReport) -> int:
    """Add every metric of ``report`` to the store's evaluation table of its run; return the count."""
    count = 0
    for name, value, details in store_rows(report):
        if math.isnan(value):
            # SQLite stores NaN as NULL, which the non-null value column rejects.
            logger.warning("not storing %s of run %d: the value is NaN", name, report.run_id)
            continue
        store.add_eval_result(report.run_id, name, value, json.loads(json.dumps(details, default=str)))
        count += 1
    logger.info("recorded %d analysis results for run %d of %s", count, report.run_id, report.exp_id)
    return count
