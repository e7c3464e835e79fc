"""``workbench analyze`` and ``compare`` end to end on tiny models trained here with ``sedd.train``.

The character model trains for a few steps on the standard-library corpus. The zero-shot test
trains one with a word-level Hugging Face tokenizer of GPT-2's size and end-of-text id, built
in a temporary folder, because GPT-2's own tokenizer cannot be downloaded here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from pathlib import Path

import pytest
import torch
import typer
import yaml
from typer.testing import CliRunner

from test_eval_genppl import build_reference_model
from workbench import cli_analysis
from workbench.cli import CliState
from workbench.store import RunStatus, Store

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_CONFIG = """\
exp_id: {exp_id}
gpu: cpu
data:
  corpus: {corpus}
  train_files: {train_files}
  tokenizer: {tokenizer}
  seq_len: 32
  max_bytes: 100000
  cache_dir: {cache_dir}
model: {{hidden_size: 32, cond_dim: 16, n_blocks: 1, n_heads: 2, dropout: 0.0}}
diffusion: {{sampling: {{steps: 8}}}}
training:
  batch_size: {batch_size}
  steps: {steps}
  warmup: 2
  log_every: 5
  eval_every: 0
  eval_blocks: 2
  eval_times: 2
  snapshot_every: 0
  checkpoint_every: 0
  ema: 0.5
"""


def _train(tmp: Path, exp_id: str, **fields: str) -> tuple[str, Path]:
    """Train a tiny model into ``tmp/run``; return its config text and run folder.

    ``fields`` replace the defaults of the ``TINY_CONFIG`` placeholders.
    """
    from sedd.config import load_config
    from sedd.train import train

    torch.set_num_threads(1)
    defaults = {
        "corpus": "stdlib", "train_files": "null", "tokenizer": "char", "cache_dir": str(tmp / "cache"),
        "steps": "10", "batch_size": "8",
    }  # fmt: skip
    text = TINY_CONFIG.format(exp_id=exp_id, **{**defaults, **fields})
    result = train(load_config(text), tmp / "run")
    assert result.status == "completed"
    return text, tmp / "run"


def _register(db: Path, exp_id: str, config_text: str, run_dir: Path | None) -> int:
    store = Store(str(db))
    store.create_experiment(exp_id, config_text)
    run = store.create_run(exp_id)
    if run_dir is not None:
        store.update_run(run.id, run_dir=str(run_dir), last_step=10)
        store.finish_run(run.id, RunStatus.COMPLETED)
    store.close()
    return run.id


def _invoke(db: Path, *args: str):
    app = typer.Typer(rich_markup_mode=None)

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = CliState(db=str(db), checkpoint_root=None)

    cli_analysis.register(app)
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def char_store(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A store with experiment ``tiny`` (a trained char model) and ``untrained`` (no run folder)."""
    tmp = tmp_path_factory.mktemp("analysis")
    config_text, run_dir = _train(tmp, "tiny")
    db = tmp / "experiments.db"
    _register(db, "tiny", config_text, run_dir)
    _register(db, "untrained", config_text.replace("exp_id: tiny", "exp_id: untrained"), None)
    reference = build_reference_model(tmp / "reference")
    return db, run_dir, reference


@pytest.fixture(scope="module")
def char_analysis(char_store):
    db, run_dir, reference = char_store
    out = db.parent / "results"
    args = ["analyze", "tiny", "--quick", "--reference-model", str(reference), "--out", str(out), "--quiet",
            "--samples", "6", "--infill-examples", "3", "--infill-span-length", "4"]
    first = _invoke(db, *args)
    summary = yaml.safe_load((out / "analysis_results" / "tiny" / "summary.yaml").read_text())
    second = _invoke(db, *args)
    summary_again = yaml.safe_load((out / "analysis_results" / "tiny" / "summary.yaml").read_text())
    return first, second, summary, summary_again, out / "analysis_results" / "tiny"


def test_analyze_exits_zero(char_analysis):
    first, second, *_ = char_analysis
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "results:" in first.output


def test_analyze_statuses(char_analysis):
    summary = char_analysis[2]
    statuses = {name: entry["status"] for name, entry in summary["analyses"].items()}
    assert statuses == {"bound": "ok", "zero_shot": "skipped", "generation": "ok", "infill": "ok"}
    assert "GPT-2 tokenizer" in summary["analyses"]["zero_shot"]["message"]


def test_analyze_bound_units(char_analysis):
    metrics = char_analysis[2]["analyses"]["bound"]["metrics"]
    nats = metrics["test/nll"]["value"]
    # An untrained model is near uniform over ~100 characters: about log(100) = 4.6 nats.
    assert 1.0 < nats < 6.0
    assert metrics["test/bpc"]["value"] == pytest.approx(nats / math.log(2))
    assert metrics["test/bpc"]["stderr"] == pytest.approx(metrics["test/nll"]["stderr"] / math.log(2))
    assert metrics["test/ppl_bound"]["value"] == pytest.approx(math.exp(nats))
    assert metrics["test/nll"]["stderr"] > 0


