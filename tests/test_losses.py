import pytest
import torch

from sedd.graph import Absorbing, Uniform
from sedd.losses import sample_times, score_entropy_loss
from sedd.noise import GeometricNoise, LogLinearNoise


def test_sample_times_range():
    t = sample_times(10_000, eps=1e-3, generator=torch.Generator().manual_seed(0))
    assert t.shape == (10_000,)
    assert t.min() >= 1e-3
    assert t.max() <= 1.0


def test_antithetic_times_one_per_stratum():
    batch = 16
    t = sample_times(batch, eps=0.0, antithetic=True, generator=torch.Generator().manual_seed(1))
    strata = torch.sort(torch.floor(t * batch).long()).values
    assert torch.equal(strata, torch.arange(batch))


def test_antithetic_times_are_uniform_marginally():
    generator = torch.Generator().manual_seed(2)
    draws = torch.stack([sample_times(4, eps=0.0, antithetic=True, generator=generator)[0] for _ in range(20_000)])
    histogram = torch.histc(draws, bins=10, min=0, max=1) / draws.numel()
    torch.testing.assert_close(histogram, torch.full((10,), 0.1), atol=0.012, rtol=0)


def test_sample_times_rejects_bad_eps():
    with pytest.raises(ValueError, match="time eps must be in"):
        sample_times(4, eps=1.5)


class ExactAbsorbingScore(torch.nn.Module):
    """Log-scores that equal the true conditional ratios for one known clean sequence."""

    def __init__(self, graph, x0):
        super().__init__()
        self.graph, self.x0 = graph, x0

    def forward(self, xt, sigma):
        log_score = torch.full((*xt.shape, self.graph.dim), -30.0)
        log_ratio = -torch.log(torch.expm1(sigma))[:, None].expand_as(xt)
        log_score = log_score.scatter(-1, self.x0[..., None], log_ratio[..., None])
        return log_score.scatter(-1, xt[..., None], 0.0)


def test_loss_zero_at_exact_scores():
    graph = Absorbing(7)
    x0 = torch.randint(0, 7, (3, 9), generator=torch.Generator().manual_seed(0))
    loss = score_entropy_loss(
        ExactAbsorbingScore(graph, x0), graph, LogLinearNoise(), x0,
        generator=torch.Generator().manual_seed(1),
    )
    assert loss.shape == (3,)
    assert loss.dtype == torch.float32
    assert loss.abs().max() < 1e-3


def test_loss_equals_weighted_score_entropy():
    graph, noise = Uniform(6), GeometricNoise()
    generator = torch.Generator().manual_seed(4)
    x0 = torch.randint(0, 6, (2, 5), generator=generator)
    t = torch.tensor([0.2, 0.9])
    xt = graph.sample_transition(x0, noise.total_noise(t)[:, None], generator=generator)
    log_score = torch.randn(2, 5, 6, generator=generator)

    def model(x, sigma):
        return log_score

    loss = score_entropy_loss(model, graph, noise, x0, t=t, xt=xt)
    sigma, dsigma = noise(t)
    expected = dsigma[:, None] * graph.score_entropy(log_score, sigma[:, None], xt, x0)
    torch.testing.assert_close(loss, expected.sum(-1))


def test_loss_in_float32_when_model_returns_bf16():
    graph, noise = Absorbing(6), LogLinearNoise()
    x0 = torch.randint(0, 6, (2, 5), generator=torch.Generator().manual_seed(5))

    def model(x, sigma):
        return torch.zeros(*x.shape, graph.dim, dtype=torch.bfloat16)

    loss = score_entropy_loss(model, graph, noise, x0, generator=torch.Generator().manual_seed(6))
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("key", ["uniform", "absorb"])
def test_loss_matches_official_vectors(reference, key):
    from sedd.model import SEDD, ModelConfig

    p = f"graph.{key}."
    vocab, hidden, cond, blocks, heads, absorbing, length = reference[p + "model.config"].tolist()
    config = ModelConfig.from_official({
        "tokens": vocab,
        "graph": {"type": "absorb" if absorbing else "uniform"},
        "model": {"hidden_size": hidden, "cond_dim": cond, "n_blocks": blocks, "n_heads": heads,
                  "scale_by_sigma": bool(absorbing), "dropout": 0.0, "length": length},
    })
    model = SEDD(config)
    prefix = p + "model.state_dict."
    state = {name[len(prefix):]: value for name, value in reference.items() if name.startswith(prefix)}
    model.load_state_dict(state, strict=True)
    model.eval()

    graph = Absorbing(vocab) if absorbing else Uniform(vocab)
    noise = GeometricNoise(1e-4, 20.0) if int(reference[p + "loss.noise"]) == 1 else LogLinearNoise(1e-3)
    with torch.no_grad():
        loss = score_entropy_loss(
            model, graph, noise, reference[p + "x0"], t=reference[p + "loss.t"], xt=reference[p + "loss.xt"]
        )
    torch.testing.assert_close(loss, reference[p + "loss.value"], rtol=1e-3, atol=0)
