"""Infilling analysis: span layouts, the baseline token, and a fill by an oracle model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from sedd.config import ExperimentConfig
from sedd.eval import score_infill
from sedd.graph import Absorbing
from sedd.noise import LogLinearNoise
from workbench.analysis.infill import baseline_token, fill_blocks, most_frequent_token, span_layout
from workbench.analysis.loading import LoadedRun
from workbench.analysis.progress import Progress
from workbench.analysis.settings import AnalysisSettings

NUM_TOKENS = 6
# Log-score of every change the oracle rules out; e^-60 is far below any sampling threshold.
IMPOSSIBLE = -60.0


class OracleModel(nn.Module):
    """Exact log-scores of a point mass on the reference row that matches the visible tokens.

    For a point mass on ``a`` under the absorbing graph, the ratio from the mask to ``a_l`` is
    ``1 / expm1(sigma)`` and every other ratio out of the mask is 0.
    """

    def __init__(self, answers: torch.Tensor):
        super().__init__()
        self.register_buffer("answers", answers)  # (N, L) int64
        self.mask_index = NUM_TOKENS

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        visible = x != self.mask_index  # (B, L)
        agreement = ((x[:, None, :] == self.answers[None]) & visible[:, None, :]).sum(-1)  # (B, N)
        answer = self.answers[agreement.argmax(dim=1)]  # (B, L)
        log_score = torch.full((*x.shape, NUM_TOKENS + 1), IMPOSSIBLE)
        ratio = -torch.log(torch.expm1(sigma.float()))[:, None].expand_as(x)  # (B, L)
        masked = ~visible
        log_score[masked] = log_score[masked].scatter(-1, answer[masked][:, None], ratio[masked][:, None])
        return log_score.scatter(-1, x[..., None], 0.0)


def _loaded(model: nn.Module) -> LoadedRun:
    config = ExperimentConfig(exp_id="oracle")
    return LoadedRun(
        exp_id="oracle", run=None, run_dir=Path("."), config=config, model=model,
        graph=Absorbing(NUM_TOKENS), noise=LogLinearNoise(1e-3), tokenizer=None, device=torch.device("cpu"),
    )  # fmt: skip


def test_infill_oracle_accuracy_one():
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, NUM_TOKENS, (3, 12), generator=generator)
    spans = span_layout(12, 4, "spread", 2)
    settings = AnalysisSettings(steps=16, infill_examples=3, infill_span_length=4, infill_layout="spread", infill_spans=2)
    filled = fill_blocks(_loaded(OracleModel(blocks)), blocks, spans, settings, Progress())
    scores = score_infill(blocks, filled, [spans] * 3)
    assert scores.token_accuracy == 1.0
    assert scores.exact_span_match == 1.0
    assert scores.span_bleu == pytest.approx(1.0)


def test_infill_keeps_visible_tokens():
    blocks = torch.arange(10).remainder(NUM_TOKENS)[None]  # (1, 10)
    wrong_answers = (blocks + 1) % NUM_TOKENS
    spans = span_layout(10, 4, "middle")
    settings = AnalysisSettings(steps=8, infill_examples=1, infill_span_length=4)
    # The oracle's only reference row differs at every position, so the fill is wrong but the
    # visible context is kept.
    filled = fill_blocks(_loaded(OracleModel(wrong_answers)), blocks, spans, settings, Progress())
    assert filled[0, :3].tolist() == blocks[0, :3].tolist()
    assert filled[0, 7:].tolist() == blocks[0, 7:].tolist()
    assert filled[0, 3:7].tolist() == wrong_answers[0, 3:7].tolist()


@pytest.mark.parametrize(
    ("layout", "count", "expected"),
    [
        ("middle", 1, [(6, 10)]),
        ("start", 1, [(0, 4)]),
        ("end", 1, [(12, 16)]),
        ("spread", 2, [(3, 7), (9, 13)]),
    ],
)
def test_span_layout_positions(layout, count, expected):
    assert span_layout(16, 4, layout, count) == expected


def test_span_layout_rejects_full_cover():
    with pytest.raises(ValueError, match="nothing visible"):
        span_layout(8, 4, "spread", 2)


def test_most_frequent_token_counts():
    assert most_frequent_token(torch.tensor([[3, 1, 3], [2, 3, 1]])) == 3


def test_baseline_token_from_other_blocks():
    examples = torch.tensor([[5, 5, 5, 5]])
    others = torch.tensor([[2, 2, 1, 0]])
    token, source = baseline_token(examples, others, [(1, 3)])
    assert token == 2
    assert "not used as examples" in source


def test_baseline_token_from_visible_context():
    # Hidden positions are all 4; the visible ones are mostly 0.
    examples = torch.tensor([[0, 4, 4, 0], [0, 4, 4, 1]])
    token, source = baseline_token(examples, examples[:0], [(1, 3)])
    assert token == 0
    assert source == "the visible context of the examples"


def test_oracle_ratio_matches_graph():
    # The oracle's mask-to-answer ratio is the exact one of the absorbing graph.
    sigma = torch.tensor([0.7])
    expected = -math.log(math.expm1(0.7))
    log_score = OracleModel(torch.tensor([[2]]))(torch.tensor([[NUM_TOKENS]]), sigma)
    assert log_score[0, 0, 2].item() == pytest.approx(expected, rel=1e-6)
    assert log_score[0, 0, NUM_TOKENS].item() == 0.0