def test_analyze_bound_protocol(char_analysis):
    protocol = char_analysis[2]["analyses"]["bound"]["protocol"]
    assert protocol["split"] == "test"
    assert protocol["num_times"] == 8
    assert protocol["time_range"] == [1e-5, 1.0]
    assert protocol["blocks"] == 16
    assert protocol["block_selection"].startswith("16 evenly spaced of ")
    assert "end-of-text" in protocol["packing"]


def test_analyze_fingerprints(char_analysis):
    summary = char_analysis[2]
    run_dir = Path(summary["checkpoint"]["run_dir"])
    weights = hashlib.sha256((run_dir / "model" / "model.safetensors").read_bytes()).hexdigest()
    assert summary["checkpoint"]["weights_sha256"] == weights
    assert len(summary["data"]["test"]["selected_blocks_sha256"]) == 64
    assert summary["data"]["test"]["tokenizer"]["kind"] == "char"


def test_analyze_same_seed_same_numbers(char_analysis):
    summary, summary_again = char_analysis[2], char_analysis[3]
    for name in ("bound", "generation", "infill"):
        assert summary["analyses"][name]["metrics"] == summary_again["analyses"][name]["metrics"]


def test_analyze_generation_metrics(char_analysis):
    generation = char_analysis[2]["analyses"]["generation"]
    metrics = generation["metrics"]
    assert 0.0 <= metrics["generation/self_bleu"]["value"] <= 1.0
    assert 0.0 < metrics["generation/distinct_1"]["value"] <= 1.0
    assert metrics["generation/entropy"]["value"] > 0
    assert metrics["generation/gen_ppl"]["value"] > 1.0
    assert generation["protocol"]["self_bleu"]["order"] == 4
    assert generation["protocol"]["generative_perplexity"]["accumulation"] == "float64"


def test_analyze_samples_file(char_analysis):
    folder = char_analysis[4]
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert all(len(row["tokens"]) == 32 for row in rows)
    assert all(isinstance(row["text"], str) for row in rows)


