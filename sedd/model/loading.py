"""Build, load and save SEDD models as Hugging Face style folders.

A model folder contains ``config.json`` (the official nested config, see ``ModelConfig.from_official``)
and one weights file, ``model.safetensors`` or ``pytorch_model.bin``. This is the layout of the
published ``louaaron/sedd-small`` and ``louaaron/sedd-medium`` checkpoints and of the folders that
``save_pretrained`` writes, so one loader serves both.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sedd.model.config import ModelConfig
from sedd.model.ddit import SEDD

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
PICKLE_NAME = "pytorch_model.bin"
# Loading order: safetensors first, because it cannot run code and loads without a copy.
WEIGHTS_NAMES = (SAFETENSORS_NAME, PICKLE_NAME)

# "owner/name" as the hub accepts it; anything else that is not an existing folder is an error.
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MAX_LISTED_KEYS = 8


class CheckpointError(Exception):
    """A model folder or hub snapshot that cannot be turned into a model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A model folder, one of its files, or a hub snapshot that does not exist or is not cached."""


def build_model(config: ModelConfig | Mapping[str, Any]) -> SEDD:
    """Build a freshly initialised model.

    Args:
        config: a ``ModelConfig``; the official nested dict (with ``tokens``, ``graph`` and
            ``model`` keys); or a flat dict of ``ModelConfig`` keyword arguments.
    """
    if isinstance(config, ModelConfig):
        return SEDD(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"Invalid model config of type {type(config).__name__}: expected ModelConfig or a dict.")
    if "model" in config:
        return SEDD(ModelConfig.from_official(config))

    accepted = {field.name for field in fields(ModelConfig)}
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ValueError(f"Unknown model config keys {unknown}: accepted keys are {sorted(accepted)}.")
    if "num_tokens" not in config:
        raise ValueError("Missing key 'num_tokens' in the model config: set it to the vocabulary size V.")
    return SEDD(ModelConfig(**config))


def load_pretrained(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> SEDD:
    """Load a model in eval mode from a local folder or a Hugging Face hub repository.

    Args:
        path: a folder with ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``,
            or a hub repository id such as ``"louaaron/sedd-small"``. An existing folder wins
            over a repository of the same name.
        map_location: device the weights are loaded to and the model is moved to.
        cache_dir: Hugging Face cache folder for hub ids (default: the hub's own default).
        local_files_only: for hub ids, use only the cache and never the network. Setting the
            environment variable ``HF_HUB_OFFLINE=1`` before start-up has the same effect.

    Raises:
        CheckpointNotFoundError: the folder, its config or weights file, or the hub snapshot is missing.
        CheckpointError: the config is invalid or the weights do not match it.
    """
    folder = _resolve_folder(path, cache_dir, local_files_only)
    config = read_config(folder)
    state_dict = _read_state_dict(folder, map_location)

    model = SEDD(config)
    _check_state_dict(model, state_dict, folder)
    model.load_state_dict(state_dict, strict=True)
    model.to(map_location)
    model.eval()

    num_parameters = sum(p.numel() for p in model.parameters())
    logger.info("Loaded SEDD model with %d parameters from %s onto %s", num_parameters, folder, map_location)
    return model


def read_config(folder: str | os.PathLike[str]) -> ModelConfig:
    """Read ``config.json`` of a model folder into a ``ModelConfig``."""
    config_path = Path(folder) / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointNotFoundError(f"Missing {CONFIG_NAME} in model folder {folder}: it is not a SEDD model folder.")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"Invalid JSON in {config_path}: {err}") from err

    # Some versions of huggingface_hub's model mixin nest the init argument under "config".
    # NOTE: the published sedd-small/medium config.json layouts were inferred from the official
    # training config and that mixin. No test reads a copy downloaded from the hub.
    if isinstance(data, dict) and "model" not in data and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise CheckpointError(f"Invalid {config_path}: expected a JSON object, got {type(data).__name__}.")
    try:
        return ModelConfig.from_official(data)
    except ValueError as err:
        raise CheckpointError(f"Invalid model config in {config_path}: {err}") from err


def save_pretrained(model: nn.Module, folder: str | os.PathLike[str], *, safe_serialization: bool = True) -> Path:
    """Write ``config.json`` and the weights into ``folder``, creating it if needed.

    Each file is written to a temporary name, flushed to disk and renamed, so a crash never
    leaves a truncated file. The weights are written before ``config.json``. A weights file of
    the other format left from an earlier save is removed, so loading cannot pick stale weights.

    Args:
        model: a ``SEDD`` model, or one wrapped by DistributedDataParallel or ``torch.compile``.
        folder: destination folder.
        safe_serialization: write ``model.safetensors`` (default) or ``pytorch_model.bin``.

    Returns:
        The folder path.
    """
    model = _unwrap(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state_dict = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}

    if safe_serialization:
        from safetensors.torch import save_file

        weights_name, stale_name = SAFETENSORS_NAME, PICKLE_NAME
        _write_atomically(folder / weights_name, lambda tmp: save_file(state_dict, str(tmp), metadata={"format": "pt"}))
    else:
        weights_name, stale_name = PICKLE_NAME, SAFETENSORS_NAME
        _write_atomically(folder / weights_name, lambda tmp: torch.save(state_dict, tmp))
    (folder / stale_name).unlink(missing_ok=True)

    config_text = json.dumps(model.config.to_official(), indent=2) + "\n"
    _write_atomically(folder / CONFIG_NAME, lambda tmp: tmp.write_text(config_text, encoding="utf-8"))
    logger.info("Saved SEDD model to %s (%s)", folder, weights_name)
    return folder


def _unwrap(model: nn.Module) -> SEDD:
    # torch.compile keeps the original module in _orig_mod and DistributedDataParallel keeps it
    # in module; the two wrappers may be nested in either order.
    while not isinstance(model, SEDD):
        inner = getattr(model, "_orig_mod", None)
        if inner is None:
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            raise TypeError(f"Invalid model of type {type(model).__name__}: save_pretrained writes SEDD models only.")
        model = inner
    return model


def _resolve_folder(path: str | os.PathLike[str], cache_dir: Any, local_files_only: bool) -> Path:
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    if local.exists():
        raise CheckpointNotFoundError(
            f"Invalid model path {str(path)!r}: it is a file, but a folder with {CONFIG_NAME} and "
            f"{' or '.join(WEIGHTS_NAMES)} is expected."
        )
    if not _REPO_ID.match(str(path)):
        raise CheckpointNotFoundError(f"Model folder not found: {str(path)!r}.")
    return _download_snapshot(str(path), cache_dir, local_files_only)


def _download_snapshot(repo_id: str, cache_dir: Any, local_files_only: bool) -> Path:
    """Return the local snapshot folder of a hub repository, downloading it unless it is cached."""
    # Imported here so that importing sedd does not pay for the hub client.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    logger.info("No local folder %r; looking up the Hugging Face hub repository of that name", repo_id)
    try:
        snapshot = snapshot_download(
            repo_id,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            allow_patterns=[CONFIG_NAME, *WEIGHTS_NAMES],
        )
    except LocalEntryNotFoundError as err:
        raise CheckpointNotFoundError(
            f"Model not found: there is no local folder {repo_id!r}, and the hub repository {repo_id!r} is not in "
            "the Hugging Face cache while downloads are off (HF_HUB_OFFLINE=1 or local_files_only=True) "
            "or the hub is unreachable. Download it once with network access, or pass a local folder."
        ) from err
    except (HfHubHTTPError, HFValidationError) as err:
        raise CheckpointNotFoundError(
            f"Model not found: there is no local folder {repo_id!r}, and downloading it from the hub failed: {err}"
        ) from err
    return Path(snapshot)


def _read_state_dict(folder: Path, map_location: str | torch.device) -> dict[str, Tensor]:
    weights_path = next((folder / name for name in WEIGHTS_NAMES if (folder / name).is_file()), None)
    if weights_path is None:
        raise CheckpointNotFoundError(f"Missing weights in model folder {folder}: expected {' or '.join(WEIGHTS_NAMES)}.")

    if weights_path.name == SAFETENSORS_NAME:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(weights_path, device=str(map_location))
        except SafetensorError as err:
            raise CheckpointError(f"Invalid safetensors file {weights_path}: {err}") from err

    try:
        state_dict = torch.load(weights_path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"Cannot read {weights_path} as a PyTorch state dict: {err}") from err
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise CheckpointError(
            f"Invalid {weights_path}: expected a flat dict of parameter names to tensors (a model state_dict); "
            "a training checkpoint must be converted with save_pretrained first."
        )
    return dict(state_dict)


def _check_state_dict(model: SEDD, state_dict: Mapping[str, Tensor], folder: Path) -> None:
    """Raise CheckpointError listing missing, unexpected and mis-shaped keys, with the likely cause."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mis_shaped = [
        f"{name} (file {tuple(state_dict[name].shape)}, config {tuple(tensor.shape)})"
        for name, tensor in expected.items()
        if name in state_dict and state_dict[name].shape != tensor.shape
    ]
    if not (missing or unexpected or mis_shaped):
        return

    problems = [
        f"{label}: {_abbreviate(keys)}"
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mis_shaped))
        if keys
    ]
    raise CheckpointError(
        f"The weights in {folder} do not match its {CONFIG_NAME}: " + "; ".join(problems) + ". " + _likely_cause(unexpected, mis_shaped)
    )


def _likely_cause(unexpected: list[str], mis_shaped: list[str]) -> str:
    for prefix, wrapper in (("module.", "DistributedDataParallel"), ("_orig_mod.", "torch.compile")):
        if unexpected and all(name.startswith(prefix) for name in unexpected):
            return f"Likely cause: the weights were saved from a {wrapper} wrapper; save the unwrapped model instead."
    if mis_shaped:
        return "Likely cause: config.json describes another model size or vocabulary than the weights."
    return "Likely cause: the weights come from another architecture or another number of blocks."


def _abbreviate(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    return shown if len(keys) <= _MAX_LISTED_KEYS else f"{shown} and {len(keys) - _MAX_LISTED_KEYS} more"


def _write_atomically(target: Path, write: Callable[[Path], Any]) -> None:
    """Write through ``write(temporary_path)``, fsync, then rename over ``target``."""
    handle, temporary_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        write(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk. Windows cannot open folders.
    if os.name != "posix":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
