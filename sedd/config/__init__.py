"""Typed experiment config: schema, validation, YAML loading and overrides.

``load_config("configs/quickstart.yaml", overrides=["training.lr=1e-4"])`` returns a
validated ``ExperimentConfig``. Any problem raises ``ConfigError``, a ``ValueError`` that
names the key path, the value and what is allowed, plus the line for YAML text.
"""

from sedd.config.loading import (
    ConfigLoader,
    config_to_dict,
    config_to_yaml,
    load_config,
    parse_override,
    parse_yaml,
)
from sedd.config.schema import (
    DataConfig,
    DiffusionConfig,
    ExperimentConfig,
    ModelSection,
    NoiseConfig,
    SamplingConfig,
    TrainingConfig,
)
from sedd.config.validate import ConfigError, describe_type, validate_dict

__all__ = [
    "ConfigError",
    "ConfigLoader",
    "DataConfig",
    "DiffusionConfig",
    "ExperimentConfig",
    "ModelSection",
    "NoiseConfig",
    "SamplingConfig",
    "TrainingConfig",
    "config_to_dict",
    "config_to_yaml",
    "describe_type",
    "load_config",
    "parse_override",
    "parse_yaml",
    "validate_dict",
]
