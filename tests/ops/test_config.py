"""Configuration as operators give it: a `.env` file in the working directory, the environment
winning over it, and `rental config` showing what is in force without ever printing a secret."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from kit import keys
from kit.settings import Settings

RENTAL = [sys.executable, "-m", "rental"]


def test_a_dot_env_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "# the broker's settings\n"
        "RENTAL_SELLER_NAME='Courtier du fichier'\n"
        "RENTAL_MIN_SEGMENT_SIZE=150\n"
        "RENTAL_SEND_DAYS=[0, 1, 2]\n"
        "COMPOSE_PROJECT_NAME=rental\n"  # another tool's line: left alone
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RENTAL_MIN_SEGMENT_SIZE", "200")
    s = Settings()
    assert s.seller.name == "Courtier du fichier"
    assert s.dispatch.send_days == [0, 1, 2]
    assert s.privacy.min_segment_size == 200  # the environment wins over the file

    monkeypatch.chdir(tmp_path.parent)  # no .env there: the defaults
    assert Settings().seller.name == "Broker SAS"


def test_rental_config_masks_every_secret(tmp_path: Path) -> None:
    password = secrets.token_hex(4)
    token = secrets.token_urlsafe(24)
    carrier_secret = secrets.token_urlsafe(32)
    vault = keys.vault_key()  # the home's own, as base64 in the environment
    (tmp_path / ".env").write_text(f"RENTAL_HTTP_GATEWAY_TOKEN={token}\n")
    env = dict(
        os.environ,
        RENTAL_SMPP_PASSWORD=password,
        RENTAL_DATABASE_URL=f"postgresql://rental:{password}x@db.internal:5432/rental",
        RENTAL_CARRIER_SECRETS=f'{{"http": "{carrier_secret}"}}',
        RENTAL_VAULT_KEY=base64.b64encode(vault).decode(),
        RENTAL_SELLER_NAME="Courtier SAS",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    r = subprocess.run(
        [*RENTAL, "config"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    shown = dict(line.split("=", 1) for line in r.stdout.splitlines())
    for secret in (password, token, carrier_secret, base64.b64encode(vault).decode()):
        assert secret not in r.stdout
    assert shown["RENTAL_SMPP_PASSWORD"] == "********  # environment"
    assert shown["RENTAL_HTTP_GATEWAY_TOKEN"] == "********  # .env"
    assert shown["RENTAL_DATABASE_URL"].startswith("postgresql://rental:********@db.internal")
    assert shown["RENTAL_SELLER_NAME"] == "Courtier SAS  # environment"
    assert shown["RENTAL_CARRIER"] == "simulator  # default"
