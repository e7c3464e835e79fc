"""Run reporting: the ``Tracker`` protocol and the default ``JsonlTracker``.

The trainer calls a tracker on rank 0 only. ``JsonlTracker`` writes three files in the run
directory, each safe to read while the run is going:

- ``metrics.jsonl``: one JSON object per call, ``{"step", "time", <metric>: value, ...}``.
- ``samples.jsonl``: one JSON object per text, ``{"step", "time", "kind", "index", "text", "prompt"}``.
- ``status.json``: the current status, replaced atomically on every change and heartbeat.

A resumed run appends to the same files, so a step may appear twice in ``metrics.jsonl``
when the run resumes from a checkpoint older than its last log row. Readers should keep
the last row per step.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

RUN_STATUSES = ("queued", "running", "completed", "stopped", "failed", "diverged", "lost")
FINAL_STATUSES = ("completed", "stopped", "failed", "diverged")


@runtime_checkable
class Tracker(Protocol):
    """Receives a run's start, metrics, samples, checkpoints, liveness and end."""

    def run_started(self, info: dict) -> None:
        """Record the run's derived facts: parameter count, devices, dtype, world size,
        data fingerprint, tokens per step."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Record metric values (``train_loss``, ``lr``, ``val_loss``, ...) at an optimizer step."""

    def log_samples(
        self, step: int, kind: str, texts: list[str], prompts: list[str | None] | None = None
    ) -> None:
        """Record decoded samples; ``prompts[i]`` is the conditioning text of ``texts[i]``, if any."""

    def heartbeat(self, step: int) -> None:
        """Mark the run alive at ``step``; called every few seconds while it trains."""

    def checkpoint_saved(self, step: int, path: str, is_best: bool) -> None:
        """Record a checkpoint file written at ``step``."""

    def run_finished(self, status: str, step: int, message: str | None = None) -> None:
        """Record the final status: completed, stopped, diverged or failed."""

    def close(self) -> None:
        """Release files or connections; the tracker is not used afterwards."""


class NullTracker:
    """A tracker that records nothing, used on ranks other than 0."""

    def run_started(self, info: dict) -> None:
        pass

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def log_samples(
        self, step: int, kind: str, texts: list[str], prompts: list[str | None] | None = None
    ) -> None:
        pass

    def heartbeat(self, step: int) -> None:
        pass

    def checkpoint_saved(self, step: int, path: str, is_best: bool) -> None:
        pass

    def run_finished(self, status: str, step: int, message: str | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class JsonlTracker:
    """Write metrics, samples and status as JSON files in ``run_dir`` (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike[str]):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.samples_path = self.run_dir / "samples.jsonl"
        self.status_path = self.run_dir / "status.json"
        # Line buffering makes every row visible to a reader tailing the file at once.
        self._metrics = open(self.metrics_path, "a", encoding="utf-8", buffering=1)
        self._samples = open(self.samples_path, "a", encoding="utf-8", buffering=1)
        self._status: dict[str, Any] = {"status": "queued", "step": 0, "pid": os.getpid()}

    def run_started(self, info: dict) -> None:
        now = time.time()
        self._status.update(status="running", started_at=now, heartbeat_at=now, info=info, message=None)
        self._write_status()

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": int(step), "time": time.time()}
        row.update({name: _json_number(value) for name, value in metrics.items()})
        self._metrics.write(json.dumps(row) + "\n")

    def log_samples(
        self, step: int, kind: str, texts: list[str], prompts: list[str | None] | None = None
    ) -> None:
        if prompts is not None and len(prompts) != len(texts):
            raise ValueError(f"got {len(prompts)} prompts for {len(texts)} texts; give one prompt (or None) per text")
        now = time.time()
        for index, text in enumerate(texts):
            prompt = prompts[index] if prompts is not None else None
            row = {"step": int(step), "time": now, "kind": kind, "index": index, "text": text, "prompt": prompt}
            self._samples.write(json.dumps(row, ensure_ascii=False) + "\n")

    def heartbeat(self, step: int) -> None:
        self._status.update(step=int(step), heartbeat_at=time.time())
        self._write_status()

    def checkpoint_saved(self, step: int, path: str, is_best: bool) -> None:
        self._status["last_checkpoint"] = str(path)
        if is_best:
            self._status["best_checkpoint"] = str(path)
        self._status.update(step=int(step), heartbeat_at=time.time())
        self._write_status()

    def run_finished(self, status: str, step: int, message: str | None = None) -> None:
        if status not in FINAL_STATUSES:
            raise ValueError(f"invalid final status {status!r}; use one of {', '.join(FINAL_STATUSES)}")
        self._status.update(status=status, step=int(step), message=message, finished_at=time.time())
        self._write_status()

    def close(self) -> None:
        self._metrics.close()
        self._samples.close()

    @property
    def status(self) -> dict[str, Any]:
        """A copy of the last status written to ``status.json``."""
        return dict(self._status)

    def _write_status(self) -> None:
        write_json_atomically(self.status_path, self._status)


def write_json_atomically(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as indented JSON, atomically."""
    write_text_atomically(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: temporary file, fsync, rename, so readers never see half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _json_number(value: Any) -> Any:
    # JSON has no NaN or infinity. Writing them as strings keeps the row valid JSON, and a
    # reader still sees that the value was not finite.
    value = float(value)
    return value if math.isfinite(value) else str(value)
