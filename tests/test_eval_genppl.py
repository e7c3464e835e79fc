"""Generative perplexity under a tiny GPT-2 built in a temporary folder (no download)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sedd.eval import ReferenceModelUnavailable, generative_perplexity, load_reference_model

WORDS = "the a cat dog sat ran on under mat log and then it was".split()


def build_reference_model(folder: Path, *, n_positions: int = 32, uniform: bool = False) -> Path:
    """Save a one-layer GPT-2 and a word-level tokenizer into ``folder``; return the folder.

    With ``uniform`` every logit is 0, so each token has probability 1 / vocabulary size.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(["<unk>", "<bos>", "<eos>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>"
    )
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=n_positions, n_embd=32, n_layer=1, n_head=2,
        bos_token_id=1, eos_token_id=2,
    )
    model = GPT2LMHeadModel(config)
    if uniform:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory) -> Path:
    return build_reference_model(tmp_path_factory.mktemp("gpt2"))


def _manual_nll(reference, text: str) -> tuple[float, int]:
    """Return the float64 NLL sum and token count of one text, with one full forward pass."""
    ids = [reference.tokenizer.bos_token_id, *reference.tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logits = reference.model(input_ids=torch.tensor([ids])).logits[0].double()
    log_probs = torch.log_softmax(logits[:-1], dim=-1)
    targets = torch.tensor(ids[1:])
    return float(-log_probs[torch.arange(len(targets)), targets].sum()), len(targets)


def test_genppl_uniform_equals_vocab(tmp_path):
    folder = build_reference_model(tmp_path / "uniform", uniform=True)
    reference = load_reference_model(str(folder))
    result = generative_perplexity(["the cat sat on the mat", "a dog ran"], reference)
    vocab_size = len(WORDS) + 3
    assert result.perplexity == pytest.approx(vocab_size, rel=1e-6)
    assert result.num_tokens == 9
    assert result.num_texts == 2


def test_genppl_token_weighted(reference_dir):
    reference = load_reference_model(str(reference_dir))
    texts = ["the cat sat on the mat and then it ran", "a dog"]
    result = generative_perplexity(texts, reference, batch_size=1)
    pieces = [_manual_nll(reference, text) for text in texts]
    expected = sum(nll for nll, _ in pieces) / sum(count for _, count in pieces)
    assert result.nll_per_token == pytest.approx(expected, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(expected), rel=1e-5)
    assert result.num_tokens == 12


def test_genppl_batching_matches_single(reference_dir):
    reference = load_reference_model(str(reference_dir))
    texts = ["the cat sat on the mat", "a dog ran under the log and it was", "cat"]
    single = generative_perplexity(texts, reference, batch_size=1)
    batched = generative_perplexity(texts, reference, batch_size=3)
    assert batched.nll_per_token == pytest.approx(single.nll_per_token, rel=1e-5)


def test_genppl_windows_score_every_token(tmp_path):
    folder = build_reference_model(tmp_path / "short", n_positions=8)
    reference = load_reference_model(str(folder))
    text = " ".join(WORDS * 2)  # 28 tokens after BOS: windows start at 0, 7, 14 and 21
    calls = []
    result = generative_perplexity([text], reference, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    assert result.num_tokens == 28
    assert calls == [(2, 4), (4, 4)]
    assert math.isfinite(result.perplexity)


def test_genppl_missing_folder():
    with pytest.raises(ReferenceModelUnavailable, match="not found"):
        load_reference_model("/nonexistent/reference-model")


def test_genppl_offline_not_cached(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ReferenceModelUnavailable, match="HF_HUB_OFFLINE"):
        load_reference_model("sedd-workbench-test/no-such-model")


def test_genppl_rejects_empty_texts(reference_dir):
    reference = load_reference_model(str(reference_dir))
    with pytest.raises(ValueError, match="empty"):
        generative_perplexity(["", ""], reference)


def test_genppl_not_cached_no_download(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    # Keeps the hub client offline should the code go to the network anyway.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ReferenceModelUnavailable) as caught:
        load_reference_model("sedd-workbench-test/no-such-model")
    assert str(caught.value) == (
        "reference model 'sedd-workbench-test/no-such-model' is not in the local Hugging Face cache, "
        "and no download was requested"
    )
    assert caught.value.download_possible


def test_analyze_skip_names_options():
    from workbench.analysis.generation import _reference_fixes
    from workbench.cli_analysis import build_settings

    assert _reference_fixes("gpt2", True) == (
        "Pass --reference-model gpt2 to download it, --reference-model FOLDER for a model saved with "
        "save_pretrained, or --reference-model none to skip this metric without the lookup"
    )
    assert not build_settings(True, None, {}).download_reference
    assert build_settings(True, "gpt2", {}).download_reference
    assert build_settings(True, "none", {}).reference_model is None
