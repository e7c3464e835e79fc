"""Detokenizers of WikiText, PTB, lm1b and LAMBADA: single rules and whole real files."""

from __future__ import annotations

import json

import pytest

from sedd.data.detokenizers import (
    get_detokenizer,
    lambada_detokenize,
    lm1b_detokenize,
    ptb_detokenize,
    wikitext_detokenize,
)


@pytest.mark.parametrize(
    ("tokenized", "expected"),
    [
        (" = Valkyria Chronicles III = ", "= Valkyria Chronicles III ="),
        (" = = Gameplay = = ", "== Gameplay =="),
        (" = = = Plot = = = ", "=== Plot ==="),
        ("a 5 @,@ 000 @-@ strong army", "a 5,000-strong army"),
        ("pi is 3 @.@ 14", "pi is 3.14"),
        ('the " Nameless " , a unit', 'the "Nameless", a unit'),
        ("( born 1990 ) was", "(born 1990) was"),
        ("the game 's players ' turns", "the game's players' turns"),
        ("it wasn 't until", "it wasn't until"),
        ("cost $ 3 million ; then", "cost $3 million; then"),
        ("It was 5 \u00b0 C .", "It was 5\u00b0C."),
        ("x = y", "x = y"),
    ],
)
def test_wikitext_rules(tokenized, expected):
    assert wikitext_detokenize(tokenized) == expected


@pytest.mark.parametrize(
    ("tokenized", "expected"),
    [
        (" the company 's shares did n't rise ", "the company's shares didn't rise"),
        ("N years old", "1 years old"),
        ("$ N million", "$1 million"),
        ("N N yes", "1 1 yes"),
        ("mr. <unk> is chairman", "mr. ? is chairman"),
        ("a\\/b", "a/b"),
        ("investors ' money", "investors' money"),
        ("Nasdaq N", "Nasdaq 1"),
    ],
)
def test_ptb_rules(tokenized, expected):
    assert ptb_detokenize(tokenized) == expected


@pytest.mark.parametrize(
    ("tokenized", "expected"),
    [
        ("But now , it 's looking", "But now, it's looking"),
        ("who won 't talk .", "who won't talk."),
        ('to " house arrest , " saying', 'to "house arrest," saying'),
        ("at http : / / www.example.com now", "at http://www.example.com now"),
        ("( Reuters ) - $ 2,900", "(Reuters) - $2,900"),
        ("PRNewswire / -- Thousands", "PRNewswire/-- Thousands"),
    ],
)
def test_lm1b_rules(tokenized, expected):
    assert lm1b_detokenize(tokenized) == expected


def test_lambada_quotes():
    assert lambada_detokenize(" \u201cHi,\u201d she said. ") == '"Hi," she said.'


def test_rules_stay_within_lines():
    text = " first line , \n second 's line . "
    joined = wikitext_detokenize(text)
    assert joined == "first line,\nsecond's line."
    assert joined.split("\n") == [wikitext_detokenize(line) for line in text.split("\n")]


def test_unknown_detokenizer():
    assert get_detokenizer(None) is None
    with pytest.raises(KeyError, match="unknown detokenizer 'nope'"):
        get_detokenizer("nope")


def test_wikitext_real_file(shared_data):
    raw = (shared_data / "wikitext-2-raw/valid.txt").read_text(encoding="utf-8")
    text = wikitext_detokenize(raw)
    assert raw.count(" @-@ ") > 0
    assert " @-@ " not in text
    assert " @,@ " not in text
    assert " @.@ " not in text
    assert " , " not in text
    assert "= = " not in text
    assert text.count("\n") == raw.count("\n")
    # Only spaces are removed or merged; every other character survives.
    assert text.replace(" ", "").replace("@", "") == raw.replace(" ", "").replace("@", "")


def test_ptb_real_file(shared_data):
    raw = (shared_data / "ptb/ptb.valid.txt").read_text(encoding="utf-8")
    text = ptb_detokenize(raw)
    assert "<unk>" not in text
    assert " n't" not in text
    assert " 's " not in text
    assert text.count("\n") == raw.count("\n")


def test_lambada_real_file(shared_data):
    lines = (shared_data / "lambada/lambada_test.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [lambada_detokenize(json.loads(line)["text"]) for line in lines]
    assert not any("\u201c" in text or "\u201d" in text for text in texts)
    assert all(text == text.strip() for text in texts)
