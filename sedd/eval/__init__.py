"""Metrics for judging a trained model: diversity, generative perplexity and infilling.

The modules take plain token sequences, texts and tensors, so they serve any caller: the
workbench's analysis suite (``workbench/analysis/``), notebooks and tests.
"""

from sedd.eval.distinct import distinct_n, distinct_scores
from sedd.eval.entropy import mean_sample_entropy, sample_entropy
from sedd.eval.genppl import (
    GenerativePerplexity,
    ReferenceModel,
    ReferenceModelUnavailable,
    generative_perplexity,
    load_reference_model,
)
from sedd.eval.infill_metrics import InfillScores, most_frequent_fill, score_infill, span_mask
from sedd.eval.selfbleu import SelfBleu, self_bleu

__all__ = [
    "GenerativePerplexity",
    "InfillScores",
    "ReferenceModel",
    "ReferenceModelUnavailable",
    "SelfBleu",
    "distinct_n",
    "distinct_scores",
    "generative_perplexity",
    "load_reference_model",
    "mean_sample_entropy",
    "most_frequent_fill",
    "sample_entropy",
    "score_infill",
    "self_bleu",
    "span_mask",
]
