"""Distinct-n: the share of n-grams in a set of samples that are unique (Li et al., 2016).

Li, Galley, Brockett, Gao and Dolan, "A Diversity-Promoting Objective Function for Neural
Conversation Models", NAACL 2016. The count is over the whole set, not per sample, so a model
that repeats one sample scores low even if each sample is varied inside.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence


def _ngrams(tokens: Sequence[Hashable], n: int) -> Iterable[tuple[Hashable, ...]]:
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def distinct_n(samples: Sequence[Sequence[Hashable]], n: int) -> float:
    """Return distinct n-grams / total n-grams over all samples, in [0, 1].

    Args:
        samples: token sequences (words, token ids, characters); a sample shorter than ``n``
            adds no n-gram.
        n: n-gram order, at least 1.

    Raises:
        ValueError: ``n < 1``, or the samples hold no n-gram of order ``n`` at all.
    """
    if n < 1:
        raise ValueError(f"invalid n-gram order n={n}: use 1 or more")
    unique: set[tuple[Hashable, ...]] = set()
    total = 0
    for tokens in samples:
        grams = list(_ngrams(tokens, n))
        unique.update(grams)
        total += len(grams)
    if total == 0:
        raise ValueError(
            f"no {n}-grams in {len(samples)} samples: every sample is shorter than {n} tokens; "
            "generate longer samples or use a lower order"
        )
    return len(unique) / total


def distinct_scores(samples: Sequence[Sequence[Hashable]], orders: Sequence[int] = (1, 2, 3, 4)) -> dict[int, float]:
    """Return ``{n: distinct_n(samples, n)}`` for each order in ``orders``."""
    return {n: distinct_n(samples, n) for n in orders}
