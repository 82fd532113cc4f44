"""The settings come in groups, but operators still set them with the flat RENTAL_* variables
they always used, and a refused value is named by its variable."""

from __future__ import annotations

import json
from datetime import date, time
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from kit.cli import friendly_errors
from kit.settings import Group, Settings, public_name

# The public surface: every variable an operator may set. A field renamed inside its group
# keeps its variable through its alias; this list changes only when a setting is added.
VARIABLES = """
ADMISSION_MAX_WAIT_SECONDS API_CONCURRENCY BATCH_SIZE BLOCKED_SENDERS BROKER_ORGANISATION
CARRIER CARRIER_RATE_PER_SECOND CARRIER_SECRETS CONTROL_NUMBERS DAILY_QUOTE_BUDGET DATABASE_URL
DB_POOL_OVERFLOW DB_POOL_SIZE DB_POOL_TIMEOUT_SECONDS DISPATCH_REENQUEUE_SECONDS
DISPATCH_STALE_SECONDS DUCKDB_MEMORY_LIMIT DUCKDB_THREADS ECB_RATES FORWARDED_ALLOW_IPS
HMAC_KEY HOME
HTTP_GATEWAY_TOKEN HTTP_GATEWAY_URL IDEMPOTENCY_LEASE_SECONDS IDEMPOTENCY_TTL_HOURS
IDEMPOTENCY_WAIT_SECONDS INACTIVITY_YEARS MAX_BODY_BYTES MAX_UPLOAD_BYTES MAX_LIST_VALUES
MAX_RADIUS_KM
MAX_SEGMENTS MAX_SEND_HORIZON_DAYS MIN_SEGMENT_SIZE MIN_SEND_DELAY_MINUTES NOISE_SECRET NOW
PAYMENT_TERMS_DAYS PRESSURE_MAX_MESSAGES PRESSURE_MIN_GAP_DAYS PRESSURE_WINDOW_DAYS
PRICE_GRID_FILE QUOTE_CONCURRENCY QUOTE_TTL_DAYS RECEIPT_WINDOW_HOURS REDIS_SERVER_BINARY
REDIS_URL REPORT_CONCURRENCY SAMPLE_RATE SELLER_ADDRESS SELLER_BANK_DETAILS SELLER_LEGAL_FORM
SELLER_NAME
SELLER_RCS SELLER_SIREN SELLER_VAT_NUMBER SEND_DAYS SEND_WINDOW_END SEND_WINDOW_START
SIMULATOR_DOWN_UNTIL SIMULATOR_RECEIPT_DELAY_SECONDS SIMULATOR_SEED SMPP_ENQUIRE_LINK_SECONDS
SMPP_HOST SMPP_PASSWORD SMPP_PORT SMPP_SYSTEM_ID SMPP_SYSTEM_TYPE SMPP_THROTTLE_WAIT_SECONDS
SMPP_TIMEOUT_SECONDS SMPP_WINDOW SOURCE_MENTION STOP_LINK_BASE STOP_SHORT_CODE TICK_SECONDS
UPLOAD_CONCURRENCY VAULT_KEY VOLUME_TOLERANCE WEBHOOK_DISABLE_AFTER WEBHOOK_RETRY_HOURS
WEBHOOK_SWEEP_SECONDS
WEBHOOK_TIMEOUT_SECONDS WEBHOOK_URLS
BASE_MAX_AGE_DAYS LOG_FORMAT LOG_LEVEL WORKER_METRICS_HOST WORKER_METRICS_PORT
TRACING OTLP_ENDPOINT TRACING_FILE
RIGHTS_ACCESS_MINUTES RIGHTS_CODE_ATTEMPTS RIGHTS_CODE_SENDER RIGHTS_CODE_TTL_MINUTES
RIGHTS_DEADLINE_DAYS RIGHTS_PER_ADDRESS_HOURLY RIGHTS_PER_NUMBER_HOURLY RIGHTS_REMINDER_DAYS
RIGHTS_CHALLENGE_DAYS CONSENT_PROOF_YEARS
""".split()


def variables(model: type[BaseModel]) -> list[str]:
    found: list[str] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, Group):
            found += variables(kind)
        else:
            found.append(public_name(name, field).upper())
    return found