def test_analyze_infill_file(char_analysis):
    folder = char_analysis[4]
    rows = [json.loads(line) for line in (folder / "infill_examples.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert rows[0]["spans"] == [[14, 18]]
    assert "[___]" in rows[0]["context"]
    assert len(rows[0]["reference"]) == 1


def test_analyze_infill_has_baseline(char_analysis):
    metrics = char_analysis[2]["analyses"]["infill"]["metrics"]
    for name in ("infill/token_accuracy", "infill_baseline/token_accuracy", "infill_baseline/span_bleu"):
        assert 0.0 <= metrics[name]["value"] <= 1.0


def test_analyze_results_in_store(char_store, char_analysis):
    db = char_store[0]
    store = Store(str(db))
    run = store.list_runs("tiny")[0]
    rows = [row for row in store.list_eval_results(run.id) if row.name == "test/nll"]
    store.close()
    assert len(rows) == 2  # one per analysis
    assert rows[-1].value == pytest.approx(char_analysis[3]["analyses"]["bound"]["metrics"]["test/nll"]["value"])
    assert rows[-1].details["stderr"] > 0
    assert rows[-1].details["analysis"] == "bound"


def test_compare_csv_from_store(char_store, char_analysis):
    result = _invoke(char_store[0], "compare", "tiny", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {row["metric"]: row for row in csv.DictReader(io.StringIO(result.output))}
    nats = char_analysis[3]["analyses"]["bound"]["metrics"]["test/nll"]["value"]
    assert float(rows["test/nll"]["tiny"]) == pytest.approx(nats)
    assert rows["test/nll"]["unit"] == "nats/token"


def test_compare_without_results(char_store):
    result = _invoke(char_store[0], "compare", "untrained")
    assert result.exit_code == 0
    assert "No analysis results for untrained" in result.output


def test_analyze_unknown_experiment(char_store):
    result = _invoke(char_store[0], "analyze", "nope", "--quick")
    assert result.exit_code == 1
    assert "Error: experiment 'nope' not found" in result.output


def test_analyze_untrained_experiment(char_store):
    result = _invoke(char_store[0], "analyze", "untrained", "--quick")
    assert result.exit_code == 1
    assert "has no run with a trained model" in result.output


def test_analyze_bad_zero_shot_files(char_store):
    result = _invoke(char_store[0], "analyze", "tiny", "--zero-shot-files", "ptb")
    assert result.exit_code == 1
    assert "invalid --zero-shot-files 'ptb': use NAME=PATH" in result.output


def test_analyze_run_needs_one_experiment(char_store):
    result = _invoke(char_store[0], "analyze", "tiny", "untrained", "--run", "1")
    assert result.exit_code == 1
    assert "--run 1 names one run" in result.output


def test_analyze_run_of_other_experiment(char_store):
    store = Store(str(char_store[0]))
    untrained_run = store.list_runs("untrained")[0].id
    store.close()
    result = _invoke(char_store[0], "analyze", "tiny", "--run", str(untrained_run))
    assert result.exit_code == 1
    assert f"run {untrained_run} belongs to experiment 'untrained', not 'tiny'" in result.output


def test_analyze_rejects_bad_device(char_store):
    result = _invoke(char_store[0], "analyze", "tiny", "--device", "tpu9")
    assert result.exit_code == 1
    assert "invalid --device 'tpu9'" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this host has CUDA")
def test_analyze_rejects_cuda_without_gpu(char_store):
    result = _invoke(char_store[0], "analyze", "tiny", "--device", "cuda")
    assert result.exit_code == 1
    assert "needs CUDA, which this host does not have" in result.output


def test_analyze_rejects_spread_settings(char_store):
    result = _invoke(char_store[0], "analyze", "tiny", "--infill-spans", "3")
    assert result.exit_code == 1
    assert "infill_spans=3 needs infill_layout='spread'" in result.output


def build_gpt2_sized_tokenizer(folder: Path, text_file: Path) -> Path:
    """Save a word-level tokenizer with GPT-2's size (50257) and end-of-text id (50256)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre_tokenizer = pre_tokenizers.Whitespace()
    words = {word for line in text_file.read_text().splitlines() for word, _ in pre_tokenizer.pre_tokenize_str(line)}
    vocab = {"<unk>": 0}
    for word in sorted(words):
        vocab.setdefault(word, len(vocab))
    for filler in range(len(vocab), 50256):
        vocab[f"<unused{filler}>"] = filler
    vocab["<|endoftext|>"] = 50256
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizer
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def word_store(tmp_path_factory, shared_data) -> Path:
    tmp = tmp_path_factory.mktemp("zero_shot")
    tokenizer = build_gpt2_sized_tokenizer(tmp / "tokenizer", shared_data / "ptb" / "ptb.valid.txt")
    # One step of batch 2: a forward pass over 50,258 states is slow on a CPU, and the
    # zero-shot path needs a model folder, not a good model.
    config_text, run_dir = _train(
        tmp, "words", corpus="text", train_files=str(shared_data / "ptb" / "ptb.valid.txt"), tokenizer=str(tokenizer),
        steps="1", batch_size="2",
    )  # fmt: skip
    db = tmp / "experiments.db"
    _register(db, "words", config_text, run_dir)
    return db


def _head(source: Path, target: Path, lines: int) -> Path:
    """Copy the first ``lines`` lines of ``source`` to ``target``: enough text, little tokenizing."""
    with open(source, encoding="utf-8") as file:
        target.write_text("".join(line for _, line in zip(range(lines), file)), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def zero_shot_summary(word_store, shared_data) -> tuple[object, dict]:
    ptb = _head(shared_data / "ptb" / "ptb.test.txt", word_store.parent / "ptb.test.txt", 300)
    lambada = _head(shared_data / "lambada" / "lambada_test.jsonl", word_store.parent / "lambada_test.jsonl", 30)
    result = _invoke(
        word_store, "analyze", "words", "-a", "zero_shot", "--quiet", "--bound-times", "2", "--zero-shot-blocks", "2",
        "--zero-shot", "ptb", "--zero-shot", "lambada", "--zero-shot", "wikitext103",
        "--zero-shot-files", f"ptb={ptb}", "--zero-shot-files", f"lambada={lambada}",
    )  # fmt: skip
    summary_path = word_store.parent / "analysis_results" / "words" / "summary.yaml"
    return result, yaml.safe_load(summary_path.read_text()) if summary_path.exists() else {}


def test_zero_shot_local_files(zero_shot_summary):
    result, summary = zero_shot_summary
    assert result.exit_code == 0, result.output
    zero_shot = summary["analyses"]["zero_shot"]
    assert zero_shot["status"] == "ok"
    for corpus in ("ptb", "lambada"):
        assert zero_shot["metrics"][f"zero_shot/{corpus}/nll"]["value"] > 0
        assert zero_shot["metrics"][f"zero_shot/{corpus}/nll"]["stderr"] > 0
        assert zero_shot["protocol"][corpus]["blocks"] == 2


def test_zero_shot_detokenizers(zero_shot_summary):
    protocol = zero_shot_summary[1]["analyses"]["zero_shot"]["protocol"]
    assert protocol["ptb"]["detokenizer"] == "ptb"
    assert protocol["lambada"]["detokenizer"] == "lambada"
    assert protocol["ptb"]["split"].startswith("local files ")


def test_zero_shot_hub_corpus_skipped(zero_shot_summary):
    zero_shot = zero_shot_summary[1]["analyses"]["zero_shot"]
    assert "wikitext103" in zero_shot["details"]["skipped"]
    assert "wikitext103" in zero_shot["message"]
    assert not any(name.startswith("zero_shot/wikitext103/") for name in zero_shot["metrics"])
