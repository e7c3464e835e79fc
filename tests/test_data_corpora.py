"""Corpora: the stdlib corpus, local text and JSON-lines files, presets, Hugging Face loading."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from sedd.data.corpora import build_corpus
from sedd.data.errors import DataConfigError, DataUnavailableError
from sedd.data.hashing import assign_split
from sedd.data.stdlib_corpus import EXCLUDED_DIRS, stdlib_files, stdlib_root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def stdlib_corpus(cache_dir: Path):
    return build_corpus({"corpus": "stdlib", "cache_dir": str(cache_dir)})


def split_files(corpus, split: str) -> list[str]:
    """Relative paths of the stdlib files that a split reads."""
    reader = corpus.splits[split].reader
    return [key for _, key in reader.files if reader.keeps(key)]


def test_stdlib_files_sorted_and_filtered():
    files = stdlib_files()
    keys = [key for _, key in files]
    assert keys == sorted(keys)
    assert all(key.endswith(".py") for key in keys)
    assert not any(EXCLUDED_DIRS & set(key.split("/")[:-1]) for key in keys)
    assert "os.py" in keys
    assert "idlelib/editor.py" in keys


def test_stdlib_splits_disjoint_and_complete(stdlib_corpus):
    splits = {name: set(split_files(stdlib_corpus, name)) for name in ("train", "validation", "test")}
    assert not splits["train"] & splits["validation"]
    assert not splits["train"] & splits["test"]
    assert not splits["validation"] & splits["test"]
    assert set().union(*splits.values()) == {key for _, key in stdlib_files()}
    assert len(splits["validation"]) > 0
    assert len(splits["test"]) > 0


def test_stdlib_split_follows_path_hash(stdlib_corpus):
    for key in split_files(stdlib_corpus, "validation"):
        assert assign_split(key, 0.05, 0.05) == "validation"
    assert assign_split("os.py", 0.05, 0.05) == "train"  # fixed by SHA-1, same on every machine


def test_stdlib_split_stable_across_builds(stdlib_corpus, cache_dir):
    again = build_corpus({"corpus": "stdlib", "cache_dir": str(cache_dir)})
    assert split_files(again, "test") == split_files(stdlib_corpus, "test")
    assert again.fingerprint == stdlib_corpus.fingerprint


def test_stdlib_fingerprint_fields(stdlib_corpus):
    train = stdlib_corpus.splits["train"].fingerprint
    assert train["python_version"] == platform.python_version()
    assert train["file_count"] == len(split_files(stdlib_corpus, "train"))
    sizes = [(stdlib_root() / key).stat().st_size for key in split_files(stdlib_corpus, "train")]
    assert train["byte_count"] == sum(sizes)
    assert len(train["content_hash"]) == 64
    assert train["content_hash"] != stdlib_corpus.splits["validation"].fingerprint["content_hash"]


def test_stdlib_documents_are_files(stdlib_corpus):
    documents = list(stdlib_corpus.splits["validation"].documents())
    keys = split_files(stdlib_corpus, "validation")
    texts = [(stdlib_root() / key).read_text(encoding="utf-8") for key in keys]
    assert documents == [text for text in texts if text.strip()]


def test_stdlib_max_bytes_caps_each_split(cache_dir):
    corpus = build_corpus({"corpus": "stdlib", "cache_dir": str(cache_dir), "max_bytes": 50_000})
    for split in corpus.splits.values():
        text = "".join(segment.text for segment in split.segments())
        assert len(text.encode("utf-8")) == 50_000


@pytest.mark.parametrize(
    ("text", "end", "cut"),
    [
        ("alpha beta\ngamma delta", 20, 10),  # before the newline
        ("alpha.  \n\n  Next words", 20, 6),  # before the whole whitespace run
        ("alpha beta gamma", 14, 10),  # no newline: before the last space
        ("alphabetagamma", 10, 10),  # no whitespace: hard cut
        ("\n\nalpha", 5, 5),  # only leading whitespace: hard cut
    ],
)
def test_whitespace_cut(text, end, cut):
    from sedd.data.corpus import whitespace_cut

    assert whitespace_cut(text, 0, end) == cut


def test_split_into_pieces_lossless():
    from sedd.data.corpus import split_into_pieces

    text = "one two  three\n\nfour " * 40 + "x" * 50
    pieces = list(split_into_pieces(text, 16))
    assert "".join(pieces) == text
    assert max(len(piece) for piece in pieces) <= 16
    assert all(not piece[-1].isspace() for piece in pieces[:-1])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_blank_lines_documents(tmp_path):
    source = write(tmp_path / "a.txt", "\n \nfirst para\nline two\n\n \t\nsecond\n\n\nthird  \n \n")
    corpus = build_corpus({
        "corpus": "text", "train_files": str(source), "document_split": "blank_lines",
        "validation_fraction": 0.0, "test_fraction": 0.0, "cache_dir": str(tmp_path / "c"),
    })
    assert list(corpus.splits) == ["train"]
    assert list(corpus.splits["train"].documents()) == ["first para\nline two", "second", "third  "]


def test_file_documents_from_glob(tmp_path):
    write(tmp_path / "d" / "b.txt", "bee\n")
    write(tmp_path / "d" / "a.txt", "ay\n")
    write(tmp_path / "d" / "empty.txt", "  \n")
    corpus = build_corpus({
        "corpus": "text", "train_files": str(tmp_path / "d" / "*.txt"),
        "validation_fraction": 0.0, "test_fraction": 0.0, "cache_dir": str(tmp_path / "c"),
    })
    assert list(corpus.splits["train"].documents()) == ["ay\n", "bee\n"]
    assert corpus.splits["train"].fingerprint["file_count"] == 3


def test_single_file_split_by_position(tmp_path):
    words = " ".join(f"w{i:04d}" for i in range(2000))
    source = write(tmp_path / "one.txt", words)
    corpus = build_corpus({"corpus": "text", "train_files": str(source), "cache_dir": str(tmp_path / "c")})
    parts = {name: "".join(split.documents()) for name, split in corpus.splits.items()}
    assert parts["train"] + parts["validation"] + parts["test"] == words
    assert parts["validation"].startswith("w")
    assert parts["test"].startswith("w")
    assert len(parts["test"]) == pytest.approx(0.05 * len(words), abs=6)
    assert len(parts["validation"]) == pytest.approx(0.05 * len(words), abs=6)


def test_separate_validation_files(tmp_path):
    train = write(tmp_path / "train.txt", "a\n\nb\n\nc\n")
    valid = write(tmp_path / "valid.txt", "v1\n\nv2\n")
    corpus = build_corpus({
        "corpus": "text", "train_files": str(train), "validation_files": str(valid),
        "document_split": "blank_lines", "test_fraction": 0.0, "cache_dir": str(tmp_path / "c"),
    })
    assert list(corpus.splits) == ["train", "validation"]
    assert list(corpus.splits["train"].documents()) == ["a", "b", "c"]
    assert list(corpus.splits["validation"].documents()) == ["v1", "v2"]


def test_hash_holdout_by_paragraph(tmp_path):
    source = write(tmp_path / "p.txt", "\n\n".join(f"paragraph {i}" for i in range(400)) + "\n")
    corpus = build_corpus({
        "corpus": "text", "train_files": str(source), "document_split": "blank_lines",
        "validation_fraction": 0.1, "test_fraction": 0.1, "cache_dir": str(tmp_path / "c"),
    })
    documents = {name: list(split.documents()) for name, split in corpus.splits.items()}
    expected = {name: [] for name in documents}
    for i in range(400):
        expected[assign_split(f"p.txt#{i}", 0.1, 0.1)].append(f"paragraph {i}")
    assert documents == expected
    assert 20 <= len(documents["validation"]) <= 60


def test_long_paragraph_streams_in_pieces(tmp_path, monkeypatch):
    import sedd.data.text_files as text_files

    monkeypatch.setattr(text_files, "PIECE_CHARS", 64)
    monkeypatch.setattr(text_files, "_READ_BYTES", 32)
    lines = [f"line {i} of a long paragraph" for i in range(40)]
    source = write(tmp_path / "long.txt", "\n".join(lines) + "\n\nshort one\n")
    segments = list(text_files.separated_documents(source, "long.txt", "blank_lines"))
    assert len(segments) > 3
    assert [key for key, _ in segments[:-1]] == ["long.txt#0"] * (len(segments) - 1)
    assert "".join(s.text for _, s in segments[:-1]) == "\n".join(lines)
    assert segments[-1] == ("long.txt#1", text_files.Segment("short one", True))


def test_jsonl_documents_and_errors(tmp_path):
    good = write(tmp_path / "g.jsonl", '{"body": "one"}\n\n{"body": "two", "x": 1}\n')
    corpus = build_corpus({
        "corpus": "jsonl", "train_files": str(good), "jsonl_field": "body",
        "validation_fraction": 0.0, "test_fraction": 0.0, "cache_dir": str(tmp_path / "c"),
    })
    assert list(corpus.splits["train"].documents()) == ["one", "two"]
    corpus = build_corpus({
        "corpus": "jsonl", "train_files": str(good), "jsonl_field": "text",
        "validation_fraction": 0.0, "test_fraction": 0.0, "cache_dir": str(tmp_path / "c"),
    })
    with pytest.raises(DataConfigError, match=r"g\.jsonl:1 has no field 'text' \(found \['body'\]\)"):
        list(corpus.splits["train"].documents())


def test_missing_train_files_error(tmp_path):
    pattern = str(tmp_path / "nothing" / "*.txt")
    with pytest.raises(DataConfigError, match=r"data\.train_files=.*nothing.* matches no file"):
        build_corpus({"corpus": "text", "train_files": pattern, "cache_dir": str(tmp_path)})
    with pytest.raises(DataConfigError, match="data.train_files is required for corpus 'text'"):
        build_corpus({"corpus": "text"})


def test_unknown_setting_error():
    with pytest.raises(DataConfigError, match=r"unknown data setting\(s\) \['corpuss'\]"):
        build_corpus({"corpuss": "text"})
    with pytest.raises(DataConfigError, match="data.corpus='wiki' is not supported"):
        build_corpus({"corpus": "wiki"})


def test_fingerprint_ignores_location_and_mtime(tmp_path):
    from sedd.data.hashing import fingerprint_digest

    first = write(tmp_path / "a" / "t.txt", "same text\n")
    second = write(tmp_path / "b" / "t.txt", "same text\n")
    settings = {"corpus": "text", "validation_fraction": 0.0, "test_fraction": 0.0, "cache_dir": str(tmp_path / "c")}
    one = build_corpus(dict(settings, train_files=str(first))).splits["train"].fingerprint
    two = build_corpus(dict(settings, train_files=str(second))).splits["train"].fingerprint
    assert one["files"][0]["path"] != two["files"][0]["path"]
    assert fingerprint_digest(one) == fingerprint_digest(two)
    write(second, "other text\n")
    three = build_corpus(dict(settings, train_files=str(second))).splits["train"].fingerprint
    assert fingerprint_digest(three) != fingerprint_digest(one)


def test_hf_offline_error_message(tmp_path):
    with pytest.raises(DataUnavailableError) as raised:
        build_corpus({"corpus": "wikitext2", "cache_dir": str(tmp_path)})
    message = str(raised.value)
    assert "'wikitext'" in message
    assert "not in the local cache" in message
    assert "corpus: text" in message
    assert "train_files:" in message
    assert "corpus: wikitext2" in message


def test_hf_builder_on_local_files(tmp_path):
    train = write(tmp_path / "train.txt", "".join(f"row {i}\n" for i in range(200)))
    test = write(tmp_path / "test.txt", "t0\n\nt1\n")
    corpus = build_corpus({
        "corpus": "hf", "hf_name": "text", "train_files": str(train), "test_files": str(test),
        "validation_fraction": 0.1, "cache_dir": str(tmp_path / "c"),
    })
    assert list(corpus.splits) == ["train", "validation", "test"]
    assert list(corpus.splits["test"].documents()) == ["t0", "t1"]
    validation = list(corpus.splits["validation"].documents())
    expected = [f"row {i}" for i in range(200) if assign_split(f"train#{i}", 0.1, 0.0) == "validation"]
    assert validation == expected
    train_rows = list(corpus.splits["train"].documents())
    assert len(train_rows) + len(validation) == 200
    assert corpus.splits["test"].fingerprint["file_count"] == 1


def test_hf_missing_column_error(tmp_path):
    source = write(tmp_path / "r.jsonl", json.dumps({"body": "x"}) + "\n")
    with pytest.raises(DataConfigError, match=r"no column 'text'; its columns are \['body'\]"):
        build_corpus({"corpus": "hf", "hf_name": "json", "train_files": str(source), "cache_dir": str(tmp_path / "c")})


# Shared real corpora through the presets' local-file path.


def preset(shared_data: Path, tmp_path: Path, corpus: str, train: str, **extra):
    settings = {"corpus": corpus, "train_files": str(shared_data / train), "cache_dir": str(tmp_path), **extra}
    return build_corpus(settings)


def test_wikitext2_preset_local_files(shared_data, tmp_path):
    corpus = preset(
        shared_data, tmp_path, "wikitext2", "wikitext-2-raw/train.txt",
        validation_files=str(shared_data / "wikitext-2-raw/valid.txt"),
        test_files=str(shared_data / "wikitext-2-raw/test.txt"),
    )
    validation = list(corpus.splits["validation"].documents())
    lines = (shared_data / "wikitext-2-raw/valid.txt").read_text(encoding="utf-8").splitlines()
    assert validation[0] == "= Homarus gammarus ="
    assert len(validation) == sum(1 for line in lines if line.strip())
    assert not any(" @-@ " in document or " @,@ " in document for document in validation)
    assert corpus.splits["validation"].fingerprint["detokenizer"] == "wikitext"


def test_ptb_preset_local_files(shared_data, tmp_path):
    corpus = preset(shared_data, tmp_path, "ptb", "ptb/ptb.valid.txt", validation_fraction=0.0, test_fraction=0.0)
    sentences = list(corpus.splits["train"].documents())
    lines = (shared_data / "ptb/ptb.valid.txt").read_text(encoding="utf-8").splitlines()
    assert len(sentences) == len(lines)
    assert not any("<unk>" in sentence or " n't" in sentence for sentence in sentences)


def test_lambada_preset_jsonl(shared_data, tmp_path):
    corpus = preset(shared_data, tmp_path, "lambada", "lambada/lambada_test.jsonl")
    counts = {name: sum(1 for _ in split.documents()) for name, split in corpus.splits.items()}
    assert sum(counts.values()) == 5153
    first = next(corpus.splits["train"].documents())
    assert first.startswith("In my palm is a clear stone")
    assert not any("\u201c" in document for document in corpus.splits["test"].documents())


def test_text8_preset_position_split(shared_data, tmp_path):
    corpus = preset(shared_data, tmp_path, "text8", "text8/text8_200K.txt")
    parts = {name: "".join(split.documents()) for name, split in corpus.splits.items()}
    original = (shared_data / "text8/text8_200K.txt").read_text(encoding="ascii")
    assert parts["train"] + parts["validation"] + parts["test"] == original
    assert len(parts["train"]) / len(original) == pytest.approx(0.9, abs=1e-4)


def test_lm1b_preset_glob(shared_data, tmp_path):
    corpus = preset(shared_data, tmp_path, "lm1b", "lm1b_sample/*.tokens")
    assert corpus.splits["train"].fingerprint["file_count"] == 2
    total = sum(sum(1 for _ in split.documents()) for split in corpus.splits.values())
    lines = sum(
        1
        for name in ("1b_benchmark.dev.tokens", "1b_benchmark.test.tokens")
        for line in (shared_data / "lm1b_sample" / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    assert total == lines


def test_hf_dataset_folder_without_train(tmp_path):
    folder = tmp_path / "evalset"
    write(folder / "test.jsonl", "".join(json.dumps({"text": f"passage {i}"}) + "\n" for i in range(5)))
    corpus = build_corpus({
        "corpus": "hf", "hf_name": str(folder), "hf_splits": {"test": "test"},
        "cache_dir": str(tmp_path / "c"),
    })
    assert list(corpus.splits) == ["test"]
    assert list(corpus.splits["test"].documents()) == [f"passage {i}" for i in range(5)]
    fingerprint = corpus.splits["test"].fingerprint
    assert fingerprint["num_rows"] == 5
    assert fingerprint["dataset_fingerprint"]


def test_hf_dataset_folder_missing_split(tmp_path):
    folder = tmp_path / "evalset"
    write(folder / "train.jsonl", json.dumps({"text": "row"}) + "\n")
    with pytest.raises(DataConfigError, match=r"has no split 'validation' \(for validation\); its splits are \['train'\]"):
        build_corpus({"corpus": "hf", "hf_name": str(folder), "cache_dir": str(tmp_path / "c")})


def test_stdlib_without_sources_error(tmp_path, monkeypatch):
    import sedd.data.stdlib_corpus as stdlib_corpus

    monkeypatch.setattr(stdlib_corpus, "stdlib_root", lambda: tmp_path)
    with pytest.raises(DataUnavailableError, match="no Python source files in the standard library folder"):
        build_corpus({"corpus": "stdlib", "cache_dir": str(tmp_path / "c")})
