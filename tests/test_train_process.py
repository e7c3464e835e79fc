"""``python -m sedd.train`` as a real process: SIGTERM handling and two-process DDP under torchrun."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sedd.config import load_config
from sedd.train import train
from sedd.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]

TINY = """
exp_id: tiny
gpu: cpu
data:
  corpus: stdlib
  tokenizer: char
  seq_len: 32
  max_bytes: 60000
model:
  hidden_size: 32
  cond_dim: 16
  n_blocks: 1
  n_heads: 2
  dropout: 0.0
training:
  batch_size: 8
  steps: 4
  warmup: 2
  lr: 1.0e-3
  ema: 0.9
  log_every: 1
  eval_every: 0
  eval_blocks: 8
  eval_times: 2
  snapshot_every: 0
  checkpoint_every: 0
"""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # One thread per process: the two DDP ranks share the machine's cores.
    env["OMP_NUM_THREADS"] = "1"
    # Keep gloo's traffic on the loopback interface.
    env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


def _write_config(tmp_path: Path, cache_dir: Path, extra: str = "") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("  max_bytes: 60000", f"  max_bytes: 60000\n  cache_dir: {cache_dir}") + extra)
    return path


def _wait_for_train_row(run_dir: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"trainer exited early with code {process.returncode}: {process.stderr.read()[-2000:]}")
        if metrics.exists() and "train_loss" in metrics.read_text():
            return
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"no train_loss row in {metrics} after {timeout} s")


def test_sigterm_stops_cleanly(tmp_path):
    config_path = _write_config(tmp_path, tmp_path / "cache")
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "sedd.train", "--config", str(config_path), "--run-dir", str(run_dir),
        "--set", "training.steps=1000000",
    ]
    process = subprocess.Popen(command, env=_environment(), stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    _wait_for_train_row(run_dir, process, timeout=120)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "stopped"
    assert status["message"] == f"stopped by SIGTERM at step {status['step']}"
    checkpoint = run_dir / "checkpoints" / f"step_{status['step']}.pt"
    assert checkpoint.is_file()
    assert load_checkpoint(checkpoint)["step"] == status["step"]
    assert "received SIGTERM" in stderr


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_matches_single_process(tmp_path):
    cache_dir = tmp_path / "cache"
    config_path = _write_config(tmp_path, cache_dir)
    ddp_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "sedd.train", "--config", str(config_path), "--run-dir", str(ddp_dir),
    ]
    completed = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    status = json.loads((ddp_dir / "status.json").read_text())
    assert status["status"] == "completed"
    assert status["info"]["world_size"] == 2
    assert status["info"]["micro_batch_size"] == 4

    # One process with accum 2 cuts the global batch into the same two chunks of 4 rows
    # that the two ranks take, and seeds their noise the same way.
    torch.set_num_threads(1)
    single_dir = tmp_path / "single"
    train(load_config(config_path, ["training.accum=2"]), single_dir)

    distributed = load_checkpoint(ddp_dir / "checkpoints" / "step_4.pt")
    single = load_checkpoint(single_dir / "checkpoints" / "step_4.pt")
    for name, tensor in single["model"].items():
        torch.testing.assert_close(distributed["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert _train_losses(ddp_dir) == pytest.approx(_train_losses(single_dir), rel=1e-4)


def _train_losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["train_loss"] for row in rows if "train_loss" in row]
