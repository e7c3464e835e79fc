"""The shared base of the sampling and infilling panes: run and checkpoint choice, background generation, progress, cancel.

Generation runs in a thread worker because it loads torch and the model (seconds) and then
samples (seconds to minutes). The service reports each sampler step through a progress
callback, which posts a coalescing message to the UI. Escape sets the ``threading.Event``
passed to the service as ``cancel``. The sampler checks it before each step and the service
then raises ``GenerationCancelled``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Label, ProgressBar, Select, Static

from workbench.errors import GenerationCancelled
from workbench.store import Run
from workbench.tui.formatting import format_bytes, format_step
from workbench.tui.screens.base import PaneScreen
from workbench.tui.screens.run_picker import RunPickerScreen
from workbench.tui.widgets.generated_view import GeneratedView
from workbench.tui.widgets.sampler_form import SamplerForm, SamplerSettings

if TYPE_CHECKING:
    from workbench.services import CheckpointInfo, GeneratedText

# A service call with the prompt and sampler settings bound. The pane adds ``checkpoint``,
# ``progress`` and ``cancel`` as keyword arguments.
GenerationCall = Callable[..., "list[GeneratedText]"]
LATEST_PROMPT = "latest (model/)"


def generation_bindings(mode: str) -> list[Binding]:
    """Return the keys of a generation pane, with binding ids under ``mode``."""
    return [
        Binding("ctrl+g", "generate", "Generate", id=f"{mode}.generate", tooltip="Generate in the background"),
        Binding("escape", "cancel", "Cancel", id=f"{mode}.cancel", tooltip="Stop the generation at the next step, or leave a field"),
        Binding("ctrl+r", "pick_run", "Run", id=f"{mode}.pick_run", tooltip="Choose the run whose model generates"),
    ]


def describe_model(run: Run) -> str:
    """Return one line on a run and whether its EMA model folder exists yet."""
    model_dir = Path(run.run_dir) / "model" if run.run_dir else None
    if model_dir is not None and (model_dir / "config.json").is_file():
        weights = "EMA weights of the latest checkpoint (model/)"
    else:
        weights = "no model yet: it is written with the run's first checkpoint"
    return f"run #{run.id} {run.experiment.exp_id} · {run.status.value} · step {format_step(run.last_step, run.total_steps)} · {weights}"


def checkpoint_label(info: CheckpointInfo) -> str:
    """Return a checkpoint's line in the checkpoint list: name, step, best mark and size."""
    step = "?" if info.step is None else str(info.step)
    best = " · best" if info.is_best else ""
    return f"{info.name} · step {step}{best} · {format_bytes(info.size)}"


