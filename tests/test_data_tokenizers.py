"""Tokenizers: char, byte-level BPE, Hugging Face through AutoTokenizer; saving and loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sedd.data.bpe_tokenizer import BPETokenizer
from sedd.data.char_tokenizer import CharTokenizer
from sedd.data.corpora import build_corpus
from sedd.data.errors import DataConfigError, DataUnavailableError
from sedd.data.tokenizers import EOT_TOKEN, build_tokenizer, load_tokenizer, token_dtype

SAMPLE = "The quick brown fox\njumps over the lazy dog; caf\u00e9 \u00fcber \u2192 \U0001f600.\n"


@pytest.fixture(scope="module")
def stdlib_char(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    corpus = build_corpus({"cache_dir": str(cache)})
    return corpus, build_tokenizer({"cache_dir": str(cache)}, corpus, progress=False)


def test_char_vocabulary_layout():
    tokenizer = CharTokenizer(["b", "a", "\n"])
    assert tokenizer.characters == ("\n", "a", "b")
    assert tokenizer.vocab_size == 5
    assert tokenizer.unknown_id == 3
    assert tokenizer.eot_id == 4
    assert tokenizer.encode("ab\nba") == [1, 2, 0, 2, 1]


def test_char_unknown_characters():
    tokenizer = CharTokenizer(list("abc"))
    assert tokenizer.encode("aXc\u00e9") == [0, 3, 2, 3]
    assert tokenizer.decode([0, 3, 4]) == "a\ufffd" + EOT_TOKEN


def test_char_lists_unknown_characters():
    tokenizer = CharTokenizer(list("abc"))
    assert tokenizer.unknown_characters("caXb\u00e9X\u2615") == ["X", "\u00e9", "\u2615"]
    assert tokenizer.unknown_characters("abc") == []
    assert tokenizer.unknown_characters("") == []


def test_char_roundtrip_stdlib(stdlib_char):
    corpus, tokenizer = stdlib_char
    documents = list(corpus.splits["train"].documents())
    for document in documents[:50]:
        assert tokenizer.decode(tokenizer.encode(document)) == document
    ids = tokenizer.encode("".join(documents[:50]))
    assert max(ids) < tokenizer.unknown_id


def test_char_train_sees_every_character():
    texts = ["abc", "\u00e9\u00e9", "\U0001f600x"]
    tokenizer = CharTokenizer.train(texts)
    assert tokenizer.characters == tuple(sorted(set("".join(texts))))
    for text in texts:
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_char_ascii_and_unicode_paths_agree():
    tokenizer = CharTokenizer.train([SAMPLE])
    ascii_ids = tokenizer.encode_array("quick fox")
    mixed_ids = tokenizer.encode_array("quick fox\u00e9")[:-1]
    assert np.array_equal(ascii_ids, mixed_ids)
    assert ascii_ids.dtype == np.uint16


def test_char_decode_rejects_out_of_range():
    tokenizer = CharTokenizer(list("ab"))
    with pytest.raises(ValueError, match=r"token id 4 is outside the vocabulary \[0, 4\)"):
        tokenizer.decode([0, 4])
    with pytest.raises(ValueError, match="token id -1"):
        tokenizer.decode([-1])


def test_char_decode_tensor():
    tokenizer = CharTokenizer(list("ab"))
    assert tokenizer.decode(torch.tensor([1, 0, 1])) == "bab"


def test_char_save_load(tmp_path):
    tokenizer = CharTokenizer.train([SAMPLE])
    tokenizer.save(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, CharTokenizer)
    assert loaded.identity == tokenizer.identity
    assert loaded.encode(SAMPLE) == tokenizer.encode(SAMPLE)


def test_load_detects_modified_files(tmp_path):
    CharTokenizer(list("abc")).save(tmp_path)
    (tmp_path / "char_vocab.json").write_text(json.dumps({"characters": list("abd")}))
    with pytest.raises(DataConfigError, match="do not match sedd_tokenizer.json"):
        load_tokenizer(tmp_path)


def test_load_missing_folder(tmp_path):
    with pytest.raises(DataConfigError, match="no saved tokenizer in .*sedd_tokenizer.json is missing"):
        load_tokenizer(tmp_path)


def test_token_dtype_boundary():
    assert token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.uint32


@pytest.fixture(scope="module")
def small_bpe(shared_data) -> BPETokenizer:
    text = (shared_data / "wikitext-2-raw/valid.txt").read_text(encoding="utf-8")[:300_000]
    return BPETokenizer.train([text], vocab_size=400)


def test_bpe_vocab_and_eot(small_bpe):
    assert small_bpe.vocab_size == 400
    assert small_bpe.eot_id == small_bpe.backend.token_to_id(EOT_TOKEN)
    assert small_bpe.encode(EOT_TOKEN) == [small_bpe.eot_id]


def test_bpe_roundtrip(small_bpe):
    assert small_bpe.decode(small_bpe.encode(SAMPLE)) == SAMPLE
    ids = small_bpe.encode("the the the")
    assert len(ids) < len("the the the")


def test_bpe_batch_matches_single(small_bpe):
    texts = ["one text", "another, longer text\n", ""]
    assert small_bpe.encode_batch(texts) == [small_bpe.encode(text) for text in texts]
    arrays = small_bpe.encode_arrays(texts)
    assert [a.tolist() for a in arrays] == small_bpe.encode_batch(texts)
    assert arrays[0].dtype == np.uint16


def test_bpe_long_text_in_pieces(small_bpe, shared_data, monkeypatch):
    import sedd.data.tokenizers as tokenizers

    text = (shared_data / "wikitext-2-raw/test.txt").read_text(encoding="utf-8")[:200_000]
    text += "end  \n\n\n   \n spaces\t\t and tabs " * 50
    monkeypatch.setattr(tokenizers, "PIECE_CHARS_FOR_ENCODING", 1000)
    (ids,) = small_bpe.encode_arrays([text])
    assert ids.tolist() == small_bpe.encode(text)


def test_bpe_save_load(small_bpe, tmp_path):
    small_bpe.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, BPETokenizer)
    assert loaded.vocab_hash == small_bpe.vocab_hash
    assert loaded.encode(SAMPLE) == small_bpe.encode(SAMPLE)


def test_hf_tokenizer_from_local_folder(small_bpe, tmp_path):
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "pretrained"
    PreTrainedTokenizerFast(tokenizer_object=small_bpe.backend, eos_token=EOT_TOKEN).save_pretrained(folder)
    tokenizer = build_tokenizer({"tokenizer": str(folder)})
    assert tokenizer.kind == "hf"
    assert tokenizer.vocab_size == 400
    assert tokenizer.eot_id == small_bpe.eot_id
    assert tokenizer.encode(SAMPLE) == small_bpe.encode(SAMPLE)
    assert tokenizer.encode_batch([SAMPLE, "x"]) == [small_bpe.encode(SAMPLE), small_bpe.encode("x")]
    assert tokenizer.decode(tokenizer.encode(SAMPLE)) == SAMPLE


def test_gpt2_layout_folder(small_bpe, tmp_path):
    # The files of the GPT-2 hub repository: vocab.json, merges.txt and the two configs.
    small_bpe.backend.model.save(str(tmp_path))
    config = {"tokenizer_class": "GPT2Tokenizer", "eos_token": EOT_TOKEN, "bos_token": EOT_TOKEN, "unk_token": EOT_TOKEN}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    tokenizer = build_tokenizer({"tokenizer": str(tmp_path)})
    assert type(tokenizer.tokenizer).__name__.startswith("GPT2Tokenizer")
    assert tokenizer.vocab_size == small_bpe.vocab_size
    assert tokenizer.eot_id == small_bpe.eot_id
    assert tokenizer.encode(SAMPLE) == small_bpe.encode(SAMPLE)
    assert tokenizer.decode(tokenizer.encode(SAMPLE)) == SAMPLE


def test_hf_tokenizer_save_load(small_bpe, tmp_path):
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=small_bpe.backend, eos_token=EOT_TOKEN).save_pretrained(tmp_path / "a")
    tokenizer = build_tokenizer({"tokenizer": str(tmp_path / "a")})
    tokenizer.save(tmp_path / "run")
    loaded = load_tokenizer(tmp_path / "run")
    assert loaded.name == str(tmp_path / "a")
    assert loaded.vocab_hash == tokenizer.vocab_hash
    assert loaded.encode(SAMPLE) == tokenizer.encode(SAMPLE)


def test_gpt2_offline_error():
    with pytest.raises(DataUnavailableError) as raised:
        build_tokenizer({"tokenizer": "gpt2"})
    message = str(raised.value)
    assert "'gpt2' is not in the local cache" in message
    assert "data.tokenizer" in message
    assert "char or bpe" in message


def test_bpe_cache_reuses_training(tmp_path, monkeypatch):
    source = tmp_path / "t.txt"
    source.write_text("".join(f"sentence number {i} is here.\n" for i in range(500)))
    settings = {
        "corpus": "text", "train_files": str(source), "tokenizer": "bpe", "vocab_size": 300,
        "cache_dir": str(tmp_path / "cache"), "validation_fraction": 0.0, "test_fraction": 0.0,
    }
    calls = []
    original = BPETokenizer.train.__func__

    def counting_train(cls, *args, **kwargs):
        calls.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(BPETokenizer, "train", classmethod(counting_train))
    first = build_tokenizer(settings, progress=False)
    second = build_tokenizer(settings, progress=False)
    assert len(calls) == 1
    assert second.vocab_hash == first.vocab_hash
    folders = list((tmp_path / "cache" / "tokenizers").iterdir())
    assert [folder.name.split("-")[0] for folder in folders] == ["bpe"]


def test_bpe_vocab_size_too_small():
    with pytest.raises(DataConfigError, match="data.vocab_size=100 is too small for byte-level BPE"):
        build_tokenizer({"tokenizer": "bpe", "vocab_size": 100})
