"""Infilling: hide spans of test blocks, fill them with the conditional sampler, score the fill.

Every visible token is fixed through ``sedd.infill.InfillTemplate``, so the sampler generates
only the hidden spans. The scores (``sedd.eval.score_infill``) are given for the model and for
a baseline that writes the most frequent token into every hidden position, which sets the
floor the model's numbers are read against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sedd.eval import most_frequent_fill, score_infill, span_mask
from sedd.eval.infill_metrics import InfillScores, Span, validate_spans
from sedd.infill import InfillTemplate
from sedd.sampling import sample
from workbench.analysis.generation import float64_score_fn, sampler_settings
from workbench.analysis.loading import LoadedRun
from workbench.analysis.progress import Progress
from workbench.analysis.results import AnalysisResult, Measurement
from workbench.analysis.settings import AnalysisSettings


def span_layout(length: int, span_length: int, layout: str, count: int = 1) -> list[Span]:
    """Return the hidden ``(start, end)`` spans of a block of ``length`` tokens.

    ``middle`` centres one span, ``start`` and ``end`` hide the first or last tokens, and
    ``spread`` places ``count`` spans with equal visible gaps before, between and after them.

    Raises:
        ValueError: the spans would hide the whole block, or the layout is unknown.
    """
    if count * span_length >= length:
        raise ValueError(
            f"{count} span(s) of {span_length} tokens leave nothing visible in blocks of {length} tokens; "
            "use shorter or fewer spans"
        )
    if layout == "middle":
        start = (length - span_length) // 2
        spans = [(start, start + span_length)]
    elif layout == "start":
        spans = [(0, span_length)]
    elif layout == "end":
        spans = [(length - span_length, length)]
    elif layout == "spread":
        gap = (length - count * span_length) / (count + 1)
        spans = [(round(gap * (k + 1) + span_length * k), round(gap * (k + 1) + span_length * k) + span_length)
                 for k in range(count)]
    else:
        raise ValueError(f"unknown span layout {layout!r}; choose middle, spread, start or end")
    validate_spans(spans, length)
    return spans


def template_for(block: Tensor, spans: Sequence[Span]) -> InfillTemplate:
    """Fix every position of int64 ``(L,)`` ``block`` outside ``spans``."""
    visible = torch.ones(block.shape[0], dtype=torch.bool)
    for start, end in spans:
        visible[start:end] = False
    positions = torch.nonzero(visible).squeeze(1)
    return InfillTemplate(block.shape[0], positions, block[positions].cpu())


def most_frequent_token(tokens: Tensor) -> int:
    """Return the most frequent id among non-negative int64 ``tokens`` (the lowest id on a tie)."""
    if tokens.numel() == 0:
        raise ValueError("no tokens to count for the most-frequent-token baseline")
    return int(torch.bincount(tokens.reshape(-1)).argmax())


def baseline_token(examples: Tensor, others: Tensor, spans: Sequence[Span]) -> tuple[int, str]:
    """Return the baseline's token and where it was counted.

    It is counted on ``others`` (int64 ``(M, L)`` blocks not used as examples), so the hidden
    tokens of the examples cannot pick it. Without other blocks it is counted on the visible
    context of ``examples``.
    """
    if len(others):
        return most_frequent_token(others.cpu()), f"the {len(others)} test blocks not used as examples"
    visible = examples.cpu()[:, ~span_mask(examples.shape[1], spans)]
    return most_frequent_token(visible), "the visible context of the examples"


def fill_blocks(
    loaded: LoadedRun, blocks: Tensor, spans: Sequence[Span], settings: AnalysisSettings, progress: Progress
) -> Tensor:
    """Fill ``spans`` of each int64 ``(N, L)`` block with the conditional sampler; ``(N, L)`` on the CPU."""
    sampler = sampler_settings(loaded, settings)
    score_fn = float64_score_fn(loaded.model)
    generator = torch.Generator(device=loaded.device).manual_seed(settings.seed + 1)
    total = blocks.shape[0] * sampler["steps"]
    filled = []
    with progress.task("infill: conditional sampling", total) as update:
        # NOTE: one sampler call per block, because InfillTemplate fixes the same tokens in
        # every row of a batch. Blocks with different contexts cannot share a call.
        for index, block in enumerate(blocks):
            offset = index * sampler["steps"]
            tokens = sample(
                score_fn, loaded.graph, loaded.noise, batch_size=1, length=block.shape[0],
                template=template_for(block, spans), generator=generator, device=loaded.device,
                progress=lambda done, _steps: update(offset + done, total), **sampler,
            )  # fmt: skip
            filled.append(tokens.cpu()[0])
    return torch.stack(filled)


def run_infill(
    loaded: LoadedRun, blocks: Tensor, others: Tensor, settings: AnalysisSettings, progress: Progress
) -> AnalysisResult:
    """Hide spans in ``blocks`` (int64 ``(N, L)``), fill them, and score model and baseline.

    ``others`` (int64 ``(M, L)``, may be empty) are further blocks to count the baseline's
    most frequent token on.
    """
    spans = span_layout(blocks.shape[1], settings.infill_span_length, settings.infill_layout, settings.infill_spans)
    token, token_source = baseline_token(blocks, others, spans)
    filled = fill_blocks(loaded, blocks, spans, settings, progress)
    baseline = most_frequent_fill(blocks, [spans] * len(blocks), token)
    model_scores = score_infill(blocks, filled, [spans] * len(blocks), bleu_order=settings.self_bleu_order)
    baseline_scores = score_infill(blocks, baseline, [spans] * len(blocks), bleu_order=settings.self_bleu_order)

    result = AnalysisResult("infill")
    result.metrics.update(_measurements("infill", model_scores))
    result.metrics.update(_measurements("infill_baseline", baseline_scores))
    result.protocol = {
        "blocks": len(blocks),
        "length": blocks.shape[1],
        "spans": [list(span) for span in spans],
        "layout": settings.infill_layout,
        "span_length": settings.infill_span_length,
        **sampler_settings(loaded, settings),
        "seed": settings.seed + 1,
        "bleu": f"nltk corpus_bleu over spans of token ids, order {model_scores.bleu_order}, "
                "uniform weights, SmoothingFunction().method1",
        "baseline": f"most frequent token (id {token}, {loaded.tokenizer.decode([token])!r}) "
                    f"of {token_source}, written into every hidden position",
        "conditioning": "every visible token fixed by InfillTemplate"
        + ("" if loaded.graph.absorb else "; approximate on the uniform graph (see sedd.infill)"),
    }  # fmt: skip
    result.examples = _examples(loaded, blocks, filled, baseline, spans)
    return result


def _measurements(prefix: str, scores: InfillScores) -> dict[str, Measurement]:
    return {
        f"{prefix}/token_accuracy": Measurement(scores.token_accuracy, unit="0-1"),
        f"{prefix}/exact_match": Measurement(scores.exact_span_match, unit="0-1"),
        f"{prefix}/span_bleu": Measurement(scores.span_bleu, unit="0-1"),
    }


def _examples(
    loaded: LoadedRun, blocks: Tensor, filled: Tensor, baseline: Tensor, spans: Sequence[Span]
) -> list[dict[str, Any]]:
    decode = loaded.tokenizer.decode
    rows = []
    for index in range(len(blocks)):
        rows.append({
            "index": index,
            "spans": [list(span) for span in spans],
            "context": _context_text(decode, blocks[index], spans),
            "reference": [decode(blocks[index, start:end].tolist()) for start, end in spans],
            "filled": [decode(filled[index, start:end].tolist()) for start, end in spans],
            "baseline": [decode(baseline[index, start:end].tolist()) for start, end in spans],
            "token_accuracy": float((filled[index] == blocks[index])[span_mask(blocks.shape[1], spans)].float().mean()),
        })  # fmt: skip
    return rows


def _context_text(decode: Any, block: Tensor, spans: Sequence[Span]) -> str:
    """Return the block's text with each hidden span shown as ``[___]``."""
    pieces = []
    cursor = 0
    for start, end in spans:
        pieces.append(decode(block[cursor:start].tolist()))
        pieces.append("[___]")
        cursor = end
    pieces.append(decode(block[cursor:].tolist()))
    return "".join(pieces)
