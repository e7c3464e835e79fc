"""The ``workbench`` command line: a thin typer shell over ``workbench.services``.

Each command builds a ``Workbench`` for the store named by ``--db`` (or ``$WORKBENCH_DB``, or
``./experiments.db``), calls one service and prints the result. A ``WorkbenchError`` becomes
one ``Error: ...`` line on stderr and exit code 1. Nothing heavier than typer is imported at
module level, so ``workbench --help`` stays fast. The store, the services, rich and torch load
inside the commands that use them.
"""

from __future__ import annotations

import enum
import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

if TYPE_CHECKING:
    from workbench.services import Workbench

app = typer.Typer(
    help="Manage SEDD experiments: create, train, follow, sample and compare runs.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Function = TypeVar("Function", bound=Callable[..., Any])


class Predictor(str, enum.Enum):
    euler = "euler"
    analytic = "analytic"


@dataclass
class CliState:
    db: Optional[str]
    checkpoint_root: Optional[Path]

    def workbench(self) -> Workbench:
        from workbench.services import Workbench

        return Workbench(self.db, checkpoint_root=self.checkpoint_root)


def handle_errors(function: Function) -> Function:
    """Turn a WorkbenchError into one ``Error:`` line on stderr and exit code 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from workbench.errors import WorkbenchError

        try:
            return function(*args, **kwargs)
        except WorkbenchError as error:
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def state(ctx: typer.Context) -> CliState:
    return ctx.ensure_object(CliState) if ctx.obj is None else ctx.obj


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option(help="Store: an SQLite file path or an SQLAlchemy URL. [default: $WORKBENCH_DB or ./experiments.db]"),
    ] = None,
    checkpoint_root: Annotated[
        Optional[Path],
        typer.Option(
            envvar="WORKBENCH_CHECKPOINTS",
            help="Folder for run folders (<root>/<exp_id>/<run_id>). [default: checkpoints/ beside the store]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress messages to stderr.")] = False,
) -> None:
    """Manage SEDD experiments: create, train, follow, sample and compare runs.

    Without a command in an interactive terminal, opens the terminal UI.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(db=db, checkpoint_root=checkpoint_root)
    if ctx.invoked_subcommand is not None:
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        open_tui(ctx.obj)
    else:
        typer.echo(ctx.get_help())


def open_tui(cli_state: CliState) -> None:
    """Open the terminal UI, built by ``workbench.tui.app.create_app(workbench)``."""
    try:
        from workbench.tui.app import create_app
    except ModuleNotFoundError as error:
        if error.name is None or not error.name.startswith("workbench.tui"):
            raise
        typer.echo(
            "Error: the terminal UI is not part of this installation yet; use the commands "
            "listed by `workbench --help`",
            err=True,
        )
        raise typer.Exit(code=1) from None
    create_app(cli_state.workbench()).run()


def register_commands() -> None:
    # The command modules attach their commands to `app`; importing them is cheap (typer only).
    from workbench import cli_experiments, cli_generate, cli_runs  # noqa: F401

    try:
        from workbench import cli_analysis
    except ModuleNotFoundError as error:
        # The analysis suite is optional; without it, `analyze` and `compare` are absent.
        if error.name != "workbench.cli_analysis":
            raise
    else:
        cli_analysis.register(app)


register_commands()


@app.command()
@handle_errors
def tui(ctx: typer.Context) -> None:
    """Open the terminal UI."""
    open_tui(state(ctx))


def main() -> None:
    """Console-script entry point (``workbench``)."""
    app()
