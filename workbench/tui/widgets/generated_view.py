"""Generated texts, one block per sequence, with the model-written spans highlighted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from workbench.services import GeneratedText


class GeneratedView(Static):
    """Shows texts numbered, separated by a rule. Generated segments get the highlight style."""

    DEFAULT_CSS = """
    GeneratedView { height: auto; padding: 0 1; }
    GeneratedView > .generated-view--generated { background: $success 25%; text-style: underline; }
    GeneratedView > .generated-view--header { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"generated-view--generated", "generated-view--header"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._texts: list[GeneratedText] = []

    @property
    def texts(self) -> list[GeneratedText]:
        """The texts shown."""
        return list(self._texts)

    def show_texts(self, texts: Sequence[GeneratedText], *, highlight: bool = True, note: str = "") -> None:
        """Show the texts. With ``highlight`` the generated segments stand out from fixed ones."""
        self._texts = list(texts)
        generated_style = self.get_component_rich_style("generated-view--generated") if highlight else ""
        header_style = self.get_component_rich_style("generated-view--header")
        output = Text()
        if note:
            output.append(note + "\n", style=header_style)
        for index, generated in enumerate(texts, start=1):
            output.append(f"── {index} ──\n", style=header_style)
            for segment in generated.segments:
                output.append(segment.text, style=generated_style if segment.generated else "")
            output.append("\n")
        self.update(output)

    def show_message(self, message: str) -> None:
        self._texts = []
        self.update(Text(message, style="italic"))
