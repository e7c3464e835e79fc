"""Config text as the editor and the compare pane show it: problems per line and key diffs.

Validation is ``sedd.config.load_config``, the schema the command line and the services use,
so the editor marks exactly what ``workbench new`` would reject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

# A value shown for a key that one config lacks. A real value can never render as this.
ABSENT = "(absent)"


@dataclass(frozen=True)
class Problem:
    """One validation problem: 1-based line (``None`` when unknown), key path and message."""

    line: int | None
    path: str
    message: str

    def describe(self) -> str:
        where = f"line {self.line}" if self.line is not None else "config"
        key = f" {self.path}:" if self.path else ":"
        return f"{where}{key} {self.message}"


@dataclass(frozen=True)
class KeyDiff:
    """A dotted key whose value differs between configs, with one rendered value per config."""

    path: str
    values: tuple[str, ...]


def validation_problems(text: str) -> list[Problem]:
    """Return every problem the schema finds in config text. An empty list means valid."""
    from sedd.config import ConfigError, load_config

    try:
        load_config(text)
    except ConfigError as error:
        return [Problem(problem.line, problem.path, problem.message) for problem in error.errors]
    return []


def config_items(text: str) -> dict[str, Any]:
    """Return a config as flat ``{dotted.key: value}``, defaults filled in when it is valid.

    Filling in defaults makes a short hand-written config and the full stored form of the
    same settings compare equal. Invalid text is flattened as parsed, so a diff still shows
    something while the user edits; text that is not YAML at all raises ``ValueError``.
    """
    from sedd.config import ConfigError, config_to_dict, load_config, parse_yaml

    try:
        data = config_to_dict(load_config(text))
    except ConfigError:
        try:
            data, _ = parse_yaml(text)
        except ConfigError as error:
            raise ValueError(f"cannot diff: {error}") from None
    return flatten(data) if isinstance(data, Mapping) else {"": data}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return nested mappings as one level with dotted keys. Lists stay whole values."""
    items: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            items.update(flatten(value, path))
        else:
            items[path] = value
    return items


def render_value(value: Any) -> str:
    """Return a value in YAML flow style, as a user would type it in the config."""
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def differing_keys(configs: Sequence[Mapping[str, Any]], *, ignore: Sequence[str] = ()) -> list[KeyDiff]:
    """Return the keys whose values differ across flattened configs, in sorted key order.

    A key missing from some config shows as ``(absent)`` there. Keys in ``ignore`` (such as
    ``exp_id``, which always differs between experiments) are left out.
    """
    keys = sorted(set().union(*configs) - set(ignore)) if configs else []
    diffs = []
    for key in keys:
        values = tuple(render_value(config[key]) if key in config else ABSENT for config in configs)
        if len(set(values)) > 1:
            diffs.append(KeyDiff(key, values))
    return diffs
