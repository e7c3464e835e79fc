"""The sampling pane: unconditional samples from a run's EMA model."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from workbench.tui.screens.generation import GenerationCall, GenerationScreen, generation_bindings
from workbench.tui.widgets.sampler_form import SamplerSettings

if TYPE_CHECKING:
    from workbench.services import GeneratedText


class SamplingScreen(GenerationScreen):
    """Draws samples with the chosen predictor, steps, number, length and seed."""

    MODE = "sampling"
    BINDINGS = generation_bindings(MODE)

    def prepare(self, run_id: int, settings: SamplerSettings) -> GenerationCall:
        return partial(
            self.workbench.sample,
            run_id,
            num=settings.num,
            steps=settings.steps,
            length=settings.length,
            predictor=settings.predictor,
            seed=settings.seed,
            save=settings.save,
        )

    def show_results(self, texts: list[GeneratedText]) -> None:
        # Every token of a sample is generated, so highlighting would colour everything.
        self.query_one("#generated").show_texts(texts, highlight=False)
