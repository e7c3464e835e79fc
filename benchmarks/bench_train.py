"""Measure where the training loop's time goes at the quickstart size.

Runs ``sedd.train.train`` on ``configs/quickstart.yaml`` for a few steps, with evaluation,
snapshots and periodic checkpoints off, and reads the per-phase timings the trainer keeps
(``TrainResult.timings``). Two figures matter:

- data wait: the share of step time spent drawing indices, reading blocks and copying them
  to the device (target below 2 %);
- trainer overhead: logging, tracker writes, heartbeats, the EMA update and the stop check
  (target below 5 %).

Step time is the sum of the phases data, compute (forward, backward, clipping, optimizer),
EMA, metrics (loss and gradient-norm sums, log rows, tracker writes, heartbeats) and stop
check. The evaluation and checkpoint at the run's end are excluded. Two
variants run: the quickstart's own ``log_every`` and ``log_every: 1``, the worst case for
tracker writes. Writes ``benchmarks/results/train_<device>.json``.

Usage::

    python benchmarks/bench_train.py                 # CPU, 20 steps per variant
    python benchmarks/bench_train.py --steps 40 --threads 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from sedd.config import load_config
from sedd.train import train

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
QUICKSTART = REPO_ROOT / "configs" / "quickstart.yaml"
STEP_PHASES = ("data", "compute", "ema", "metrics", "stop_check")


def run_variant(name: str, overrides: list[str], steps: int, cache_dir: Path) -> dict:
    """Train ``steps`` steps with the quickstart config plus ``overrides``; return the phase shares."""
    config = load_config(
        QUICKSTART,
        [
            f"training.steps={steps}",
            "training.eval_every=0",
            "training.snapshot_every=0",
            "training.checkpoint_every=0",
            "training.eval_blocks=4",
            "training.max_minutes=null",
            f"data.cache_dir={cache_dir}",
            *overrides,
        ],
    )
    with tempfile.TemporaryDirectory(prefix="bench-train-") as run_dir:
        started = time.perf_counter()
        result = train(config, run_dir)
        wall = time.perf_counter() - started
    timings = result.timings
    step_time = sum(timings.get(phase, 0.0) for phase in STEP_PHASES)
    overhead = timings.get("ema", 0.0) + timings.get("metrics", 0.0) + timings.get("stop_check", 0.0)
    return {
        "variant": name,
        "overrides": overrides,
        "steps": result.step,
        "log_every": config.training.log_every,
        "seconds_per_step": step_time / result.step,
        "data_wait_percent": 100 * timings.get("data", 0.0) / step_time,
        "trainer_overhead_percent": 100 * overhead / step_time,
        "phase_seconds": {phase: timings.get(phase, 0.0) for phase in STEP_PHASES},
        "wall_seconds_with_setup_and_final_checkpoint": wall,
    }


def _cpu_name() -> str:
    """Return the CPU model from /proc/cpuinfo on Linux, else what ``platform`` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, default=None, help="result file (default: benchmarks/results/train_cpu.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-train-cache-") as cache:
        cache_dir = Path(cache)
        # A first short run tokenizes the corpus into the cache and warms up the allocator,
        # so neither lands in the measured variants.
        run_variant("warm-up", [], 2, cache_dir)
        results = [
            run_variant("quickstart", [], args.steps, cache_dir),
            run_variant("log every step", ["training.log_every=1"], args.steps, cache_dir),
        ]

    config = load_config(QUICKSTART)
    device = "cuda" if config.gpu != "cpu" and torch.cuda.is_available() else "cpu"
    report = {
        "benchmark": "train",
        "command": "python " + " ".join(shlex.quote(arg) for arg in [os.path.relpath(__file__, REPO_ROOT), *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": device,
            "load_average_1min": os.getloadavg()[0],
        },
        "config": str(QUICKSTART.relative_to(REPO_ROOT)),
        "targets": {"data_wait_percent": 2.0, "trainer_overhead_percent": 5.0},
        "results": results,
    }
    output = args.output or RESULTS_DIR / f"train_{device}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{'variant':<16} {'s/step':>8} {'data wait %':>12} {'overhead %':>11}")
    for row in results:
        print(
            f"{row['variant']:<16} {row['seconds_per_step']:>8.3f} "
            f"{row['data_wait_percent']:>12.2f} {row['trainer_overhead_percent']:>11.2f}"
        )
    print(f"written to {output}")


if __name__ == "__main__":
    main()
