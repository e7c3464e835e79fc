"""The analysis suite: likelihood bound, zero-shot bounds, generation and infilling metrics.

``analyze_experiment(store, exp_id, AnalysisSettings())`` runs the analyses on an
experiment's newest trained run, writes ``analysis_results/<exp_id>/`` and adds the metrics
to the store. ``load_comparison(store, exp_ids)`` builds the side-by-side table that
``workbench compare`` and the terminal UI show. Importing this package loads neither torch
nor the models; ``analyze_experiment`` loads them on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.analysis.compare import ComparisonTable, StoredValue, build_comparison, load_comparison
from workbench.analysis.settings import AnalysisSettings

if TYPE_CHECKING:
    from workbench.analysis.runner import analyze_experiment

__all__ = [
    "AnalysisSettings",
    "ComparisonTable",
    "StoredValue",
    "analyze_experiment",
    "build_comparison",
    "load_comparison",
]


def __getattr__(name: str) -> Any:
    # The runner imports torch and the model code, which the TUI's first paint must not pay for.
    if name == "analyze_experiment":
        from workbench.analysis.runner import analyze_experiment

        return analyze_experiment
    raise AttributeError(f"module 'workbench.analysis' has no attribute {name!r}")
