"""The sampler settings shared by the sampling and infilling panes."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select

PREDICTORS = ("euler", "analytic")


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler settings. ``None`` means the run's own ``diffusion.sampling`` or ``data.seq_len`` value."""

    predictor: str | None
    steps: int | None
    num: int
    length: int | None
    seed: int
    save: bool


def parse_count(text: str, name: str, *, default: int | None) -> int | None:
    """Return a positive integer typed in a field, ``default`` for an empty field.

    Raises ``ValueError`` naming the field and the value when the text is not a positive integer.
    """
    text = text.strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}; leave it empty for the run's default")
    return value


class SamplerForm(Vertical):
    """Predictor, steps, number, length and seed fields, and a save-to-store check box, in two rows.

    Empty steps and length fields take the run's config values. ``show_length=False`` hides
    the length field, for prompts that fix the length themselves.
    """

    DEFAULT_CSS = """
    SamplerForm { height: auto; }
    SamplerForm Horizontal { height: 1; }
    SamplerForm Label { width: 11; padding: 0 1; }
    SamplerForm Input { width: 10; }
    SamplerForm Select { width: 14; }
    SamplerForm Checkbox { border: none; padding: 0 1; }
    """

    def __init__(self, *, show_length: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_length = show_length

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label("predictor")
            yield Select([(name, name) for name in PREDICTORS], prompt="run's", id="predictor", compact=True)
            yield Label("steps")
            yield Input(placeholder="run's", id="steps", type="integer", compact=True)
            yield Label("number")
            yield Input("4", id="num", type="integer", compact=True)
        with Horizontal():
            if self.show_length:
                yield Label("length")
                yield Input(placeholder="run's", id="length", type="integer", compact=True)
            yield Label("seed")
            yield Input("0", id="seed", type="integer", compact=True)
            # Off by default, as the command line's --save is, so trying settings stores nothing.
            yield Checkbox("save to store", False, id="save", compact=True)

    def settings(self) -> SamplerSettings:
        """Return the typed settings. Raises ``ValueError`` naming the field at fault."""
        predictor = self.query_one("#predictor", Select).value
        length = parse_count(self.query_one("#length", Input).value, "length", default=None) if self.show_length else None
        seed_text = self.query_one("#seed", Input).value.strip() or "0"
        try:
            seed = int(seed_text)
        except ValueError:
            raise ValueError(f"seed must be a whole number, got {seed_text!r}") from None
        return SamplerSettings(
            predictor=predictor if isinstance(predictor, str) else None,
            steps=parse_count(self.query_one("#steps", Input).value, "steps", default=None),
            num=parse_count(self.query_one("#num", Input).value, "num", default=1) or 1,
            length=length,
            seed=seed,
            save=self.query_one("#save", Checkbox).value,
        )
