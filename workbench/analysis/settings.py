"""Settings of one analysis: which analyses run and how large each one is.

``AnalysisSettings()`` follows the SEDD paper's protocol (Lou, Meng and Ermon,
arXiv:2310.16834) where it fixes one: 1,000 Monte Carlo times for the bound and GPT-2 large
as the reference model. ``AnalysisSettings.quick()`` shrinks every analysis, so that the
suite takes about a minute on a CPU for the quickstart model. Every field is copied into the
results, so two analyses can be told apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANALYSES = ("bound", "zero_shot", "generation", "infill")
ZERO_SHOT_CORPORA = ("wikitext2", "wikitext103", "ptb", "lambada", "lm1b")
SPAN_LAYOUTS = ("middle", "spread", "start", "end")
PREDICTORS = ("euler", "analytic")
DEFAULT_REFERENCE_MODEL = "gpt2-large"
QUICK_REFERENCE_MODEL = "gpt2"


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings of one ``analyze`` call. ``None`` means "take it from the experiment's config".

    Attributes:
        analyses: names from ``ANALYSES`` to run, in that order.
        seed: seed of every random draw (times, noise, samples, infilling).
        device: torch device for the model and the reference model.
        bound_times: K, Monte Carlo times per test block for the likelihood bound.
        bound_blocks: test blocks for the bound; None evaluates the whole test split.
        batch_size: blocks (or samples) per forward pass.
        zero_shot_corpora: corpus presets for the zero-shot bound.
        zero_shot_files: corpus name -> local file or glob standing in for its hub download.
        zero_shot_blocks: blocks per zero-shot corpus; None evaluates all of them.
        num_samples: unconditional samples for the generation metrics.
        steps: sampling steps; None uses ``diffusion.sampling.steps`` of the config.
        predictor: ``euler`` or ``analytic``; None uses the config's predictor.
        reference_model: Hugging Face name or local folder of the model for generative
            perplexity; None skips that metric.
        download_reference: download ``reference_model`` from the Hugging Face hub when it
            is not in the local cache; otherwise generative perplexity is skipped.
        self_bleu_order, self_bleu_smoothing: BLEU n-gram order and nltk smoothing method.
        infill_examples: test blocks to hide spans in.
        infill_span_length: tokens per hidden span.
        infill_layout: ``middle`` (one centred span), ``spread`` (``infill_spans`` spans
            evenly spaced), ``start`` or ``end``.
        infill_spans: number of spans for the ``spread`` layout.
    """

    analyses: tuple[str, ...] = ANALYSES
    seed: int = 0
    device: str = "cpu"
    bound_times: int = 1000
    bound_blocks: int | None = None
    batch_size: int = 8
    zero_shot_corpora: tuple[str, ...] = ZERO_SHOT_CORPORA
    zero_shot_files: Mapping[str, str] = field(default_factory=dict)
    zero_shot_blocks: int | None = None
    num_samples: int = 64
    steps: int | None = None
    predictor: str | None = None
    reference_model: str | None = DEFAULT_REFERENCE_MODEL
    download_reference: bool = False
    self_bleu_order: int = 4
    self_bleu_smoothing: str = "method1"
    infill_examples: int = 32
    infill_span_length: int = 16
    infill_layout: str = "middle"
    infill_spans: int = 1

    def __post_init__(self) -> None:
        unknown = [name for name in self.analyses if name not in ANALYSES]
        if unknown or not self.analyses:
            raise ValueError(f"unknown analyses {unknown or '(none given)'}; choose from {', '.join(ANALYSES)}")
        for name in ("bound_times", "batch_size", "num_samples", "self_bleu_order", "infill_examples",
                     "infill_span_length", "infill_spans"):
            _check_positive(name, getattr(self, name))
        for name in ("bound_blocks", "zero_shot_blocks", "steps"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        if "generation" in self.analyses and self.num_samples < 2:
            raise ValueError(f"invalid num_samples={self.num_samples}: Self-BLEU needs at least 2 samples")
        if self.predictor is not None and self.predictor not in PREDICTORS:
            raise ValueError(f"unknown predictor {self.predictor!r}; choose one of {', '.join(PREDICTORS)}")
        if self.infill_layout not in SPAN_LAYOUTS:
            raise ValueError(f"unknown infill layout {self.infill_layout!r}; choose one of {', '.join(SPAN_LAYOUTS)}")
        if self.infill_layout != "spread" and self.infill_spans != 1:
            raise ValueError(
                f"infill_spans={self.infill_spans} needs infill_layout='spread'; the "
                f"{self.infill_layout!r} layout hides exactly one span"
            )
        stray = sorted(set(self.zero_shot_files) - set(ZERO_SHOT_CORPORA))
        if stray:
            raise ValueError(f"zero-shot files given for unknown corpora {stray}; use {', '.join(ZERO_SHOT_CORPORA)}")

    @classmethod
    def quick(cls, **overrides: Any) -> AnalysisSettings:
        """Return small settings for a smoke test: seconds per analysis on a CPU."""
        # GPT-2 small (124M parameters) instead of GPT-2 large as the reference model.
        values: dict[str, Any] = dict(
            bound_times=8, bound_blocks=16, zero_shot_blocks=8, num_samples=8, steps=32,
            infill_examples=4, batch_size=8, reference_model=QUICK_REFERENCE_MODEL,
        )  # fmt: skip
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> AnalysisSettings:
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain data for a results file."""
        values = dataclasses.asdict(self)
        values["analyses"] = list(self.analyses)
        values["zero_shot_corpora"] = list(self.zero_shot_corpora)
        values["zero_shot_files"] = dict(self.zero_shot_files)
        return values


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"invalid {name}={value!r}: use a positive integer")
