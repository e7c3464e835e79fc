"""Validate a plain dict (parsed YAML) against the schema by walking its type hints.

Every problem becomes a ``ConfigError`` naming the dotted key path, the value and what is
allowed, plus the YAML line of the key when the caller passes a line map. All problems of a
config are collected, so an editor can mark every bad line at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from sedd.config.schema import SPLITS, ExperimentConfig

# Names other SEDD, nanoGPT or Hugging Face configs use for keys of this schema, so that an
# unknown key can point at the right one even when the spelling is far from ours.
KEY_ALIASES = {
    "learning_rate": "lr",
    "max_lr": "lr",
    "num_steps": "steps",
    "max_steps": "steps",
    "n_iters": "steps",
    "max_iters": "steps",
    "warmup_steps": "warmup",
    "lr_warmup": "warmup",
    "ema_decay": "ema",
    "clip_grad": "grad_clip",
    "max_grad_norm": "grad_clip",
    "gradient_accumulation_steps": "accum",
    "accumulation_steps": "accum",
    "batch": "batch_size",
    "eval_interval": "eval_every",
    "log_interval": "log_every",
    "save_every": "checkpoint_every",
    "snapshot_freq": "snapshot_every",
    "n_layers": "n_blocks",
    "num_layers": "n_blocks",
    "n_layer": "n_blocks",
    "num_heads": "n_heads",
    "n_head": "n_heads",
    "d_model": "hidden_size",
    "n_embd": "hidden_size",
    "hidden_dim": "hidden_size",
    "block_size": "seq_len",
    "seq_length": "seq_len",
    "context_length": "seq_len",
    "length": "seq_len",
    "graph": "graph_type",
    "sampling_steps": "steps",
    "dataset": "corpus",
}

_MISSING_VALUE = object()
BUILTIN_TOKENIZERS = ("char", "bpe", "gpt2")


class ConfigError(ValueError):
    """An invalid experiment config.

    ``path`` is the dotted key path, such as ``training.lr`` or ``training.betas[1]``, and is
    empty for the whole file. ``line`` is the 1-based line of that key in the YAML text. It
    is None when the config did not come from text or the key is absent from it. ``override``
    is the ``key.path=value`` override that set the key, or None when the key came from the
    text; the message then starts with ``--set key.path=value:``, the option both command
    lines take overrides with. An error that gathers several problems lists them in
    ``errors``; its own ``path``, ``line`` and ``override`` are those of the first.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        override: str | None = None,
        errors: list[ConfigError] | None = None,
    ):
        self.message = message
        self.path = path
        self.line = line
        self.override = override
        self.errors = errors if errors else [self]
        super().__init__(self._render())

    @property
    def from_overrides(self) -> bool:
        """True when every problem is in a value set by an override, so none is in the text."""
        return all(error.override is not None for error in self.errors)

    def _render(self) -> str:
        if len(self.errors) > 1:
            listed = "\n".join(f"  - {error}" for error in self.errors)
            return f"{len(self.errors)} problems in the config:\n{listed}"
        if self.override is not None:
            where = f"--set {self.override}: "
        else:
            where = f"line {self.line}: " if self.line is not None else ""
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


