"""Training: ``train(config, run_dir)`` and ``python -m sedd.train``.

``train`` runs one SEDD training run, or one process of a ``torchrun`` job, and reports
through a ``Tracker``. The default ``JsonlTracker`` writes JSON files in the run directory.
See ``sedd.train.loop`` for the loop and its phases.

The names below are imported on first use, so ``sedd.train.tracking`` and
``python -m sedd.train --help`` load without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrainResult": "sedd.train.loop",
    "train": "sedd.train.loop",
    "FINAL_STATUSES": "sedd.train.tracking",
    "RUN_STATUSES": "sedd.train.tracking",
    "JsonlTracker": "sedd.train.tracking",
    "NullTracker": "sedd.train.tracking",
    "Tracker": "sedd.train.tracking",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from sedd.train.loop import TrainResult, train
    from sedd.train.tracking import FINAL_STATUSES, RUN_STATUSES, JsonlTracker, NullTracker, Tracker


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sedd.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
