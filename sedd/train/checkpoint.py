"""Training checkpoints: atomic writes, retention of the latest N and the best, lookup for resume.

A checkpoint is one ``torch.save`` file with everything a run needs to continue on the same
trajectory. Its keys are ``format``, ``step``, ``model``, ``optimizer``, ``ema``, ``rng`` (a
list with one entry per rank), ``sampler`` (the data position, the same on every rank),
``best_val_loss``, ``val_loss``, ``world_size``, ``config`` (the resolved experiment config
as plain data), ``model_config`` and ``data_fingerprint``. Files are named ``step_<N>.pt``,
and ``best.pt`` is the checkpoint with the lowest validation loss so far.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
BEST_NAME = "best.pt"
_STEP_FILE = re.compile(r"step_(\d+)\.pt")


def checkpoint_dir(run_dir: str | os.PathLike[str]) -> Path:
    """Return ``<run_dir>/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def step_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Return ``(step, path)`` of every ``step_<N>.pt`` in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _STEP_FILE.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_atomically(payload: dict[str, Any], path: Path) -> None:
    """Write ``payload`` with ``torch.save`` to a temporary file, fsync it, then rename it to ``path``.

    A crash or a full disk leaves either the old file or the new one, never a truncated one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def link_atomically(source: Path, target: Path) -> None:
    """Make ``target`` a copy of ``source`` atomically: a hard link where possible, else a file copy."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError as error:
        # Some file systems (and some network mounts) have no hard links.
        logger.info("hard link to %s failed (%s); copying instead", target, error)
        shutil.copyfile(source, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
    os.replace(temporary, target)
    _fsync_directory(target.parent)


def prune_checkpoints(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` step checkpoints; return the deleted paths.

    ``best.pt`` is a separate file (or hard link), so deleting a step file never removes it.
    """
    removed = []
    for _, path in step_checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def resolve_resume_path(resume: str | os.PathLike[str]) -> Path:
    """Return the checkpoint file that ``resume`` names.

    ``resume`` is a checkpoint file, a run directory (its newest ``checkpoints/step_<N>.pt``)
    or a checkpoints directory (its newest step file). Raises ``FileNotFoundError`` naming
    the path when nothing matches.
    """
    path = Path(resume).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"cannot resume from {str(path)!r}: no such file or directory")
    for directory in (checkpoint_dir(path), path):
        found = step_checkpoints(directory)
        if found:
            return found[-1][1]
    raise FileNotFoundError(
        f"cannot resume from {str(path)!r}: it contains no checkpoints/step_<N>.pt; "
        "pass a checkpoint file or a run directory that has one"
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint onto the CPU, checking its format version."""
    # weights_only keeps loading safe: the payload is tensors and plain Python data only.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"{path} is not a training checkpoint of format {CHECKPOINT_FORMAT} (found {found!r}); "
            "resume from a step_<N>.pt written by sedd.train"
        )
    return payload


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory for this.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def capture_rng_state() -> dict[str, Any]:
    """Return this process's torch, CUDA, numpy and Python RNG states as checkpoint-safe data."""
    import random

    import numpy as np

    kind, key, position, has_gauss, cached_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "key": torch.from_numpy(key.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the states that ``capture_rng_state`` returned."""
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    np.random.set_state((
        saved["kind"],
        saved["key"].numpy().astype(np.uint32),
        saved["position"],
        saved["has_gauss"],
        saved["cached_gauss"],
    ))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