def validate_dict(
    data: Any,
    *,
    lines: Mapping[str, int | None] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> ExperimentConfig:
    """Build an ``ExperimentConfig`` from plain data, raising ``ConfigError`` when it is invalid.

    ``lines`` is built by the loader. It maps dotted key paths to 1-based YAML line numbers,
    or to None for a key whose value did not come from the text (an override).
    ``overrides`` maps the key path of each applied override to its ``key.path=value`` text,
    so that a problem in an overridden value names the override instead of the file.
    Missing keys take their defaults, ``exp_id`` excepted. Cross-field rules are checked
    once every key has the right type.
    """
    validator = _Validator(lines or {}, overrides or {})
    if not isinstance(data, Mapping):
        validator.report("", f"the config must be a mapping of keys and sections, got {_show(data)}")
        validator.raise_if_any()
    config = validator.convert(data, ExperimentConfig, "", {})
    validator.raise_if_any()
    for path, message in cross_field_problems(config):
        validator.report(path, message)
    validator.raise_if_any()
    return config


def cross_field_problems(config: ExperimentConfig) -> list[tuple[str, str]]:
    """Return ``(path, message)`` for every rule that ties two or more keys together."""
    problems: list[tuple[str, str]] = []
    problems += _model_problems(config)
    problems += _data_problems(config)
    training = config.training
    if training.batch_size % training.accum:
        problems.append((
            "training.batch_size",
            f"{training.batch_size} is not divisible by training.accum={training.accum}; each "
            "accumulation step takes batch_size / accum sequences, so choose a multiple of accum",
        ))
    for index, beta in enumerate(training.betas):
        if not 0.0 <= beta < 1.0:
            problems.append((f"training.betas[{index}]", f"{beta} is out of range; expected 0 <= beta < 1"))
    noise = config.diffusion.noise
    if noise.type == "geometric" and noise.sigma_min >= noise.sigma_max:
        problems.append((
            "diffusion.noise.sigma_min",
            f"{noise.sigma_min} is not below sigma_max={noise.sigma_max}; geometric noise "
            "grows from sigma_min to sigma_max (the paper uses 1e-4 and 20)",
        ))
    problems += _gpu_problems(config.gpu)
    return problems


def _model_problems(config: ExperimentConfig) -> list[tuple[str, str]]:
    model = config.model
    problems = []
    if model.hidden_size % model.n_heads:
        problems.append((
            "model.n_heads",
            f"{model.n_heads} does not divide model.hidden_size={model.hidden_size}; choose a divisor",
        ))
    elif (model.hidden_size // model.n_heads) % 2:
        problems.append((
            "model.n_heads",
            f"{model.n_heads} gives an odd head size {model.hidden_size // model.n_heads}, but rotary "
            "embeddings rotate pairs of features; choose n_heads so hidden_size / n_heads is even",
        ))
    # Rejected rather than ignored: the offset -log(e^sigma - 1) - log(D - 1) is derived for the
    # absorbing graph, and silently training another model than the file describes is worse.
    if model.scale_by_sigma and config.diffusion.graph_type == "uniform":
        problems.append((
            "model.scale_by_sigma",
            "true is only defined for the absorbing graph; set model.scale_by_sigma: false "
            "with diffusion.graph_type: uniform",
        ))
    return problems


def _data_problems(config: ExperimentConfig) -> list[tuple[str, str]]:
    data = config.data
    problems = []
    if data.validation_fraction + data.test_fraction >= 1.0:
        problems.append((
            "data.test_fraction",
            f"validation_fraction + test_fraction = {data.validation_fraction + data.test_fraction:g} "
            "leaves no training text; keep the sum below 1",
        ))
    if data.corpus in ("text", "jsonl") and not data.train_files:
        problems.append((
            "data.train_files",
            f"required for corpus {data.corpus!r}; give a file path or glob such as 'corpus/*.txt'",
        ))
    if data.tokenizer == "bpe" and data.vocab_size < 257:
        problems.append((
            "data.vocab_size",
            f"{data.vocab_size} is too small for byte-level BPE; use at least 257 "
            "(the 256 byte symbols plus the end-of-text token)",
        ))
    tokenizer_problem = _tokenizer_problem(data.tokenizer)
    if tokenizer_problem is not None:
        problems.append(("data.tokenizer", tokenizer_problem))
    if data.corpus == "hf" and not data.hf_name:
        problems.append(("data.hf_name", "required for corpus 'hf'; give a `datasets` name such as 'wikitext'"))
    unknown_splits = sorted(set(data.hf_splits) - set(SPLITS))
    if unknown_splits:
        problems.append((
            "data.hf_splits",
            f"unknown split name(s) {unknown_splits}; the keys must be among {list(SPLITS)}",
        ))
    return problems


def _tokenizer_problem(name: str) -> str | None:
    """Return why ``name`` looks like a misspelt built-in tokenizer, or None.

    Any ``org/name`` value and any existing path pass, because they name a hub repository or a
    folder. A bare name within edit distance 2 of char, bpe or gpt2 is rejected: the hub's
    bare names (gpt2-medium, distilgpt2, bert-base-uncased, ...) are all further away.
    """
    if name in BUILTIN_TOKENIZERS or "/" in name or os.path.exists(os.path.expanduser(name)):
        return None
    distance, nearest = min((_edit_distance(name.lower(), known), known) for known in BUILTIN_TOKENIZERS)
    if distance > 2:
        return None
    return (
        f"unknown tokenizer {name!r}; did you mean {nearest!r}? Use char, bpe, gpt2, "
        "a Hugging Face tokenizer name such as 'org/name', or a local folder"
    )


def _edit_distance(first: str, second: str) -> int:
    """Return the Levenshtein distance: the fewest single-character inserts, deletes and swaps."""
    previous = list(range(len(second) + 1))
    for i, first_char in enumerate(first, start=1):
        current = [i]
        for j, second_char in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (first_char != second_char)))
        previous = current
    return previous[-1]


