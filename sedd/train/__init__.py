"""Training: ``train(config, run_dir)`` and ``python -m sedd.train``.

``train`` runs one SEDD training run (also as one process of a ``torchrun`` job), reporting
through a ``Tracker``; ``JsonlTracker`` is the default and writes JSON files in the run
directory. See ``sedd.train.loop`` for the loop and its phases.
"""

from sedd.train.loop import TrainResult, train
from sedd.train.tracking import FINAL_STATUSES, RUN_STATUSES, JsonlTracker, NullTracker, Tracker

__all__ = ["FINAL_STATUSES", "RUN_STATUSES", "JsonlTracker", "NullTracker", "TrainResult", "Tracker", "train"]
