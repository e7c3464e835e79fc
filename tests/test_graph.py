import pytest
import torch
import torch.nn.functional as F

from sedd.graph import Absorbing, Uniform, get_graph

V = 5
SIGMAS = [1e-6, 1e-3, 0.1, 1.0, 3.0, 50.0]


def explicit_rate_matrix(graph):
    """Q written out by hand from its definition, Q[y, x] = rate from x to y."""
    d = graph.dim
    if isinstance(graph, Uniform):
        return torch.ones(d, d, dtype=torch.float64) / d - torch.eye(d, dtype=torch.float64)
    q = -torch.eye(d, dtype=torch.float64)
    q[graph.mask_index, :] += 1.0
    q[graph.mask_index, graph.mask_index] = 0.0
    return q


@pytest.fixture(params=["uniform", "absorbing"])
def graph(request):
    return get_graph(request.param, V)


def test_rate_matrix_matches_definition(graph):
    torch.testing.assert_close(graph.rate_matrix(), explicit_rate_matrix(graph))


def test_rate_columns_sum_to_zero(graph):
    states = torch.arange(graph.dim)
    torch.testing.assert_close(graph.rate(states).sum(-1), torch.zeros(graph.dim))


def test_transp_rate_is_row_of_q(graph):
    states = torch.arange(graph.dim)
    q = explicit_rate_matrix(graph)
    torch.testing.assert_close(graph.transp_rate(states).double(), q)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_transition_equals_matrix_exponential(graph, sigma):
    states = torch.arange(graph.dim)
    expected = torch.linalg.matrix_exp(sigma * explicit_rate_matrix(graph))
    sigma_t = torch.full((graph.dim,), sigma, dtype=torch.float64)
    column = graph.transition(states, sigma_t)  # row k is column k of exp(sigma Q)
    row = graph.transp_transition(states, sigma_t)  # row k is row k of exp(sigma Q)
    torch.testing.assert_close(column.double(), expected.T, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(row.double(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_transition_probabilities_sum_to_one(graph, sigma):
    states = torch.arange(graph.dim)
    sigma_t = torch.full((graph.dim,), sigma)
    probs = graph.transition(states, sigma_t)
    torch.testing.assert_close(probs.sum(-1), torch.ones(graph.dim))
    assert (probs >= 0).all()


@pytest.mark.parametrize("dsigma", [1e-4, 0.05, 0.7])
def test_staggered_score_is_matrix_exponential(graph, dsigma):
    score = torch.rand(3, 2, graph.dim, dtype=torch.float64) + 0.1
    expected = torch.einsum(
        "yx,blx->bly", torch.linalg.matrix_exp(-dsigma * explicit_rate_matrix(graph)), score
    )
    result = graph.staggered_score(score, torch.full((3, 1), dsigma, dtype=torch.float64))
    torch.testing.assert_close(result, expected, rtol=1e-9, atol=1e-12)


def test_reverse_rate_rows_sum_to_zero(graph):
    x = torch.randint(0, graph.dim, (4, 6))
    score = torch.rand(4, 6, graph.dim) + 0.1
    rev = graph.reverse_rate(x, score)
    torch.testing.assert_close(rev.sum(-1), torch.zeros(4, 6), atol=1e-6, rtol=0)
    off_diagonal = rev.scatter(-1, x[..., None], 0.0)
    assert (off_diagonal >= 0).all()


def test_sample_transition_frequencies(graph):
    n = 200_000
    generator = torch.Generator().manual_seed(0)
    x0 = torch.full((n,), 2)
    sigma = torch.full((n,), 0.8)
    xt = graph.sample_transition(x0, sigma, generator=generator)
    counts = torch.bincount(xt, minlength=graph.dim).double() / n
    expected = graph.transition(x0[:1], sigma[:1])[0].double()
    # 5 standard errors of a binomial proportion at n = 200k is under 0.006.
    torch.testing.assert_close(counts, expected, atol=6e-3, rtol=0)


def test_sample_limit(graph):
    limit = graph.sample_limit(3, 7, generator=torch.Generator().manual_seed(1))
    assert limit.shape == (3, 7)
    assert limit.dtype == torch.int64
    if graph.absorb:
        assert (limit == graph.mask_index).all()
    else:
        assert limit.min() >= 0
        assert limit.max() < graph.dim


def test_score_entropy_non_negative(graph):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, V, (8, 16), generator=generator)
    sigma = torch.rand(8, 1, generator=generator) * 3 + 1e-3
    xt = graph.sample_transition(x0, sigma, generator=generator)
    log_score = torch.randn(8, 16, graph.dim, generator=generator) * 2
    log_score = log_score.scatter(-1, xt[..., None], 0.0)
    entropy = graph.score_entropy(log_score, sigma, xt, x0)
    assert entropy.shape == (8, 16)
    assert (entropy >= -1e-6).all()
    assert entropy.sum() > 0


@pytest.mark.parametrize(
    "sigma,dtype",
    [(1e-3, torch.float64), (0.3, torch.float64), (10.0, torch.float64),
     (0.3, torch.float32), (2.0, torch.float32), (10.0, torch.float32)],
)
def test_score_entropy_zero_at_true_ratios(graph, sigma, dtype):
    # Clean token x0 known: p_t = exp(sigma Q)[:, x0], and the true log-ratios from each
    # noised state x are log p_t(y) - log p_t(x). Float32 is checked only from sigma = 0.3:
    # below that the uniform graph's ratio towards x0 is about N / sigma, and float32
    # rounding of its log alone moves the loss by more than 1e-6.
    transition = torch.linalg.matrix_exp(sigma * explicit_rate_matrix(graph))
    for x0 in range(V):
        p_t = transition[:, x0]
        for x in torch.nonzero(p_t > 0).flatten().tolist():
            log_ratio = (p_t.log() - p_t[x].log()).to(dtype)
            entropy = graph.score_entropy(
                log_ratio.view(1, 1, -1), torch.tensor([[sigma]], dtype=dtype),
                torch.tensor([[x]]), torch.tensor([[x0]]),
            )
            assert abs(entropy.item()) < 1e-6, (x0, x, entropy.item())


def test_expected_score_entropy_minimised_at_marginal_ratios(graph):
    # With x0 ~ p0 the expected denoising score entropy is minimised by the ratios of the
    # marginal p_t = exp(sigma Q) p0: its gradient in the log-scores vanishes there.
    sigma = 0.7
    p0 = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05], dtype=torch.float64)
    if graph.absorb:
        p0 = torch.cat([p0, torch.zeros(1, dtype=torch.float64)])
    transition = torch.linalg.matrix_exp(sigma * explicit_rate_matrix(graph))
    p_t = transition @ p0
    states = torch.nonzero(p_t > 0).flatten()
    log_score = (p_t.log()[None, :] - p_t.log()[states, None]).clamp_min(-60.0)
    log_score = log_score.float().requires_grad_(True)

    total = 0.0
    for k, x in enumerate(states.tolist()):
        for x0 in range(V):
            weight = p0[x0] * transition[x, x0]
            if weight == 0:
                continue
            entropy = graph.score_entropy(
                log_score[k].view(1, 1, -1), torch.tensor([[sigma]]),
                torch.tensor([[x]]), torch.tensor([[x0]]),
            )
            total = total + weight * entropy.sum()
    (grad,) = torch.autograd.grad(total, log_score)
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=2e-6, rtol=0)