def _gpu_problems(gpu: Any) -> list[tuple[str, str]]:
    if isinstance(gpu, list):
        indices = gpu
    elif isinstance(gpu, int):
        indices = [gpu]
    else:
        indices = []  # "cpu" or "auto"
    problems = []
    if isinstance(gpu, list) and not gpu:
        problems.append(("gpu", "an empty list selects no device; use 'cpu', 'auto' or list GPU indices"))
    if any(index < 0 for index in indices):
        problems.append(("gpu", f"{gpu} contains a negative index; GPU indices start at 0"))
    if len(set(indices)) != len(indices):
        problems.append(("gpu", f"{gpu} lists a GPU twice; give each index once"))
    return problems


class _Validator:
    """Convert values type by type, recording problems instead of stopping at the first."""

    def __init__(self, lines: Mapping[str, int | None], overrides: Mapping[str, str]):
        self.lines = lines
        self.overrides = overrides
        self.problems: list[ConfigError] = []

    def report(self, path: str, message: str) -> None:
        self.problems.append(
            ConfigError(message, path=path, line=self._line_of(path), override=self._override_of(path))
        )

    def raise_if_any(self) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            # In file order, so an editor can walk the marks top to bottom; keys absent from the
            # text (no line) come last.
            ordered = sorted(self.problems, key=lambda error: error.line if error.line is not None else 1 << 30)
            first = ordered[0]
            raise ConfigError(
                first.message, path=first.path, line=first.line, override=first.override, errors=ordered
            )

    def _line_of(self, path: str) -> int | None:
        # A key missing from the text is reported at its section, the nearest line there is.
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent_path(path)
        return None

    def _override_of(self, path: str) -> str | None:
        # The override that set the key or one of its sections; a key found in the text first
        # came from the file, because the loader drops the lines of every overridden key.
        while path:
            if path in self.overrides:
                return self.overrides[path]
            if self.lines.get(path) is not None:
                return None
            path = _parent_path(path)
        return None

    def convert(self, value: Any, tp: Any, path: str, metadata: Mapping[str, Any]) -> Any:
        """Return ``value`` converted to ``tp``, or ``_MISSING_VALUE`` after reporting why not."""
        if dataclasses.is_dataclass(tp):
            return self._convert_section(value, tp, path)
        problem = _type_problem(value, tp)
        if problem is not None:
            self.report(path, problem)
            return _MISSING_VALUE
        converted = _coerce(value, tp)
        converted = self._convert_items(converted, tp, path)
        if converted is not _MISSING_VALUE:
            self._check_bounds(converted, path, metadata)
        return converted

    def _convert_section(self, value: Any, cls: type, path: str) -> Any:
        if value is None:
            value = {}  # "training:" with nothing under it is an empty section
        if not isinstance(value, Mapping):
            self.report(path, f"expected a section (a mapping of keys), got {_show(value)}")
            return _MISSING_VALUE
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = _type_hints(cls)
        for key in value:
            if key not in fields:
                self._report_unknown_key(key, path, list(fields))
        kwargs = {}
        complete = True
        for name, fld in fields.items():
            child = f"{path}.{name}" if path else name
            if name in value:
                kwargs[name] = self.convert(value[name], hints[name], child, fld.metadata)
                complete = complete and kwargs[name] is not _MISSING_VALUE
            elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                self.report(child, f"missing required key ({fld.metadata.get('help', '')})")
                complete = False
        return cls(**kwargs) if complete else _MISSING_VALUE

    def _convert_items(self, value: Any, tp: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if _is_union(tp):
            members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
            if value is None:
                return None
            matching = [arg for arg in members if _type_problem(value, arg) is None]
            return self._convert_items(_coerce(value, matching[0]), matching[0], path)
        if origin is list:
            (item_type,) = typing.get_args(tp)
            items = [self.convert(item, item_type, f"{path}[{i}]", {}) for i, item in enumerate(value)]
            return _MISSING_VALUE if _MISSING_VALUE in items else items
        if origin is tuple:
            items = [
                self.convert(item, item_type, f"{path}[{i}]", {})
                for i, (item, item_type) in enumerate(zip(value, typing.get_args(tp)))
            ]
            return _MISSING_VALUE if _MISSING_VALUE in items else tuple(items)
        if origin is dict:
            _, value_type = typing.get_args(tp)
            items = {key: self.convert(item, value_type, f"{path}.{key}", {}) for key, item in value.items()}
            return _MISSING_VALUE if _MISSING_VALUE in items.values() else items
        return value

    def _check_bounds(self, value: Any, path: str, metadata: Mapping[str, Any]) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for name, symbol, holds in _BOUNDS:
                bound = metadata.get(name)
                if bound is not None and not holds(value, bound):
                    self.report(path, f"{value!r} is out of range; expected a value {symbol} {bound:g}")
                    return
        pattern = metadata.get("pattern")
        if pattern and isinstance(value, str) and not re.fullmatch(pattern, value):
            self.report(path, f"{value!r} is invalid; expected {metadata.get('help', pattern)}")

    def _report_unknown_key(self, key: Any, section: str, known: list[str]) -> None:
        path = f"{section}.{key}" if section else str(key)
        hint = _suggest(str(key), known, section)
        message = f"unknown key {path!r}"
        message += f"; did you mean {hint!r}?" if hint else f"; valid keys here are {', '.join(known)}"
        self.report(path, message)


_BOUNDS = (
    ("ge", ">=", lambda value, bound: value >= bound),
    ("gt", ">", lambda value, bound: value > bound),
    ("le", "<=", lambda value, bound: value <= bound),
    ("lt", "<", lambda value, bound: value < bound),
)


def _parent_path(path: str) -> str:
    """Return the path one level up, such as ``training.betas`` for ``training.betas[1]``."""
    return re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path) if ("." in path or "[" in path) else ""


