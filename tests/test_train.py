"""Training loop on CPU: steps, metrics, checkpoints, resume, divergence, failures, trackers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from sedd.config import load_config
from sedd.model import load_pretrained
from sedd.train import JsonlTracker, NullTracker, Tracker, train
from sedd.train import loop
from sedd.train.__main__ import main
from sedd.train.checkpoint import (
    load_checkpoint,
    prune_checkpoints,
    resolve_resume_path,
    save_atomically,
    step_checkpoints,
)
from sedd.train.distributed import select_device
from sedd.train.ema import EMA
from sedd.train.optim import learning_rate
from sedd.train.setup import TrainingSetupError, micro_batch_size

# A model of a few thousand parameters on 32-character blocks of the Python standard library:
# each step takes milliseconds, so a whole run costs about a second.
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
diffusion:
  sampling:
    steps: 4
training:
  batch_size: 8
  steps: 4
  warmup: 2
  lr: 1.0e-3
  ema: 0.9
  log_every: 1
  eval_every: 2
  eval_blocks: 8
  eval_times: 2
  snapshot_every: 2
  snapshot_samples: 2
  checkpoint_every: 2
  keep_checkpoints: 2
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tokenized-data cache for the module, so only the first run tokenizes."""
    return tmp_path_factory.mktemp("sedd-cache")


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(cache_dir: Path, *overrides: str):
    return load_config(TINY, [f"data.cache_dir={cache_dir}", *overrides])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def metric_rows(run_dir: Path, name: str) -> list[dict]:
    return [row for row in read_jsonl(run_dir / "metrics.jsonl") if name in row]


def test_two_steps_write_run_files(tmp_path, cache_dir):
    config = tiny_config(cache_dir, "training.steps=2")
    result = train(config, tmp_path)
    assert result.status == "completed"
    assert result.step == 2
    losses = [row["train_loss"] for row in metric_rows(tmp_path, "train_loss")]
    assert len(losses) == 2
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)
    assert (tmp_path / "checkpoints" / "step_2.pt").is_file()
    assert load_config(tmp_path / "config.yaml") == config
    assert (tmp_path / "tokenizer").is_dir()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "completed"
    assert status["step"] == 2
    assert status["info"]["world_size"] == 1
    assert status["info"]["tokens_per_step"] == 8 * 32


def test_model_folder_holds_ema(tmp_path, cache_dir):
    result = train(tiny_config(cache_dir, "training.steps=2"), tmp_path)
    model = load_pretrained(tmp_path / "model")
    checkpoint = load_checkpoint(result.last_checkpoint)
    for name, param in model.named_parameters():
        assert torch.equal(param.detach(), checkpoint["ema"]["shadow"][name])


def test_validation_metrics_logged(tmp_path, cache_dir):
    train(tiny_config(cache_dir), tmp_path)
    rows = metric_rows(tmp_path, "val_loss")
    assert [row["step"] for row in rows] == [0, 2, 4]
    for row in rows:
        assert row["val_bpt"] == pytest.approx(row["val_loss"] / math.log(2))
    # An untrained model on 97 characters is near log(97) = 4.6 nats per token.
    assert 2.0 < rows[0]["val_loss"] < 10.0


def test_snapshots_decoded(tmp_path, cache_dir):
    train(tiny_config(cache_dir), tmp_path)
    rows = read_jsonl(tmp_path / "samples.jsonl")
    assert [(row["step"], row["index"]) for row in rows] == [(2, 0), (2, 1), (4, 0), (4, 1)]
    assert all(row["kind"] == "unconditional" for row in rows)
    assert all(isinstance(row["text"], str) and row["text"] for row in rows)


