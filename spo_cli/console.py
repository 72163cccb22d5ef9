"""Everything meant for people goes to stderr; stdout carries data only.

`err` is the one rich console of the process. `progress()` gives a rich progress bar on stderr
that stays quiet when stderr is not a terminal unless SPO_PROGRESS=1.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape as _escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

err = Console(stderr=True, highlight=False)


def quiet() -> bool:
    return os.environ.get("SPO_QUIET", "") not in ("", "0")


def info(msg: str) -> None:
    """A one-line message for people (stderr)."""
    if not quiet():
        err.print(msg, soft_wrap=True)


def warn(msg: str) -> None:
    err.print(f"[bold yellow]warning:[/] {_escape(msg)}", soft_wrap=True)


def error(msg: str) -> None:
    err.print(f"[bold red]error:[/] {_escape(msg)}", soft_wrap=True)


def progress(*extra_columns, transient: bool = False) -> Progress:
    """A progress bar on stderr. Disabled (no output at all) when stderr is not a terminal,
    unless SPO_PROGRESS=1; so logs of cron jobs are not filled with bar redraws."""
    force = os.environ.get("SPO_PROGRESS", "") not in ("", "0")
    disable = quiet() or not (err.is_terminal or force)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        *extra_columns,
        console=err,
        transient=transient,
        disable=disable,
    )
