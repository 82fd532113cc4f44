"""`rental rights ...`: the broker's records of processing, and the staff's reminders."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from kit.cli import friendly_errors
from kit.db import unit_of_work
from subjects import records

app = typer.Typer(help="The rights of the people in the base; records.", no_args_is_help=True)


@app.command()
@friendly_errors
def rentals(
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD), included.")],
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD), excluded.")],
) -> None:
    """Print every rental sent in the period as CSV: customer, criteria, volumes, dates,
    sender; no personal data."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise typer.BadParameter("dates are YYYY-MM-DD, e.g. 2026-11-01") from exc
    paris = ZoneInfo("Europe/Paris")  # the broker's days
    with unit_of_work() as session:
        lines = records.rentals(
            session,
            datetime.combine(first, time(), tzinfo=paris),
            datetime.combine(last, time(), tzinfo=paris),
        )
    typer.echo(records.as_csv(lines), nl=False)
