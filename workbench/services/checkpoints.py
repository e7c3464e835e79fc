"""Checkpoint services: list a run's training checkpoints, and rebuild a model from one of them.

A run folder keeps its training checkpoints in ``checkpoints/``: ``step_<N>.pt`` for the newest
``training.keep_checkpoints`` steps, and ``best.pt`` for the lowest validation loss so far
(a hard link to a step file when both were written at the same step). Each checkpoint contains the
model config and the EMA averages (see ``sedd.train.checkpoint``), so sampling from an older
or the best step needs no other file than the run's tokenizer.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workbench.errors import NoCheckpoint
from workbench.services.base import ServiceBase
from workbench.store import Run

logger = logging.getLogger(__name__)

BEST_NAME = "best.pt"
STEP_PATTERN = re.compile(r"step_(\d+)\.pt")


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint file of a run.

    ``step`` is ``None`` only for a ``best.pt`` whose step could not be read. ``is_best`` is
    true for ``best.pt`` and for the step file it is a hard link of. ``size`` is in bytes and
    ``modified_at`` is the file's modification time in UTC.
    """

    name: str
    path: Path
    step: int | None
    is_best: bool
    size: int
    modified_at: datetime


class CheckpointServices(ServiceBase):
    """Listing of a run's checkpoints; mixed into ``Workbench``."""

    def list_checkpoints(self, run_id: int) -> list[CheckpointInfo]:
        """Return the run's ``step_<N>.pt`` files in step order, then ``best.pt`` if present.

        A run that never started, or has written no checkpoint yet, has an empty list.
        """
        return run_checkpoints(self.store.get_run(run_id))


def run_checkpoints(run: Run) -> list[CheckpointInfo]:
    """Return the checkpoints in ``<run_dir>/checkpoints`` as ``CheckpointServices.list_checkpoints`` does."""
    folder = Path(run.run_dir) / "checkpoints" if run.run_dir else None
    if folder is None or not folder.is_dir():
        return []
    steps = sorted(
        (int(match.group(1)), path) for path in folder.iterdir() if (match := STEP_PATTERN.fullmatch(path.name))
    )
    best = folder / BEST_NAME
    best_step = _best_step(best, steps) if best.is_file() else None
    found = [_info(path, step, best.is_file() and _same_file(path, best)) for step, path in steps]
    if best.is_file():
        found.append(_info(best, best_step, True))
    return [info for info in found if info is not None]


def resolve_checkpoint(run: Run, checkpoint: str | os.PathLike[str]) -> Path:
    """Return the checkpoint file that ``checkpoint`` names for ``run``.

    A bare file name (``step_400.pt``, ``best.pt``) is looked up in the run's ``checkpoints/``
    folder. Anything with a folder part is taken as a path to a checkpoint file.

    Raises:
        NoCheckpoint: the run never started, or the name or path matches no file. For a bare
            name the message lists the checkpoints the run has.
    """
    text = os.fspath(checkpoint)
    if os.sep in text or (os.altsep and os.altsep in text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise NoCheckpoint(f"checkpoint file {str(path)!r} not found; pass a step_<N>.pt or best.pt file")
        return path
    if run.run_dir is None:
        raise NoCheckpoint(f"run {run.id} never started, so it has no checkpoints; see `workbench status`")
    path = Path(run.run_dir) / "checkpoints" / text
    if path.is_file():
        return path
    present = [info.name for info in run_checkpoints(run)]
    listing = f"it has {', '.join(present)}" if present else "it has none yet (training.checkpoint_every sets how often they are written)"
    raise NoCheckpoint(
        f"run {run.id} has no checkpoint {text!r} in {path.parent}; {listing}. "
        f"Run `workbench checkpoints {run.id}` to list them"
    )


def load_checkpoint_model(path: Path, device: str) -> tuple[Any, int]:
    """Rebuild a run's model from a training checkpoint, with the EMA averages as its weights.

    The model is built from the checkpoint's own ``model_config``. The raw weights are loaded
    first, for the buffers the EMA does not track, then the averages replace every trainable
    parameter, as the trainer does when it writes ``model/``. Returns the model in eval mode on
    ``device`` and the checkpoint's step.

    Raises:
        NoCheckpoint: the file is not a readable training checkpoint or does not fit its model config.
    """
    from sedd.model import build_model
    from sedd.train.checkpoint import load_checkpoint
    from sedd.train.ema import EMA

    try:
        payload = load_checkpoint(path)
        model = build_model(payload["model_config"])
        model.load_state_dict(payload["model"])
        ema = EMA(model, payload["ema"]["decay"])
        ema.load_state_dict(payload["ema"])
        step = int(payload["step"])
    except (ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise NoCheckpoint(f"cannot load checkpoint {path}: {error}") from error
    ema.copy_to(model)
    logger.info("rebuilt the EMA model of step %d from %s", step, path)
    return model.to(device).eval(), step


def _best_step(best: Path, steps: list[tuple[int, Path]]) -> int | None:
    # best.pt is a hard link of the step file written with it. A best.pt saved on its own
    # (a validation at a step without a step file) contains its step in the payload.
    for step, path in steps:
        if _same_file(path, best):
            return step
    try:
        import torch

        # mmap reads the pickled header only; the tensors stay on disk.
        payload = torch.load(best, map_location="cpu", weights_only=True, mmap=True)
        return int(payload["step"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        logger.warning("cannot read the step of %s: %s", best, error)
        return None


def _same_file(first: Path, second: Path) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _info(path: Path, step: int | None, is_best: bool) -> CheckpointInfo | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None  # a running trainer pruned it after the folder was listed
    modified_at = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
    return CheckpointInfo(path.name, path, step, is_best, stat.st_size, modified_at)
