"""The experiment config schema: one dataclass per YAML section.

Field types drive validation, because ``sedd.config.validate`` walks the type hints. The
``metadata`` of a field adds what a type cannot express: numeric bounds, a string pattern
and a one-line help text that the workbench shows beside the key. Defaults are the SEDD small
model of Lou, Meng and Ermon (arXiv:2310.16834) where the paper fixes a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

CORPORA = (
    "stdlib", "text", "jsonl", "hf", "openwebtext", "wikitext2", "wikitext103", "ptb",
    "lambada", "lm1b", "text8",
)
Corpus = Literal[
    "stdlib", "text", "jsonl", "hf", "openwebtext", "wikitext2", "wikitext103", "ptb",
    "lambada", "lm1b", "text8",
]
SPLITS = ("train", "validation", "test")


def option(
    default: Any = None,
    help: str = "",
    *,
    factory: Any = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    pattern: str | None = None,
) -> Any:
    """Declare a config field with its help text and the bounds its value must respect."""
    metadata = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "pattern": pattern}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    """Corpus, tokenizer and block length (section ``data``)."""

    corpus: Corpus = option("stdlib", "corpus preset, or text/jsonl/hf for your own files")
    train_files: str | list[str] | None = option(
        None, "path or glob (or a list of them) of the training text; also replaces a preset's download"
    )
    validation_files: str | list[str] | None = option(
        None, "separate validation files; otherwise a held-out fraction of the training text"
    )
    test_files: str | list[str] | None = option(None, "separate test files")
    document_split: Literal["file", "blank_lines", "lines"] = option(
        "file",
        "text corpora: one document per file, per blank-line-separated paragraph, or per line",
    )
    jsonl_field: str = option("text", "jsonl corpora: the field holding each document's text")
    hf_name: str | None = option(None, "corpus hf: the `datasets` name")
    hf_config: str | None = option(None, "corpus hf: the `datasets` config name")
    hf_text_field: str = option("text", "corpus hf: the column holding the text")
    hf_splits: dict[str, str | None] = option(
        help="corpus hf: this project's split name -> the dataset's split name (null: none)",
        factory=lambda: {"train": "train", "validation": "validation", "test": "test"},
    )
    validation_fraction: float = option(
        0.05, "fraction held out for validation when the corpus has no validation split",
        ge=0.0, lt=1.0,
    )
    test_fraction: float = option(
        0.05, "fraction held out for test when the corpus has no test split", ge=0.0, lt=1.0
    )
    tokenizer: str = option("char", "char, bpe, gpt2, or a Hugging Face tokenizer name or path")
    vocab_size: int = option(
        4096, "bpe only: vocabulary size to train, at least 257 (256 bytes and end of text)", ge=2
    )
    seq_len: int = option(128, "block length in tokens, also the model's length", ge=2)
    max_bytes: int | None = option(None, "cap on the bytes read per split, for quick runs", ge=1)
    cache_dir: str | None = option(
        None, "tokenized-data cache; default $SEDD_CACHE_DIR or ~/.cache/sedd-workbench"
    )


@dataclass
class ModelSection:
    """DDiT transformer size (section ``model``); the vocabulary comes from the tokenizer."""

    hidden_size: int = option(768, "width of the residual stream", ge=1)
    cond_dim: int = option(128, "width of the noise-level conditioning vector", ge=1)
    n_blocks: int = option(12, "number of transformer blocks", ge=1)
    n_heads: int = option(12, "attention heads; must divide hidden_size", ge=1)
    dropout: float = option(0.1, "dropout probability during training", ge=0.0, lt=1.0)
    scale_by_sigma: bool = option(
        True, "absorbing graph only: offset log-scores by their uninformed value"
    )


@dataclass
class NoiseConfig:
    """Noise schedule sigma(t) (section ``diffusion.noise``)."""

    type: Literal["loglinear", "geometric"] = option("loglinear", "noise schedule")
    eps: float = option(1e-3, "loglinear: sigma(1) = -log(eps)", gt=0.0, lt=1.0)
    sigma_min: float = option(1e-4, "geometric: sigma(0)", gt=0.0)
    sigma_max: float = option(20.0, "geometric: sigma(1)", gt=0.0)


@dataclass
class SamplingConfig:
    """Sampler used for snapshots during training (section ``diffusion.sampling``)."""

    predictor: Literal["euler", "analytic"] = option("euler", "reverse-process predictor")
    steps: int = option(128, "number of sampling steps", ge=1)
    eps: float = option(1e-5, "final time of the reverse process", gt=0.0, lt=1.0)
    denoise: bool = option(True, "finish with a denoising step that removes the last noise")


@dataclass
class DiffusionConfig:
    """Forward process, training times and sampler (section ``diffusion``)."""

    graph_type: Literal["absorbing", "uniform"] = option("absorbing", "forward process graph")
    noise: NoiseConfig = option(help="noise schedule", factory=NoiseConfig)
    time_eps: float = option(1e-3, "training times t ~ U[time_eps, 1]", ge=0.0, lt=1.0)
    antithetic: bool = option(False, "stratify the training times across the batch")
    sampling: SamplingConfig = option(help="sampler for snapshots", factory=SamplingConfig)


@dataclass
class TrainingConfig:
    """Optimisation, logging and checkpointing (section ``training``).

    ``eval_every``, ``snapshot_every`` and ``checkpoint_every`` accept 0 to switch the periodic
    action off; the run still evaluates and checkpoints once when it ends.
    """

    seed: int = option(42, "seed of parameters, data order and training noise", ge=0)
    batch_size: int = option(512, "global batch in sequences, whatever the number of processes", ge=1)
    accum: int = option(1, "gradient accumulation steps per optimizer step", ge=1)
    steps: int = option(10000, "optimizer steps in total", ge=1)
    max_minutes: float | None = option(
        None, "wall-clock cap in minutes; the run checkpoints and completes when reached", gt=0.0
    )
    lr: float = option(3e-4, "peak learning rate of AdamW", gt=0.0)
    weight_decay: float = option(0.0, "AdamW decoupled weight decay", ge=0.0)
    betas: tuple[float, float] = option(help="AdamW betas", factory=lambda: (0.9, 0.999))
    adam_eps: float = option(1e-8, "AdamW epsilon", gt=0.0)
    warmup: int = option(2500, "linear warmup steps from 0 to lr", ge=0)
    grad_clip: float = option(1.0, "maximum global gradient norm; 0 disables clipping", ge=0.0)
    ema: float = option(0.9999, "decay of the exponential moving average of weights", ge=0.0, lt=1.0)
    log_every: int = option(50, "steps between train-metric rows", ge=1)
    eval_every: int = option(500, "steps between validation evaluations; 0 = only at the end", ge=0)
    eval_blocks: int = option(256, "held-out blocks per validation evaluation", ge=1)
    eval_times: int = option(8, "Monte Carlo times per block for the validation bound", ge=2)
    snapshot_every: int = option(1000, "steps between sample snapshots; 0 = none", ge=0)
    snapshot_samples: int = option(4, "samples per snapshot", ge=1)
    checkpoint_every: int = option(1000, "steps between checkpoints; 0 = only at the end", ge=0)
    keep_checkpoints: int = option(3, "latest checkpoints kept, plus the best by validation loss", ge=1)
    num_workers: int = option(0, "background threads that prefetch batches; 0 loads in the loop", ge=0)


@dataclass
class ExperimentConfig:
    """One experiment: the whole YAML file."""

    exp_id: str = field(
        metadata={
            "help": "experiment id: letters, digits, '_', '-', '.', 1 to 64 characters",
            "pattern": r"[A-Za-z0-9_.-]{1,64}",
        }
    )
    gpu: Literal["cpu", "auto"] | int | list[int] = option(
        "cpu", "cpu, auto, a GPU index, or a list of GPU indices (one per process)"
    )
    notes: str = option("", "free text")
    tags: list[str] = option(help="labels for filtering runs", factory=list)
    data: DataConfig = option(help="corpus and tokenizer", factory=DataConfig)
    model: ModelSection = option(help="transformer size", factory=ModelSection)
    diffusion: DiffusionConfig = option(help="forward process and sampler", factory=DiffusionConfig)
    training: TrainingConfig = option(help="optimisation and bookkeeping", factory=TrainingConfig)

