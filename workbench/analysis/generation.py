"""Unconditional samples and their diversity and quality.

Samples are drawn with ``sedd.sampling.sample`` from float64 scores, and its categorical
draws use float64 noise (see ``sedd.categorical``), so low-probability tokens are not cut
off. Distinct-n and
Self-BLEU count whitespace-separated words of the decoded text, which makes them comparable
across tokenizers. The sample entropy counts the model's own tokens, as Zheng et al.
(arXiv:2409.02908) do. Generative perplexity needs a reference model and is skipped with a
message when none can be loaded.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from sedd.eval import (
    ReferenceModelUnavailable,
    distinct_scores,
    generative_perplexity,
    load_reference_model,
    mean_sample_entropy,
    self_bleu,
)
from sedd.sampling import ScoreFn, model_log_score_fn, sample
from workbench.analysis.loading import LoadedRun
from workbench.analysis.progress import Progress
from workbench.analysis.results import AnalysisResult, Measurement
from workbench.analysis.settings import AnalysisSettings

logger = logging.getLogger(__name__)

DISTINCT_ORDERS = (1, 2, 3, 4)


def float64_score_fn(model: torch.nn.Module) -> ScoreFn:
    """Return a score function giving float64 ``(B, L, D)`` scores, exponentiated in float64.

    The predictors then form their rates and probabilities in float64 too. That doubles the
    memory of one ``(B, L, D)`` tensor (400 MB per sequence of 1,024 GPT-2 tokens).
    """
    log_score_fn = model_log_score_fn(model)

    def score_fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return log_score_fn(x, sigma).to(torch.float64).exp()

    return score_fn


def sampler_settings(loaded: LoadedRun, settings: AnalysisSettings) -> dict[str, Any]:
    """Return the sampler's steps, predictor, eps and denoise: the settings over the config."""
    sampling = loaded.config.diffusion.sampling
    return {
        "steps": settings.steps or sampling.steps,
        "predictor": settings.predictor or sampling.predictor,
        "eps": sampling.eps,
        "denoise": sampling.denoise,
    }


def draw_samples(loaded: LoadedRun, settings: AnalysisSettings, progress: Progress) -> torch.Tensor:
    """Draw ``settings.num_samples`` sequences, int64 ``(N, L)`` on the CPU."""
    sampler = sampler_settings(loaded, settings)
    score_fn = float64_score_fn(loaded.model)
    generator = torch.Generator(device=loaded.device).manual_seed(settings.seed)
    batches = []
    remaining = settings.num_samples
    total = -(-settings.num_samples // settings.batch_size) * sampler["steps"]
    with progress.task("generation: sampling", total) as update:
        while remaining > 0:
            size = min(settings.batch_size, remaining)
            offset = len(batches) * sampler["steps"]
            tokens = sample(
                score_fn, loaded.graph, loaded.noise, batch_size=size, length=loaded.seq_len,
                generator=generator, device=loaded.device,
                progress=lambda done, _steps: update(offset + done, total), **sampler,
            )  # fmt: skip
            batches.append(tokens.cpu())
            remaining -= size
    return torch.cat(batches)


def decode(loaded: LoadedRun, tokens: torch.Tensor) -> list[str]:
    """Decode int64 ``(N, L)`` tokens, dropping ids outside the vocabulary (a leftover mask)."""
    vocab_size = loaded.tokenizer.vocab_size
    return [loaded.tokenizer.decode([token for token in row if token < vocab_size]) for row in tokens.tolist()]


def run_generation(loaded: LoadedRun, settings: AnalysisSettings, progress: Progress) -> AnalysisResult:
    """Sample, then measure Self-BLEU, Distinct-1..4, sample entropy and generative perplexity."""
    result = AnalysisResult("generation")
    tokens = draw_samples(loaded, settings, progress)
    texts = decode(loaded, tokens)
    words = [text.split() for text in texts]

    bleu = self_bleu(words, order=settings.self_bleu_order, smoothing=settings.self_bleu_smoothing)
    result.metrics["generation/self_bleu"] = Measurement(bleu.score, unit="0-1")
    notes: list[str] = []
    for order, value in _distinct(words, notes).items():
        result.metrics[f"generation/distinct_{order}"] = Measurement(value, unit="0-1")
    result.metrics["generation/entropy"] = Measurement(mean_sample_entropy(tokens.tolist()), unit="nats")
    result.protocol = {
        "samples": len(texts),
        "length": loaded.seq_len,
        **sampler_settings(loaded, settings),
        "precision": "float64 scores and predictor arithmetic; categorical draws with float64 noise",
        "seed": settings.seed,
        "self_bleu": bleu.protocol(),
        "distinct_unit": "whitespace-separated words of the decoded text, counted over all samples",
        "entropy": "mean over samples of the entropy of each sample's model-token histogram, nats",
    }

    result.protocol["generative_perplexity"] = _generative_perplexity(texts, settings, loaded, progress, result, notes)
    result.message = "; ".join(notes) or None
    result.examples = [
        {"index": index, "text": text, "tokens": row} for index, (text, row) in enumerate(zip(texts, tokens.tolist()))
    ]
    return result


def _distinct(words: list[list[str]], notes: list[str]) -> dict[int, float]:
    # Short samples may hold no 4-gram; the orders they have are still reported.
    scores = {}
    for order in DISTINCT_ORDERS:
        try:
            scores.update(distinct_scores(words, (order,)))
        except ValueError as error:
            logger.info("Distinct-%d not measured: %s", order, error)
            notes.append(f"Distinct-{order} not measured: {error}")
    return scores


def _generative_perplexity(
    texts: list[str],
    settings: AnalysisSettings,
    loaded: LoadedRun,
    progress: Progress,
    result: AnalysisResult,
    notes: list[str],
) -> dict[str, Any]:
    """Add ``generation/gen_ppl`` to ``result`` and return its protocol, or note why it is skipped."""
    if settings.reference_model is None:
        notes.append("generative perplexity skipped: no reference model requested")
        return {"skipped": "no reference model requested"}
    try:
        reference = load_reference_model(
            settings.reference_model, device=str(loaded.device), download=settings.download_reference
        )
    except ReferenceModelUnavailable as error:
        reason = f"{error}. {_reference_fixes(settings.reference_model, error.download_possible)}"
        logger.warning("generative perplexity skipped: %s", reason)
        notes.append(f"generative perplexity skipped: {reason}")
        return {"skipped": reason}
    with progress.task(f"generation: perplexity under {settings.reference_model}", len(texts)) as update:
        measured = generative_perplexity(texts, reference, batch_size=settings.batch_size, progress=update)
    result.metrics["generation/gen_ppl"] = Measurement(measured.perplexity, unit="ppl")
    return measured.protocol()


def _reference_fixes(name: str, download_possible: bool) -> str:
    """Return the ``analyze`` options that avoid a skip of generative perplexity."""
    download = f"--reference-model {name} to download it, " if download_possible else ""
    return (
        f"Pass {download}--reference-model FOLDER for a model saved with save_pretrained, "
        "or --reference-model none to skip this metric without the lookup"
    )
