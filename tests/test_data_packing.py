"""Packing documents into a token file, the on-disk cache, and the block datasets."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch

import sedd.data.cache as cache
from sedd.data.blocks import TokenBlocks
from sedd.data.char_tokenizer import CharTokenizer
from sedd.data.corpora import build_corpus
from sedd.data.corpus import Segment
from sedd.data.packing import pack_segments


@pytest.fixture()
def tokenizer() -> CharTokenizer:
    return CharTokenizer(list("abcdefgh \n"))


def test_pack_joins_documents_with_eot(tokenizer):
    out = io.BytesIO()
    segments = [Segment("ab", True), Segment("cd", False), Segment("e", True), Segment("", True)]
    stats = pack_segments(segments, tokenizer, out, progress=False)
    ids = np.frombuffer(out.getvalue(), dtype=np.uint16).tolist()
    eot = tokenizer.eot_id
    a, b, c, d, e = (tokenizer.encode(letter)[0] for letter in "abcde")
    assert ids == [a, b, eot, c, d, e, eot, eot]
    assert stats.num_tokens == 8
    assert stats.num_documents == 3
    assert stats.source_bytes == 5


def test_pack_batches_do_not_change_output(tokenizer, monkeypatch):
    import sedd.data.packing as packing

    segments = [Segment("abc" * (i % 5 + 1), i % 3 == 0) for i in range(200)]
    whole = io.BytesIO()
    pack_segments(segments, tokenizer, whole, progress=False)
    monkeypatch.setattr(packing, "BATCH_SEGMENTS", 7)
    batched = io.BytesIO()
    pack_segments(segments, tokenizer, batched, progress=False)
    assert batched.getvalue() == whole.getvalue()


def test_pack_wide_vocab_uses_uint32(tmp_path):
    characters = [chr(0x4E00 + i) for i in range(70_000)]
    wide = CharTokenizer(characters)
    out = io.BytesIO()
    pack_segments([Segment(characters[-1] + characters[0], True)], wide, out, progress=False)
    assert np.frombuffer(out.getvalue(), dtype=np.uint32).tolist() == [69_999, 0, wide.eot_id]


def write_tokens(path, ids, dtype=np.uint16):
    np.asarray(ids, dtype=dtype).tofile(path)
    return path


def test_blocks_drop_tail(tmp_path):
    path = write_tokens(tmp_path / "t.bin", range(10))
    blocks = TokenBlocks(path, num_tokens=10, seq_len=4, dtype="uint16")
    assert len(blocks) == 2
    assert blocks[1].tolist() == [4, 5, 6, 7]
    assert blocks[1].dtype == torch.int64
    assert blocks[-1].tolist() == [4, 5, 6, 7]
    with pytest.raises(IndexError, match="block 2 out of range for 2 blocks"):
        blocks[2]


def test_blocks_get_batch(tmp_path):
    path = write_tokens(tmp_path / "t.bin", range(12), dtype=np.uint32)
    blocks = TokenBlocks(path, num_tokens=12, seq_len=3, dtype="uint32")
    batch = blocks.get_batch(np.array([3, 0, 3]))
    assert batch.shape == (3, 3)
    assert batch.dtype == torch.int64
    assert batch.tolist() == [[9, 10, 11], [0, 1, 2], [9, 10, 11]]
    assert blocks.get_batch(torch.tensor([1])).tolist() == [[3, 4, 5]]
    with pytest.raises(IndexError, match="block 4 out of range"):
        blocks.get_batch([0, 4])


def test_blocks_empty_and_pickle(tmp_path):
    path = write_tokens(tmp_path / "t.bin", range(3))
    empty = TokenBlocks(path, num_tokens=3, seq_len=4, dtype="uint16")
    assert len(empty) == 0
    assert empty.get_batch([]).shape == (0, 4)
    blocks = TokenBlocks(path, num_tokens=3, seq_len=1, dtype="uint16")
    assert blocks[2].tolist() == [2]
    state = pickle.dumps(blocks)
    assert len(state) < 1000  # the map is dropped, not copied
    assert pickle.loads(state)[2].tolist() == [2]


@pytest.fixture()
def stdlib_split(tmp_path):
    corpus = build_corpus({"cache_dir": str(tmp_path), "max_bytes": 20_000})
    return corpus.splits["validation"]


def test_cache_writes_tokens_and_meta(stdlib_split, tokenizer, tmp_path):
    meta = cache.load_or_pack(stdlib_split, tokenizer, tmp_path, progress=False)
    token_file, meta_file = cache.cache_paths(tmp_path, stdlib_split, tokenizer)
    assert meta["token_file"] == str(token_file)
    assert json.loads(meta_file.read_text())["num_tokens"] == meta["num_tokens"]
    stored = np.fromfile(token_file, dtype=np.uint16)
    expected = []
    for document in stdlib_split.documents():
        expected += tokenizer.encode(document) + [tokenizer.eot_id]
    assert stored.tolist() == expected
    assert meta["dtype"] == "uint16"
    assert not [p for p in token_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_cache_hit_skips_tokenizing(stdlib_split, tokenizer, tmp_path, monkeypatch):
    first = cache.load_or_pack(stdlib_split, tokenizer, tmp_path, progress=False)
    token_file, _ = cache.cache_paths(tmp_path, stdlib_split, tokenizer)
    stamp = token_file.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(cache, "pack_segments", lambda *args, **kwargs: calls.append(args))
    second = cache.load_or_pack(stdlib_split, tokenizer, tmp_path, progress=False)
    assert calls == []
    assert second["num_tokens"] == first["num_tokens"]
    assert token_file.stat().st_mtime_ns == stamp


def test_cache_rebuilds_truncated_file(stdlib_split, tokenizer, tmp_path):
    first = cache.load_or_pack(stdlib_split, tokenizer, tmp_path, progress=False)
    token_file, _ = cache.cache_paths(tmp_path, stdlib_split, tokenizer)
    with open(token_file, "r+b") as file:
        file.truncate(10)
    again = cache.load_or_pack(stdlib_split, tokenizer, tmp_path, progress=False)
    assert again["num_tokens"] == first["num_tokens"]
    assert token_file.stat().st_size == 2 * first["num_tokens"]


def test_cache_key_depends_on_tokenizer(stdlib_split, tokenizer, tmp_path):
    other = CharTokenizer(list("abcdefgh \nz"))
    assert cache.cache_paths(tmp_path, stdlib_split, tokenizer) != cache.cache_paths(tmp_path, stdlib_split, other)


def test_failed_pack_leaves_no_file(stdlib_split, tokenizer, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(cache, "pack_segments", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        cache.load_or_pack(stdlib_split, tokenizer, tmp_path, progress=False)
    token_file, meta_file = cache.cache_paths(tmp_path, stdlib_split, tokenizer)
    assert not token_file.exists()
    assert not meta_file.exists()
    assert list(token_file.parent.iterdir()) == []
