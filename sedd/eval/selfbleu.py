"""Self-BLEU: how much each sample resembles the others (Zhu et al., Texygen, SIGIR 2018).

Each sample in turn is the hypothesis and all other samples are its references. The score is
the mean sentence BLEU (Papineni et al., 2002) computed by ``nltk``. Higher means less diverse:
a set of identical samples scores 1. The n-gram order and the smoothing are part of the
result, because BLEU values under different settings are not comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

# nltk smoothing methods by name; method1 adds epsilon = 0.1 to zero n-gram matches, the
# choice of Texygen, so one missing 4-gram does not zero a sample's score.
SMOOTHING_METHODS = ("method0", "method1", "method2", "method3", "method4", "method5", "method7")


@dataclass(frozen=True)
class SelfBleu:
    """A Self-BLEU score in [0, 1] with the settings that produced it."""

    score: float
    order: int
    smoothing: str
    num_hypotheses: int

    def protocol(self) -> dict[str, object]:
        """Return the settings as a dict for a results file."""
        return {"order": self.order, "weights": "uniform", "smoothing": f"nltk SmoothingFunction().{self.smoothing}",
                "hypotheses": self.num_hypotheses, "implementation": "nltk.translate.bleu_score.sentence_bleu"}


def self_bleu(
    samples: Sequence[Sequence[Hashable]],
    *,
    order: int = 4,
    smoothing: str = "method1",
    max_hypotheses: int | None = None,
) -> SelfBleu:
    """Return the mean sentence BLEU of each sample against all the others.

    Args:
        samples: at least two token sequences (usually the words of decoded samples).
        order: maximum n-gram order; the n-gram precisions 1..order get equal weights.
        smoothing: an ``nltk`` ``SmoothingFunction`` method name, see ``SMOOTHING_METHODS``.
        max_hypotheses: score only the first this many samples as hypotheses (each still
            against all other samples), because the cost grows with the square of the count.
    """
    if len(samples) < 2:
        raise ValueError(f"Self-BLEU needs at least 2 samples, got {len(samples)}; generate more samples")
    if order < 1:
        raise ValueError(f"invalid BLEU order {order}: use 1 or more (4 is the usual choice)")
    if smoothing not in SMOOTHING_METHODS:
        raise ValueError(f"unknown BLEU smoothing {smoothing!r}; choose one of {', '.join(SMOOTHING_METHODS)}")
    if max_hypotheses is not None and max_hypotheses < 1:
        raise ValueError(f"invalid max_hypotheses={max_hypotheses}: use 1 or more, or None for all samples")

    smoothing_function = getattr(SmoothingFunction(), smoothing)
    weights = tuple(1.0 / order for _ in range(order))
    count = len(samples) if max_hypotheses is None else min(max_hypotheses, len(samples))
    scores = []
    with warnings.catch_warnings():
        # nltk warns once per hypothesis without some n-gram match; the score is still correct.
        warnings.simplefilter("ignore", UserWarning)
        for index in range(count):
            references = [list(sample) for other, sample in enumerate(samples) if other != index]
            scores.append(sentence_bleu(references, list(samples[index]), weights, smoothing_function))
    return SelfBleu(score=sum(scores) / count, order=order, smoothing=smoothing, num_hypotheses=count)
