"""Tests of the DDiT model: parity with the official implementation, shapes, gradients, init, config."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sedd.model import SEDD, ModelConfig
from sedd.model.layers import Rotary, apply_rotary, sinusoidal_features

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "sedd_official_vectors.pt"
GRAPHS = {"uniform": "uniform", "absorb": "absorbing"}


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny shapes gain nothing from threads, and other test processes share the cores.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    if not REFERENCE.is_file():
        pytest.skip(f"official reference vectors not found at {REFERENCE}")
    return torch.load(REFERENCE, weights_only=True)


def reference_model(reference: dict[str, torch.Tensor], graph: str) -> SEDD:
    """Build the reference model of ``graph`` ("uniform" or "absorb") with the official weights."""
    num_tokens, hidden, cond, blocks, heads, absorbing, length = reference[f"graph.{graph}.model.config"].tolist()
    config = ModelConfig(
        num_tokens=num_tokens,
        graph="absorbing" if absorbing else "uniform",
        hidden_size=hidden,
        cond_dim=cond,
        n_blocks=blocks,
        n_heads=heads,
        length=length,
        dropout=0.0,
        scale_by_sigma=bool(absorbing),
    )
    prefix = f"graph.{graph}.model.state_dict."
    state_dict = {key[len(prefix) :]: value for key, value in reference.items() if key.startswith(prefix)}
    model = SEDD(config)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def tiny_config(**overrides) -> ModelConfig:
    values = dict(
        num_tokens=11,
        graph="uniform",
        hidden_size=32,
        cond_dim=16,
        n_blocks=2,
        n_heads=4,
        length=128,
        dropout=0.0,
        scale_by_sigma=False,
    )
    values.update(overrides)
    return ModelConfig(**values)


def randomized(config: ModelConfig, seed: int = 0) -> SEDD:
    """Return a model whose zero-initialised layers are filled too, so every layer matters."""
    torch.manual_seed(seed)
    model = SEDD(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    return model


def random_inputs(config: ModelConfig, batch: int, length: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, config.vocab_size, (batch, length), generator=generator)
    sigma = torch.rand(batch, generator=generator) * 3 + 0.05
    return indices, sigma


# Parity with the official implementation


@pytest.mark.parametrize("graph", ["uniform", "absorb"])
def test_parity_official_output(reference, graph):
    model = reference_model(reference, graph)
    with torch.no_grad():
        output = model(reference[f"graph.{graph}.x"], reference[f"graph.{graph}.sigma"])
    expected = reference[f"graph.{graph}.model.output"]
    assert output.dtype == torch.float32
    assert output.shape == expected.shape
    torch.testing.assert_close(output, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("graph", ["uniform", "absorb"])
def test_parity_state_dict_names(reference, graph):
    prefix = f"graph.{graph}.model.state_dict."
    official_names = {key[len(prefix) :] for key in reference if key.startswith(prefix)}
    model = reference_model(reference, graph)
    assert set(model.state_dict()) == official_names


def test_parity_rotary_buffer(reference):
    fresh = Rotary(head_dim=16)
    torch.testing.assert_close(fresh.inv_freq, reference["graph.uniform.model.state_dict.rotary_emb.inv_freq"])


# Forward and backward


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [1, 7, 128])
def test_forward_backward_finite(batch, length):
    config = tiny_config(graph="absorbing", scale_by_sigma=True, dropout=0.1)
    model = randomized(config).train()
    indices, sigma = random_inputs(config, batch, length)

    output = model(indices, sigma)
    output.square().mean().backward()

    assert output.shape == (batch, length, config.vocab_size)
    assert output.dtype == torch.float32
    assert torch.isfinite(output).all()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_forward_backward_length_1024():
    config = tiny_config(hidden_size=16, cond_dim=8, n_blocks=1, n_heads=2, length=1024)
    model = randomized(config)
    indices, sigma = random_inputs(config, batch=2, length=1024)

    output = model(indices, sigma)
    output.square().mean().backward()

    assert output.shape == (2, 1024, config.vocab_size)
    assert torch.isfinite(output).all()
    assert torch.isfinite(model.blocks[0].attn_qkv.weight.grad).all()
    assert model.blocks[0].attn_qkv.weight.grad.abs().sum() > 0


def test_forward_sigma_column_accepted():
    config = tiny_config()
    model = randomized(config).eval()
    indices, sigma = random_inputs(config, batch=2, length=5)
    with torch.no_grad():
        flat = model(indices, sigma)
        column = model(indices, sigma[:, None])
    assert torch.equal(flat, column)


def test_forward_dropout_train_only():
    config = tiny_config(dropout=0.5)
    model = randomized(config)
    indices, sigma = random_inputs(config, batch=2, length=9)
    with torch.no_grad():
        eval_first = model.eval()(indices, sigma)
        eval_second = model(indices, sigma)
        trained = model.train()(indices, sigma)
    assert torch.equal(eval_first, eval_second)
    assert not torch.allclose(trained, eval_first)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_forward_cuda_bf16_close_to_cpu():
    config = tiny_config()
    model = randomized(config).eval()
    indices, sigma = random_inputs(config, batch=2, length=16)
    with torch.no_grad():
        on_cpu = model(indices, sigma)
        on_cuda = model.cuda()(indices.cuda(), sigma.cuda())
    assert on_cuda.dtype == torch.float32
    # bf16 keeps about three significant digits, so compare by relative error over the batch.
    relative_error = (on_cuda.cpu() - on_cpu).norm() / on_cpu.norm()
    assert relative_error < 0.05


# Initialisation and the current-token entry


def test_fresh_uniform_outputs_zero():
    config = tiny_config()
    model = SEDD(config).eval()
    indices, sigma = random_inputs(config, batch=2, length=6)
    with torch.no_grad():
        output = model(indices, sigma)
    assert torch.equal(output, torch.zeros_like(output))


def test_fresh_absorbing_outputs_shift():
    config = tiny_config(graph="absorbing", scale_by_sigma=True)
    model = SEDD(config).eval()
    sigma = torch.tensor([1e-3, 0.3, 0.7, 3.0, 20.0])
    indices = torch.full((5, 4), config.num_tokens)  # every position masked
    with torch.no_grad():
        output = model(indices, sigma)

    sigma64 = sigma.double()
    shift = torch.log(torch.expm1(sigma64)) + math.log(config.vocab_size - 1)
    expected = (-shift)[:, None, None].expand(5, 4, config.vocab_size - 1)
    torch.testing.assert_close(output[..., :-1].double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(output[..., -1], torch.zeros(5, 4))


def test_fresh_absorbing_large_sigma_finite():
    config = tiny_config(graph="absorbing", scale_by_sigma=True)
    model = SEDD(config).eval()
    indices = torch.full((1, 3), config.num_tokens)
    with torch.no_grad():
        output = model(indices, torch.tensor([200.0]))
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output[0, 0, 0].item(), -200.0 - math.log(config.vocab_size - 1))


@pytest.mark.parametrize("graph", ["uniform", "absorbing"])
def test_current_token_entry_zero(graph):
    config = tiny_config(graph=graph, scale_by_sigma=graph == "absorbing")
    model = randomized(config).eval()
    indices, sigma = random_inputs(config, batch=3, length=10)
    with torch.no_grad():
        output = model(indices, sigma)
    at_current = output.gather(-1, indices[..., None])
    assert torch.equal(at_current, torch.zeros_like(at_current))
    assert (output != 0).float().mean() > 0.5


# Input validation


def test_forward_int32_indices_rejected():
    config = tiny_config()
    model = SEDD(config)
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(1, 4, dtype=torch.int32), torch.ones(1))


def test_forward_too_long_rejected():
    config = tiny_config(length=8)
    model = SEDD(config)
    with pytest.raises(ValueError, match="length=8"):
        model(torch.zeros(1, 9, dtype=torch.int64), torch.ones(1))


def test_forward_sigma_shape_rejected():
    config = tiny_config()
    model = SEDD(config)
    with pytest.raises(ValueError, match=r"sigma.*\(2,\)"):
        model(torch.zeros(2, 4, dtype=torch.int64), torch.ones(3))


# Layers


def test_rotary_depends_on_offset_only():
    head_dim = 8
    cos, sin = Rotary(head_dim)(20, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(head_dim, generator=generator).expand(1, 20, 1, head_dim)
    key = torch.randn(head_dim, generator=generator).expand(1, 20, 1, head_dim)
    rotated_query = apply_rotary(query, cos, sin)[0, :, 0]  # (L, E)
    rotated_key = apply_rotary(key, cos, sin)[0, :, 0]
    near = torch.dot(rotated_query[3], rotated_key[1])
    far = torch.dot(rotated_query[15], rotated_key[13])
    torch.testing.assert_close(near, far, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(near, torch.dot(rotated_query[3], rotated_key[3]))


def test_rotary_preserves_norm():
    cos, sin = Rotary(16)(50, torch.device("cpu"))
    x = torch.randn(2, 50, 3, 16)
    torch.testing.assert_close(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


def test_sinusoidal_features_at_zero():
    features = sinusoidal_features(torch.zeros(2), 256)
    assert features.shape == (2, 256)
    assert torch.equal(features[:, :128], torch.ones(2, 128))
    assert torch.equal(features[:, 128:], torch.zeros(2, 128))


# Config


def test_config_vocab_size_absorbing():
    assert tiny_config(graph="absorbing", scale_by_sigma=True).vocab_size == 12


def test_config_vocab_size_uniform():
    assert tiny_config().vocab_size == 11


def test_config_official_round_trip():
    config = tiny_config(graph="absorbing", scale_by_sigma=True, dropout=0.1, length=64)
    official = config.to_official()
    assert official["graph"] == {"type": "absorb"}
    assert official["tokens"] == 11
    assert ModelConfig.from_official(official) == config


def test_config_official_extra_keys_ignored():
    official = {
        "ngpus": 8,
        "tokens": 50257,
        "graph": {"type": "absorb", "file": "data"},
        "noise": {"type": "loglinear"},
        "model": {
            "name": "small",
            "type": "ddit",
            "hidden_size": 768,
            "cond_dim": 128,
            "length": 1024,
            "n_blocks": 12,
            "n_heads": 12,
            "scale_by_sigma": True,
            "dropout": 0.1,
        },
    }
    config = ModelConfig.from_official(official)
    assert config == ModelConfig(num_tokens=50257)
    assert config.vocab_size == 50258


def test_config_official_missing_key():
    official = tiny_config().to_official()
    del official["model"]["n_heads"]
    with pytest.raises(ValueError, match=r"'model\.n_heads'"):
        ModelConfig.from_official(official)


def test_config_official_unknown_graph():
    official = tiny_config().to_official()
    official["graph"]["type"] = "masked"
    with pytest.raises(ValueError, match=r"graph\.type='masked'"):
        ModelConfig.from_official(official)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"hidden_size": 30, "n_heads": 4}, "n_heads=4"),
        ({"hidden_size": 36, "n_heads": 4}, "head dimension"),
        ({"graph": "uniform", "scale_by_sigma": True}, "scale_by_sigma=True"),
        ({"graph": "absorb"}, "'absorbing'"),
        ({"num_tokens": 1}, "num_tokens=1"),
        ({"n_blocks": 0}, "n_blocks=0"),
        ({"length": 2.5}, "length=2.5"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"dropout": -0.1}, "dropout=-0.1"),
        ({"scale_by_sigma": "yes"}, "scale_by_sigma='yes'"),
    ],
)
def test_config_invalid_rejected(overrides, named):
    base = tiny_config(graph="absorbing", scale_by_sigma=False)
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(".", r"\.")):
        replace(base, **overrides)
