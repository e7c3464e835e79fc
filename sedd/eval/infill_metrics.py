"""Scores of filled spans against the hidden reference tokens, and a trivial baseline.

A span is a half-open range ``(start, end)`` of positions hidden from the model. Token
accuracy and BLEU compare the filled tokens with the reference token by token and by n-gram.
Exact span match counts a span only when every token of it is right. The most-frequent-token
baseline fills every hidden position with one token, which gives the numbers a floor to be
read against.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
from torch import Tensor

Span = tuple[int, int]


@dataclass(frozen=True)
class InfillScores:
    """Infilling scores over all hidden spans of a batch; fractions are in [0, 1]."""

    token_accuracy: float
    exact_span_match: float
    span_bleu: float
    bleu_order: int
    num_tokens: int
    num_spans: int


def validate_spans(spans: Sequence[Span], length: int) -> None:
    """Raise ValueError unless the spans are non-empty, inside ``[0, length)`` and disjoint."""
    covered: set[int] = set()
    for start, end in spans:
        if not 0 <= start < end <= length:
            raise ValueError(
                f"invalid span ({start}, {end}) for sequences of length {length}: "
                f"use 0 <= start < end <= {length}"
            )
        positions = set(range(start, end))
        if covered & positions:
            raise ValueError(f"span ({start}, {end}) overlaps another span; hidden spans must be disjoint")
        covered |= positions


def span_mask(length: int, spans: Sequence[Span]) -> Tensor:
    """Return a bool ``(length,)`` tensor that is True at the hidden positions."""
    validate_spans(spans, length)
    mask = torch.zeros(length, dtype=torch.bool)
    for start, end in spans:
        mask[start:end] = True
    return mask


def most_frequent_fill(reference: Tensor, spans: Sequence[Sequence[Span]], token_id: int) -> Tensor:
    """Return a copy of ``reference`` (int64 ``(B, L)``) with every span set to ``token_id``."""
    filled = reference.clone()
    for row, row_spans in enumerate(spans):
        for start, end in row_spans:
            filled[row, start:end] = token_id
    return filled


def score_infill(
    reference: Tensor,
    filled: Tensor,
    spans: Sequence[Sequence[Span]],
    *,
    bleu_order: int = 4,
) -> InfillScores:
    """Compare filled spans with the reference.

    Args:
        reference: int64 ``(B, L)`` original tokens.
        filled: int64 ``(B, L)`` tokens after infilling; positions outside spans are ignored.
        spans: for each row, the hidden ``(start, end)`` ranges.
        bleu_order: maximum n-gram order of the corpus BLEU over spans (nltk, uniform weights,
            smoothing method1). It is lowered to the shortest span length, because a span of
            ``k`` tokens has no n-gram of order above ``k``. ``bleu_order`` in the result is
            the order used.
    """
    if reference.shape != filled.shape or reference.dim() != 2:
        raise ValueError(
            f"reference {tuple(reference.shape)} and filled {tuple(filled.shape)} must have one (B, L) shape"
        )
    if len(spans) != reference.shape[0]:
        raise ValueError(f"got spans for {len(spans)} rows but the batch has {reference.shape[0]} rows")

    correct = total = exact = 0
    hypotheses: list[list[int]] = []
    references: list[list[list[int]]] = []
    for row, row_spans in enumerate(spans):
        validate_spans(row_spans, reference.shape[1])
        for start, end in row_spans:
            truth = reference[row, start:end].tolist()
            guess = filled[row, start:end].tolist()
            matches = sum(a == b for a, b in zip(truth, guess))
            correct += matches
            total += end - start
            exact += matches == end - start
            hypotheses.append(guess)
            references.append([truth])
    if not hypotheses:
        raise ValueError("no spans to score: hide at least one span")

    order = min(bleu_order, min(len(span) for span in hypotheses))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # nltk warns when an n-gram order has no match
        bleu = corpus_bleu(references, hypotheses, tuple(1.0 / order for _ in range(order)),
                           SmoothingFunction().method1)
    return InfillScores(correct / total, exact / len(hypotheses), float(bleu), order, total, len(hypotheses))
