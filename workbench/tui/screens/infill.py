"""The infilling pane: text generated into masked spans of a prompt, or between a prefix and a suffix."""

from __future__ import annotations

from functools import partial

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label, TabbedContent, TabPane

from workbench.tui.screens.generation import GenerationCall, GenerationScreen, generation_bindings
from workbench.tui.widgets.sampler_form import SamplerSettings, parse_count

EXAMPLE_TEMPLATE = "The [MASK:8] of the [MASK:6] was"


class InfillScreen(GenerationScreen):
    """Fills ``[MASK:N]`` spans (N tokens each), or N tokens between a prefix and a suffix."""

    MODE = "infill"
    SHOW_LENGTH = False
    BINDINGS = generation_bindings(MODE)

    def compose_prompt(self) -> ComposeResult:
        with TabbedContent(id="prompt-kind"):
            with TabPane("template", id="template-tab"):
                yield Input(EXAMPLE_TEMPLATE, id="template", placeholder="text with [MASK:N] spans to fill")
            with TabPane("prefix / suffix", id="prefix-tab"):
                yield Input(id="prefix", placeholder="prefix", compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("length")
                    yield Input("32", id="infill-length", type="integer", compact=True)
                yield Input(id="suffix", placeholder="suffix", compact=True)

    def prepare(self, run_id: int, settings: SamplerSettings) -> GenerationCall:
        common = dict(num=settings.num, steps=settings.steps, predictor=settings.predictor, seed=settings.seed, save=settings.save)
        if self.query_one(TabbedContent).active == "template-tab":
            template = self.query_one("#template", Input).value
            if "[MASK" not in template:
                raise ValueError(f"template {template!r} has no [MASK:N] span; mark each span to fill, e.g. {EXAMPLE_TEMPLATE!r}")
            return partial(self.workbench.infill, run_id, template=template, **common)
        prefix = self.query_one("#prefix", Input).value
        suffix = self.query_one("#suffix", Input).value
        if not prefix and not suffix:
            raise ValueError("give a prefix, a suffix or both; the length field sets how many tokens go between")
        length = parse_count(self.query_one("#infill-length", Input).value, "length", default=32) or 32
        return partial(self.workbench.infill, run_id, prefix=prefix, suffix=suffix, length=length, **common)
