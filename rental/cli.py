"""The `rental` command: base, accounts, quote, serve."""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from datasets import snapshot
from datasets.cli import app as base_app
from datasets.cli import prepare_hooks
from kit.cli import fail, friendly_errors
from kit.db import unit_of_work
from kit.processes import alive
from kit.settings import get_settings
from rental.migrations import upgrade
from sales.accounts import service as accounts
from sales.accounts.models import Role
from sales.accounts.repository import AccountRepository
from subjects.cli import app as rights_app

app = typer.Typer(
    help="Prospect file rental for SMS marketing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(base_app, name="base")
accounts_app = typer.Typer(help="Organisations, users and API keys.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
carriers_app = typer.Typer(help="Carriers: webhook secrets and status.", no_args_is_help=True)
app.add_typer(carriers_app, name="carriers")
audit_app = typer.Typer(help="The broker's audit of quotes.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(rights_app, name="rights")


def _prepare_base(snap: snapshot.Snapshot) -> None:
    """The engine's prepared copy of a snapshot just written (segmentation/cache.py), made now
    rather than by the first API process that opens it."""
    from segmentation import cache

    duck = get_settings().duckdb
    cache.prepared(snap, duck.threads, duck.memory_limit)


prepare_hooks.append(_prepare_base)


@base_app.command("prepare")
@friendly_errors
def prepare_base(
    out: Annotated[
        Path | None, typer.Option(help="Base directory (default RENTAL_HOME/base).")
    ] = None,
) -> None:
    """Prepare the engine's copy of the current snapshot for this home (what `generate` and
    `refresh` do unless --no-prepare): for a snapshot that reached this host another way."""
    snap = snapshot.current(out if out is not None else get_settings().base_dir)
    _prepare_base(snap)
    typer.echo(json.dumps({"version": snap.version, "prepared": True}))


@accounts_app.command("add-organisation")
@friendly_errors
def add_organisation(name: str) -> None:
    """Create an organisation (a customer, or the broker itself)."""
    upgrade()
    with unit_of_work() as session:
        org = accounts.add_organisation(session, name)
        typer.echo(json.dumps({"organisation": org.name, "id": org.id}))


@accounts_app.command("add-key")
@friendly_errors
def add_key(
    organisation: Annotated[str, typer.Option(help="Organisation name.")],
    role: Annotated[Role, typer.Option(help="client, account_manager or admin.")] = Role.client,
    name: Annotated[str | None, typer.Option(help="User name (default: role-N).")] = None,
) -> None:
    """Create a user with a role and print its API key (shown once, stored hashed)."""
    upgrade()
    with unit_of_work() as session:
        issued = accounts.add_key(session, organisation, role, name)
    typer.echo(
        json.dumps(
            {
                "key": issued.key,
                "organisation": issued.organisation,
                "role": issued.role.value,
                "user": issued.user,
            }
        )
    )
    typer.echo("Store this key now: it is not shown again.", err=True)


@accounts_app.command("add-user")
@friendly_errors
def add_user(
    organisation: Annotated[str, typer.Option(help="Organisation name.")],
    email: Annotated[str, typer.Option(help="The e-mail the person signs in with.")],
    role: Annotated[Role, typer.Option(help="client, account_manager or admin.")] = Role.client,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from standard input (first line); otherwise a one-time "
            "password is printed, to be changed at the first sign-in.",
        ),
    ] = False,
) -> None:
    """Create a person who signs in to the web app with an e-mail and a password."""
    from sales.accounts import signin

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("no password on standard input", 2)
    upgrade()
    with unit_of_work() as session:
        made = signin.add_user(session, organisation, role, email, password)
    out = {"email": made.email, "organisation": made.organisation, "role": made.role.value}
    if made.one_time_password is not None:
        out["one_time_password"] = made.one_time_password
    typer.echo(json.dumps(out))
    if made.one_time_password is not None:
        typer.echo(
            "Give this one-time password to the person: it is not shown again and must be "
            "changed at the first sign-in.",
            err=True,
        )


def _set_disabled(email: str, disabled: bool) -> None:
    from sales.accounts import signin

    upgrade()
    with unit_of_work() as session:
        state = signin.set_disabled(session, email, disabled)
    out: dict[str, object] = {
        "email": state.email,
        "organisation": state.organisation,
        "disabled": state.disabled_at is not None,
    }
    if disabled:
        out["keys_revoked"] = state.keys_revoked
    typer.echo(json.dumps(out))


@accounts_app.command("disable-user")
@friendly_errors
def disable_user(
    email: Annotated[str, typer.Argument(help="The e-mail the person signs in with.")],
) -> None:
    """Disable a person's account (a leaver): sign-in refused, sessions ended and their API
    keys revoked at once."""
    _set_disabled(email, True)


@accounts_app.command("enable-user")
@friendly_errors
def enable_user(
    email: Annotated[str, typer.Argument(help="The e-mail the person signs in with.")],
) -> None:
    """Let a disabled person sign in again (their revoked keys stay revoked)."""
    _set_disabled(email, False)


@accounts_app.command("revoke-key")
@friendly_errors
def revoke_key(
    key: Annotated[str, typer.Argument(help="The key, or its first 10 characters.")],
) -> None:
    """Revoke an API key (a leaked one, a leaver's): refused from the next request on."""
    upgrade()
    with unit_of_work() as session:
        revoked = accounts.revoke_key(session, key)
    typer.echo(
        json.dumps(
            {
                "revoked": revoked.prefix,
                "organisation": revoked.organisation,
                "role": revoked.role.value,
                "user": revoked.user,
            }
        )
    )


@carriers_app.command("secret")
@friendly_errors
def carrier_secret(
    name: Annotated[str, typer.Argument(help="The carrier, as in /v1/carriers/NAME/receipts.")],
) -> None:
    """Print the secret a carrier sends in X-Carrier-Secret with its receipts and replies,
    generating it under RENTAL_HOME/secrets the first time (RENTAL_CARRIER_SECRETS wins). Only
    carriers given a secret, and the configured one, may post to the service."""
    from kit import keys

    typer.echo(json.dumps({"carrier": name, "secret": keys.issue_carrier_secret(name)}))


@carriers_app.command("status")
@friendly_errors
def carrier_status() -> None:
    """What the dispatch workers last saw of each carrier (as GET /v1/carriers/status)."""
    from dispatch import service

    upgrade()
    with unit_of_work() as session:
        out = service.statuses(session)
    typer.echo(json.dumps([s.model_dump(mode="json") for s in out], indent=2))


@audit_app.command("quotes")
@friendly_errors
def audit_quotes(
    organisation: Annotated[int | None, typer.Option(help="Organisation id.", min=1)] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Quotes flagged as attack-like, newest first (as GET /v1/audit/quotes)."""
    from kit import clock
    from sales.quotes import audit

    upgrade()
    with unit_of_work() as session:
        out = audit.flagged(session, organisation, None, limit, 0, clock.now())
    typer.echo(json.dumps(out.model_dump(mode="json"), indent=2))


def _carrier_secret_at_start() -> None:
    """The configured carrier's webhook secret exists from the start (no other is created
    without an operator's command)."""
    from kit import keys

    keys.issue_carrier_secret(get_settings().carriers.name)


@app.command("config")
@friendly_errors
def show_config() -> None:
    """Print the effective settings, one RENTAL_* variable a line, with where each comes from
    (environment, .env or default); secrets are masked."""
    from kit.settings import effective

    for variable, value, origin in effective(get_settings()):
        typer.echo(f"{variable}={value}  # {origin}")


@app.command()
@friendly_errors
def quote(
    criteria: Annotated[Path, typer.Option(help="JSON file of criteria ('-' for stdin).")],
    organisation: Annotated[
        str | None, typer.Option(help="Organisation the quote is for (default: the broker's own).")
    ] = None,
    breakdowns: Annotated[
        str | None,
        typer.Option(
            help="Among region,department,age_band,sex,csp, or 'all' (default: region,department)."
        ),
    ] = None,
) -> None:
    """Count and price a segment; prints the same JSON as POST /v1/quotes (staff view)."""
    from sales.quotes import service
    from segmentation import runtime
    from segmentation.criteria import Criteria

    upgrade()
    text = sys.stdin.read() if str(criteria) == "-" else criteria.read_text()
    try:
        parsed = Criteria.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'criteria'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        fail(problems, 2)
        return
    with unit_of_work() as session:
        who = accounts.operator(session, organisation)
        dims = service.parse_breakdowns(breakdowns)
        q = service.create_quote(session, who, parsed, runtime.current(), dims)
        out = service.view(q, who)
    typer.echo(out.model_dump_json(indent=2))


@app.command("demo-accounts")
@friendly_errors
def demo_accounts(
    organisation: Annotated[str, typer.Option(help="Demo customer organisation.")] = "Demo",
) -> None:
    """Create (if needed) a demo customer and the broker, and print fresh API keys for them."""
    upgrade()
    with unit_of_work() as session:
        accounts.operator(session)  # makes sure the broker's organisation exists
        if AccountRepository(session).organisation_by_name(organisation) is None:
            accounts.add_organisation(session, organisation)
        client = accounts.add_key(session, organisation, Role.client, "demo-client")
        manager = accounts.add_key(
            session, get_settings().broker_organisation, Role.account_manager, "demo-manager"
        )
    typer.echo(f"client key ({organisation}):        {client.key}")
    typer.echo(f"account manager key (Broker): {manager.key}")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    from kit import redact
    from rental.warmup import WarmUp

    ops = get_settings().operations
    _service_logs(ops.log_level)  # uvicorn's lines go through it too
    redact.install()  # before the load's thread may write a line
    upgrade()
    _carrier_secret_at_start()
    # The base is loaded while the app's modules are imported: most of it is DuckDB's copy,
    # outside the interpreter's lock (rental/warmup.py). The server listens once it is over.
    warm = WarmUp.begin()
    # No garbage collection while the app's modules load (a tenth of their import time goes to
    # collections finding nothing); what they made is then frozen out of later collections.
    gc.disable()
    try:
        import uvicorn

        from rental.app import create_app

        service = create_app(warm)
        gc.freeze()
    finally:
        gc.enable()
    uvicorn.run(
        service,
        host=host,
        port=port,
        log_config=None,
        log_level=ops.log_level.lower(),
        proxy_headers=True,
        forwarded_allow_ips=ops.forwarded_allow_ips,
    )


@app.command()
@friendly_errors
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a dispatch worker (Celery): sends batches, takes receipts. Its metrics are served
    on RENTAL_WORKER_METRICS_PORT (docs/operations.md)."""
    _multiprocess_metrics()
    from rental.worker import configure

    _service_logs(loglevel)  # from the start: Celery warns before it sets up logging

    upgrade()
    _carrier_secret_at_start()
    quiet = ["--quiet"] if _json_logs() else []  # no banner among the JSON lines
    configure().start(
        [
            *quiet,
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=rental-{os.getpid()}@%h",
        ]
    )


def _json_logs() -> bool:
    """The services (serve, worker, beat) write JSON lines unless RENTAL_LOG_FORMAT=plain."""
    return get_settings().operations.log_format in (None, "json")


def _service_logs(level: str) -> None:
    from kit import logs

    logs.setup("json" if _json_logs() else "plain", level.upper())


def _multiprocess_metrics() -> None:
    """The pool's processes write their metrics to files that the worker's exporter adds up
    (prometheus-client's multiprocess mode). The library reads PROMETHEUS_MULTIPROC_DIR when
    it is imported: unless the operator set one, the worker gets a fresh directory under
    RENTAL_HOME/metrics, set before the import (the command starts again if the library was
    already loaded). The directories of dead workers are removed; one that is set is emptied
    (prometheus-client asks for a clean directory at each start)."""
    name = "PROMETHEUS_MULTIPROC_DIR"
    given = os.environ.get(name)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        return
    root = get_settings().home.resolve() / "metrics"
    for old in root.glob("worker-*"):
        pid = old.name.removeprefix("worker-")
        if pid.isdigit() and not alive(int(pid)):  # not `rental up`'s (worker-up)
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"worker-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    os.environ[name] = str(path)
    if "prometheus_client" in sys.modules:  # loaded by an import above: start again
        os.execv(sys.executable, [sys.executable, "-m", "rental", *sys.argv[1:]])  # noqa: S606


@app.command()
@friendly_errors
def beat(
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run the scheduler: every few seconds it asks a worker to look for due work."""
    from kit import tracing
    from rental.worker import configure

    upgrade()
    _service_logs(loglevel)
    tracing.setup("beat")  # the ticks it sends start their traces
    quiet = ["--quiet"] if _json_logs() else []
    configure().start([*quiet, "beat", f"--loglevel={loglevel}"])


@app.command()
@friendly_errors
def up(
    host: Annotated[str, typer.Option(help="Interface the API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the API.")] = 8000,
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
) -> None:
    """Run the whole service: the API, a dispatch worker and the scheduler, with a demo
    customer and account manager (their keys are printed). Ctrl-C stops everything."""
    from rental.launcher import up as run_all

    raise typer.Exit(run_all(host, port, concurrency, typer.echo))


@app.command()
def demo(
    url: Annotated[str | None, typer.Option(help="The service (default: `rental up`'s).")] = None,
    client_key: Annotated[str | None, typer.Option(help="A client's API key.")] = None,
    manager_key: Annotated[str | None, typer.Option(help="An account manager's key.")] = None,
    quantity: Annotated[int, typer.Option(help="Messages to order.")] = 2000,
) -> None:
    """A complete rental against a running service, through its HTTP API only: quote, order,
    deposit, send, receipts, then the report in every format and the invoices as PDF under
    RENTAL_HOME/reports/."""
    from rental import demo as rental_demo
    from rental.launcher import keys_file, load_keys

    if not (url and client_key and manager_key):
        if not keys_file().exists():
            typer.echo(
                "No demo keys under RENTAL_HOME: start the service with `rental up` (make run) "
                "or give --url, --client-key and --manager-key.",
                err=True,
            )
            raise typer.Exit(2)
        saved = load_keys()
        url, client_key, manager_key = (
            url or saved["url"],
            client_key or saved["client"],
            manager_key or saved["manager"],
        )
    try:
        rental_demo.run(
            url,
            client_key,
            manager_key,
            get_settings().home / "reports",
            quantity,
            typer.echo,
        )
    except rental_demo.DemoFailed as exc:
        typer.echo(f"demo stopped: {exc}", err=True)
        raise typer.Exit(1) from exc


def main() -> None:  # pragma: no cover - console entry point
    app()
