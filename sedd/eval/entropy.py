"""Mean sample entropy: the entropy of each sample's own token histogram, averaged.

A sampler that collapses onto a few frequent tokens (for example through low-precision
categorical draws) lowers its generative perplexity but also this entropy, so the two are
read together (Zheng et al., arXiv:2409.02908, report both).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence


def sample_entropy(tokens: Sequence[Hashable], base: float = math.e) -> float:
    """Return the entropy of the token frequencies of one sample, in units of ``log(base)``.

    The entropy is 0 for a sample of one repeated token and ``log(len(tokens))`` when every
    token differs.

    Raises:
        ValueError: the sample is empty, or ``base`` is not above 1.
    """
    if not tokens:
        raise ValueError("invalid empty sample: the entropy of no tokens is undefined")
    if base <= 1:
        raise ValueError(f"invalid logarithm base {base}: use e (nats), 2 (bits) or another base > 1")
    total = len(tokens)
    entropy = -sum(count / total * math.log(count / total) for count in Counter(tokens).values())
    # -sum(p log p) of a single token is -0.0; report a plain zero.
    return max(entropy, 0.0) / math.log(base)


def mean_sample_entropy(samples: Sequence[Sequence[Hashable]], base: float = math.e) -> float:
    """Return the mean over samples of ``sample_entropy``; raise ValueError when there are none."""
    if not samples:
        raise ValueError("no samples: generate at least one sample before measuring its entropy")
    return sum(sample_entropy(tokens, base) for tokens in samples) / len(samples)
