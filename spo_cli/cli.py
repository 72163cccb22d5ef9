"""The `spo` command: a typer app whose subcommands live one per file in spo_cli.commands.

Conventions every command follows:
- data on stdout, people on stderr (spo_cli.console.err);
- `-` (or no path) means stdin/stdout;
- exit codes: 0 ok, 1 failure, 2 bad input or usage (spo_cli.errors).

Command modules stay light at import time (heavy imports such as torch go inside the
command body), so `spo --help` and `spo judge` start quickly.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

import typer
from typer.core import TyperGroup

from spo_cli import __version__
from spo_cli.console import error
from spo_cli.errors import SpoError
from spo_cli.runtime import on_sigterm, quiet_libraries

# (command name, module in spo_cli.commands). Each module defines `main`, a typer command
# function, or `app`, a typer.Typer of subcommands.
COMMANDS: list[tuple[str, str]] = [
    ("sample", "sample"),
    ("judge", "judge"),
    ("estimate-v", "estimate_v"),
    ("pts", "pts"),
    ("train", "train"),
    ("eval", "eval"),
    ("benchmark", "benchmark"),
    ("records", "records"),
]


class SpoGroup(TyperGroup):
    """Maps our exceptions onto exit codes for every command, under CliRunner too."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # keep pipeline order in --help
        return list(self.commands)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except SpoError as e:
            error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`spo ... | head`): stop quietly, like other Unix tools.
            _silence_stdout()
            raise typer.Exit(1) from None


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


app = typer.Typer(
    name="spo",
    cls=SpoGroup,
    help="Soft Policy Optimization: RL post-training of code models from any trajectory.\n\n"
    "Pipeline: spo sample | spo judge > traj.jsonl.zst; spo estimate-v; spo pts; spo train; spo eval.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spo {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Soft Policy Optimization: RL post-training of code models from any trajectory."""


def _register() -> None:
    for name, module in COMMANDS:
        # Every listed module must import: a missing or broken one is an error here, not a
        # command that silently disappears from `spo --help`.
        mod = importlib.import_module(f"spo_cli.commands.{module}")
        if hasattr(mod, "app"):
            app.add_typer(mod.app, name=name)
        else:
            app.command(name)(mod.main)


_register()


def main() -> None:
    quiet_libraries()
    signal.signal(signal.SIGTERM, on_sigterm)
    app(prog_name="spo")


if __name__ == "__main__":
    main()
