"""Tests of building, saving and loading SEDD model folders, local and through the hub cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from sedd.model import (
    SEDD,
    CheckpointError,
    CheckpointNotFoundError,
    ModelConfig,
    build_model,
    load_pretrained,
    save_pretrained,
)
from sedd.model.loading import _write_atomically

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "sedd_official_vectors.pt"
HUB_REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(**overrides) -> ModelConfig:
    values = dict(num_tokens=11, hidden_size=32, cond_dim=16, n_blocks=2, n_heads=4, length=64, dropout=0.1)
    values.update(overrides)
    return ModelConfig(**values)


def randomized(config: ModelConfig) -> SEDD:
    torch.manual_seed(0)
    model = SEDD(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    return model.eval()


def outputs(model: SEDD) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    indices = torch.randint(0, model.config.vocab_size, (2, 9), generator=generator)
    sigma = torch.tensor([0.2, 1.5])
    with torch.no_grad():
        return model(indices, sigma)


def write_folder(folder: Path, config: dict, state_dict: dict[str, torch.Tensor], weights_name: str) -> Path:
    """Write a model folder by hand, as the published hub checkpoints are laid out."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if weights_name == "model.safetensors":
        save_file(state_dict, str(folder / weights_name))
    else:
        torch.save(state_dict, folder / weights_name)
    return folder


def official_training_config(model_config: ModelConfig) -> dict:
    """Return a config as the official training code writes it: the model keys among many others."""
    official = model_config.to_official()
    official["model"].update({"name": "small", "type": "ddit"})
    official["graph"].update({"file": "data", "report_all": False})
    official.update(
        {
            "ngpus": 8,
            "training": {"batch_size": 512, "ema": 0.9999},
            "noise": {"type": "loglinear", "sigma_min": 1e-4, "sigma_max": 20},
            "sampling": {"predictor": "euler", "steps": 128},
        }
    )
    return official


# Round trips


def test_round_trip_safetensors(tmp_path):
    model = randomized(tiny_config())
    save_pretrained(model, tmp_path / "run")
    loaded = load_pretrained(tmp_path / "run")

    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "model.safetensors"]
    assert loaded.config == model.config
    assert not loaded.training
    assert torch.equal(outputs(loaded), outputs(model))


def test_round_trip_pickle(tmp_path):
    model = randomized(tiny_config(graph="uniform", scale_by_sigma=False))
    save_pretrained(model, tmp_path, safe_serialization=False)
    loaded = load_pretrained(str(tmp_path))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "pytorch_model.bin"]
    assert loaded.config == model.config
    assert torch.equal(outputs(loaded), outputs(model))


def test_save_removes_stale_format(tmp_path):
    first = randomized(tiny_config())
    save_pretrained(first, tmp_path)
    second = SEDD(tiny_config())
    save_pretrained(second, tmp_path, safe_serialization=False)

    assert not (tmp_path / "model.safetensors").exists()
    assert torch.equal(outputs(load_pretrained(tmp_path)), outputs(second.eval()))


