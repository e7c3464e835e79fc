"""Result types of the analysis suite: a measured value, one analysis, a whole report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "skipped", "failed"]


@dataclass(frozen=True)
class Measurement:
    """A metric value, its standard error where the estimate has one, and its unit."""

    value: float
    stderr: float | None = None
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return plain data for YAML and the store (non-finite values as strings)."""
        data: dict[str, Any] = {"value": _plain_float(self.value)}
        if self.stderr is not None:
            data["stderr"] = _plain_float(self.stderr)
        if self.unit:
            data["unit"] = self.unit
        return data


@dataclass
class AnalysisResult:
    """The outcome of one analysis.

    ``metrics`` maps stored names (``test/bpt``, see ``workbench.analysis.metrics``) to
    values. ``protocol`` states how they were measured. A skipped or failed analysis keeps
    the metrics it did measure and gives the reason in ``message``. ``examples`` are rows for a
    JSON lines file (samples, infilled texts) and stay out of the summary.
    """

    name: str
    status: Status = "ok"
    message: str | None = None
    metrics: dict[str, Measurement] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the summary entry of this analysis (examples excluded)."""
        data: dict[str, Any] = {"status": self.status}
        if self.message:
            data["message"] = self.message
        data["wall_time_s"] = round(self.wall_time_s, 3)
        data["metrics"] = {name: measurement.to_dict() for name, measurement in self.metrics.items()}
        data["protocol"] = self.protocol
        if self.details:
            data["details"] = self.details
        return data


@dataclass
class AnalysisReport:
    """Every analysis of one experiment, with the facts that identify what was measured."""

    exp_id: str
    run_id: int
    analysed_at: str
    checkpoint: dict[str, Any]
    data: dict[str, Any]
    settings: dict[str, Any]
    results: list[AnalysisResult] = field(default_factory=list)
    wall_time_s: float = 0.0
    output_dir: str | None = None

    def result(self, name: str) -> AnalysisResult:
        """Return the result of the analysis called ``name``; raise KeyError if it did not run."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"analysis {name!r} did not run; ran: {[result.name for result in self.results]}")

    def to_dict(self) -> dict[str, Any]:
        """Return the contents of ``summary.yaml``."""
        return {
            "exp_id": self.exp_id,
            "run_id": self.run_id,
            "analysed_at": self.analysed_at,
            "wall_time_s": round(self.wall_time_s, 3),
            "checkpoint": self.checkpoint,
            "data": self.data,
            "settings": self.settings,
            "analyses": {result.name: result.to_dict() for result in self.results},
        }


def _plain_float(value: float) -> float | str:
    # YAML and JSON readers disagree on inf and nan; a string reads the same everywhere.
    return float(value) if math.isfinite(value) else str(value)
