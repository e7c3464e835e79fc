"""Infilling scores: accuracy, exact span match, span BLEU and the most-frequent baseline."""

from __future__ import annotations

import pytest
import torch

from sedd.eval import most_frequent_fill, score_infill, span_mask


def _reference() -> torch.Tensor:
    return torch.arange(24).reshape(2, 12)


def test_infill_answer_scores_one():
    reference = _reference()
    spans = [[(2, 6)], [(1, 3), (7, 11)]]
    scores = score_infill(reference, reference.clone(), spans)
    assert scores.token_accuracy == 1.0
    assert scores.exact_span_match == 1.0
    assert scores.span_bleu == pytest.approx(1.0)
    assert scores.num_tokens == 10
    assert scores.num_spans == 3


def test_infill_one_wrong_token():
    reference = _reference()
    filled = reference.clone()
    filled[0, 3] = 99
    spans = [[(2, 6)], [(7, 11)]]
    scores = score_infill(reference, filled, spans)
    assert scores.token_accuracy == pytest.approx(7 / 8)
    assert scores.exact_span_match == pytest.approx(1 / 2)
    assert 0.0 < scores.span_bleu < 1.0


def test_infill_ignores_visible_positions():
    reference = _reference()
    filled = reference.clone()
    filled[:, 0] = 99  # outside every span
    scores = score_infill(reference, filled, [[(4, 8)], [(4, 8)]])
    assert scores.token_accuracy == 1.0


def test_infill_bleu_order_follows_short_spans():
    reference = _reference()
    scores = score_infill(reference, reference.clone(), [[(0, 2)], [(5, 8)]])
    assert scores.bleu_order == 2


def test_most_frequent_baseline():
    reference = torch.tensor([[5, 5, 1, 2, 5, 3]])
    spans = [[(1, 4)]]
    baseline = most_frequent_fill(reference, spans, token_id=5)
    assert baseline.tolist() == [[5, 5, 5, 5, 5, 3]]
    scores = score_infill(reference, baseline, spans)
    assert scores.token_accuracy == pytest.approx(1 / 3)
    assert scores.exact_span_match == 0.0


def test_span_mask_positions():
    assert span_mask(6, [(1, 3), (4, 5)]).tolist() == [False, True, True, False, True, False]


def test_span_rejects_overlap():
    with pytest.raises(ValueError, match="overlaps"):
        span_mask(10, [(1, 5), (4, 6)])


def test_span_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"\(8, 12\)"):
        span_mask(10, [(8, 12)])


def test_infill_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="one \\(B, L\\) shape"):
        score_infill(torch.zeros(2, 4, dtype=torch.int64), torch.zeros(2, 5, dtype=torch.int64), [[(0, 1)]] * 2)
