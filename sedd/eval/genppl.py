"""Generative perplexity: how likely a reference autoregressive model finds generated text.

The texts are decoded and re-tokenised with the reference model's own tokenizer, so models
with different vocabularies are judged by the same yardstick. The result is token-weighted:
``exp(sum of token NLLs / number of tokens)`` over all texts, with the NLLs summed in float64.
SEDD (Lou et al., arXiv:2310.16834) reports it under GPT-2 large. A low value alone can hide
low diversity, so read it beside the sample entropy.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

# Context length used when a reference config names none (GPT-2's n_positions).
_FALLBACK_CONTEXT = 1024
_TRUE_VALUES = {"1", "true", "yes", "on"}


class ReferenceModelUnavailable(RuntimeError):
    """The reference model can be neither found locally nor downloaded.

    ``download_possible`` is true when a download was not tried only because the caller did
    not request one, so requesting it may help.
    """

    def __init__(self, message: str, *, download_possible: bool = False):
        super().__init__(message)
        self.download_possible = download_possible


@dataclass
class ReferenceModel:
    """A causal language model with its tokenizer, ready for scoring on ``device``."""

    name: str
    model: Any
    tokenizer: Any
    context_length: int
    device: torch.device


@dataclass(frozen=True)
class GenerativePerplexity:
    """Token-weighted perplexity of texts under a reference model."""

    perplexity: float
    nll_per_token: float  # nats
    num_tokens: int
    num_texts: int
    reference_model: str

    def protocol(self) -> dict[str, object]:
        """Return how the number was computed, for a results file."""
        return {
            "reference_model": self.reference_model,
            "weighting": "token-weighted over all texts",
            "retokenised": "decoded text re-encoded with the reference tokenizer, BOS prepended",
            "accumulation": "float64",
            "tokens": self.num_tokens,
            "texts": self.num_texts,
        }


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE_VALUES


def load_reference_model(
    name_or_path: str, *, device: str | torch.device = "cpu", download: bool = False
) -> ReferenceModel:
    """Load a causal LM and its tokenizer by hub name or local folder, in eval mode.

    The local folder or the Hugging Face cache is tried first. A download is tried only when
    that fails, ``download`` is true and ``HF_HUB_OFFLINE`` is not set, because without
    network the hub client retries for tens of seconds before it gives up.

    Raises:
        ReferenceModelUnavailable: the folder does not exist, or the model is neither cached
            nor downloadable. The message names the model and the fix.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path.startswith((".", "/", "~")) and not Path(name_or_path).expanduser().is_dir():
        raise ReferenceModelUnavailable(
            f"reference model folder {name_or_path} not found; pass a folder written by "
            "save_pretrained (model and tokenizer) or a Hugging Face model name"
        )
    source = str(Path(name_or_path).expanduser()) if name_or_path.startswith("~") else name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True)
        logger.info("loaded reference model %s from local files", name_or_path)
    except OSError as local_error:
        if _hub_offline():
            raise ReferenceModelUnavailable(
                f"reference model {name_or_path!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                "download it once with network access, pass a local folder, or skip generative perplexity"
            ) from local_error
        if not download:
            raise ReferenceModelUnavailable(
                f"reference model {name_or_path!r} is not in the local Hugging Face cache, and no download "
                "was requested",
                download_possible=True,
            ) from local_error
        logger.info("reference model %s is not cached (%s); downloading it", name_or_path, local_error)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source)
        except OSError as error:
            raise ReferenceModelUnavailable(
                f"reference model {name_or_path!r} is neither cached nor downloadable ({error}); "
                "pass a local folder or skip generative perplexity"
            ) from error

    model.to(device)
    model.eval()
    return ReferenceModel(name_or_path, model, tokenizer, _context_length(model, tokenizer), torch.device(device))


def _context_length(model: Any, tokenizer: Any) -> int:
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(model.config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 1 < limit < 1_000_000 else _FALLBACK_CONTEXT


def _windows(texts: Sequence[str], reference: ReferenceModel) -> list[list[int]]:
    """Split each BOS-prefixed text into windows of at most the context length.

    Consecutive windows share one token, and only tokens after a window's first are scored,
    so every text token is scored exactly once, always with at least one token of context.
    """
    tokenizer = reference.tokenizer
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        raise ValueError(
            f"reference tokenizer of {reference.name!r} has neither a BOS nor an EOS token, so the first "
            "token of a text cannot be scored; choose a causal LM with a BOS or EOS token"
        )
    windows = []
    for text in texts:
        ids = [bos, *tokenizer(text, add_special_tokens=False)["input_ids"]]
        for start in range(0, len(ids) - 1, reference.context_length - 1):
            windows.append(ids[start : start + reference.context_length])
    return windows


@torch.inference_mode()
def generative_perplexity(
    texts: Sequence[str],
    reference: ReferenceModel,
    *,
    batch_size: int = 8,
    progress: ProgressFn | None = None,
) -> GenerativePerplexity:
    """Return the token-weighted perplexity of ``texts`` under ``reference``.

    Args:
        texts: decoded samples; empty texts add no tokens.
        reference: from ``load_reference_model``.
        batch_size: windows per forward pass.
        progress: called with ``(windows done, windows in total)`` after each batch.

    Raises:
        ValueError: the texts hold no token at all.
    """
    windows = _windows(texts, reference)
    if not windows:
        raise ValueError(f"the {len(texts)} texts are empty, so there is no token to score")
    nll_sum = torch.zeros((), dtype=torch.float64)
    count = 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        nll, tokens = _score_batch(batch, reference)
        nll_sum += nll
        count += tokens
        if progress is not None:
            progress(min(start + batch_size, len(windows)), len(windows))
    nll_per_token = (nll_sum / count).item()
    return GenerativePerplexity(math.exp(nll_per_token), nll_per_token, count, len(texts), reference.name)


def _score_batch(batch: list[list[int]], reference: ReferenceModel) -> tuple[torch.Tensor, int]:
    """Return the float64 NLL sum in nats and the number of scored tokens of a padded batch."""
    length = max(len(ids) for ids in batch)
    input_ids = torch.zeros(len(batch), length, dtype=torch.int64)
    attention = torch.zeros(len(batch), length, dtype=torch.int64)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    input_ids = input_ids.to(reference.device)
    attention = attention.to(reference.device)

    logits = reference.model(input_ids=input_ids, attention_mask=attention).logits  # (B, T, V)
    # Position k predicts token k + 1; padded targets are dropped by the mask.
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none"
    )  # (B, T - 1)
    scored = attention[:, 1:].bool()
    return nll[scored].double().sum().cpu(), int(scored.sum())
