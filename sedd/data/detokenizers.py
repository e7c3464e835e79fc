"""Undo the word tokenization of classic language-modelling corpora.

WikiText, Penn Treebank and the One Billion Word benchmark are distributed as
space-separated tokens (``it 's``, ``( 1990 )``, ``5 @,@ 000``). A subword tokenizer
such as GPT-2's was trained on ordinary text, so the SEDD paper's zero-shot evaluations
restore ordinary spacing before tokenizing. The rules below are this project's own.

Every rule works within a line (no pattern crosses a newline), so a document may be
detokenized in pieces cut at line ends with the same result as in one piece.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Detokenizer = Callable[[str], str]
Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]

# Spaces and tabs only: "\s" would also match the newline and join lines.
_CLITIC = r" '(s|re|ve|ll|d|m|t)\b"


def _rules(*pairs: tuple[str, str | Callable[[re.Match[str]], str]]) -> list[Rule]:
    return [(re.compile(pattern, re.MULTILINE), replacement) for pattern, replacement in pairs]


def _apply(rules: list[Rule], text: str) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


_SPACING_RULES = _rules(
    # Punctuation binds to the previous token when a space or the line end follows it.
    (r"[ \t]+([,.:;!?%])(?=[ \t]|$)", r"\1"),
    # Clitics split off as tokens: "it 's", "wasn 't", "they 're".
    (_CLITIC, r"'\1"),
    # Currency symbols bind to the amount: "$ 2,900" -> "$2,900".
    (r"([$£€#])[ \t]+(?=\d)", r"\1"),
    # Opening brackets bind to the next token, closing ones to the previous token.
    (r"([(\[{])[ \t]+", r"\1"),
    (r"[ \t]+([)\]}])", r"\1"),
    # After the punctuation rules, so that '" kickbacks , "' ends as '"kickbacks,"'.
    (r'"[ \t]+([^"\n]*?)[ \t]+"', r'"\1"'),
)

_LINE_RULES = _rules(
    (r"^[ \t]+|[ \t]+$", ""),
    (r"[ \t]{2,}", " "),
)

_WIKITEXT_RULES = _rules(
    # "@-@", "@,@" and "@.@" mark a hyphen, thousands separator or decimal point that the
    # WikiText tokenizer split out of a word or number: "5 @,@ 000" -> "5,000".
    (r"[ \t]@([-,.])@[ \t]", r"\1"),
    # Heading markers "= = Gameplay = =" become "== Gameplay ==".
    (r"(?<!\S)=(?:[ \t]=)+(?!\S)", lambda match: re.sub(r"[ \t]", "", match.group(0))),
    # The plural possessive "players ' turns" -> "players' turns".
    (r"s[ \t]'(?=[ \t])", "s'"),
    (r"[ \t]°[ \t]", "°"),
)

_PTB_RULES = _rules(
    (r" n't\b", "n't"),
    (r"s[ \t]'(?=[ \t])", "s'"),
    (r"\\/", "/"),
    # PTB replaces every number by "N" and every rare word by "<unk>". As in the SEDD
    # paper's evaluation code, they become the number 1 and a "?" token.
    (r"(?<!\S)N(?!\S)", "1"),
)
# Applied after the spacing rules, so that "?" for a rare word keeps its spaces.
_PTB_UNKNOWN_RULES = _rules((r"<unk>", "?"),)

_LM1B_RULES = _rules(
    (r"(https?) : / / ", r"\1://"),
    (r"[ \t]/[ \t]", "/"),
    (r"'[ \t]+([^'\n]*?)[ \t]+'", r"'\1'"),
)

_LAMBADA_RULES = _rules(
    # The OpenAI LAMBADA file uses typographic double quotes; GPT-2 saw mostly ASCII ones.
    (r"[“”]", '"'),
)


def wikitext_detokenize(text: str) -> str:
    """Restore ordinary spacing in WikiText (raw or tokenized) lines."""
    text = _apply(_WIKITEXT_RULES, text)
    text = _apply(_SPACING_RULES, text)
    return _apply(_LINE_RULES, text)


def ptb_detokenize(text: str) -> str:
    """Restore ordinary spacing in Penn Treebank (Mikolov LM version) sentences."""
    text = _apply(_PTB_RULES, text)
    text = _apply(_SPACING_RULES, text)
    text = _apply(_PTB_UNKNOWN_RULES, text)
    return _apply(_LINE_RULES, text)


def lm1b_detokenize(text: str) -> str:
    """Restore ordinary spacing in One Billion Word benchmark sentences."""
    text = _apply(_LM1B_RULES, text)
    text = _apply(_SPACING_RULES, text)
    return _apply(_LINE_RULES, text)


def lambada_detokenize(text: str) -> str:
    """Normalise LAMBADA passages: ASCII double quotes, no padding around lines."""
    text = _apply(_LAMBADA_RULES, text)
    return _apply(_LINE_RULES, text)


DETOKENIZERS: dict[str, Detokenizer] = {
    "wikitext": wikitext_detokenize,
    "ptb": ptb_detokenize,
    "lm1b": lm1b_detokenize,
    "lambada": lambada_detokenize,
}


def get_detokenizer(name: str | None) -> Detokenizer | None:
    """Return the detokenizer registered as ``name``, or None for ``None``."""
    if name is None:
        return None
    if name not in DETOKENIZERS:
        raise KeyError(f"unknown detokenizer {name!r}; known: {sorted(DETOKENIZERS)}")
    return DETOKENIZERS[name]
