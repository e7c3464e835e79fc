"""Infill templates: construction, validation, projection, and conditional sampling.

Conditional sampling is checked against the exact conditional law of the 4-token, length-3
distribution of ``tests/exact_scores.py`` with position 1 fixed to token 2.
"""

from __future__ import annotations

import pytest
import torch

from exact_scores import ExactDiffusion, random_joint, total_variation
from sedd.graph import Absorbing, Uniform
from sedd.infill import InfillTemplate
from sedd.noise import GeometricNoise, LogLinearNoise
from sedd.sampling import sample

NUM_TOKENS, LENGTH = 4, 3
FIXED_POSITION, FIXED_TOKEN = 1, 2
NUM_SAMPLES = 20_000
STEPS = 128

SETUPS = {
    "absorbing-loglinear": (Absorbing(NUM_TOKENS), LogLinearNoise(1e-3)),
    "absorbing-geometric": (Absorbing(NUM_TOKENS), GeometricNoise(1e-4, 15.0)),
    "uniform-geometric": (Uniform(NUM_TOKENS), GeometricNoise(1e-4, 20.0)),
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def joint() -> torch.Tensor:
    return random_joint(NUM_TOKENS, LENGTH, seed=0, coupling=1.5)


@pytest.fixture(scope="module")
def conditional(joint) -> torch.Tensor:
    """The joint restricted to sequences with the fixed token, renormalised, ``(V,) * L``."""
    keep = torch.zeros_like(joint)
    keep[:, FIXED_TOKEN, :] = 1.0  # FIXED_POSITION is 1
    restricted = joint * keep
    return restricted / restricted.sum()


def template() -> InfillTemplate:
    return InfillTemplate(LENGTH, torch.tensor([FIXED_POSITION]), torch.tensor([FIXED_TOKEN]))


def infill(exact, noise, *, predictor, seed=0, batch_size=NUM_SAMPLES, steps=STEPS):
    return sample(exact.score_fn, exact.graph, noise, batch_size=batch_size, length=LENGTH, steps=steps,
                  predictor=predictor, generator=torch.Generator().manual_seed(seed), template=template())


# Construction and validation.


def test_from_prefix_suffix_places_tokens():
    made = InfillTemplate.from_prefix_suffix([7, 8], [9], length=6)
    assert made.length == 6
    assert made.positions.tolist() == [0, 1, 5]
    assert made.tokens.tolist() == [7, 8, 9]
    assert made.generated_mask().tolist() == [False, False, True, True, True, False]


def test_from_spans_concatenates_segments():
    made = InfillTemplate.from_spans([[5, 6], 3, [7], 2, [8, 9]])
    assert made.length == 10
    assert made.positions.tolist() == [0, 1, 5, 8, 9]
    assert made.tokens.tolist() == [5, 6, 7, 8, 9]
    assert made.num_generated == 5
    assert made.generated_mask().tolist() == [False, False, True, True, True, False, True, True, False, False]


def test_positions_sorted_with_tokens():
    made = InfillTemplate(5, torch.tensor([4, 0, 2]), torch.tensor([40, 0, 20]))
    assert made.positions.tolist() == [0, 2, 4]
    assert made.tokens.tolist() == [0, 20, 40]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: InfillTemplate(4, torch.tensor([4]), torch.tensor([1])), r"positions \[4\] are outside \[0, 4\)"),
        (lambda: InfillTemplate(4, torch.tensor([-1]), torch.tensor([1])), r"positions \[-1\] are outside"),
        (lambda: InfillTemplate(4, torch.tensor([1, 1]), torch.tensor([2, 3])), r"positions \[1\] appear more than once"),
        (lambda: InfillTemplate(4, torch.tensor([1, 2]), torch.tensor([2])), "one token per fixed position"),
        (lambda: InfillTemplate(4, torch.tensor([1]), torch.tensor([-3])), "must be non-negative"),
        (lambda: InfillTemplate(4, torch.tensor([1.0]), torch.tensor([3])), "positions must be integers, got dtype torch.float32"),
        (lambda: InfillTemplate(0, torch.tensor([], dtype=torch.int64), torch.tensor([], dtype=torch.int64)),
         "length must be a positive integer"),
        (lambda: InfillTemplate.from_prefix_suffix([1, 2, 3], [4, 5], length=4), "raise length to at least 5"),
        (lambda: InfillTemplate.from_spans([[1], -2]), "gap of -2 tokens"),
        (lambda: InfillTemplate.from_spans([[1], True]), "span 1 is a bool"),
        (lambda: InfillTemplate.from_spans([[], 0]), "cover no position"),
    ],
)
def test_template_rejects_invalid(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_check_graph_rejects_mask_token():
    graph = Absorbing(NUM_TOKENS)
    made = InfillTemplate.from_spans([[0], 2, [graph.mask_index]])
    with pytest.raises(ValueError, match="token 4 at position 3 is the mask token"):
        made.check_graph(graph)


def test_check_graph_rejects_large_token():
    made = InfillTemplate.from_spans([[NUM_TOKENS + 3], 2])
    with pytest.raises(ValueError, match=r"token 7 at position 0 is out of range: Uniform graph tokens are in \[0, 4\)"):
        made.check_graph(Uniform(NUM_TOKENS))


def test_sample_rejects_template_of_other_length():
    graph, noise = SETUPS["absorbing-loglinear"]
    with pytest.raises(ValueError, match="template has length 5 but length=3"):
        sample(lambda x, s: torch.ones(*x.shape, graph.dim), graph, noise, batch_size=2, length=3,
               steps=2, template=InfillTemplate.from_spans([[1], 4]))


# Projection.


def test_apply_writes_fixed_tokens_into_copy():
    made = InfillTemplate.from_spans([[9], 2, [8]])
    x = torch.zeros(2, 4, dtype=torch.int64)
    projected = made.apply(x)
    assert projected.tolist() == [[9, 0, 0, 8], [9, 0, 0, 8]]
    assert x.sum() == 0


def test_apply_rejects_other_length():
    made = InfillTemplate.from_spans([[9], 2])
    with pytest.raises(ValueError, match=r"shape \(2, 4\) do not match the template length 3"):
        made.apply(torch.zeros(2, 4, dtype=torch.int64))


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_score_sees_fixed_tokens_every_step(joint, predictor):
    graph, noise = SETUPS["uniform-geometric"]
    exact = ExactDiffusion(graph, joint)
    seen = []

    def recording_score(x, sigma):
        seen.append(x[:, FIXED_POSITION].clone())
        return exact.score_fn(x, sigma)

    result = sample(recording_score, graph, noise, batch_size=200, length=LENGTH, steps=6,
                    predictor=predictor, generator=torch.Generator().manual_seed(0), template=template())
    assert len(seen) == 7  # 6 predictor steps and the denoiser
    assert all(bool((column == FIXED_TOKEN).all()) for column in seen)
    assert bool((result[:, FIXED_POSITION] == FIXED_TOKEN).all())


# Conditional laws with exact scores.


# On log-linear noise the Euler step equals the analytic one (see test_sampling.py), so
# the Euler predictor is checked on geometric noise only.
@pytest.mark.parametrize(
    ("name", "predictor"),
    [("absorbing-loglinear", "analytic"), ("absorbing-geometric", "analytic"), ("absorbing-geometric", "euler")],
)
def test_absorbing_infill_matches_conditional(joint, conditional, name, predictor):
    graph, noise = SETUPS[name]
    exact = ExactDiffusion(graph, joint)
    samples = infill(exact, noise, predictor=predictor)
    assert bool((samples[:, FIXED_POSITION] == FIXED_TOKEN).all())
    assert total_variation(samples, conditional.reshape(-1), NUM_TOKENS) < 0.03


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_uniform_infill_conditional_scores(conditional, predictor):
    # On the uniform graph a fixed token looks like a noised one to the joint's scores. The
    # scores of the conditional law itself (what a model trained with the template learns)
    # make the projection exact.
    graph, noise = SETUPS["uniform-geometric"]
    exact = ExactDiffusion(graph, conditional)
    samples = infill(exact, noise, predictor=predictor)
    assert total_variation(samples, conditional.reshape(-1), NUM_TOKENS) < 0.03


def test_uniform_infill_joint_scores_biased(joint, conditional):
    # The known limit stated in sedd.infill: the joint's scores plus projection miss the
    # conditional on the uniform graph (about 0.13 in total variation here).
    graph, noise = SETUPS["uniform-geometric"]
    exact = ExactDiffusion(graph, joint)
    samples = infill(exact, noise, predictor="analytic", batch_size=5_000)
    assert total_variation(samples, conditional.reshape(-1), NUM_TOKENS) > 0.08
