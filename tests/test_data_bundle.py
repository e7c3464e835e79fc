"""prepare_data end to end: stdlib and shared corpora, tokenizer folders, cache reuse, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sedd.data.cache as cache
from sedd.data import DataBundle, DataConfigError, prepare_data
from sedd.data.corpora import build_corpus
from sedd.data.tokenizers import load_tokenizer


def stdlib_settings(cache_dir: Path, **extra) -> dict:
    return {"corpus": "stdlib", "cache_dir": str(cache_dir), "seq_len": 64, "max_bytes": 200_000, **extra}


@pytest.fixture(scope="module")
def stdlib_bundle(tmp_path_factory) -> tuple[DataBundle, Path]:
    cache_dir = tmp_path_factory.mktemp("cache")
    return prepare_data(stdlib_settings(cache_dir), progress=False), cache_dir


def test_bundle_shapes(stdlib_bundle):
    bundle, _ = stdlib_bundle
    assert bundle.prepared_splits() == ["train", "validation", "test"]
    item = bundle.train[0]
    assert item.shape == (64,)
    assert item.dtype == torch.int64
    batch = bundle.validation.get_batch([0, 1])
    assert batch.shape == (2, 64)
    assert int(batch.max()) < bundle.tokenizer.vocab_size


def test_bundle_blocks_match_corpus_text(stdlib_bundle):
    bundle, cache_dir = stdlib_bundle
    corpus = build_corpus(stdlib_settings(cache_dir))
    ids = []
    for document in corpus.splits["test"].documents():
        ids += bundle.tokenizer.encode(document) + [bundle.tokenizer.eot_id]
    blocks = len(ids) // 64
    assert len(bundle.test) == blocks
    assert bundle.test.get_batch(range(blocks)).flatten().tolist() == ids[: blocks * 64]


def test_bundle_fingerprint(stdlib_bundle):
    bundle, _ = stdlib_bundle
    fingerprint = bundle.fingerprint
    json.dumps(fingerprint)  # must be JSON-serialisable for trackers
    assert fingerprint["corpus"] == "stdlib"
    assert fingerprint["seq_len"] == 64
    assert fingerprint["tokenizer"]["kind"] == "char"
    assert fingerprint["splits"]["train"]["blocks"] == len(bundle.train)
    assert fingerprint["splits"]["train"]["tokens"] >= 64 * len(bundle.train)
    assert fingerprint["splits"]["validation"]["source"]["python_version"]


def test_second_call_uses_cache(stdlib_bundle, monkeypatch):
    bundle, cache_dir = stdlib_bundle
    calls = []
    monkeypatch.setattr(cache, "pack_segments", lambda *args, **kwargs: calls.append(args))
    again = prepare_data(stdlib_settings(cache_dir), progress=False)
    assert calls == []
    assert again.fingerprint == bundle.fingerprint
    assert torch.equal(again.train[3], bundle.train[3])


def test_seq_len_change_reuses_tokens(stdlib_bundle, monkeypatch):
    bundle, cache_dir = stdlib_bundle
    monkeypatch.setattr(cache, "pack_segments", lambda *args, **kwargs: pytest.fail("re-tokenized"))
    longer = prepare_data(stdlib_settings(cache_dir, seq_len=128), progress=False)
    assert longer.train[0].tolist() == bundle.train[0].tolist() + bundle.train[1].tolist()


def test_tokenizer_dir_saved_then_loaded(tmp_path):
    folder = tmp_path / "run" / "tokenizer"
    first = prepare_data(stdlib_settings(tmp_path / "c"), tokenizer_dir=folder, progress=False, splits=("train",))
    assert (folder / "sedd_tokenizer.json").is_file()
    assert load_tokenizer(folder).identity == first.tokenizer.identity
    # A different corpus would train a different vocabulary; the run's tokenizer wins.
    other = prepare_data(
        {"corpus": "text", "train_files": str(write_text(tmp_path / "x.txt", "xyz " * 200)),
         "cache_dir": str(tmp_path / "c"), "seq_len": 8, "validation_fraction": 0.0, "test_fraction": 0.0},
        tokenizer_dir=folder, progress=False,
    )
    assert other.tokenizer.identity == first.tokenizer.identity


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tokenizer_dir_kind_mismatch(tmp_path):
    folder = tmp_path / "tok"
    prepare_data(stdlib_settings(tmp_path / "c"), tokenizer_dir=folder, progress=False, splits=("train",))
    with pytest.raises(DataConfigError, match="saved tokenizer in .* is 'char' but data.tokenizer is 'bpe'"):
        prepare_data(stdlib_settings(tmp_path / "c", tokenizer="bpe"), tokenizer_dir=folder, progress=False)


def test_missing_split_error(tmp_path):
    settings = stdlib_settings(tmp_path, test_fraction=0.0)
    with pytest.raises(DataConfigError, match="corpus 'stdlib' has no test split"):
        prepare_data(settings, progress=False, splits=("train", "test"))
    bundle = prepare_data(settings, progress=False)
    assert bundle.prepared_splits() == ["train", "validation"]
    assert bundle.test is None
    with pytest.raises(KeyError, match="split 'test' was not prepared"):
        bundle.split("test")


def test_split_shorter_than_block_error(tmp_path):
    source = write_text(tmp_path / "t.txt", "tiny text\n")
    settings = {
        "corpus": "text", "train_files": str(source), "seq_len": 64, "cache_dir": str(tmp_path),
        "validation_fraction": 0.0, "test_fraction": 0.0,
    }
    with pytest.raises(DataConfigError, match="train split has 11 tokens .* less than one block of data.seq_len=64"):
        prepare_data(settings, progress=False)


def test_accepts_dataclass_config(tmp_path):
    @dataclasses.dataclass
    class DataConfig:
        corpus: str = "stdlib"
        seq_len: int = 32
        max_bytes: int = 50_000
        cache_dir: str = str(tmp_path)

    bundle = prepare_data(DataConfig(), progress=False, splits=("validation",))
    assert bundle.validation.seq_len == 32
    assert bundle.train is None


def test_tinyshakespeare_char(shared_data, tmp_path):
    settings = {
        "corpus": "text", "train_files": str(shared_data / "tinyshakespeare/input.txt"),
        "tokenizer": "char", "seq_len": 256, "cache_dir": str(tmp_path),
    }
    bundle = prepare_data(settings, progress=False)
    text = (shared_data / "tinyshakespeare/input.txt").read_text(encoding="utf-8")
    assert bundle.tokenizer.vocab_size == len(set(text)) + 2  # 65 characters + unknown + end-of-text
    tokens = sum(bundle.fingerprint["splits"][s]["tokens"] for s in ("train", "validation", "test"))
    assert tokens == len(text) + 3  # one end-of-text token per split's document
    decoded = bundle.tokenizer.decode(bundle.train[0])
    assert decoded == text[:256]


def test_wikitext2_bpe(shared_data, tmp_path):
    raw = shared_data / "wikitext-2-raw"
    settings = {
        "corpus": "wikitext2", "train_files": str(raw / "train.txt"),
        "validation_files": str(raw / "valid.txt"), "test_files": str(raw / "test.txt"),
        "tokenizer": "bpe", "vocab_size": 512, "seq_len": 128, "max_bytes": 300_000,
        "cache_dir": str(tmp_path),
    }
    bundle = prepare_data(settings, progress=False, splits=("train", "validation"))
    assert bundle.tokenizer.vocab_size == 512
    text = bundle.tokenizer.decode(bundle.validation.get_batch(range(4)).flatten())
    assert text.startswith("= Homarus gammarus =<|endoftext|>Homarus gammarus, known as")
    assert " @-@ " not in text
    assert bundle.fingerprint["splits"]["validation"]["source"]["detokenizer"] == "wikitext"
    ids = np.fromfile(bundle.fingerprint["splits"]["train"]["token_file"], dtype=np.uint16)
    assert int((ids == bundle.tokenizer.eot_id).sum()) == bundle.fingerprint["splits"]["train"]["documents"]


def test_evaluation_only_corpus(tmp_path):
    folder = tmp_path / "evalset"
    folder.mkdir()
    rows = [{"text": f"passage number {i} about abc."} for i in range(40)]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    tokenizer_dir = tmp_path / "tok"
    prepare_data(stdlib_settings(tmp_path / "c"), tokenizer_dir=tokenizer_dir, progress=False, splits=("train",))
    settings = {
        "corpus": "hf", "hf_name": str(folder), "hf_splits": {"test": "test"},
        "seq_len": 16, "cache_dir": str(tmp_path / "c"),
    }
    bundle = prepare_data(settings, tokenizer_dir=tokenizer_dir, progress=False)
    assert bundle.prepared_splits() == ["test"]
    text = bundle.tokenizer.decode(bundle.test.get_batch(range(len(bundle.test))).flatten())
    assert text.startswith("passage number 0 about abc.<|endoftext|>passage number 1")
    with pytest.raises(DataConfigError, match="has no training split to train the char tokenizer"):
        prepare_data(settings, progress=False)
