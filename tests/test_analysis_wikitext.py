"""Slow: the analysis suite on models trained on the WikiText-2 (raw) files beside the repository.

Skipped when ``shared/data/wikitext-2-raw`` is absent. The character model trains a few hundred
steps, enough for its test bound to fall clearly below the uniform bound. The word-level model
has GPT-2's vocabulary size and end-of-text id, so all five zero-shot corpora run from local
files with their detokenizers.
"""

from __future__ import annotations

import math
import time

import pytest
import yaml

from test_analysis_e2e import _invoke, _register, _train, build_gpt2_sized_tokenizer
from test_eval_genppl import build_reference_model

pytestmark = pytest.mark.slow

WIKITEXT_CONFIG = """\
exp_id: wikitext-char
gpu: cpu
data:
  corpus: wikitext2
  train_files: {data}/train.txt
  test_files: {data}/test.txt
  tokenizer: char
  seq_len: 64
  cache_dir: {cache}
model: {{hidden_size: 64, cond_dim: 32, n_blocks: 2, n_heads: 4, dropout: 0.0}}
diffusion: {{sampling: {{predictor: analytic, steps: 32}}}}
training:
  batch_size: 16
  steps: 300
  lr: 2.0e-3
  warmup: 20
  log_every: 50
  eval_every: 0
  eval_blocks: 8
  eval_times: 4
  snapshot_every: 0
  checkpoint_every: 0
  ema: 0.9
"""


@pytest.fixture(scope="module")
def wikitext_char(tmp_path_factory, shared_data):
    import torch

    from sedd.config import load_config
    from sedd.train import train

    data = shared_data / "wikitext-2-raw"
    if not (data / "train.txt").is_file():
        pytest.skip(f"WikiText-2 raw not found in {data}")
    torch.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("wikitext")
    text = WIKITEXT_CONFIG.format(data=data, cache=tmp / "cache")
    started = time.perf_counter()
    result = train(load_config(text), tmp / "run")
    assert result.status == "completed"
    db = tmp / "experiments.db"
    _register(db, "wikitext-char", text, tmp / "run")
    reference = build_reference_model(tmp / "reference")
    analysis = _invoke(
        db, "analyze", "wikitext-char", "--quiet", "--bound-times", "32", "--bound-blocks", "64", "--samples", "16",
        "--infill-examples", "8", "--infill-span-length", "8", "--infill-layout", "spread", "--infill-spans", "2",
        "--reference-model", str(reference), "--out", str(tmp),
    )  # fmt: skip
    summary = yaml.safe_load((tmp / "analysis_results" / "wikitext-char" / "summary.yaml").read_text())
    print(f"trained and analysed in {time.perf_counter() - started:.0f} s; analysis {summary['wall_time_s']} s")
    print(yaml.safe_dump(summary["analyses"], sort_keys=False, width=120))
    return analysis, summary


def test_wikitext_analysis_runs(wikitext_char):
    analysis, summary = wikitext_char
    assert analysis.exit_code == 0, analysis.output
    statuses = {name: entry["status"] for name, entry in summary["analyses"].items()}
    assert statuses == {"bound": "ok", "zero_shot": "skipped", "generation": "ok", "infill": "ok"}


def test_wikitext_bound_beats_uniform(wikitext_char):
    summary = wikitext_char[1]
    vocab_size = summary["data"]["test"]["tokenizer"]["vocab_size"]
    nll = summary["analyses"]["bound"]["metrics"]["test/nll"]
    assert nll["value"] < 0.6 * math.log(vocab_size)
    assert nll["stderr"] < 0.05 * nll["value"]
    assert summary["analyses"]["bound"]["metrics"]["test/bpc"]["value"] == pytest.approx(nll["value"] / math.log(2))


def test_wikitext_infill_spread_spans(wikitext_char):
    protocol = wikitext_char[1]["analyses"]["infill"]["protocol"]
    assert protocol["spans"] == [[16, 24], [40, 48]]
    assert protocol["blocks"] == 8


@pytest.fixture(scope="module")
def all_zero_shot(tmp_path_factory, shared_data):
    paths = {
        "wikitext2": shared_data / "wikitext-2-raw" / "train.txt",
        # WikiText-103 has the same test articles as WikiText-2, so the small test file is used in its place.
        "wikitext103": shared_data / "wikitext-2-raw" / "test.txt",
        "ptb": shared_data / "ptb" / "ptb.test.txt",
        "lambada": shared_data / "lambada" / "lambada_test.jsonl",
        "lm1b": shared_data / "lm1b_sample" / "1b_benchmark.test.tokens",
    }
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        pytest.skip(f"zero-shot corpora not found: {missing}")
    tmp = tmp_path_factory.mktemp("zero_shot_all")
    tokenizer = build_gpt2_sized_tokenizer(tmp / "tokenizer", shared_data / "ptb" / "ptb.valid.txt")
    config_text, run_dir = _train(
        tmp, "words", corpus="text", train_files=str(shared_data / "ptb" / "ptb.valid.txt"), tokenizer=str(tokenizer),
        steps="2", batch_size="2",
    )  # fmt: skip
    db = tmp / "experiments.db"
    _register(db, "words", config_text, run_dir)
    files = [item for name, path in paths.items() for item in ("--zero-shot-files", f"{name}={path}")]
    result = _invoke(db, "analyze", "words", "-a", "zero_shot", "--quiet", "--bound-times", "2",
                     "--zero-shot-blocks", "4", *files)
    summary = yaml.safe_load((db.parent / "analysis_results" / "words" / "summary.yaml").read_text())
    return result, summary


def test_zero_shot_all_corpora(all_zero_shot):
    result, summary = all_zero_shot
    assert result.exit_code == 0, result.output
    zero_shot = summary["analyses"]["zero_shot"]
    assert zero_shot["status"] == "ok"
    for corpus in ("wikitext2", "wikitext103", "ptb", "lambada", "lm1b"):
        assert zero_shot["metrics"][f"zero_shot/{corpus}/ppl_bound"]["value"] > 1.0
    assert zero_shot["protocol"]["lm1b"]["detokenizer"] == "lm1b"
    assert zero_shot["protocol"]["wikitext2"]["detokenizer"] == "wikitext"
