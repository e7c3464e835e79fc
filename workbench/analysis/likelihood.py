"""The perplexity bound on the test split and the zero-shot bounds on other corpora."""

from __future__ import annotations

import logging

from sedd.sampling import model_log_score_fn
from workbench.analysis.bound import estimate_bound
from workbench.analysis.data import EvalBlocks, zero_shot_blocks
from workbench.analysis.loading import LoadedRun
from workbench.analysis.progress import Progress
from workbench.analysis.results import AnalysisResult
from workbench.analysis.settings import AnalysisSettings

logger = logging.getLogger(__name__)

# The GPT-2 tokenizer has 50,256 BPE tokens plus <|endoftext|> at id 50256. Zero-shot bounds are
# compared with published numbers on GPT-2 tokens, so models with other vocabularies are skipped.
GPT2_VOCAB_SIZE = 50257
GPT2_EOT_ID = 50256


def _bound_result(
    name: str, prefix: str, loaded: LoadedRun, data: EvalBlocks, settings: AnalysisSettings, progress: Progress,
    per_char: bool = False,
) -> AnalysisResult:
    with progress.task(f"{name}: likelihood bound ({prefix})", len(data.blocks)) as update:
        estimate = estimate_bound(
            model_log_score_fn(loaded.model), loaded.graph, loaded.noise, data.blocks,
            num_times=settings.bound_times, batch_size=settings.batch_size, seed=settings.seed, progress=update,
        )  # fmt: skip
    result = AnalysisResult(name)
    result.metrics = estimate.measurements(prefix, per_char=per_char)
    result.protocol = {
        **data.protocol(), **estimate.protocol(), "seed": settings.seed, "batch_size": settings.batch_size
    }
    result.details = {"block_stderr_nats_per_token": estimate.block_stderr}
    return result


def run_bound(loaded: LoadedRun, data: EvalBlocks, settings: AnalysisSettings, progress: Progress) -> AnalysisResult:
    """Estimate the test-split bound in nats and bits per token (bits per character for char models)."""
    result = _bound_result("bound", "test", loaded, data, settings, progress, per_char=loaded.per_char)
    if loaded.per_char:
        result.protocol["bits_per_char"] = "char tokenizer: one token per character, end-of-text tokens included"
    return result


def zero_shot_supported(loaded: LoadedRun) -> str | None:
    """Return why zero-shot evaluation does not apply to this model, or None if it does."""
    tokenizer = loaded.tokenizer
    # NOTE: a Hugging Face tokenizer with GPT-2's size and end-of-text id is taken to be GPT-2's;
    # the vocabulary itself is not compared.
    gpt2_like = tokenizer.vocab_size == GPT2_VOCAB_SIZE and tokenizer.eot_id == GPT2_EOT_ID
    if getattr(tokenizer, "kind", None) != "hf" or not gpt2_like:
        return (
            f"zero-shot evaluation needs a model with the GPT-2 tokenizer, but this run uses "
            f"{tokenizer.kind} tokenizer {tokenizer.name!r} with {tokenizer.vocab_size} tokens; "
            "train with data.tokenizer: gpt2 to compare with the published zero-shot numbers"
        )
    return None


def run_zero_shot(loaded: LoadedRun, settings: AnalysisSettings, progress: Progress) -> AnalysisResult:
    """Estimate the bound on each zero-shot corpus; a corpus that cannot be read is skipped."""
    from sedd.data import PRESETS, DataConfigError, DataUnavailableError

    result = AnalysisResult("zero_shot")
    reason = zero_shot_supported(loaded)
    if reason is not None:
        result.status, result.message = "skipped", reason
        return result

    skipped = {}
    for corpus in settings.zero_shot_corpora:
        files = settings.zero_shot_files.get(corpus)
        try:
            with progress.task(f"zero_shot: reading {corpus}", 1) as update:
                data = zero_shot_blocks(loaded, corpus, files, settings.zero_shot_blocks)
                update(1, 1)
        except (DataConfigError, DataUnavailableError) as error:
            logger.warning("zero-shot %s skipped: %s", corpus, error)
            skipped[corpus] = str(error)
            continue
        corpus_result = _bound_result("zero_shot", f"zero_shot/{corpus}", loaded, data, settings, progress)
        result.metrics.update(corpus_result.metrics)
        result.protocol[corpus] = {**corpus_result.protocol, "detokenizer": PRESETS[corpus].detokenizer}
        result.details[corpus] = {"fingerprint": data.fingerprint, **corpus_result.details}
    if skipped:
        result.details["skipped"] = skipped
        # The data errors explain the fix over several lines; the summary line keeps the first.
        first_lines = (f"{name}: {why.splitlines()[0]}" for name, why in skipped.items())
        result.message = "skipped corpora (details.skipped has the full reasons): " + "; ".join(first_lines)
    if not result.metrics:
        result.status = "skipped"
    return result
