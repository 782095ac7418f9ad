"""``hoithi notify …``: operator commands of notify (mounted by ``shared/cli.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

notify = typer.Typer(help="notify: templates, triggers.", no_args_is_help=True)


@notify.command("templates-check")
def templates_check(
    directory: Annotated[Path, typer.Argument(help="an override folder: <language>/<template>.j2")],
) -> None:
    """Check an override template folder as notify does at start: exit 1 with file:line for each problem."""
    from services.notify.domain import rendering

    problems = rendering.check(directory)
    for p in problems:
        typer.echo(p, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{directory}: template set accepted")


@notify.command("triggers")
def triggers() -> None:
    """Print what triggers what (the table in services/notify/README.md)."""
    from services.notify import domain

    for t in domain.TRIGGERS:
        urgency = "immediate" if t.urgent else "preference"
        typer.echo(f"{t.event_type:<34} {t.template:<34} {', '.join(t.audiences):<44} {urgency}")


commands: dict[str, typer.Typer] = {"notify": notify}
