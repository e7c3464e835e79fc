"""Find the run of an experiment to analyse and load what it trained: model, tokenizer, config.

A run folder written by ``sedd.train`` contains ``model/`` (the EMA weights in
``save_pretrained`` form), ``tokenizer/`` and ``config.yaml``, so the analysis needs nothing
but the folder. The run analysed is the newest one with a ``model/`` folder, preferring
completed runs, unless a run id is given.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import NoCheckpoint, WorkbenchError
from workbench.store import Run, RunStatus, Store

logger = logging.getLogger(__name__)

MODEL_DIR_NAME = "model"
TOKENIZER_DIR_NAME = "tokenizer"
CONFIG_NAME = "config.yaml"
_HASH_CHUNK = 1 << 24


@dataclass
class LoadedRun:
    """A trained model ready for analysis, with the facts that identify it.

    ``model`` is a ``sedd.model.SEDD`` in eval mode on ``device``; ``graph`` and ``noise`` are
    the forward process it was trained with; ``tokenizer`` is a ``sedd.data`` tokenizer.
    """

    exp_id: str
    run: Run
    run_dir: Path
    config: Any
    model: Any
    graph: Any
    noise: Any
    tokenizer: Any
    device: Any

    @property
    def seq_len(self) -> int:
        return int(self.config.data.seq_len)

    @property
    def per_char(self) -> bool:
        """Whether one token is one character, so bits per token are bits per character."""
        return getattr(self.tokenizer, "kind", None) == "char"

    def checkpoint_facts(self) -> dict[str, Any]:
        """Return where the weights come from and a SHA-256 of the weights file."""
        model_dir = self.run_dir / MODEL_DIR_NAME
        weights = next((path for path in sorted(model_dir.iterdir()) if path.suffix in (".safetensors", ".bin")), None)
        return {
            "run_dir": str(self.run_dir),
            "model_dir": str(model_dir),
            "weights": "EMA (the run's model/ folder)",
            "weights_sha256": _sha256(weights) if weights is not None else None,
            "run_status": self.run.status.value,
            "last_step": self.run.last_step,
            "parameters": sum(parameter.numel() for parameter in self.model.parameters()),
            "device": str(self.device),
        }


class AnalysisError(WorkbenchError):
    """An analysis cannot start: no usable run, or a run folder that is incomplete."""


def choose_run(store: Store, exp_id: str, run_id: int | None = None) -> Run:
    """Return the run to analyse: ``run_id`` if given, else the newest with a model folder.

    Raises:
        ExperimentNotFound, RunNotFound: unknown ids.
        AnalysisError: the run belongs to another experiment.
        NoCheckpoint: no run has a ``model/`` folder yet.
    """
    if run_id is not None:
        run = store.get_run(run_id)
        if run.experiment.exp_id != exp_id:
            raise AnalysisError(
                f"run {run_id} belongs to experiment '{run.experiment.exp_id}', not '{exp_id}'; "
                f"pass a run of {exp_id} or leave --run out"
            )
        _require_model_dir(run)
        return run
    runs = [run for run in store.list_runs(exp_id) if _has_model_dir(run)]
    if not runs:
        raise NoCheckpoint(
            f"experiment '{exp_id}' has no run with a trained model ({MODEL_DIR_NAME}/ folder in its run "
            f"folder); train it first with `workbench run {exp_id}`"
        )
    completed = [run for run in runs if run.status == RunStatus.COMPLETED]
    return (completed or runs)[-1]


def load_run(run: Run, device: str = "cpu") -> LoadedRun:
    """Load the model, tokenizer and config of a run folder onto ``device``."""
    import torch

    from sedd.config import ConfigError, load_config
    from sedd.data.errors import DataConfigError
    from sedd.data.tokenizers import load_tokenizer
    from sedd.graph import get_graph
    from sedd.model import CheckpointError, load_pretrained
    from sedd.noise import get_noise

    run_dir = _require_model_dir(run)
    config_path = run_dir / CONFIG_NAME
    try:
        config = load_config(config_path if config_path.is_file() else run.config_text)
        tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR_NAME)
        model = load_pretrained(run_dir / MODEL_DIR_NAME, map_location=device)
    except (ConfigError, DataConfigError, CheckpointError) as error:
        raise AnalysisError(f"cannot load run {run.id} from {run_dir}: {error}") from error

    if model.config.num_tokens != tokenizer.vocab_size:
        raise AnalysisError(
            f"run {run.id}: the model in {run_dir / MODEL_DIR_NAME} has {model.config.num_tokens} tokens but the "
            f"tokenizer in {run_dir / TOKENIZER_DIR_NAME} has {tokenizer.vocab_size}; the run folder is inconsistent"
        )
    noise_cfg = config.diffusion.noise
    noise = get_noise(noise_cfg.type, eps=noise_cfg.eps, sigma_min=noise_cfg.sigma_min, sigma_max=noise_cfg.sigma_max)
    graph = get_graph(model.config.graph, model.config.num_tokens)
    logger.info("loaded run %d of %s from %s onto %s", run.id, run.experiment.exp_id, run_dir, device)
    return LoadedRun(run.experiment.exp_id, run, run_dir, config, model, graph, noise, tokenizer, torch.device(device))


def _has_model_dir(run: Run) -> bool:
    return bool(run.run_dir) and (Path(run.run_dir) / MODEL_DIR_NAME / "config.json").is_file()


def _require_model_dir(run: Run) -> Path:
    if not _has_model_dir(run):
        raise NoCheckpoint(
            f"run {run.id} has no trained model ({MODEL_DIR_NAME}/config.json) in its run folder "
            f"{run.run_dir or '(none recorded)'}; analyse another run or let it train further"
        )
    return Path(run.run_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
