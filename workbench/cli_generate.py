"""Generation commands: sample, infill, checkpoint listing, and the quickstart that trains and then samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from workbench import cli_format
from workbench.cli import Predictor, app, handle_errors, state

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.services import GeneratedText, RunProgress, Workbench
    from workbench.store import Run

StepsOption = Annotated[Optional[int], typer.Option(min=1, help="Sampling steps. [default: the run's diffusion.sampling.steps]")]
PredictorOption = Annotated[
    Optional[Predictor], typer.Option(help="Predictor. [default: the run's diffusion.sampling.predictor]")
]
SeedOption = Annotated[int, typer.Option(help="Random seed; the same seed gives the same text.")]
DeviceOption = Annotated[Optional[str], typer.Option(help="Torch device, such as cpu or cuda:0. [default: cuda if available]")]
SaveOption = Annotated[bool, typer.Option("--save", help="Store the texts with the run.")]
CheckpointOption = Annotated[
    Optional[str],
    typer.Option(
        help="Checkpoint whose EMA weights generate: a file in the run's checkpoints/ folder (best.pt, "
        "step_400.pt) or a path to one; `workbench checkpoints RUN` lists them. [default: the latest, in model/]"
    ),
]
GENERATED_STYLE = "bold cyan"


@app.command()
@handle_errors
def sample(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run whose EMA model samples.")],
    steps: StepsOption = None,
    num: Annotated[int, typer.Option(min=1, help="Number of samples.")] = 4,
    length: Annotated[Optional[int], typer.Option(min=1, help="Tokens per sample. [default: data.seq_len]")] = None,
    predictor: PredictorOption = None,
    seed: SeedOption = 0,
    device: DeviceOption = None,
    save: SaveOption = False,
    checkpoint: CheckpointOption = None,
) -> None:
    """Draw unconditional samples from a run's model and print them."""
    with state(ctx).workbench() as workbench:
        texts = workbench.sample(
            run_id, num=num, steps=steps, length=length, predictor=predictor.value if predictor else None,
            seed=seed, device=device, save=save, checkpoint=checkpoint,
        )  # fmt: skip
    print_texts(cli_format.console(), texts)


@app.command()
@handle_errors
def infill(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run whose EMA model fills in the text.")],
    prefix: Annotated[str, typer.Option(help="Text before the generated span.")] = "",
    suffix: Annotated[str, typer.Option(help="Text after the generated span.")] = "",
    length: Annotated[int, typer.Option(min=1, help="Tokens to generate between prefix and suffix.")] = 32,
    template: Annotated[
        Optional[str],
        typer.Option(help='Text with spans to generate marked [MASK:N] (N tokens), e.g. "The [MASK:8] of [MASK:5]."'),
    ] = None,
    num: Annotated[int, typer.Option(min=1, help="Number of infillings.")] = 1,
    steps: StepsOption = None,
    predictor: PredictorOption = None,
    seed: SeedOption = 0,
    device: DeviceOption = None,
    save: SaveOption = False,
    checkpoint: CheckpointOption = None,
) -> None:
    """Fill in text between a prefix and a suffix, or in the masked spans of a template.

    Generated spans are shown between « and ».
    """
    if template is not None and (prefix or suffix):
        from workbench.errors import InvalidConfig

        raise InvalidConfig("use either --template or --prefix/--suffix, not both")
    with state(ctx).workbench() as workbench:
        texts = workbench.infill(
            run_id, prefix=prefix, suffix=suffix, length=length, template=template, num=num, steps=steps,
            predictor=predictor.value if predictor else None, seed=seed, device=device, save=save,
            checkpoint=checkpoint,
        )  # fmt: skip
    print_texts(cli_format.console(), texts)


@app.command()
@handle_errors
def checkpoints(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run whose checkpoints to list.")],
) -> None:
    """List a run's training checkpoints: name, step, best mark, size and modification time.

    Pass a name to `workbench sample` or `workbench infill` as --checkpoint.
    """
    with state(ctx).workbench() as workbench:
        found = workbench.list_checkpoints(run_id)
    if not found:
        typer.echo(f"Run {run_id} has no checkpoints yet; training.checkpoint_every sets how often they are written.")
        return
    cli_format.console().print(cli_format.checkpoints_table(found, f"Checkpoints of run {run_id}"))