class GenerationScreen(PaneScreen):
    """Base of the sampling and infilling panes. Subclasses add the prompt and call the service."""

    SHOW_LENGTH = True
    # Fields and the predictor list take typed keys. Starting on the results keeps the
    # number keys switching panes until the user picks a field.
    AUTO_FOCUS = "#results"

    class Progress(Message):
        """The sampler finished ``step`` of ``steps``. Only the newest unprocessed one is kept."""

        def __init__(self, step: int, steps: int) -> None:
            super().__init__()
            self.step = step
            self.steps = steps

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, GenerationScreen.Progress)

    def __init__(self) -> None:
        super().__init__()
        self._cancel: threading.Event | None = None
        self._checkpoints_run_id: int | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="model-line", classes="title-line")
        with Horizontal(id="checkpoint-row", classes="form-row"):
            yield Label("checkpoint")
            yield Select[str]([], prompt=LATEST_PROMPT, id="checkpoint", compact=True)
        yield from self.compose_prompt()
        yield SamplerForm(show_length=self.SHOW_LENGTH, id="sampler-form")
        with Horizontal(id="progress-row"):
            # A total of 1 draws an empty bar, while no total would animate an idle pane.
            yield ProgressBar(total=1, id="progress", show_eta=False)
            yield Static("idle", id="progress-text")
        with VerticalScroll(id="results"):
            yield GeneratedView(id="generated")

    def compose_prompt(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one(GeneratedView).show_message("Nothing generated yet: ctrl+g generates, Escape cancels")
        self.watch(self.app, "run_id", lambda _: self.describe_run())

    def on_screen_resume(self) -> None:
        # A running run may have written checkpoints since the pane was last shown.
        self.describe_run()

    @property
    def is_generating(self) -> bool:
        return self._cancel is not None

    # Run

    @work(thread=True, exclusive=True, group="generation-run", exit_on_error=False, description="Read run")
    def describe_run(self) -> None:
        """Read the run's line and its checkpoints in a thread, then show them."""
        run_id = self.workbench_app.run_id
        if run_id is None:
            line, checkpoints = "No run chosen: ctrl+r chooses one", []
        else:
            line = describe_model(self.workbench.store.get_run(run_id))
            checkpoints = self.workbench.list_checkpoints(run_id)
        self.app.call_from_thread(self._show_run, run_id, Text(line), checkpoints)

    def _show_run(self, run_id: int | None, line: Text, checkpoints: list[CheckpointInfo]) -> None:
        if run_id != self.workbench_app.run_id:
            return  # the user chose another run while this one was read
        self.query_one("#model-line", Static).update(line)
        select = self.query_one("#checkpoint", Select)
        # set_options clears the choice, so a checkpoint that still exists is chosen again.
        chosen = select.value if isinstance(select.value, str) and run_id == self._checkpoints_run_id else None
        select.set_options([(checkpoint_label(info), info.name) for info in checkpoints])
        if chosen is not None and any(info.name == chosen for info in checkpoints):
            select.value = chosen
        self._checkpoints_run_id = run_id

    @property
    def checkpoint(self) -> str | None:
        """The chosen checkpoint's file name, or ``None`` for the latest ``model/`` folder."""
        value = self.query_one("#checkpoint", Select).value
        return value if isinstance(value, str) else None

    def action_pick_run(self) -> None:
        def chosen(run_id: int | None) -> None:
            if run_id is not None:
                self.workbench_app.run_id = run_id

        picker = RunPickerScreen(self.workbench.store, "Run to generate with", current=self.workbench_app.run_id)
        self.app.push_screen(picker, chosen)

    # Generation

    def action_generate(self) -> None:
        run_id = self.workbench_app.run_id
        if run_id is None:
            self.notify("No run chosen; press ctrl+r to choose one", severity="warning")
            return
        if self.is_generating:
            self.notify("A generation is running; Escape cancels it", severity="warning")
            return
        try:
            settings = self.query_one(SamplerForm).settings()
            call = self.prepare(run_id, settings)
        except ValueError as error:
            self.notify(str(error), title="Invalid setting", severity="error", markup=False)
            return
        self._cancel = threading.Event()
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#progress-text", Static).update("loading the model ...")
        self.generate(call, self.checkpoint, self._cancel, settings)

    def prepare(self, run_id: int, settings: SamplerSettings) -> GenerationCall:
        """Return the generation service with the prompt bound. Raises ``ValueError`` for an invalid prompt."""
        raise NotImplementedError(f"{type(self).__name__} must say which service generates")

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False, description="Generate")
    def generate(
        self, call: GenerationCall, checkpoint: str | None, cancel: threading.Event, settings: SamplerSettings
    ) -> None:
        def progress(step: int, steps: int) -> None:
            self.post_message(self.Progress(step, steps))

        try:
            texts = call(checkpoint=checkpoint, progress=progress, cancel=cancel)
        except GenerationCancelled:
            texts = None
        except Exception:
            # The screen's worker handler shows the error, so this only resets the pane.
            self.app.call_from_thread(self._failed)
            raise
        self.app.call_from_thread(self._finished, texts, settings)

    def _failed(self) -> None:
        self._cancel = None
        self.query_one("#progress-text", Static).update("failed: see the notification")

    def on_generation_screen_progress(self, message: Progress) -> None:
        self.query_one("#progress", ProgressBar).update(total=message.steps, progress=message.step)
        self.query_one("#progress-text", Static).update(f"step {message.step}/{message.steps}")

    def _finished(self, texts: list[GeneratedText] | None, settings: SamplerSettings) -> None:
        self._cancel = None
        if texts is None:
            self.query_one("#progress-text", Static).update("cancelled")
            self.notify("Generation cancelled; nothing was saved", title="Cancelled")
            return
        saved = " · saved to the store" if settings.save else " · not saved"
        self.query_one("#progress-text", Static).update(f"done: {len(texts)} texts{saved}")
        self.show_results(texts)

    def show_results(self, texts: list[GeneratedText]) -> None:
        self.query_one(GeneratedView).show_texts(texts)

    def action_cancel(self) -> None:
        if self._cancel is None:
            # Nothing to cancel: Escape hands the keys back from a field to the pane.
            self.query_one("#results").focus()
            return
        self._cancel.set()
        self.query_one("#progress-text", Static).update("cancelling at the next step ...")
