"""Sampling from a trained score: predictors, the denoiser and the sampling loop.

``sample(model_score_fn(model), graph, noise, batch_size=..., length=..., steps=...)`` draws
sequences; ``sedd.infill.InfillTemplate`` fixes some of their tokens.
"""

from sedd.sampling.loop import CancelCheck, ProgressFn, SamplingCancelled, sample
from sedd.sampling.predictors import (
    AnalyticPredictor,
    Denoiser,
    EulerPredictor,
    NonePredictor,
    Predictor,
    get_predictor,
    predictor_names,
    register_predictor,
)
from sedd.sampling.score_fns import LogScoreFn, ScoreFn, model_log_score_fn, model_score_fn

__all__ = [
    "AnalyticPredictor",
    "CancelCheck",
    "Denoiser",
    "EulerPredictor",
    "LogScoreFn",
    "NonePredictor",
    "Predictor",
    "ProgressFn",
    "SamplingCancelled",
    "ScoreFn",
    "get_predictor",
    "model_log_score_fn",
    "model_score_fn",
    "predictor_names",
    "register_predictor",
    "sample",
]