def test_keeps_latest_and_best(tmp_path, cache_dir):
    result = train(tiny_config(cache_dir, "training.steps=6", "training.keep_checkpoints=2"), tmp_path)
    names = sorted(path.name for path in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.pt", "step_4.pt", "step_6.pt"]
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["val_loss"] == pytest.approx(result.best_val_loss)
    assert best["best_val_loss"] == pytest.approx(result.best_val_loss)


def test_no_temporary_files_left(tmp_path, cache_dir):
    train(tiny_config(cache_dir), tmp_path)
    leftovers = [path for path in tmp_path.rglob("*") if path.name.endswith(".tmp")]
    assert leftovers == []


def _parameters(path: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(path)
    return {**checkpoint["model"], **{f"ema.{k}": v for k, v in checkpoint["ema"]["shadow"].items()}}


def test_resume_repeats_trajectory(tmp_path, cache_dir):
    # Dropout on: the restored global generator must reproduce the dropout masks too.
    overrides = ("model.dropout=0.1", "training.steps=6", "training.checkpoint_every=3", "training.eval_every=3")
    straight = tmp_path / "straight"
    train(tiny_config(cache_dir, *overrides), straight)

    split = tmp_path / "split"
    first = train(tiny_config(cache_dir, *overrides, "training.steps=3"), split)
    assert first.step == 3
    second = train(tiny_config(cache_dir, *overrides), split, resume=split)
    assert second.step == 6

    expected = _parameters(straight / "checkpoints" / "step_6.pt")
    resumed = _parameters(split / "checkpoints" / "step_6.pt")
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=1e-6, msg=name)
    straight_losses = [row["train_loss"] for row in metric_rows(straight, "train_loss")]
    split_losses = [row["train_loss"] for row in metric_rows(split, "train_loss")]
    assert split_losses == pytest.approx(straight_losses, abs=1e-6)


def test_resume_restores_optimizer(tmp_path, cache_dir):
    train(tiny_config(cache_dir, "training.steps=2"), tmp_path)
    train(tiny_config(cache_dir, "training.steps=4"), tmp_path, resume=tmp_path)
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "step_4.pt")
    steps = {float(state["step"]) for state in checkpoint["optimizer"]["state"].values()}
    assert steps == {4.0}
    assert checkpoint["ema"]["num_updates"] == 4


def test_fresh_run_rejects_used_dir(tmp_path, cache_dir):
    train(tiny_config(cache_dir, "training.steps=1"), tmp_path)
    with pytest.raises(TrainingSetupError, match="already has checkpoints"):
        train(tiny_config(cache_dir, "training.steps=1"), tmp_path)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "failed"
    assert "already has checkpoints" in status["message"]


def test_resume_missing_checkpoint(tmp_path, cache_dir):
    with pytest.raises(TrainingSetupError, match="contains no checkpoints"):
        train(tiny_config(cache_dir), tmp_path / "run", resume=tmp_path)


