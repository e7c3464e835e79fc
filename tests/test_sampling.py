"""Samplers driven by exact scores of a known distribution, and the loop's contract.

The reference distribution has 4 tokens and length 3 (64 sequences) with strong pairwise
couplings. Its exact concrete scores come from ``tests/exact_scores.py``, so any gap between
the samples and the distribution is the sampler's error plus Monte Carlo noise (about 0.013
in total variation for 20,000 samples of this distribution).
"""

from __future__ import annotations

import contextlib
import math
import threading

import pytest
import torch

from exact_scores import ExactDiffusion, random_joint, total_variation
from sedd.categorical import sample_categorical
from sedd.graph import Absorbing, Uniform
from sedd.infill import InfillTemplate
from sedd.model import ModelConfig, build_model
from sedd.noise import GeometricNoise, LogLinearNoise
from sedd.sampling import (
    Denoiser,
    EulerPredictor,
    SamplingCancelled,
    get_predictor,
    model_score_fn,
    predictor_names,
    register_predictor,
    sample,
)

NUM_TOKENS, LENGTH = 4, 3
NUM_SAMPLES = 20_000
STEPS = 128
TV_LIMIT = 0.03

SETUPS = {
    "absorbing": (Absorbing(NUM_TOKENS), LogLinearNoise(1e-3)),
    "uniform": (Uniform(NUM_TOKENS), GeometricNoise(1e-4, 20.0)),
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The 2-core CI machine is shared by parallel jobs; small tensors gain nothing from threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def joint() -> torch.Tensor:
    return random_joint(NUM_TOKENS, LENGTH, seed=0, coupling=1.5)


@pytest.fixture(scope="module", params=sorted(SETUPS))
def setup(request, joint):
    graph, noise = SETUPS[request.param]
    return graph, noise, ExactDiffusion(graph, joint)


def draw(exact, noise, *, steps=STEPS, predictor="analytic", seed=0, batch_size=NUM_SAMPLES, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    return sample(exact.score_fn, exact.graph, noise, batch_size=batch_size, length=LENGTH,
                  steps=steps, predictor=predictor, generator=generator, **kwargs)


# Distribution tests with exact scores.


def test_joint_is_strongly_correlated(joint):
    marginals = [joint.sum(dim=[a for a in range(LENGTH) if a != axis]) for axis in range(LENGTH)]
    independent = torch.einsum("a,b,c->abc", *marginals)
    assert 0.5 * float((independent - joint).abs().sum()) > 0.3


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_sample_matches_joint(setup, predictor):
    graph, noise, exact = setup
    samples = draw(exact, noise, predictor=predictor)
    assert total_variation(samples, exact.sequence_probs(), NUM_TOKENS) < TV_LIMIT


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_sample_few_steps_misses_joint(setup, predictor):
    # The same check fails when the sampler is too coarse, so the test above can fail too.
    graph, noise, exact = setup
    samples = draw(exact, noise, steps=2, predictor=predictor, batch_size=5_000)
    assert total_variation(samples, exact.sequence_probs(), NUM_TOKENS) > 0.1


def test_euler_equals_analytic_loglinear_absorbing(joint):
    # With sigma(t) = -log(1 - (1 - eps) t), expm1(sigma(t) - sigma(t - dt)) equals
    # dsigma(t) * dt exactly, so both predictors build the same categorical weights.
    graph, noise = SETUPS["absorbing"]
    exact = ExactDiffusion(graph, joint)
    euler = draw(exact, noise, steps=16, predictor="euler", seed=3, batch_size=2_000)
    analytic = draw(exact, noise, steps=16, predictor="analytic", seed=3, batch_size=2_000)
    assert torch.equal(euler, analytic)


# The loop's contract.


@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_sample_same_seed_same_tokens(setup, predictor):
    graph, noise, exact = setup
    first = draw(exact, noise, steps=8, predictor=predictor, seed=11, batch_size=500)
    second = draw(exact, noise, steps=8, predictor=predictor, seed=11, batch_size=500)
    other = draw(exact, noise, steps=8, predictor=predictor, seed=12, batch_size=500)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_sample_shape_and_dtype(setup):
    graph, noise, exact = setup
    samples = draw(exact, noise, steps=4, batch_size=7)
    assert samples.shape == (7, LENGTH)
    assert samples.dtype == torch.int64
    assert int(samples.min()) >= 0
    assert int(samples.max()) < graph.num_tokens


def test_denoiser_removes_every_mask(joint):
    graph, noise = SETUPS["absorbing"]
    exact = ExactDiffusion(graph, joint)
    # Stopping the predictor at t = 0.3 leaves about 30% masks; the denoiser removes all.
    kept = draw(exact, noise, steps=4, batch_size=2_000, eps=0.3, denoise=False)
    denoised = draw(exact, noise, steps=4, batch_size=2_000, eps=0.3)
    assert (kept == graph.mask_index).any()
    assert not (denoised == graph.mask_index).any()


def test_denoiser_drops_mask_weight(joint):
    graph, noise = SETUPS["absorbing"]
    exact = ExactDiffusion(graph, joint)
    masked = torch.full((1_000, LENGTH), graph.mask_index)
    t = torch.full((1_000, 1), 0.5)  # large remaining noise: the mask keeps most of the weight
    tokens = Denoiser(graph, noise).update(exact.score_fn, masked, t, torch.Generator().manual_seed(0))
    assert int(tokens.max()) < graph.mask_index


def test_none_predictor_keeps_tokens(setup):
    graph, noise, exact = setup
    start = draw(exact, noise, steps=1, batch_size=50, denoise=False, predictor="none", seed=5)
    limit = graph.sample_limit(50, LENGTH, generator=torch.Generator().manual_seed(5))
    assert torch.equal(start, limit)


def test_progress_reports_every_step(setup):
    graph, noise, exact = setup
    calls = []
    draw(exact, noise, steps=5, batch_size=4, progress=lambda step, steps: calls.append((step, steps)))
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_cancel_callable_stops_before_step(setup):
    graph, noise, exact = setup
    checks = []

    def cancel() -> bool:
        checks.append(1)
        return len(checks) > 3

    with pytest.raises(SamplingCancelled) as raised:
        draw(exact, noise, steps=10, batch_size=4, cancel=cancel)
    assert raised.value.step == 3
    assert raised.value.steps == 10


def test_cancel_event_set_stops_at_start(setup):
    graph, noise, exact = setup
    event = threading.Event()
    event.set()
    with pytest.raises(SamplingCancelled, match="before step 1 of 10"):
        draw(exact, noise, steps=10, batch_size=4, cancel=event)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"eps": 1.0}, "eps must be in"),
        ({"predictor": "heun"}, "registered predictors: \\['analytic', 'euler', 'none'\\]"),
        ({"device": "meta"}, "create it with torch.Generator"),
    ],
)
def test_sample_rejects_invalid_arguments(setup, kwargs, message):
    graph, noise, exact = setup
    arguments = {"steps": 4, "batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        draw(exact, noise, **arguments)


# Registry.


def test_registry_rejects_duplicate_name():
    with pytest.raises(ValueError, match="'euler' is already registered to EulerPredictor"):
        register_predictor("euler")(type("Another", (EulerPredictor,), {}))
    assert get_predictor("euler") is EulerPredictor


def test_registry_lists_names_for_unknown():
    assert predictor_names() == ["analytic", "euler", "none"]
    with pytest.raises(ValueError, match="unknown predictor 'tweedie'; registered predictors"):
        get_predictor("tweedie")


# Model score functions and host-device synchronisation.


def tiny_model(graph):
    config = ModelConfig(num_tokens=graph.num_tokens, graph="absorbing" if graph.absorb else "uniform",
                         hidden_size=32, cond_dim=16, n_blocks=1, n_heads=2, length=8, dropout=0.1,
                         scale_by_sigma=graph.absorb)
    torch.manual_seed(0)
    return build_model(config)


def test_model_score_fn_eval_mode():
    graph = Absorbing(NUM_TOKENS)
    model = tiny_model(graph)  # dropout 0.1: train mode would make two calls differ
    x = torch.tensor([[0, 4, 2, 4, 1, 3, 4, 0]])
    sigma = torch.tensor([0.7], dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        expected = model(x, sigma.float()).exp()

    model.train()
    scores = model_score_fn(model)(x, sigma)

    assert model.training is True
    assert scores.dtype == torch.float32
    assert not scores.requires_grad
    torch.testing.assert_close(scores, expected)


SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


@contextlib.contextmanager
def host_reads_forbidden():
    """Make every Tensor method that copies a value to the host raise AssertionError."""

    def forbidden(name):
        def method(self, *args, **kwargs):
            raise AssertionError(f"Tensor.{name} was called inside the sampling loop")
        return method

    with pytest.MonkeyPatch.context() as patch:
        for name in SYNC_METHODS:
            patch.setattr(torch.Tensor, name, forbidden(name))
        yield


def test_sync_guard_catches_branching():
    # The guard must catch a score function that branches on a tensor value.
    def branching_score(x, sigma):
        if (sigma > 0).all():
            return torch.ones(*x.shape, NUM_TOKENS + 1)
        return torch.zeros(*x.shape, NUM_TOKENS + 1)

    graph, noise = SETUPS["absorbing"]
    with host_reads_forbidden(), pytest.raises(AssertionError, match="Tensor.__bool__ was called"):
        sample(branching_score, graph, noise, batch_size=2, length=LENGTH, steps=2)


@pytest.mark.parametrize("name", sorted(SETUPS))
@pytest.mark.parametrize("predictor", ["analytic", "euler"])
def test_sample_loop_no_host_reads(name, predictor):
    graph, noise = SETUPS[name]
    score_fn = model_score_fn(tiny_model(graph))
    template = InfillTemplate.from_spans([[1], 6, [2]])
    generator = torch.Generator().manual_seed(0)

    with host_reads_forbidden():
        samples = sample(score_fn, graph, noise, batch_size=3, length=8, steps=4, predictor=predictor,
                         generator=generator, template=template, progress=lambda step, steps: None)

    assert samples.shape == (3, 8)
    assert samples[:, 0].tolist() == [1, 1, 1]
    assert samples[:, 7].tolist() == [2, 2, 2]


# Categorical draws on a large heavy-tailed vocabulary.

VOCAB = 50_000


def zipf(exponent: float) -> torch.Tensor:
    ranks = torch.arange(1, VOCAB + 1, dtype=torch.float64)
    weights = ranks ** -exponent
    return weights / weights.sum()


def rank_bins(tokens: torch.Tensor) -> torch.Tensor:
    """Counts per log-spaced rank bin [1, 10), [10, 100), ... of 0-based token ids."""
    edges = torch.tensor([0, 10, 100, 1_000, 10_000, VOCAB])
    return torch.tensor([int(((tokens >= lo) & (tokens < hi)).sum()) for lo, hi in zip(edges[:-1], edges[1:])])


def test_categorical_matches_zipf_vocabulary():
    probs = zipf(1.1)
    rows = 1_500
    tokens = sample_categorical(probs.float().expand(rows, VOCAB), torch.Generator().manual_seed(0))
    counts = rank_bins(tokens).to(torch.float64)
    expected = rank_bins_probs(probs) * rows
    # Pearson chi-square over 5 bins (4 degrees of freedom); 18.5 is its 0.999 quantile.
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 18.5


def rank_bins_probs(probs: torch.Tensor) -> torch.Tensor:
    edges = [0, 10, 100, 1_000, 10_000, VOCAB]
    return torch.stack([probs[lo:hi].sum() for lo, hi in zip(edges[:-1], edges[1:])])


def race_float32(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Exponential race with float32 noise ``-log(U)``, the usual single-precision form."""
    uniform = torch.rand(probs.shape, generator=generator)
    # torch.rand draws float32 U on a grid of 2^-24, so -log(U) never falls below
    # -log(1 - 2^-24), about 6e-8, while U = 0 gives an infinite E that only loses.
    return (probs.float() / -torch.log(uniform)).argmax(dim=-1)


def unmasking_weights() -> torch.Tensor:
    """Weights of one absorbing sampler step over a Zipf(1) vocabulary, ``(VOCAB + 1,)``.

    The last entry (1) is staying masked; token k unmasks with weight ``0.01 z_k``, as after
    many small steps. A token whose weight is below about 2^-24 times the mask's is at or
    under the resolution of float32 exponential noise.
    """
    return torch.cat([0.01 * zipf(1.0), torch.ones(1, dtype=torch.float64)])


def draw_rows(race, weights: torch.Tensor, rows: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    chunk = 200  # (200, 50001) float64 is 80 MB per temporary
    return torch.cat([race(weights.expand(chunk, -1), generator) for _ in range(rows // chunk)])


@pytest.mark.slow
def test_categorical_keeps_float32_lost_tail():
    weights = unmasking_weights()
    probs = weights / weights.sum()
    # Tokens whose weight is under 2^-23 times the mask's. Float32 noise rounds their chance
    # of winning down to a multiple of 2^-24 and so keeps about half of their mass.
    fine = torch.cat([weights[:VOCAB] * 2**24 < 2, torch.tensor([False])])
    rows = 80_000
    mean = rows * float(probs[fine].sum())  # about 133 draws
    spread = 4 * math.sqrt(mean)

    hits_64 = int(fine[draw_rows(sample_categorical, weights, rows, seed=0)].sum())
    hits_32 = int(fine[draw_rows(race_float32, weights, rows, seed=1)].sum())

    assert abs(hits_64 - mean) < spread, f"float64 noise: {hits_64} tail draws, expected {mean:.0f}"
    assert hits_32 < mean - spread, f"float32 noise: {hits_32} tail draws, expected {mean:.0f} exactly"
