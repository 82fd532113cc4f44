"""`rental base ...`: generate, refresh and describe base snapshots."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from datasets import snapshot
from datasets.erasures import ErasureRepository
from kit import clock
from kit.cli import friendly_errors
from kit.db import unit_of_work
from kit.settings import get_settings

if TYPE_CHECKING:
    from datasets.generate import Progress

# Generation and refresh (Polars, NumPy, PyArrow, the vault) are imported by their commands:
# every other `rental` command, `rental serve` first, starts without them.

app = typer.Typer(help="The prospect base: generate, refresh, prune, info.", no_args_is_help=True)
# A refresh keeps the version before the current one (hosts still on it go on reading it).
KEEP_VERSIONS = 2

# What is done with a snapshot just written, unless --no-prepare: the composition root registers
# the engine's preparation of it (rental/cli.py), so that the first API start does not pay it.
prepare_hooks: list[Callable[[snapshot.Snapshot], None]] = []

Prepare = Annotated[
    bool,
    typer.Option(
        help="Prepare the engine's copy of the snapshot now (seconds at 10M), so that the "
        "first API start does not; --no-prepare leaves it to that start."
    ),
]


def _prepare(snap: snapshot.Snapshot, prepare: bool) -> None:
    if prepare:
        for hook in prepare_hooks:
            hook(snap)


class TerminalProgress:
    """One line on stderr, rewritten in place when it is a terminal."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        line = f"{stage}: {done:,}/{total:,} ({pct}%) {time.monotonic() - self.start:.1f}s"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(len(self.last)))
            if done >= total:
                sys.stderr.write("\n")
        elif done >= total and stage != self.last.split(":")[0]:
            sys.stderr.write(line + "\n")
        self.last = line
        sys.stderr.flush()


def _root(out: Path | None) -> Path:
    return out if out is not None else get_settings().base_dir


@app.command()
@friendly_errors
def generate(
    rows: Annotated[int, typer.Option(min=1, help="Number of prospects.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Same seed, same snapshot.")] = 1,
    out: Annotated[
        Path | None, typer.Option(help="Base directory (default RENTAL_HOME/base).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Reference day, YYYY-MM-DD (default today).")
    ] = None,
    prepare: Prepare = True,
) -> None:
    """Generate a synthetic base and make it the current snapshot."""
    from datasets.build import generate_snapshot

    day = date.fromisoformat(as_of) if as_of else clock.today_paris()
    snap = generate_snapshot(_root(out), rows, seed, day, TerminalProgress())
    _prepare(snap, prepare)
    typer.echo(
        json.dumps({"version": snap.version, "path": str(snap.path), "rows": snap.manifest["rows"]})
    )


def years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def refresh_with_purge(
    root: Path, churn: float, today: date, progress: Progress
) -> snapshot.Snapshot:
    """A refresh that applies retention (of the base and of the consent proofs of those who
    left it) and the erasures asked since the last one, then marks those erasures done with
    the version written without them."""
    from datasets.refresh import Purge, refresh_snapshot

    rules = get_settings()
    inactive = years_before(today, rules.eligibility.inactivity_years)
    proofs = years_before(today, rules.rights.consent_proof_years)
    with unit_of_work() as session:
        erase = ErasureRepository(session).pending()
    snap = refresh_snapshot(root, churn, today, progress, Purge(inactive, erase, proofs))
    with unit_of_work() as session:
        ErasureRepository(session).done(erase, snap.version)
    # The version before stays for the hosts still on it; older ones go, with the rows of the
    # people erased or gone before it.
    snapshot.prune(root, KEEP_VERSIONS)
    return snap


@app.command()
@friendly_errors
def refresh(
    churn: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of prospects replaced.")
    ] = 0.04,
    out: Annotated[
        Path | None, typer.Option(help="Base directory (default RENTAL_HOME/base).")
    ] = None,
    prepare: Prepare = True,
) -> None:
    """Write the next version: new, removed and moved prospects, withdrawn consents; without
    the prospects inactive for RENTAL_INACTIVITY_YEARS and those who asked for erasure."""
    snap = refresh_with_purge(_root(out), churn, clock.today_paris(), TerminalProgress())
    _prepare(snap, prepare)
    typer.echo(
        json.dumps(
            {
                "version": snap.version,
                "rows": snap.manifest["rows"],
                "changes": snap.manifest["changes"],
            }
        )
    )


@app.command()
@friendly_errors
def prune(
    keep: Annotated[
        int, typer.Option(min=1, help="Versions kept: the current one and those before it.")
    ] = KEEP_VERSIONS,
    out: Annotated[
        Path | None, typer.Option(help="Base directory (default RENTAL_HOME/base).")
    ] = None,
) -> None:
    """Remove older base versions (a refresh keeps the current one and the one before). With
    --keep 1, once every host runs the current version, the people erased at the last refresh
    are gone from every file of the base."""
    typer.echo(json.dumps({"removed": snapshot.prune(_root(out), keep)}))


@app.command()
@friendly_errors
def info(
    out: Annotated[
        Path | None, typer.Option(help="Base directory (default RENTAL_HOME/base).")
    ] = None,
) -> None:
    """Print the current snapshot's manifest as JSON."""
    typer.echo(json.dumps(snapshot.current(_root(out)).manifest, indent=2, sort_keys=True))
