"""Read experiment configs from YAML files or text, apply ``key.path=value`` overrides, write them back.

Relative paths in ``data.train_files``, ``data.validation_files``, ``data.test_files`` and
``data.cache_dir`` are resolved against the folder of the config file when the config is
read from a file, so a config works from any working directory. In YAML text and in
overrides they are left as written and so resolve against the current directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sedd.config.schema import ExperimentConfig
from sedd.config.validate import ConfigError, validate_dict

PATH_KEYS = ("train_files", "validation_files", "test_files", "cache_dir")
_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class ConfigLoader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-4`` as a float.

    YAML 1.1, which PyYAML implements, requires a dot in a float, so plain ``1e-4`` would be
    the string "1e-4" and fail as a learning rate. Forms that already parse keep their meaning.
    """


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_config(
    source: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Load and validate an experiment config from a YAML file path or YAML text.

    A ``Path`` is read as a file, and so is a string without a line break that names an
    existing file or ends in ``.yaml``/``.yml``. Any other string is YAML text. ``overrides`` are
    ``key.path=value`` strings whose values are parsed as YAML, e.g. ``training.lr=1e-4``.
    Raises ``ConfigError`` carrying the key path and, for keys from the text, the line, or
    for keys set by an override, that override.
    """
    text, base_dir = _read_source(source)
    data, lines = parse_yaml(text)
    if base_dir is not None and isinstance(data, dict):
        _resolve_data_paths(data, base_dir)
    applied: dict[str, str] = {}
    for override in overrides:
        path, value = parse_override(override)
        _set_path(data, path, value, override)
        # The value no longer comes from the text, so neither its old line nor the line of
        # its section would point at it: None marks "no line" for the key and its children.
        lines = {key: line for key, line in lines.items() if not _is_within(key, path)}
        lines[path] = None
        # A later override of a section replaces the earlier overrides of its keys.
        applied = {key: text for key, text in applied.items() if not _is_within(key, path)}
        applied[path] = override.strip()
    return validate_dict(data, lines=lines, overrides=applied)


def _read_source(source: str | os.PathLike[str]) -> tuple[str, Path | None]:
    if isinstance(source, str) and ("\n" in source or not _looks_like_path(source)):
        return source, None
    path = Path(source).expanduser()
    try:
        return path.read_text(encoding="utf-8"), path.resolve().parent
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {str(path)!r}; check the path") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {str(path)!r}: {error}") from None


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or Path(text).expanduser().is_file()


def parse_yaml(text: str) -> tuple[Any, dict[str, int | None]]:
    """Parse YAML text into plain data and a map from dotted key paths to 1-based lines.

    Raises ``ConfigError`` on invalid YAML and on a key given twice in one mapping, which
    PyYAML would otherwise resolve silently in favour of the last one.
    """
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", line=line) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}") from None
    finally:
        loader.dispose()
    lines: dict[str, int | None] = {}
    if node is not None:
        _record_lines(node, "", lines)
    return data, lines


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int | None]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = f"{path}.{key_node.value}" if path else str(key_node.value)
            if child in lines:
                raise ConfigError(
                    f"duplicate key; it is also set on line {lines[child]}, remove one of them",
                    path=child,
                    line=key_node.start_mark.line + 1,
                )
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.path=value`` into the key path and the value parsed as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY_PATH.fullmatch(key):
        raise ConfigError(
            f"invalid override {text!r}; expected key.path=value, e.g. training.lr=1e-4",
            path=key if _KEY_PATH.fullmatch(key) else "",
        )
    try:
        value = yaml.load(raw, Loader=ConfigLoader) if raw.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(
            f"invalid override value {raw!r}: {problem}; quote strings that contain YAML syntax",
            path=key,
        ) from None
    return key, value


def _set_path(data: Any, path: str, value: Any, override: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"cannot apply override {override!r}: the config is not a mapping")
    keys = path.split(".")
    node = data
    for depth, key in enumerate(keys[:-1]):
        if node.get(key) is None:
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            section = ".".join(keys[: depth + 1])
            raise ConfigError(
                f"cannot apply override {override!r}: {section!r} is a value, not a section",
                path=section,
            )
    node[keys[-1]] = value


def _is_within(key: str, path: str) -> bool:
    return key == path or key.startswith(path + ".") or key.startswith(path + "[")


def _resolve_data_paths(data: dict[str, Any], base_dir: Path) -> None:
    section = data.get("data")
    if not isinstance(section, dict):
        return
    for key in PATH_KEYS:
        value = section.get(key)
        if isinstance(value, str) and value:
            section[key] = _resolve_path(value, base_dir)
        elif isinstance(value, list):
            section[key] = [_resolve_path(item, base_dir) if isinstance(item, str) else item for item in value]


def _resolve_path(value: str, base_dir: Path) -> str:
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return expanded
    # normpath keeps glob characters, so "../data/*.txt" stays a pattern.
    return os.path.normpath(base_dir / expanded)


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """Return the config as plain YAML-ready data (tuples become lists)."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _ConfigDumper(yaml.SafeDumper):
    """Writes short lists of scalars inline (``betas: [0.9, 0.999]``), everything else in blocks."""

    def represent_list(self, data: list[Any]) -> yaml.Node:
        inline = all(not isinstance(item, (dict, list)) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_ConfigDumper.add_representer(list, _ConfigDumper.represent_list)


def config_to_yaml(config: ExperimentConfig) -> str:
    """Return the config as YAML text that ``load_config`` reads back to an equal config."""
    return yaml.dump(config_to_dict(config), Dumper=_ConfigDumper, sort_keys=False, allow_unicode=True)
