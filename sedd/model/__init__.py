"""The DDiT score network of SEDD, its configuration, and loading and saving of model folders."""

from sedd.model.config import ModelConfig
from sedd.model.ddit import SEDD
from sedd.model.loading import (
    CheckpointError,
    CheckpointNotFoundError,
    build_model,
    load_pretrained,
    read_config,
    save_pretrained,
)

__all__ = [
    "SEDD",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ModelConfig",
    "build_model",
    "load_pretrained",
    "read_config",
    "save_pretrained",
]
