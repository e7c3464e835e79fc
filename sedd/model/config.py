"""Model hyperparameters of the DDiT score network, and conversion to the official config form.

The official SEDD code (github.com/louaaron/Score-Entropy-Discrete-Diffusion) and its published
checkpoints (``louaaron/sedd-small``, ``louaaron/sedd-medium`` on the Hugging Face hub) describe a
model with a nested dict::

    {"tokens": 50257, "graph": {"type": "absorb"},
     "model": {"hidden_size": 768, "cond_dim": 128, "n_blocks": 12, "n_heads": 12,
               "scale_by_sigma": True, "dropout": 0.1, "length": 1024}}

``ModelConfig`` is the flat, validated form of the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

GRAPHS = ("absorbing", "uniform")

# Graph names in the official config, mapped to this project's names.
_OFFICIAL_GRAPH_NAMES = {"absorb": "absorbing", "absorbing": "absorbing", "uniform": "uniform"}


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the DDiT transformer.

    Attributes:
        num_tokens: V, the vocabulary size without the mask state.
        graph: ``"absorbing"`` (adds a mask state, ``D = V + 1``) or ``"uniform"`` (``D = V``).
        hidden_size: width of the residual stream.
        cond_dim: width of the noise-level conditioning vector fed to every adaLN layer.
        n_blocks: number of transformer blocks.
        n_heads: attention heads; ``hidden_size / n_heads`` must be even for rotary embeddings.
        length: maximum sequence length L that ``forward`` accepts.
        dropout: dropout probability on the attention and MLP branches during training.
        scale_by_sigma: shift the absorbing model's log-scores by ``-log(e^sigma - 1) - log(D - 1)``,
            the value they take for an uninformed model, so the network learns a residual.
    """

    num_tokens: int
    graph: str = "absorbing"
    hidden_size: int = 768
    cond_dim: int = 128
    n_blocks: int = 12
    n_heads: int = 12
    length: int = 1024
    dropout: float = 0.1
    scale_by_sigma: bool = True

    def __post_init__(self) -> None:
        _check_int(self, "num_tokens", minimum=2)
        if self.graph not in GRAPHS:
            hint = " (the official config calls it 'absorb'; use 'absorbing')" if self.graph == "absorb" else ""
            raise ValueError(f"Invalid graph={self.graph!r}: expected one of {GRAPHS}{hint}.")
        for key in ("hidden_size", "cond_dim", "n_blocks", "n_heads", "length"):
            _check_int(self, key, minimum=1)
        if self.hidden_size % self.n_heads:
            raise ValueError(
                f"Invalid n_heads={self.n_heads}: hidden_size={self.hidden_size} is not divisible by it. "
                "Choose n_heads that divides hidden_size."
            )
        if self.head_dim % 2:
            raise ValueError(
                f"Invalid n_heads={self.n_heads}: head dimension hidden_size / n_heads = {self.head_dim} "
                "is odd, but rotary embeddings rotate pairs of features; choose an even head dimension."
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"Invalid dropout={self.dropout!r}: expected a probability in [0, 1).")
        if not isinstance(self.scale_by_sigma, bool):
            raise ValueError(f"Invalid scale_by_sigma={self.scale_by_sigma!r}: expected True or False.")
        if self.scale_by_sigma and self.graph != "absorbing":
            raise ValueError(
                f"Invalid scale_by_sigma=True with graph={self.graph!r}: the sigma shift is derived for the "
                "absorbing graph only; set scale_by_sigma=False."
            )

    @property
    def vocab_size(self) -> int:
        """D, the number of states: V + 1 with the absorbing mask state, V for the uniform graph."""
        return self.num_tokens + 1 if self.graph == "absorbing" else self.num_tokens

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a flat dict, the keyword arguments of ``ModelConfig``."""
        return asdict(self)

    @classmethod
    def from_official(cls, cfg: Mapping[str, Any]) -> ModelConfig:
        """Build a config from the official nested form (keys ``tokens``, ``graph.type``, ``model.*``).

        Keys this model does not read (``name``, ``type``, training, noise and sampling sections)
        are ignored. ``model.length`` is optional because the official model does not read it;
        it defaults to 1024.
        """
        graph_type = _lookup(cfg, "graph", "type")
        if graph_type not in _OFFICIAL_GRAPH_NAMES:
            raise ValueError(
                f"Invalid graph.type={graph_type!r} in the official config: expected 'absorb' or 'uniform'."
            )
        model = _lookup(cfg, "model")
        return cls(
            num_tokens=_lookup(cfg, "tokens"),
            graph=_OFFICIAL_GRAPH_NAMES[graph_type],
            hidden_size=_lookup(model, "hidden_size", prefix="model"),
            cond_dim=_lookup(model, "cond_dim", prefix="model"),
            n_blocks=_lookup(model, "n_blocks", prefix="model"),
            n_heads=_lookup(model, "n_heads", prefix="model"),
            length=model.get("length", 1024),
            dropout=_lookup(model, "dropout", prefix="model"),
            scale_by_sigma=_lookup(model, "scale_by_sigma", prefix="model"),
        )

    def to_official(self) -> dict[str, Any]:
        """Return the official nested form, with graph type ``"absorb"`` or ``"uniform"``."""
        return {
            "tokens": self.num_tokens,
            "graph": {"type": "absorb" if self.graph == "absorbing" else "uniform"},
            "model": {
                "hidden_size": self.hidden_size,
                "cond_dim": self.cond_dim,
                "n_blocks": self.n_blocks,
                "n_heads": self.n_heads,
                "length": self.length,
                "dropout": self.dropout,
                "scale_by_sigma": self.scale_by_sigma,
            },
        }


def _check_int(config: ModelConfig, key: str, minimum: int) -> None:
    value = getattr(config, key)
    # bool is a subclass of int, but True as a width is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Invalid {key}={value!r}: expected an integer >= {minimum}.")


def _lookup(cfg: Any, *keys: str, prefix: str = "") -> Any:
    """Return ``cfg[keys[0]][keys[1]]...``, raising ValueError with the dotted key when one is missing."""
    path = prefix
    value = cfg
    for key in keys:
        path = f"{path}.{key}" if path else key
        if not isinstance(value, Mapping) or key not in value:
            raise ValueError(f"Missing key {path!r} in the official model config.")
        value = value[key]
    return value