def test_absorbing_score_entropy_zero_when_unmasked():
    graph = Absorbing(V)
    x = torch.tensor([[0, 1, graph.mask_index]])
    log_score = torch.full((1, 3, graph.dim), 100.0)  # exp(100) would overflow to inf in float32
    entropy = graph.score_entropy(log_score, torch.tensor([[0.5]]), x, torch.tensor([[0, 1, 2]]))
    assert entropy[0, 0] == 0
    assert entropy[0, 1] == 0


@pytest.mark.parametrize("sigma", [1e-6, 1e-4, 1.0, 20.0, 50.0])
def test_no_nan_or_inf_across_sigma(graph, sigma):
    generator = torch.Generator().manual_seed(3)
    x0 = torch.randint(0, V, (4, 8), generator=generator)
    sig = torch.full((4, 1), sigma)
    xt = graph.sample_transition(x0, sig, generator=generator)
    log_score = torch.randn(4, 8, graph.dim, generator=generator).scatter(-1, xt[..., None], 0.0)
    log_score.requires_grad_(True)
    outputs = [
        graph.transition(xt, sig),
        graph.transp_transition(xt, sig),
        graph.staggered_score(log_score.exp(), sig),
        graph.score_entropy(log_score, sig, xt, x0),
    ]
    for out in outputs:
        assert torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(outputs[-1].sum(), log_score)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("key,cls", [("uniform", Uniform), ("absorb", Absorbing)])
def test_matches_official_vectors(reference, key, cls):
    vocab = int(reference["meta.vocab"])
    graph = cls(vocab)
    p = f"graph.{key}."
    x, x0 = reference[p + "x"], reference[p + "x0"]
    sigma, dsigma = reference[p + "sigma"][:, None], reference[p + "dsigma"][:, None]
    log_score = reference[p + "log_score"]
    score = log_score.exp()
    results = {
        "rate": graph.rate(x),
        "transp_rate": graph.transp_rate(x),
        "transp_transition": graph.transp_transition(x, sigma),
        "staggered_score": graph.staggered_score(score, dsigma),
        "score_entropy": graph.score_entropy(log_score, sigma, x, x0),
        "reverse_rate": graph.reverse_rate(x, score),
        "analytic_probs": graph.staggered_score(score, dsigma) * graph.transp_transition(x, dsigma),
        "euler_probs": F.one_hot(x, graph.dim) + reference[p + "euler_rate_scale"] * graph.reverse_rate(x, score),
    }
    if key == "uniform":
        results["transition"] = graph.transition(x, sigma)
    for name, value in results.items():
        torch.testing.assert_close(
            value.float(), reference[p + name], rtol=1e-5, atol=5e-6, msg=lambda m: f"{name}: {m}"
        )


def test_absorbing_staggered_score_closer_to_float64_than_official(reference):
    # The mask entry is a difference of similar terms; forming it as s_mask - expm1(dsigma)
    # * sum(real scores) loses fewer digits than the official s * e^dsigma form.
    graph = Absorbing(int(reference["meta.vocab"]))
    score = reference["graph.absorb.log_score"].exp()
    dsigma = reference["graph.absorb.dsigma"][:, None]
    exact = graph.staggered_score(score.double(), dsigma.double())
    ours = graph.staggered_score(score, dsigma).double()
    official = reference["graph.absorb.staggered_score"].double()
    assert (ours - exact).abs().max() <= (official - exact).abs().max()


def test_get_graph_unknown_type():
    with pytest.raises(ValueError, match="unknown graph type 'masked'"):
        get_graph("masked", 10)


def test_graph_needs_two_tokens():
    with pytest.raises(ValueError, match="num_tokens=1"):
        Uniform(1)