def _nan_loss_from(step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the loss NaN for every optimizer step from ``step`` (1-based) on."""
    real_loss = loop.score_entropy_loss
    calls = {"count": 0}

    def loss_with_nan(*args, **kwargs):
        calls["count"] += 1
        loss = real_loss(*args, **kwargs)
        return loss * math.nan if calls["count"] >= step else loss

    monkeypatch.setattr(loop, "score_entropy_loss", loss_with_nan)


def test_divergence_keeps_good_checkpoint(tmp_path, cache_dir, monkeypatch):
    _nan_loss_from(3, monkeypatch)
    config = tiny_config(cache_dir, "training.steps=8", "training.log_every=4", "training.eval_every=0")
    result = train(config, tmp_path)
    assert result.status == "diverged"
    assert result.step == 4  # found at the first log row after the bad step
    assert "at step 3" in result.message
    assert [step for step, _ in step_checkpoints(tmp_path / "checkpoints")] == [2]
    kept = load_checkpoint(tmp_path / "checkpoints" / "step_2.pt")
    assert all(torch.isfinite(tensor).all() for tensor in kept["model"].values())
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "diverged"


def test_divergence_cli_exit_code(tmp_path, cache_dir, monkeypatch):
    _nan_loss_from(1, monkeypatch)
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(TINY)
    code = main(["--config", str(config_path), "--run-dir", str(tmp_path / "run"), "--set", f"data.cache_dir={cache_dir}"])
    assert code == 1


def test_exception_reports_failed(tmp_path, cache_dir, monkeypatch):
    def broken_loss(*args, **kwargs):
        raise RuntimeError("loss exploded on purpose")

    monkeypatch.setattr(loop, "score_entropy_loss", broken_loss)
    with pytest.raises(RuntimeError, match="on purpose"):
        train(tiny_config(cache_dir), tmp_path)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "failed"
    assert status["message"] == "RuntimeError: loss exploded on purpose"


def test_max_minutes_completes(tmp_path, cache_dir):
    # 6 ms: the limit is already reached when the first step would start, or soon after.
    result = train(tiny_config(cache_dir, "training.steps=100000", "training.max_minutes=0.0001"), tmp_path)
    assert result.status == "completed"
    assert result.step < 100000
    assert "max_minutes" in result.message
    assert (tmp_path / "checkpoints" / f"step_{result.step}.pt").is_file()


def test_stop_request_checkpoints(tmp_path, cache_dir, monkeypatch):
    real_log = loop.Trainer._log

    def log_then_stop(self, lr):
        real_log(self, lr)
        self.stop.request("SIGTERM")

    monkeypatch.setattr(loop.Trainer, "_log", log_then_stop)
    result = train(tiny_config(cache_dir, "training.steps=50"), tmp_path)
    assert result.status == "stopped"
    assert result.step == 1
    assert result.message == "stopped by SIGTERM at step 1"
    assert (tmp_path / "checkpoints" / "step_1.pt").is_file()


class RecordingTracker:
    """Keeps every call in order, to check what the trainer reports."""

    def __init__(self):
        self.calls: list[tuple] = []

    def run_started(self, info):
        self.calls.append(("run_started", info["parameters"]))

    def log_metrics(self, step, metrics):
        self.calls.append(("log_metrics", step, tuple(sorted(metrics))))

    def log_samples(self, step, kind, texts, prompts=None):
        self.calls.append(("log_samples", step, kind, len(texts)))

    def heartbeat(self, step):
        self.calls.append(("heartbeat", step))

    def checkpoint_saved(self, step, path, is_best):
        self.calls.append(("checkpoint_saved", step, Path(path).name, is_best))

    def run_finished(self, status, step, message=None):
        self.calls.append(("run_finished", status, step))

    def close(self):
        self.calls.append(("close",))


def test_custom_tracker_receives_run(tmp_path, cache_dir):
    tracker = RecordingTracker()
    assert isinstance(tracker, Tracker)
    train(tiny_config(cache_dir, "training.steps=2"), tmp_path, tracker=tracker)
    names = [call[0] for call in tracker.calls]
    assert names[0] == "run_started"
    assert tracker.calls[-1] == ("run_finished", "completed", 2)
    assert "close" not in names  # the caller owns the tracker
    assert ("log_metrics", 0, ("val_bpt", "val_loss")) in tracker.calls
    assert ("log_metrics", 1, ("grad_norm", "lr", "tokens_per_sec", "train_loss")) in tracker.calls
    assert ("checkpoint_saved", 2, "best.pt", True) in tracker.calls
    assert ("checkpoint_saved", 2, "step_2.pt", False) in tracker.calls
    assert ("log_samples", 2, "unconditional", 2) in tracker.calls
    assert not (tmp_path / "metrics.jsonl").exists()


def test_jsonl_tracker_files(tmp_path):
    tracker = JsonlTracker(tmp_path)
    tracker.run_started({"parameters": 10})
    tracker.log_metrics(3, {"train_loss": 1.5, "grad_norm": math.inf})
    tracker.log_samples(3, "unconditional", ["ab", "cd"], prompts=[None, "c"])
    tracker.checkpoint_saved(3, "/r/checkpoints/step_3.pt", False)
    tracker.run_finished("stopped", 3, "stopped by SIGTERM at step 3")
    tracker.close()
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    assert metrics[0]["train_loss"] == 1.5
    assert metrics[0]["grad_norm"] == "inf"
    samples = read_jsonl(tmp_path / "samples.jsonl")
    assert [(row["text"], row["prompt"]) for row in samples] == [("ab", None), ("cd", "c")]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "stopped"
    assert status["last_checkpoint"] == "/r/checkpoints/step_3.pt"
    assert status["info"] == {"parameters": 10}


def test_jsonl_tracker_rejects_status(tmp_path):
    tracker = JsonlTracker(tmp_path)
    with pytest.raises(ValueError, match="invalid final status 'done'"):
        tracker.run_finished("done", 1)
    tracker.close()


def test_null_tracker_is_tracker():
    assert isinstance(NullTracker(), Tracker)


def test_learning_rate_warmup():
    assert learning_rate(0, 1e-3, 4) == pytest.approx(2.5e-4)
    assert learning_rate(3, 1e-3, 4) == pytest.approx(1e-3)
    assert learning_rate(100, 1e-3, 4) == pytest.approx(1e-3)
    assert learning_rate(0, 1e-3, 0) == pytest.approx(1e-3)


def test_ema_ramp_and_average():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first decay min(0.9, 2 / 11)
    assert ema.shadow["weight"].item() == pytest.approx(1 - 2 / 11)
    ema.update(model)  # second decay min(0.9, 3 / 12)
    assert ema.shadow["weight"].item() == pytest.approx(1 - (2 / 11) * (3 / 12))


def test_ema_applied_restores_weights():
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.5)
    original = model.weight.detach().clone()
    ema.shadow["weight"].fill_(7.0)
    with ema.applied_to(model):
        assert torch.all(model.weight == 7.0)
    assert torch.equal(model.weight, original)


def test_micro_batch_division():
    assert micro_batch_size(512, 8, 2) == 32
    with pytest.raises(TrainingSetupError, match="batch_size=10 is not divisible by world size 4 x training.accum=1"):
        micro_batch_size(10, 4, 1)


def test_prune_and_resolve(tmp_path):
    directory = tmp_path / "checkpoints"
    for step in (9, 10, 2):
        save_atomically({"step": step}, directory / f"step_{step}.pt")
    assert resolve_resume_path(tmp_path) == directory / "step_10.pt"
    removed = prune_checkpoints(directory, keep=2)
    assert [path.name for path in removed] == ["step_2.pt"]
    assert [step for step, _ in step_checkpoints(directory)] == [9, 10]


def test_select_device_cpu():
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert select_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device(0)


def test_cli_invalid_config(tmp_path, capsys):
    config_path = tmp_path / "bad.yaml"
    config_path.write_text("exp_id: x\ntraining:\n  lerning_rate: 1\n")
    code = main(["--config", str(config_path), "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert "did you mean 'training.lr'?" in capsys.readouterr().err


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_MODEL = (
    "model.hidden_size=32", "model.cond_dim=16", "model.n_blocks=1", "model.n_heads=2",
    "data.seq_len=32", "training.batch_size=4", "training.steps=2", "training.eval_blocks=4",
    "training.eval_times=2", "training.eval_every=0", "training.snapshot_every=0", "gpu=cpu",
)


def local_corpus_overrides(name, shared_data):
    """The --set lines that point a shipped local-corpus config at the shared copies."""
    if name == "tinyshakespeare":
        return (f"data.train_files={shared_data / 'tinyshakespeare' / 'input.txt'}",)
    raw = shared_data / "wikitext-2-raw"
    return (
        f"data.train_files={raw / 'train.txt'}", f"data.validation_files={raw / 'valid.txt'}",
        f"data.test_files={raw / 'test.txt'}", "data.vocab_size=300", "data.max_bytes=100000",
    )


@pytest.mark.parametrize("name", ["tinyshakespeare", "wikitext2"])
def test_local_corpus_config_trains(name, shared_data, tmp_path, cache_dir):
    overrides = [*TINY_MODEL, *local_corpus_overrides(name, shared_data), f"data.cache_dir={cache_dir}"]
    config = load_config(CONFIGS / f"{name}.yaml", overrides)
    train_files = config.data.train_files
    assert Path(train_files).is_relative_to(shared_data)
    result = train(config, tmp_path)
    assert result.status == "completed"
    assert result.last_val_loss is not None and math.isfinite(result.last_val_loss)


def test_prefetch_matches_plain_stream(tmp_path, cache_dir):
    from sedd.data import prepare_data
    from sedd.train.batches import BatchStream
    from sedd.train.distributed import DistributedContext

    config = tiny_config(cache_dir)
    bundle = prepare_data(config.data, tokenizer_dir=tmp_path / "tokenizer", progress=False)
    context = DistributedContext(0, 0, 1, torch.device("cpu"), None, owns_group=False)
    plain = BatchStream(bundle.train, micro_batch=2, accum=2, seed=1, context=context)
    prefetch = BatchStream(bundle.train, micro_batch=2, accum=2, seed=1, context=context, num_workers=2)
    for _ in range(3):
        for expected, got in zip(plain.next_step(), prefetch.next_step()):
            assert torch.equal(expected, got)
    # The position after three steps, not after the batches read ahead.
    assert prefetch.state_dict() == plain.state_dict()
    resumed = BatchStream(bundle.train, micro_batch=2, accum=2, seed=1, context=context, num_workers=2)
    resumed.load_state_dict(prefetch.state_dict())
    assert torch.equal(torch.cat(resumed.next_step()), torch.cat(plain.next_step()))
    for stream in (plain, prefetch, resumed):
        stream.close()


def test_signal_before_first_step(tmp_path, cache_dir, monkeypatch):
    real_set_up = loop.set_up_run

    def set_up_then_signal(*args, **kwargs):
        state = real_set_up(*args, **kwargs)
        stop_requests[0].request("SIGTERM")
        return state

    stop_requests = []
    real_stop = loop.StopRequest

    def recording_stop():
        stop_requests.append(real_stop())
        return stop_requests[-1]

    monkeypatch.setattr(loop, "StopRequest", recording_stop)
    monkeypatch.setattr(loop, "set_up_run", set_up_then_signal)
    result = train(tiny_config(cache_dir), tmp_path)
    assert result.status == "stopped"
    assert result.step == 0
    assert (tmp_path / "checkpoints" / "step_0.pt").is_file()