def test_save_config_is_official_form(tmp_path):
    config = tiny_config()
    save_pretrained(SEDD(config), tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written == config.to_official()
    assert written["graph"]["type"] == "absorb"


# Importing torch.compile's machinery triggers a deprecation warning inside torch itself.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_save_unwraps_wrappers(tmp_path):
    class DataParallelLike(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    model = randomized(tiny_config())
    save_pretrained(torch.compile(DataParallelLike(model)), tmp_path)
    assert torch.equal(outputs(load_pretrained(tmp_path)), outputs(model))


def test_save_non_sedd_rejected(tmp_path):
    with pytest.raises(TypeError, match="Linear"):
        save_pretrained(nn.Linear(2, 2), tmp_path)


def test_write_atomically_failure_leaves_nothing(tmp_path):
    def write_then_fail(temporary: Path) -> None:
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _write_atomically(tmp_path / "model.safetensors", write_then_fail)
    assert list(tmp_path.iterdir()) == []


# Official folders


@pytest.mark.parametrize("weights_name", ["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("graph", ["uniform", "absorb"])
def test_official_folder_parity(tmp_path, graph, weights_name):
    if not REFERENCE.is_file():
        pytest.skip(f"official reference vectors not found at {REFERENCE}")
    reference = torch.load(REFERENCE, weights_only=True)
    num_tokens, hidden, cond, blocks, heads, absorbing, length = reference[f"graph.{graph}.model.config"].tolist()
    official = {
        "tokens": num_tokens,
        "graph": {"type": graph},
        "model": {
            "hidden_size": hidden,
            "cond_dim": cond,
            "n_blocks": blocks,
            "n_heads": heads,
            "scale_by_sigma": bool(absorbing),
            "dropout": 0.0,
            "length": length,
        },
    }
    prefix = f"graph.{graph}.model.state_dict."
    state_dict = {key[len(prefix) :]: value for key, value in reference.items() if key.startswith(prefix)}
    folder = write_folder(tmp_path / "official", official, state_dict, weights_name)

    model = load_pretrained(folder)
    with torch.no_grad():
        output = model(reference[f"graph.{graph}.x"], reference[f"graph.{graph}.sigma"])
    torch.testing.assert_close(output, reference[f"graph.{graph}.model.output"], atol=1e-4, rtol=0)


def test_official_training_config_loads(tmp_path):
    model = randomized(tiny_config())
    folder = write_folder(tmp_path, official_training_config(model.config), model.state_dict(), "pytorch_model.bin")
    loaded = load_pretrained(folder)
    assert loaded.config == model.config
    assert torch.equal(outputs(loaded), outputs(model))


def test_hub_mixin_nested_config_loads(tmp_path):
    model = randomized(tiny_config())
    nested = {"config": official_training_config(model.config)}
    folder = write_folder(tmp_path, nested, model.state_dict(), "model.safetensors")
    assert load_pretrained(folder).config == model.config


# Hub ids


def test_hub_id_uncached_offline(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="not in the Hugging Face cache"):
        load_pretrained("louaaron/sedd-small", cache_dir=tmp_path, local_files_only=True)


def test_hub_id_cached_snapshot(tmp_path):
    model = randomized(tiny_config())
    repo_cache = tmp_path / "models--louaaron--sedd-small"
    (repo_cache / "refs").mkdir(parents=True)
    (repo_cache / "refs" / "main").write_text(HUB_REVISION)
    snapshot = repo_cache / "snapshots" / HUB_REVISION
    write_folder(snapshot, official_training_config(model.config), model.state_dict(), "pytorch_model.bin")

    loaded = load_pretrained("louaaron/sedd-small", cache_dir=tmp_path, local_files_only=True)
    assert torch.equal(outputs(loaded), outputs(model))


# Errors


def test_missing_folder_rejected(tmp_path):
    missing = tmp_path / "no-such-run"
    with pytest.raises(CheckpointNotFoundError, match="no-such-run"):
        load_pretrained(missing)


def test_missing_folder_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pretrained(tmp_path / "absent")


def test_file_path_rejected(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(CheckpointNotFoundError, match="is a file"):
        load_pretrained(weights)


def test_missing_weights_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config().to_official()))
    with pytest.raises(CheckpointNotFoundError, match="model.safetensors or pytorch_model.bin"):
        load_pretrained(tmp_path)


def test_missing_config_rejected(tmp_path):
    save_file(SEDD(tiny_config()).state_dict(), str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointNotFoundError, match="config.json"):
        load_pretrained(tmp_path)


def test_invalid_json_rejected(tmp_path):
    (tmp_path / "config.json").write_text("{tokens: 11")
    with pytest.raises(CheckpointError, match="Invalid JSON"):
        load_pretrained(tmp_path)


def test_invalid_config_value_rejected(tmp_path):
    official = tiny_config().to_official()
    official["model"]["n_heads"] = 5
    (tmp_path / "config.json").write_text(json.dumps(official))
    with pytest.raises(CheckpointError, match="n_heads=5"):
        load_pretrained(tmp_path)


def test_shape_mismatch_names_keys(tmp_path):
    weights = SEDD(tiny_config(hidden_size=64)).state_dict()
    write_folder(tmp_path, tiny_config().to_official(), weights, "model.safetensors")
    with pytest.raises(CheckpointError) as raised:
        load_pretrained(tmp_path)
    message = str(raised.value)
    assert "shape mismatches" in message
    assert "vocab_embed.embedding (file (12, 64), config (12, 32))" in message
    assert "another model size or vocabulary" in message


def test_missing_keys_named(tmp_path):
    weights = SEDD(tiny_config(n_blocks=1)).state_dict()
    write_folder(tmp_path, tiny_config(n_blocks=2).to_official(), weights, "model.safetensors")
    with pytest.raises(CheckpointError) as raised:
        load_pretrained(tmp_path)
    message = str(raised.value)
    assert "missing keys: blocks.1." in message
    assert "unexpected keys" not in message
    assert "and 2 more" in message


def test_wrapper_prefix_diagnosed(tmp_path):
    weights = {f"module.{name}": tensor for name, tensor in SEDD(tiny_config()).state_dict().items()}
    write_folder(tmp_path, tiny_config().to_official(), weights, "model.safetensors")
    with pytest.raises(CheckpointError, match="DistributedDataParallel wrapper"):
        load_pretrained(tmp_path)


def test_training_checkpoint_rejected(tmp_path):
    model = SEDD(tiny_config())
    folder = write_folder(tmp_path, tiny_config().to_official(), {}, "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save({"model": model.state_dict(), "step": torch.tensor(3)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="flat dict"):
        load_pretrained(folder)


# build_model


def test_build_from_config():
    config = tiny_config()
    assert build_model(config).config is config


def test_build_from_official_dict():
    config = tiny_config()
    assert build_model(official_training_config(config)).config == config


def test_build_from_flat_dict():
    assert build_model(tiny_config().to_dict()).config == tiny_config()


def test_build_unknown_key_rejected():
    with pytest.raises(ValueError, match="'hidden'"):
        build_model({"num_tokens": 11, "hidden": 32})


def test_build_missing_tokens_rejected():
    with pytest.raises(ValueError, match="'num_tokens'"):
        build_model({"hidden_size": 32, "n_heads": 4})
