"""Names, units and directions of the metrics the analysis suite stores.

A stored name is ``<analysis>/<metric>``, for example ``test/bpt`` or
``zero_shot/ptb/ppl_bound``. The comparison table reads the label, the unit and whether a
lower or a higher value is better from here, so one place defines how a number is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class MetricSpec:
    """Label, unit and ranking direction of a stored metric; ``better`` is None where no value is best."""

    name: str
    label: str
    unit: str
    better: Better | None

    @property
    def header(self) -> str:
        """The label with its unit in brackets, for table headers."""
        return f"{self.label} [{self.unit}]" if self.unit else self.label


# In display order. Self-BLEU is lower-is-better because a lower value means more diverse
# samples; entropy and Distinct-n are higher-is-better for the same reason.
KNOWN_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("test/nll", "test NLL bound", "nats/token", "lower"),
    MetricSpec("test/bpt", "test NLL bound", "bits/token", "lower"),
    MetricSpec("test/bpc", "test NLL bound", "bits/char", "lower"),
    MetricSpec("test/ppl_bound", "test perplexity bound", "ppl", "lower"),
    MetricSpec("generation/gen_ppl", "generative perplexity", "ppl", "lower"),
    MetricSpec("generation/self_bleu", "Self-BLEU", "0-1", "lower"),
    MetricSpec("generation/distinct_1", "Distinct-1", "0-1", "higher"),
    MetricSpec("generation/distinct_2", "Distinct-2", "0-1", "higher"),
    MetricSpec("generation/distinct_3", "Distinct-3", "0-1", "higher"),
    MetricSpec("generation/distinct_4", "Distinct-4", "0-1", "higher"),
    MetricSpec("generation/entropy", "mean sample entropy", "nats", "higher"),
    MetricSpec("infill/token_accuracy", "infill token accuracy", "0-1", "higher"),
    MetricSpec("infill/exact_match", "infill exact span match", "0-1", "higher"),
    MetricSpec("infill/span_bleu", "infill span BLEU", "0-1", "higher"),
    MetricSpec("infill_baseline/token_accuracy", "baseline token accuracy", "0-1", None),
    MetricSpec("infill_baseline/exact_match", "baseline exact span match", "0-1", None),
    MetricSpec("infill_baseline/span_bleu", "baseline span BLEU", "0-1", None),
)
_BY_NAME = {spec.name: spec for spec in KNOWN_METRICS}

_ZERO_SHOT = re.compile(r"zero_shot/(?P<corpus>[\w.-]+)/(?P<metric>nll|bpt|ppl_bound)")
_ZERO_SHOT_UNITS = {
    "nll": ("NLL bound", "nats/token"),
    "bpt": ("NLL bound", "bits/token"),
    "ppl_bound": ("perplexity bound", "ppl"),
}


def metric_spec(name: str) -> MetricSpec:
    """Return the spec of a stored metric name; an unknown name gets no unit and no ranking."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    match = _ZERO_SHOT.fullmatch(name)
    if match:
        label, unit = _ZERO_SHOT_UNITS[match["metric"]]
        return MetricSpec(name, f"{match['corpus']} zero-shot {label}", unit, "lower")
    return MetricSpec(name, name, "", None)


def sort_key(name: str) -> tuple[int, str]:
    """Order known metrics as listed with zero-shot metrics after the test bound; others last."""
    names = [spec.name for spec in KNOWN_METRICS]
    if name in names:
        return (2 * names.index(name), "")
    if _ZERO_SHOT.fullmatch(name):
        return (2 * names.index("test/ppl_bound") + 1, name)
    return (2 * len(names), name)
