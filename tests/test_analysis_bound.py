"""The analysis bound against exact scores of a known distribution, where the true NLL is known."""

from __future__ import annotations

import math

import pytest
import torch

from exact_scores import ExactDiffusion, random_joint
from sedd.graph import Absorbing, Uniform
from sedd.noise import GeometricNoise, LogLinearNoise
from workbench.analysis.bound import estimate_bound

NUM_TOKENS = 3
LENGTH = 3


def _setup(graph_name: str):
    p0 = random_joint(NUM_TOKENS, LENGTH, seed=7, coupling=1.0)
    if graph_name == "absorbing":
        graph, noise = Absorbing(NUM_TOKENS), LogLinearNoise(1e-3)
    else:
        graph, noise = Uniform(NUM_TOKENS), GeometricNoise(1e-4, 20.0)
    exact = ExactDiffusion(graph, p0)
    # The four most likely sequences, so the NLL is moderate and the test is not dominated by tails.
    probs = exact.sequence_probs()
    top = torch.topk(probs, 4).indices
    place = NUM_TOKENS ** torch.arange(LENGTH - 1, -1, -1)
    blocks = (top[:, None] // place) % NUM_TOKENS  # (4, L) int64
    true_nll = float(-torch.log(probs[top]).sum()) / blocks.numel()  # nats per token
    return exact, graph, noise, blocks, true_nll


@pytest.mark.parametrize("graph_name", ["absorbing", "uniform"])
def test_bound_exact_scores_converges(graph_name):
    exact, graph, noise, blocks, true_nll = _setup(graph_name)
    coarse = estimate_bound(exact.log_score_fn, graph, noise, blocks, num_times=8, batch_size=64, seed=1)
    fine = estimate_bound(exact.log_score_fn, graph, noise, blocks, num_times=1024, batch_size=1024, seed=1)

    # At least the true NLL, up to Monte Carlo error.
    assert fine.nats_per_token >= true_nll - 3 * fine.stderr
    # Close to it: with exact scores the only gaps are the Monte Carlo error and the
    # neglected parts below t = 1e-5 and of the absorbing prior term (about 1e-3 relative).
    assert abs(fine.nats_per_token - true_nll) <= 4 * fine.stderr + 2e-3 * true_nll
    # More times shrink the error like 1 / sqrt(K): 1024 / 8 = 128 times the times.
    assert fine.stderr < coarse.stderr / 5
    assert abs(fine.nats_per_token - true_nll) < max(abs(coarse.nats_per_token - true_nll), 4 * fine.stderr)


def test_bound_wrong_scores_exceed_nll():
    exact, graph, noise, blocks, true_nll = _setup("absorbing")
    # Exact scores of another law q make the bound estimate -log q(x0). On the most likely
    # sequences of p that is well above their true NLL.
    p_other = random_joint(NUM_TOKENS, LENGTH, seed=99, coupling=1.0)
    wrong = ExactDiffusion(graph, p_other)
    estimate = estimate_bound(wrong.log_score_fn, graph, noise, blocks, num_times=512, batch_size=512, seed=2)
    other_nll = float(-torch.log(p_other[tuple(blocks.T)]).sum()) / blocks.numel()
    assert other_nll > true_nll + 0.3
    assert estimate.nats_per_token > true_nll + 0.3
    assert estimate.nats_per_token == pytest.approx(other_nll, abs=4 * estimate.stderr + 2e-3 * other_nll)


def test_bound_measurements_units():
    exact, graph, noise, blocks, _ = _setup("absorbing")
    estimate = estimate_bound(exact.log_score_fn, graph, noise, blocks, num_times=4, batch_size=16, seed=3)
    metrics = estimate.measurements("test")
    assert metrics["test/nll"].unit == "nats/token"
    assert metrics["test/bpt"].value == pytest.approx(estimate.nats_per_token / math.log(2))
    assert metrics["test/bpt"].stderr == pytest.approx(estimate.stderr / math.log(2))
    assert metrics["test/ppl_bound"].value == pytest.approx(math.exp(estimate.nats_per_token))
    assert "test/bpc" in estimate.measurements("test", per_char=True)


def test_bound_same_seed_same_value():
    exact, graph, noise, blocks, _ = _setup("uniform")
    first = estimate_bound(exact.log_score_fn, graph, noise, blocks, num_times=4, batch_size=4, seed=5)
    second = estimate_bound(exact.log_score_fn, graph, noise, blocks, num_times=4, batch_size=4, seed=5)
    assert first.nats_per_token == second.nats_per_token


def test_bound_rejects_empty_blocks():
    exact, graph, noise, _, _ = _setup("absorbing")
    with pytest.raises(ValueError, match="non-empty"):
        estimate_bound(exact.log_score_fn, graph, noise, torch.zeros(0, 3, dtype=torch.int64),
                       num_times=4, batch_size=4, seed=0)