@app.command()
@handle_errors
def quickstart(
    ctx: typer.Context,
    overrides: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a key of the quickstart config, as key.path=value; repeatable."),
    ] = None,
    gpu: Annotated[Optional[str], typer.Option(help="Devices: cpu, auto, 0 or 0,1. [default: the config's gpu]")] = None,
) -> None:
    """Train a small SEDD model on Python's standard library, then sample and infill from it.

    Creates the store and the `quickstart` experiment when needed, shows live progress, and
    prints the validation bits per token, a few samples and an infilling example.
    """
    out = cli_format.console()
    with state(ctx).workbench() as workbench:
        run = workbench.start_quickstart(overrides or [], gpu)
        out.print(f"Training run {run.id} of quickstart on {cli_format.devices(run.devices)}; log: {run.run_dir}/run.log")
        try:
            _follow_with_progress(workbench, run, out)
        except KeyboardInterrupt:
            out.print(f"Stopping run {run.id}; it writes a checkpoint first ...")
            workbench.stop(run.id)
        result = workbench.finish_quickstart(run.id)

    bpt = cli_format.number(result.val_bpt, 3)
    nats = cli_format.number(result.val_loss, 3)
    out.print(
        f"\nRun {result.run.id} {result.run.status.value} at step {result.run.last_step}: "
        f"validation {bpt} bits per token ({nats} nats per token)."
    )
    if result.run.message:
        # Says, for example, that the max_minutes cap ended training before training.steps.
        out.print(result.run.message, markup=False)
    out.print("\n[bold]Samples[/]")
    print_texts(out, result.samples)
    out.print("\n[bold]Infilling[/] (generated spans between « and »)")
    out.print(result.infill_prompt.rstrip(), markup=False, style="dim")
    print_texts(out, result.infill)
    _print_next_steps(out, result.run.id)


def print_texts(out: Console, texts: Sequence[GeneratedText]) -> None:
    """Print each text after a numbered rule, generated segments marked « » and coloured."""
    from rich.text import Text

    for number, generated in enumerate(texts, start=1):
        out.rule(f"{number}", style="dim", align="left")
        line = Text()
        for segment in generated.segments:
            if segment.generated and len(generated.segments) > 1:
                line.append(f"«{segment.text}»", style=GENERATED_STYLE)
            else:
                line.append(segment.text)
        out.print(line)


def _follow_with_progress(workbench: Workbench, run: Run, out: Console) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (
        TextColumn("step {task.completed:.0f}/{task.fields[total_steps]}"), BarColumn(),
        TextColumn("loss {task.fields[loss]}"), TextColumn("val bpt {task.fields[bpt]}"),
        TextColumn("{task.fields[speed]} tok/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=out, transient=False) as display:
        task = display.add_task(
            "train", total=run.total_steps, total_steps=run.total_steps or "?", loss="-", bpt="-", speed="-"
        )
        for progress in workbench.follow_run(run.id):
            _show(display, task, progress)
            if progress.finished:
                # A run that max_minutes ends early is done; a full bar replaces the stale ETA.
                display.update(task, total=progress.step, total_steps=progress.step)


def _show(display: object, task: object, progress: RunProgress) -> None:
    display.update(  # type: ignore[attr-defined]
        task, completed=progress.step, loss=cli_format.number(progress.train_loss, 3),
        bpt=cli_format.number(progress.val_bpt, 3), speed=cli_format.throughput(progress.tokens_per_sec),
    )  # fmt: skip


def _print_next_steps(out: Console, run_id: int) -> None:
    out.print("\n[bold]Next[/]")
    for command, purpose in (
        ("workbench list", "experiments and their latest runs"),
        ("workbench show quickstart", "the config and every run"),
        (f"workbench sample {run_id} --num 2 --steps 256", "more samples, with more steps"),
        (f'workbench infill {run_id} --template "import [MASK:10]"', "your own infilling prompt"),
        ("workbench clone quickstart bigger --set model.n_blocks=6", "a variant of the experiment"),
        ("workbench run bigger", "train it in the background; `workbench status` to follow"),
        ("workbench tui", "the terminal UI"),
    ):
        out.print(f"  {command:<60} {purpose}", markup=False, highlight=False)