def _suggest(key: str, known: list[str], section: str) -> str | None:
    """Return the dotted path the user most likely meant by ``key`` in ``section``, if any."""
    prefix = f"{section}." if section else ""
    target = KEY_ALIASES.get(key)
    if target in known:
        return prefix + target
    candidates = known + [alias for alias, name in KEY_ALIASES.items() if name in known]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if close:
        return prefix + KEY_ALIASES.get(close[0], close[0])
    # The right key in the wrong section, e.g. "lr" at the top level.
    elsewhere = [path for path in _all_key_paths() if path.rsplit(".", 1)[-1] == key]
    return elsewhere[0] if elsewhere else None


@functools.cache
def _all_key_paths(cls: type = ExperimentConfig, prefix: str = "") -> tuple[str, ...]:
    paths: list[str] = []
    hints = _type_hints(cls)
    for fld in dataclasses.fields(cls):
        path = prefix + fld.name
        paths.append(path)
        if dataclasses.is_dataclass(hints[fld.name]):
            paths.extend(_all_key_paths(hints[fld.name], path + "."))
    return tuple(paths)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _type_problem(value: Any, tp: Any) -> str | None:
    """Return why ``value`` does not have type ``tp`` at the top level, or None when it does."""
    if _is_union(tp):
        members = typing.get_args(tp)
        if value is None and type(None) in members:
            return None
        results = [_type_problem(value, arg) for arg in members if arg is not type(None)]
        if any(result is None for result in results):
            return None
        if len(results) == 1:
            return results[0]
        return f"expected {describe_type(tp)}, got {_show(value)}"
    if _matches(value, tp):
        return None
    return f"expected {describe_type(tp)}, got {_show(value)}"


def _matches(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        # YAML reads 1e4 as a float; accept it for an integer key when it is integral.
        return _is_number(value) and float(value).is_integer()
    if tp is float:
        return _is_number(value) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(tp))
    if origin is list:
        return isinstance(value, list)
    if origin is tuple:
        return isinstance(value, (list, tuple)) and len(value) == len(typing.get_args(tp))
    if origin is dict:
        return isinstance(value, Mapping) and all(isinstance(key, str) for key in value)
    raise TypeError(f"the config schema uses a type the validator does not handle: {tp!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(value: Any, tp: Any) -> Any:
    if tp is int and isinstance(value, float):
        return int(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def describe_type(tp: Any) -> str:
    """Describe a schema type in words for error messages, e.g. ``a list of integers``."""
    if _is_union(tp):
        return " or ".join(describe_type(arg) for arg in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in typing.get_args(tp))
    if origin is list:
        return f"a list of {_PLURALS.get(typing.get_args(tp)[0], 'items')}"
    if origin is tuple:
        args = typing.get_args(tp)
        return f"a list of {len(args)} {_PLURALS.get(args[0], 'items')}"
    if origin is dict:
        return f"a mapping of names to {describe_type(typing.get_args(tp)[1])} values"
    return _SINGULARS.get(tp, getattr(tp, "__name__", str(tp)))


_SINGULARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
_PLURALS = {int: "integers", float: "numbers", str: "strings"}


def _show(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return text if value is None else f"{kind} {text}"
