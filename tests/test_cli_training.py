"""Slow command-line tests that train for real: ``run --foreground`` and ``quickstart``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app

TINY_OVERRIDES = [
    "data.max_bytes=100000", "data.seq_len=128", "model.hidden_size=32", "model.cond_dim=16",
    "model.n_blocks=1", "model.n_heads=2", "training.batch_size=8", "training.steps=10", "training.log_every=5",
    "training.eval_every=10", "training.eval_blocks=8", "training.eval_times=2", "training.checkpoint_every=10",
    "training.snapshot_every=10", "diffusion.sampling.steps=4", "gpu=cpu",
]  # fmt: skip


def invoke(db: Path, *arguments: str):
    return CliRunner().invoke(app, ["--db", str(db), *arguments])


def overrides(cache: Path) -> list[str]:
    pairs = [*TINY_OVERRIDES, f"data.cache_dir={cache}"]
    return [argument for pair in pairs for argument in ("--set", pair)]


@pytest.mark.slow
def test_run_foreground_streams_log(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("exp_id: tiny\ndata: {corpus: stdlib}\n")
    db = tmp_path / "experiments.db"
    assert invoke(db, "new", "tiny", "--config", str(config), *overrides(tmp_path / "cache")).exit_code == 0

    result = invoke(db, "run", "tiny", "--foreground")
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Started run 1 of tiny on cpu (pid ")
    assert any("run completed at step 10" in line for line in lines)
    assert lines[-1] == "Run 1 is completed at step 10."
    assert "completed" in invoke(db, "status").stdout


@pytest.mark.slow
def test_quickstart_trains_and_samples(tmp_path: Path) -> None:
    db = tmp_path / "experiments.db"
    result = invoke(db, "quickstart", *overrides(tmp_path / "cache"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Run 1 completed at step 10: validation " in result.stdout
    assert "bits per token (" in result.stdout
    assert "nats per token)." in result.stdout
    assert "Samples" in result.stdout
    assert "Infilling" in result.stdout
    assert "def «" in result.stdout
    assert "workbench sample 1" in result.stdout
    listed = invoke(db, "list").stdout
    assert "quickstart" in listed
    assert "completed" in listed
