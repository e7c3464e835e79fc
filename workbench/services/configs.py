"""Config validation for the services: ``sedd.config`` errors become ``InvalidConfig``.

A config is stored as the validated config written back to YAML (``config_to_yaml``), with
every default spelled out and the data paths made absolute. Relative paths from a file are
resolved against the file's folder, and those from text against the current directory, so a
stored config means the same thing whichever directory a worker runs in.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import InvalidConfig
from workbench.store import validate_exp_id

if TYPE_CHECKING:
    from sedd.config import ExperimentConfig


def load_validated(
    *,
    path: str | os.PathLike[str] | None = None,
    text: str | None = None,
    overrides: Sequence[str] = (),
    exp_id: str | None = None,
) -> ExperimentConfig:
    """Validate a config from exactly one of ``path`` and ``text``, with overrides applied.

    ``exp_id``, when given, replaces the config's own ``exp_id``.

    Raises:
        InvalidConfig: naming the key path and line when the validator reports them.
    """
    from sedd.config import ConfigError, load_config

    if (path is None) == (text is None):
        raise ValueError("pass exactly one of path and text")
    overrides = list(overrides)
    if exp_id is not None:
        overrides.append(f"exp_id={validate_exp_id(exp_id)}")
    source = Path(path) if path is not None else text
    try:
        config = load_config(source, overrides)
    except ConfigError as error:
        # A problem in a --set value is not the file's fault, so the file is named only
        # when at least one problem is in its text.
        where = f"config {path}" if path is not None and not error.from_overrides else "config"
        raise InvalidConfig(f"invalid {where}: {error}", key_path=error.path or None, line=error.line) from error
    return _absolute_data_paths(config)


def canonical_text(config: ExperimentConfig) -> str:
    from sedd.config import config_to_yaml

    return config_to_yaml(config)


def _absolute_path(path: str) -> str:
    expanded = os.path.expanduser(path)
    if os.path.isabs(expanded):
        return expanded
    return os.path.normpath(os.path.join(os.getcwd(), expanded))


def _absolute_data_paths(config: ExperimentConfig) -> ExperimentConfig:
    from sedd.config.loading import PATH_KEYS

    changes = {}
    for key in PATH_KEYS:
        value = getattr(config.data, key)
        if isinstance(value, str) and value:
            changes[key] = _absolute_path(value)
        elif isinstance(value, list):
            changes[key] = [_absolute_path(item) for item in value]
    if not changes:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(config.data, **changes))