def test_every_setting_keeps_its_one_variable() -> None:
    names = variables(Settings)
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(VARIABLES)


def test_the_flat_variables_fill_the_groups(
    monkeypatch: pytest.MonkeyPatch, base_numbers: list[str]
) -> None:
    control = base_numbers[0]
    for name, value in {
        "RENTAL_MIN_SEGMENT_SIZE": "50",
        "RENTAL_STOP_LINK_BASE": "https://stop.example/",
        "RENTAL_SELLER_NAME": "Acme SAS",
        "RENTAL_CARRIER": "smpp",
        "RENTAL_SMPP_HOST": "smsc.example",
        "RENTAL_SMPP_PORT": "2776",
        "RENTAL_DISPATCH_STALE_SECONDS": "9",
        "RENTAL_CONTROL_NUMBERS": json.dumps([control]),
        "RENTAL_SEND_WINDOW_START": "09:30",
        "RENTAL_ECB_RATES": '{"2026-01-01": "1.50"}',
        "RENTAL_DATABASE_URL": "sqlite:////tmp/elsewhere.db",
        # Not settings: a group is never read whole, nor a field by its short name.
        "RENTAL_PRIVACY": '{"min_segment_size": 70}',
        "RENTAL_NAME": "Other SAS",
        "RENTAL_HOST": "other.example",
        "RENTAL_URL": "postgresql://nowhere/x",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.privacy.min_segment_size == 50
    assert s.messages.stop_link_base == "https://stop.example/"
    assert s.seller.name == "Acme SAS"
    assert (s.carriers.name, s.carriers.smpp.host, s.carriers.smpp.port) == (
        "smpp",
        "smsc.example",
        2776,
    )
    assert s.dispatch.stale_seconds == 9
    assert s.dispatch.control_numbers == [control]
    assert s.dispatch.send_window_start == time(9, 30)
    assert s.terms.ecb_rates == {date(2026, 1, 1): Decimal("1.50")}
    assert s.sqlalchemy_url == "sqlite:////tmp/elsewhere.db"
    assert s.redis.url is None
    assert s.carriers.http.url is None


@friendly_errors
def load() -> Settings:
    return Settings()


@pytest.mark.parametrize(
    ("variables", "shown"),
    [
        (
            {"RENTAL_SMPP_PORT": "0", "RENTAL_SEND_WINDOW_START": "25:00"},
            ["RENTAL_SMPP_PORT: Input should be greater", "RENTAL_SEND_WINDOW_START: Input"],
        ),
        ({"RENTAL_MIN_SEGMENT_SIZE": "5"}, ["RENTAL_MIN_SEGMENT_SIZE: Input should be greater"]),
        ({"RENTAL_SMPP_PASSWORD": "Ab3xQ9zLong"}, ["RENTAL_SMPP_PASSWORD is longer than the 8"]),
        (
            {"RENTAL_DB_POOL_SIZE": "4", "RENTAL_DB_POOL_OVERFLOW": "0"},
            ["must not exceed RENTAL_DB_POOL_SIZE + RENTAL_DB_POOL_OVERFLOW (4)"],
        ),
    ],
)
def test_a_refused_setting_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    shown: list[str],
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        load()
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    for part in shown:
        assert part in err
    for value in variables.values():
        assert len(value) < 6 or value not in err  # never the value: it may be a password


def test_a_control_number_that_is_not_json_is_refused_without_being_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], base_numbers: list[str]
) -> None:
    number = base_numbers[0]
    monkeypatch.setenv("RENTAL_CONTROL_NUMBERS", number)  # a bare number, not a JSON list
    with pytest.raises(SystemExit):
        load()
    err = capsys.readouterr().err
    assert "RENTAL_CONTROL_NUMBERS is not valid JSON" in err
    assert number not in err
    assert number[3:] not in err


def test_a_setting_is_given_within_its_group() -> None:
    assert Settings(messages={"stop_link_base": "https://s.example/"}).messages.stop_link_base == (
        "https://s.example/"
    )
    with pytest.raises(ValidationError):
        Settings(stop_link_base="https://s.example/")  # type: ignore[call-arg]
