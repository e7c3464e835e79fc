"""Run commands: run, status, logs, stop, resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from workbench import cli_format
from workbench.cli import app, handle_errors, state

if TYPE_CHECKING:
    from workbench.services import Workbench
    from workbench.store import Run

GpuOption = Annotated[
    Optional[str],
    typer.Option(help="Devices, overriding the config's gpu: cpu, auto (least-loaded free GPU), 0, or 0,1."),
]
ForegroundOption = Annotated[
    bool,
    typer.Option("--foreground", "-f", help="Stay attached and stream the run's output; Ctrl-C stops the run."),
]


@app.command()
@handle_errors
def run(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(metavar="EXP", help="Experiment to train.")],
    gpu: GpuOption = None,
    foreground: ForegroundOption = False,
) -> None:
    """Start a training run of an experiment (in the background unless --foreground)."""
    with state(ctx).workbench() as workbench:
        started = workbench.launch(exp_id, gpu=gpu)
        _report_start(workbench, started, foreground)


@app.command()
@handle_errors
def resume(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run whose latest checkpoint the new run continues from.")],
    gpu: GpuOption = None,
    foreground: ForegroundOption = False,
) -> None:
    """Start a new run that continues from the latest checkpoint of a finished run."""
    with state(ctx).workbench() as workbench:
        started = workbench.resume(run_id, gpu=gpu)
        typer.echo(f"Run {started.id} resumes run {run_id} from {started.resume_checkpoint}.")
        _report_start(workbench, started, foreground)


@app.command()
@handle_errors
def status(
    ctx: typer.Context,
    exp_id: Annotated[Optional[str], typer.Argument(metavar="EXP", help="Only the runs of this experiment.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only queued and running runs.")] = False,
) -> None:
    """List runs with their status, after marking runs whose process is gone as failed or lost."""
    with state(ctx).workbench() as workbench:
        runs = workbench.status(exp_id, active_only=active)
    if not runs:
        typer.echo("No runs." if not active else "No active runs.")
        return
    cli_format.console().print(cli_format.runs_table(runs))


@app.command()
@handle_errors
def logs(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Number of last lines to print first.")] = 50,
) -> None:
    """Print the end of a run's log (stdout and stderr of its process)."""
    with state(ctx).workbench() as workbench:
        if not follow:
            for line in workbench.tail_log(run_id, lines):
                typer.echo(line)
            return
        try:
            for line in workbench.follow_log(run_id, lines=lines):
                typer.echo(line)
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None


@app.command()
@handle_errors
def stop(
    ctx: typer.Context,
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="Run id.")],
    grace: Annotated[
        Optional[float], typer.Option(min=0, help="Seconds to wait for a checkpoint before SIGKILL. [default: 60]")
    ] = None,
) -> None:
    """Stop a run: it checkpoints and exits on SIGTERM, or gets SIGKILL after the grace period."""
    with state(ctx).workbench() as workbench:
        stopped = workbench.stop(run_id, grace)
    typer.echo(_final_line(stopped))


def _report_start(workbench: Workbench, started: Run, foreground: bool) -> None:
    where = cli_format.devices(started.devices)
    typer.echo(f"Started run {started.id} of {started.experiment.exp_id} on {where} (pid {started.pid}).")
    if not foreground:
        typer.echo(f"Log: {started.run_dir}/run.log. Follow it with `workbench logs {started.id} -f`.")
        return
    try:
        for line in workbench.follow_log(started.id, lines=0):
            typer.echo(line)
    except KeyboardInterrupt:
        typer.echo(f"Stopping run {started.id} ...", err=True)
        workbench.stop(started.id)
    final = workbench.wait(started.id)
    typer.echo(_final_line(final))
    if final.status.value not in ("completed", "stopped"):
        raise typer.Exit(code=1)


def _final_line(run: Run) -> str:
    message = f": {run.message}" if run.message else ""
    return f"Run {run.id} is {run.status.value} at step {run.last_step}{message}."
