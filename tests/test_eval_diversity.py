"""Distinct-n, Self-BLEU and sample entropy on hand-made samples with known values."""

from __future__ import annotations

import math

import pytest

from sedd.eval import distinct_n, distinct_scores, mean_sample_entropy, sample_entropy, self_bleu


def test_distinct_counts_across_samples():
    samples = [["a", "b", "a"], ["a", "c"]]
    # Unigrams a b a a c: 3 distinct of 5. Bigrams ab ba ac: 3 of 3. Trigrams aba: 1 of 1.
    assert distinct_n(samples, 1) == pytest.approx(3 / 5)
    assert distinct_n(samples, 2) == pytest.approx(1.0)
    assert distinct_n(samples, 3) == pytest.approx(1.0)


def test_distinct_repeated_sample():
    samples = [["x", "y", "z", "w"]] * 4
    scores = distinct_scores(samples)
    assert scores[1] == pytest.approx(4 / 16)
    assert scores[2] == pytest.approx(3 / 12)
    assert scores[3] == pytest.approx(2 / 8)
    assert scores[4] == pytest.approx(1 / 4)


def test_distinct_skips_short_samples():
    # The one-token sample adds a unigram but no bigram.
    assert distinct_n([["a"], ["a", "b"]], 2) == pytest.approx(1.0)
    assert distinct_n([["a"], ["a", "b"]], 1) == pytest.approx(2 / 3)


def test_distinct_rejects_no_ngrams():
    with pytest.raises(ValueError, match="shorter than 3"):
        distinct_n([["a", "b"]], 3)


def test_distinct_rejects_order_zero():
    with pytest.raises(ValueError, match="n=0"):
        distinct_n([["a"]], 0)


def test_selfbleu_identical_is_one():
    sample = "the cat sat on the mat and looked at the door".split()
    result = self_bleu([sample] * 5)
    assert result.score == pytest.approx(1.0)
    assert result.order == 4
    assert result.smoothing == "method1"
    assert result.num_hypotheses == 5


def test_selfbleu_disjoint_near_zero():
    samples = [[f"w{k}_{i}" for i in range(12)] for k in range(4)]
    result = self_bleu(samples)
    # No shared unigram at all: nltk returns 0 whatever the smoothing.
    assert result.score == pytest.approx(0.0, abs=1e-9)


def test_selfbleu_partial_overlap_between():
    samples = ["a b c d e f g h".split(), "a b c d x y z q".split(), "r s t u v w o p".split()]
    score = self_bleu(samples).score
    assert 0.05 < score < 0.95


def test_selfbleu_max_hypotheses():
    samples = [["a", "b", "c", "d"], ["a", "b", "c", "d"], ["p", "q", "r", "s"]]
    # The first two samples each find an exact copy among their references.
    result = self_bleu(samples, max_hypotheses=2)
    assert result.num_hypotheses == 2
    assert result.score == pytest.approx(1.0)


def test_selfbleu_protocol_states_settings():
    protocol = self_bleu([["a", "b"], ["a", "b"]], order=2, smoothing="method0").protocol()
    assert protocol["order"] == 2
    assert protocol["smoothing"] == "nltk SmoothingFunction().method0"


def test_selfbleu_rejects_one_sample():
    with pytest.raises(ValueError, match="at least 2 samples"):
        self_bleu([["a"]])


def test_selfbleu_rejects_unknown_smoothing():
    with pytest.raises(ValueError, match="method9"):
        self_bleu([["a"], ["b"]], smoothing="method9")


def test_entropy_uniform_tokens():
    assert sample_entropy(["a", "b", "c", "d"]) == pytest.approx(math.log(4))
    assert sample_entropy(["a", "b", "c", "d"], base=2) == pytest.approx(2.0)


def test_entropy_single_token_zero():
    assert sample_entropy([7, 7, 7]) == 0.0


def test_entropy_skewed_tokens():
    # p = (3/4, 1/4)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert sample_entropy([1, 1, 1, 2]) == pytest.approx(expected)


def test_entropy_mean_over_samples():
    assert mean_sample_entropy([[1, 1], [1, 2]]) == pytest.approx(math.log(2) / 2)


def test_entropy_rejects_empty():
    with pytest.raises(ValueError, match="empty sample"):
        sample_entropy([])
    with pytest.raises(ValueError, match="no samples"):
        mean_sample_entropy([])
