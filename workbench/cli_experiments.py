"""Experiment commands: init, new, list, show, clone, update, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from workbench import cli_format
from workbench.cli import app, handle_errors, state

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config key, as key.path=value (YAML value); repeatable."),
]


@app.command()
@handle_errors
def init(ctx: typer.Context) -> None:
    """Create the experiment store (or upgrade an older one) and print where it is."""
    with state(ctx).workbench() as workbench:
        store = workbench.store
        typer.echo(f"Store {store.url_text} is ready (schema version {store.schema_version}).")
        typer.echo(f"Run folders go under {workbench.launcher.checkpoint_root}.")


@app.command()
@handle_errors
def new(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(metavar="EXP", help="Id of the new experiment; replaces the config's exp_id.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML experiment config file.")],
    overrides: SetOption = None,
) -> None:
    """Create an experiment from a config file; nothing is stored unless the config is valid."""
    with state(ctx).workbench() as workbench:
        experiment = workbench.create_experiment(exp_id, config_path=config, overrides=overrides or [])
    typer.echo(f"Created experiment {experiment.exp_id}. Train it with `workbench run {experiment.exp_id}`.")


@app.command("list")
@handle_errors
def list_experiments(ctx: typer.Context) -> None:
    """List experiments with the status, step and losses of their latest run."""
    with state(ctx).workbench() as workbench:
        summaries = workbench.list_experiments()
    if not summaries:
        typer.echo("No experiments yet. Create one with `workbench new EXP --config FILE` or try `workbench quickstart`.")
        return
    cli_format.console().print(cli_format.experiments_table(summaries))


@app.command()
@handle_errors
def show(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(metavar="EXP", help="Experiment id.")],
) -> None:
    """Show an experiment: its config, notes and runs."""
    with state(ctx).workbench() as workbench:
        details = workbench.show_experiment(exp_id)
    experiment = details.experiment
    out = cli_format.console()
    out.print(f"[bold]{experiment.exp_id}[/]  created {cli_format.when(experiment.created_at)}")
    if details.parent_exp_id:
        out.print(f"cloned from {details.parent_exp_id}")
    if experiment.tags:
        out.print("tags: " + ", ".join(map(str, experiment.tags)))
    if experiment.notes:
        out.print(f"notes: {experiment.notes}")
    out.print()
    out.print(experiment.config_text.rstrip(), markup=False)
    out.print()
    if details.runs:
        out.print(cli_format.runs_table(details.runs))
    else:
        out.print(f"No runs yet. Start one with `workbench run {experiment.exp_id}`.")


@app.command()
@handle_errors
def clone(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(metavar="EXP", help="Experiment to copy.")],
    new_exp_id: Annotated[str, typer.Argument(metavar="NEW_EXP", help="Id of the copy.")],
    overrides: SetOption = None,
) -> None:
    """Copy an experiment's config under a new id (with overrides); the original is recorded as parent."""
    with state(ctx).workbench() as workbench:
        experiment = workbench.clone_experiment(exp_id, new_exp_id, overrides or [])
    typer.echo(f"Created experiment {experiment.exp_id} from {exp_id}.")


@app.command()
@handle_errors
def update(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(metavar="EXP", help="Experiment id.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Replace the config with this YAML file.")] = None,
    overrides: SetOption = None,
) -> None:
    """Change an experiment's config; runs already launched keep the config they started with."""
    with state(ctx).workbench() as workbench:
        workbench.update_config(exp_id, config_path=config, overrides=overrides or [])
    typer.echo(f"Updated the config of {exp_id}.")


@app.command()
@handle_errors
def delete(
    ctx: typer.Context,
    exp_id: Annotated[str, typer.Argument(metavar="EXP", help="Experiment id.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete an experiment and its run records (run folders on disk are kept)."""
    if not yes:
        typer.confirm(f"Delete experiment {exp_id} and the records of its runs?", abort=True)
    with state(ctx).workbench() as workbench:
        workbench.delete_experiment(exp_id)
    typer.echo(f"Deleted experiment {exp_id}.")

