from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from datasets import snapshot
from tests.conftest import Canary, ScanningClient, auth


def rental(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("rental")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=dict(os.environ),
        timeout=300,
        check=False,
    )


def test_base_info_prints_the_manifest(base: snapshot.Snapshot) -> None:
    r = rental("base", "info")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["synthetic"] is True
    assert doc["rows"] == base.manifest["rows"]


def test_cli_quote_same_json_as_api(
    base: snapshot.Snapshot, tmp_path: Path, canary: Canary
) -> None:
    crit = tmp_path / "c.json"
    crit.write_text(json.dumps({"sex": ["F"], "departments": ["06", "83"]}))
    r = rental("quote", "--criteria", str(crit), "--breakdowns", "all")
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)
    assert q["shown_count"] >= 100
    assert isinstance(q["exact_count"], int)
    assert set(q["breakdowns"]) == {"region", "department", "age_band", "sex", "csp"}
    assert not canary.hits(r.stdout + r.stderr)


def test_cli_quote_bad_criteria_is_a_clear_error(tmp_path: Path) -> None:
    crit = tmp_path / "c.json"
    crit.write_text('{"age": {"min": 70, "max": 30}}')
    r = rental("quote", "--criteria", str(crit))
    assert r.returncode == 2
    assert "greater than age max" in r.stderr
    assert "Traceback" not in r.stderr


def test_accounts_bootstrap_errors(base: snapshot.Snapshot) -> None:
    assert rental("accounts", "add-organisation", "Initech").returncode == 0
    dup = rental("accounts", "add-organisation", "Initech")
    assert dup.returncode == 1
    assert "already exists" in dup.stderr
    missing = rental("accounts", "add-key", "--organisation", "Nobody", "--role", "client")
    assert missing.returncode == 1
    assert "add-organisation" in missing.stderr
    ok = rental("accounts", "add-key", "--organisation", "Initech", "--role", "client")
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["key"].startswith("rk_")
    # Account managers work for the broker, never inside a customer's organisation.
    staff = rental("accounts", "add-key", "--organisation", "Initech", "--role", "account_manager")
    assert staff.returncode == 1
    assert "broker's organisation 'Broker'" in staff.stderr
    staff = rental("accounts", "add-key", "--organisation", "Broker", "--role", "account_manager")
    assert staff.returncode == 0


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = rental("quote", "--criteria", str(tmp_path / "nope.json"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: cannot read")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00")
    bad = rental("quote", "--criteria", str(binary))
    assert bad.returncode == 1
    assert "not UTF-8" in bad.stderr
    empty_home = dict(os.environ, RENTAL_HOME=str(tmp_path / "empty"))
    exe = Path(sys.executable).with_name("rental")
    r = subprocess.run(
        [str(exe), "base", "info"],
        capture_output=True,
        text=True,
        env=empty_home,
        timeout=120,
        check=False,
    )
    assert r.returncode == 1
    assert "rental base generate" in r.stderr
    assert "Traceback" not in missing.stderr + bad.stderr + r.stderr
    date = rental(
        "base", "generate", "--rows", "10", "--as-of", "soon", "--out", str(tmp_path / "x")
    )
    assert date.returncode == 1
    assert "Invalid isoformat" in date.stderr


def test_a_revoked_key_is_refused_from_the_next_request(app_client: ScanningClient) -> None:
    assert rental("accounts", "add-organisation", "Initech").returncode == 0
    issued = rental("accounts", "add-key", "--organisation", "Initech", "--role", "client")
    key = json.loads(issued.stdout)["key"]
    assert app_client.get("/v1/orders", headers=auth(key)).status_code == 200
    short = rental("accounts", "revoke-key", "rk_")
    assert short.returncode == 1
    assert "first 10 characters" in short.stderr
    revoked = rental("accounts", "revoke-key", key[:10])  # the prefix listings show
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["organisation"] == "Initech"
    assert key not in revoked.stdout + revoked.stderr
    refused = app_client.get("/v1/orders", headers=auth(key))
    assert refused.status_code == 401
    again = rental("accounts", "revoke-key", key)
    assert again.returncode == 1
    assert "revoked already" in again.stderr


def test_a_refreshed_snapshot_is_prepared_unless_told_not_to(
    base: snapshot.Snapshot, tmp_path: Path
) -> None:
    """`rental base refresh` (and generate) prepares the engine's copy of what it wrote, so the
    first API start opens it as it is; --no-prepare leaves that to the start."""
    from typer.testing import CliRunner

    from rental import cli
    from segmentation import cache
    from segmentation.engine import Engine

    root = tmp_path / "base"
    (root / base.version).mkdir(parents=True)
    for name in (snapshot.ATTRIBUTES, snapshot.CONTACTS, snapshot.MANIFEST):
        (root / base.version / name).symlink_to(base.path / name)
    snapshot.set_current(root, base.version)

    def made() -> dict[str, int]:
        found = cache.root().glob("*/" + cache.DATABASE) if cache.root().exists() else []
        return {p.parent.name: p.stat().st_mtime_ns for p in found}

    before = made()
    run = CliRunner().invoke(cli.app, ["base", "refresh", "--churn", "0.01", "--out", str(root)])
    assert run.exit_code == 0, run.output
    prepared = set(made()) - set(before)
    assert [name.split("-")[0] for name in prepared] == [snapshot.current(root).version]
    entries = made()
    Engine(snapshot.current(root), bitmaps_in_background=False).close()
    assert made() == entries  # opened as it was, not prepared again

    run = CliRunner().invoke(
        cli.app, ["base", "refresh", "--churn", "0.01", "--out", str(root), "--no-prepare"]
    )
    assert run.exit_code == 0, run.output
    assert made() == entries
