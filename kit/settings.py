"""The service's settings in groups (privacy, messages, seller, dispatch, carriers...), read from
flat `RENTAL_*` environment variables.

A setting has one public name, its environment variable: RENTAL_SELLER_NAME sets `seller.name`.
Inside its group a field carries that name (less RENTAL_) as its alias when its own name is
shorter; otherwise the two are the same (RENTAL_MIN_SEGMENT_SIZE sets
`privacy.min_segment_size`). A component takes the group it needs where it is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import to_json
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from kit.redact import redact

PREFIX = "RENTAL_"
# Read when present, from the working directory; the environment wins over it.
ENV_FILE = Path(".env")
SERVER_THREADS = 40  # anyio's default thread limiter: it runs FastAPI's sync endpoints
# Longest SMPP 3.4 bind credentials, in characters (the C-Octet String maximum less its NUL).
SMPP_LIMITS = {"system_id": 15, "password": 8, "system_type": 12}
# What names a carrier in paths, files and settings.
CARRIER_NAME = re.compile(r"[a-z0-9_-]{1,30}")


class Group(BaseModel):
    """A part of the settings. Its fields are read from RENTAL_ + their alias, else their
    name; code may construct one with either (tests do)."""

    # hide_input_in_errors: a refused setting (a key, a password) is never printed back.
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, hide_input_in_errors=True
    )


def public_name(field_name: str, field: FieldInfo) -> str:
    """The name of a setting without RENTAL_, as operators write it."""
    return field.alias or field_name


def _group_of(field: FieldInfo) -> type[Group] | None:
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, Group) else None


class PrivacySettings(Group):
    """Privacy of counts: the smallest segment shown, and the limits on asking."""

    min_segment_size: int = Field(default=100, ge=10)
    # The share of the base in the secret sample behind shown counts (segmentation/privacy.py):
    # each sampled person counts 1/rate. 1/3.25: accuracy targets met, membership 65%
    # (docs/privacy-design.md, section 4.2).
    sample_rate: float = Field(default=1 / 3.25, gt=0, le=1)
    daily_quote_budget: int = Field(default=500, ge=1)
    max_list_values: int = Field(default=500, ge=1)
    max_radius_km: int = Field(default=200, ge=1)


class EligibilitySettings(Group):
    """Who may receive a message (DESIGN.md: at most 2 messages per rolling 30 days, none
    within 7 days)."""

    inactivity_years: int = Field(default=3, ge=1)
    pressure_max_messages: int = Field(default=2, ge=1)
    pressure_window_days: int = Field(default=30, ge=1)
    pressure_min_gap_days: int = Field(default=7, ge=0)


class RightsSettings(Group):
    """The rights of the people in the base (subjects/): one-time codes and their limits."""

    code_ttl_minutes: int = Field(default=10, ge=1, le=60, alias="rights_code_ttl_minutes")
    code_attempts: int = Field(default=5, ge=1, le=10, alias="rights_code_attempts")
    access_minutes: int = Field(default=30, ge=1, le=240, alias="rights_access_minutes")
    # Codes asked per hour for one number, and from one address (429 + Retry-After beyond).
    per_number_hourly: int = Field(default=3, ge=1, alias="rights_per_number_hourly")
    per_address_hourly: int = Field(default=20, ge=1, alias="rights_per_address_hourly")
    code_sender: str = Field(
        default="Broker", pattern=r"^[A-Za-z0-9]{3,11}$", alias="rights_code_sender"
    )
    deadline_days: int = Field(default=30, ge=1, alias="rights_deadline_days")
    reminder_days: int = Field(default=7, ge=1, alias="rights_reminder_days")
    # One-time code rows (hashes of the code, number and address) are deleted after this many
    # days: longer than any rate-limit window or access, short enough to hold little.
    challenge_days: int = Field(default=7, ge=1, alias="rights_challenge_days")
    # Consent proofs of people who left the base are kept this many years, then purged at the
    # next refresh: the 5-year limitation period for claims (Code civil art. 2224), as the
    # CNIL advises for proofs of consent (docs/rights.md).
    consent_proof_years: int = Field(default=5, ge=1, alias="consent_proof_years")


class IdempotencySettings(Group):
    """Idempotency-Key (sales/idempotency): how long an answer is kept, how long a retry waits
    for the request it repeats before a 409, and after how long a request that holds its key
    without answering is presumed dead (its key is then taken over, its work rolled back)."""

    ttl_hours: int = Field(default=24, ge=1, alias="idempotency_ttl_hours")
    wait_seconds: float = Field(default=10.0, ge=0, le=60, alias="idempotency_wait_seconds")
    lease_seconds: int = Field(default=300, ge=1, alias="idempotency_lease_seconds")


class MessagesSettings(Group):
    """Messages (sales/messages): mentions appended to every message, sender rules."""

    stop_short_code: str = "36180"
    # Overseas, the STOP mention is a personal link: this base + an 8-character token (the
    # service answers /s/{token}; the base is the public address that reaches it).
    stop_link_base: str = "https://stop.sms/"
    source_mention: str = "Source: Broker"  # plain GSM text: never changes the encoding
    max_segments: int = Field(default=6, ge=1, le=10)
    blocked_senders: list[str] = Field(
        default_factory=lambda: [
            "INFO",
            "SMS",
            "ALERT",
            "ALERTE",
            "PROMO",
            "TEST",
            "NOREPLY",
            "SERVICE",
            "BANK",
            "BANQUE",
            "VERIFY",
            "MESSAGE",
            "ADMIN",
        ]
    )


class TermsSettings(Group):
    """The terms of sale: how long a quote holds, when an order may send, the volume promise,
    prices, and payment. The deposit is due at order, every invoice on receipt (0 days); a
    contract may set other terms later."""

    quote_ttl_days: int = Field(default=14, ge=1)
    min_send_delay_minutes: int = Field(default=0, ge=0)  # earliest send time after ordering
    max_send_horizon_days: int = Field(default=365, ge=1)
    volume_tolerance: Decimal = Field(default=Decimal("0.10"), ge=0, lt=1)  # the 10% promise
    # A JSON file overriding the default price grid (see sales/pricing/grid.py).
    price_grid_file: Path | None = None
    payment_terms_days: int = Field(default=0, ge=0, le=90)
    # ECB main refinancing rate (percent) by date it took effect: a dated setting, to extend
    # when the ECB changes it (late-payment penalties use the rate of each half-year).
    ecb_rates: dict[date, Decimal] = Field(
        default_factory=lambda: {
            date(2023, 9, 20): Decimal("4.50"),
            date(2024, 6, 12): Decimal("4.25"),
            date(2024, 9, 18): Decimal("3.65"),
            date(2024, 10, 23): Decimal("3.40"),
            date(2024, 12, 18): Decimal("3.15"),
            date(2025, 2, 5): Decimal("2.90"),
            date(2025, 3, 12): Decimal("2.65"),
            date(2025, 4, 23): Decimal("2.40"),
            date(2025, 6, 11): Decimal("2.15"),
        }
    )


class SellerSettings(Group):
    """The seller's identity on invoices and reports (French legal mentions); demo values by
    default."""

    name: str = Field(default="Broker SAS", alias="seller_name")
    legal_form: str = Field(default="SAS au capital de 10 000 EUR", alias="seller_legal_form")
    address: str = Field(default="1 rue de l'Exemple, 75002 Paris, France", alias="seller_address")
    siren: str = Field(default="000 000 000", alias="seller_siren")
    rcs: str = Field(default="RCS Paris", alias="seller_rcs")
    vat_number: str = Field(default="FR00000000000", alias="seller_vat_number")
    bank_details: str = Field(
        default="IBAN FR76 0000 0000 0000 0000 0000 000 - BIC XXXXFRPP",
        alias="seller_bank_details",
    )


class DispatchSettings(Group):
    """Sending: batches, the scheduler's beat, control numbers, recovery of lost work, the
    receipt window and the legal send windows."""

    batch_size: int = Field(default=1000, ge=1, le=10_000)
    tick_seconds: float = Field(default=2.0, gt=0)
    # Control (seed) numbers, E.164: they receive every order's message, outside its volume
    # and its bill, so the broker sees what recipients see.
    control_numbers: list[str] = Field(default_factory=list)
    reenqueue_seconds: int = Field(default=120, ge=1, alias="dispatch_reenqueue_seconds")
    # A running batch with no news for this long was interrupted (its worker died).
    stale_seconds: int = Field(default=300, ge=1, alias="dispatch_stale_seconds")
    receipt_window_hours: int = Field(default=72, ge=1)
    # Legal send windows, in each recipient's local time (dispatch/windows.py): days of the
    # week (0 = Monday) and hours; public holidays are always closed.
    send_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    send_window_start: time = time(8, 0)
    send_window_end: time = time(22, 0)


class SimulatorSettings(Group):
    """Carrier "simulator": deterministic outcomes, receipts after a delay."""

    seed: int = Field(default=1, alias="simulator_seed")
    receipt_delay_seconds: float = Field(default=2.0, ge=0, alias="simulator_receipt_delay_seconds")
    # Fault injection: the carrier is down until then.
    down_until: datetime | None = Field(default=None, alias="simulator_down_until")


class HttpGatewaySettings(Group):
    """Carrier "http": where batches are POSTed."""

    url: str | None = Field(default=None, alias="http_gateway_url")
    token: str | None = Field(default=None, alias="http_gateway_token")


class SmppSettings(Group):
    """Carrier "smpp": the SMSC's address, the account it binds with (SMPP 3.4 limits their
    lengths: see `_credential`) and the pace of the link."""

    host: str | None = Field(default=None, alias="smpp_host")
    port: int = Field(default=2775, ge=1, le=65535, alias="smpp_port")
    system_id: str = Field(default="", alias="smpp_system_id")
    password: str = Field(default="", alias="smpp_password")
    system_type: str = Field(default="", alias="smpp_system_type")
    # submit_sm awaiting an answer
    window: int = Field(default=10, ge=1, le=1000, alias="smpp_window")
    # an answer that never comes
    timeout_seconds: float = Field(default=10.0, gt=0, alias="smpp_timeout_seconds")
    # an idle bind is checked first
    enquire_link_seconds: float = Field(default=30.0, gt=0, alias="smpp_enquire_link_seconds")
    # then the batch backs off
    throttle_wait_seconds: float = Field(default=10.0, ge=0, alias="smpp_throttle_wait_seconds")

    @field_validator("system_id", "password", "system_type")
    @classmethod
    def _credential(cls, v: str, info: ValidationInfo) -> str:
        """SMPP 3.4 binds carry these as C-Octet Strings of at most 16, 9 and 13 octets with
        the closing NUL; smpplib silently cuts a longer value, and the bind is then refused
        with a configuration that looks right."""
        field = str(info.field_name)
        name = PREFIX + public_name(field, cls.model_fields[field]).upper()
        limit = SMPP_LIMITS[field]
        if not v.isascii() or not v.isprintable():
            raise ValueError(f"{name} must be plain printable ASCII characters (SMPP 3.4)")
        if len(v) > limit:
            raise ValueError(
                f"{name} is longer than the {limit} characters SMPP 3.4 allows: ask the carrier "
                "for an account whose credentials fit"
            )
        return v


class CarriersSettings(Group):
    """Which carrier sends (simulator, smpp, http), its own settings, and the throughput cap
    shared by all workers."""

    name: str = Field(default="simulator", alias="carrier")
    rate_per_second: int = Field(default=0, ge=0, alias="carrier_rate_per_second")  # 0: no cap
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    http: HttpGatewaySettings = Field(default_factory=HttpGatewaySettings)
    smpp: SmppSettings = Field(default_factory=SmppSettings)


class SecretsSettings(Group):
    """Secrets injected by the environment (production); without them each is generated under
    home/secrets on first use (kit/keys.py, their only reader)."""

    noise_secret: str | None = None
    vault_key: str | None = None  # base64 AES-256 key (only datasets and dispatch read it)
    hmac_key: str | None = None  # base64 key for the HMAC of normalised numbers
    # Carriers' webhook secrets (header X-Carrier-Secret), by carrier name, e.g.
    # {"http": "..."}; without one, `rental carriers secret NAME` generates it under home/secrets.
    carrier_secrets: dict[str, str] = Field(default_factory=dict)

    @field_validator("carrier_secrets")
    @classmethod
    def _carrier_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        for name, secret in v.items():
            if not CARRIER_NAME.fullmatch(name):
                raise ValueError(
                    "RENTAL_CARRIER_SECRETS: carrier names are 1 to 30 characters among a-z, "
                    "0-9, - and _"
                )
            if len(secret) < 32 or not secret.isascii() or not secret.isprintable():
                raise ValueError(
                    "RENTAL_CARRIER_SECRETS: each secret needs at least 32 printable ASCII "
                    "characters"
                )
        return v


class AdmissionSettings(Group):
    """The API process under load (kit/admission.py): requests run at once per gate, beyond
    which they wait at most `max_wait_seconds` in line or get a 503 + Retry-After. The gates
    together stay within the database pool and the server's threads (checked by `Settings`)."""

    api_concurrency: int = Field(default=8, ge=1, le=36)  # everything but quotes and reports
    quote_concurrency: int = Field(default=3, ge=1, le=8)  # counts share one engine
    report_concurrency: int = Field(default=2, ge=1, le=8)  # reports, invoices, PDFs
    # Exclusion files: an upload of millions of lines streams for up to a minute; a gate of its
    # own, so that two of them never take the slots of everything else.
    upload_concurrency: int = Field(default=2, ge=1, le=8)
    max_wait_seconds: float = Field(default=0.5, gt=0, le=30, alias="admission_max_wait_seconds")
    # A request body larger than this is refused (413) before it is read whole: the largest
    # legitimate one (criteria with long lists, a carrier's batch of receipts) is far smaller.
    max_body_bytes: int = Field(default=1_048_576, ge=65_536)
    # Exclusion files (up to 5 million lines) are read as a stream: their own, larger limit.
    max_upload_bytes: int = Field(default=268_435_456, ge=65_536)


class DatabaseSettings(Group):
    """The service database (default: a SQLite file under home) and its connection pool."""

    url: str | None = Field(default=None, alias="database_url")
    pool_size: int = Field(default=32, ge=1, alias="db_pool_size")  # kept per process
    pool_overflow: int = Field(default=8, ge=0, alias="db_pool_overflow")  # opened beyond it
    # then 503, never a hang
    pool_timeout_seconds: float = Field(default=10.0, gt=0, alias="db_pool_timeout_seconds")


class RedisSettings(Group):
    """The broker. No URL: a private server under home/redis, shared by this home's
    processes."""

    url: str | None = Field(default=None, alias="redis_url")
    server_binary: Path | None = Field(default=None, alias="redis_server_binary")


class DuckDBSettings(Group):
    """The counting engine of each process."""

    threads: int = Field(default=2, ge=1, alias="duckdb_threads")
    # e.g. "8GB"; default: DuckDB's (80% of RAM)
    memory_limit: str | None = Field(default=None, alias="duckdb_memory_limit")


class WebhookSettings(Group):
    """Webhooks (webhooks/): which URLs an organisation may register, how long a delivery is
    tried, and when an endpoint that keeps failing is disabled."""

    # public: https to a name or public address only (production); local, the default of the
    # single-machine setup: public as well as http(s) to this machine (a receiver tried on
    # localhost); loopback: 127.0.0.1, ::1 or localhost only (tests: nothing leaves the machine).
    # Private and reserved networks are refused by all three.
    urls: Literal["public", "local", "loopback"] = Field(default="local", alias="webhook_urls")
    timeout_seconds: float = Field(default=5.0, gt=0, le=30, alias="webhook_timeout_seconds")
    retry_hours: int = Field(default=72, ge=1, le=240, alias="webhook_retry_hours")
    # Deliveries failed in a row (each after retry_hours of attempts) before the endpoint is
    # disabled.
    disable_after: int = Field(default=3, ge=1, le=100, alias="webhook_disable_after")
    sweep_seconds: float = Field(default=5.0, gt=0, alias="webhook_sweep_seconds")


class OperationsSettings(Group):
    """What operators watch (docs/operations.md): log lines, the workers' metrics port, and
    what readiness (/v1/health/ready) demands."""

    # json: one object per line; plain: for people. None: json for `rental serve`, `worker`
    # and `beat`, plain for the other commands (their output is read by people).
    log_format: Literal["json", "plain"] | None = None
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # Where a worker serves /metrics for Prometheus (its pool's processes together); 0: not.
    worker_metrics_port: int = Field(default=9808, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # The proxies whose X-Forwarded-For is believed (comma-separated addresses or networks, "*":
    # any): behind a load balancer on another host, the per-address limits (sign-in, the rights
    # page) must see each visitor's address, not the balancer's.
    forwarded_allow_ips: str = Field(default="127.0.0.1", max_length=2000)
    # The base snapshot in use is older than this: not ready (refresh it: `rental base refresh`).
    base_max_age_days: float = Field(default=45, gt=0)


class TracingSettings(Group):
    """Traces (OpenTelemetry, kit/tracing.py): off by default, and then not even loaded. console:
    spans printed on standard output; otlp: sent to a collector over OTLP/HTTP; file: one JSON
    object per span appended to `tracing_file` (tests, a quick look)."""

    mode: Literal["off", "console", "otlp", "file"] = Field(default="off", alias="tracing")
    # A collector's OTLP/HTTP address (Jaeger, Tempo, the OpenTelemetry Collector...): its
    # traces path, or its root, to which /v1/traces is added.
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    file: Path | None = Field(default=None, alias="tracing_file")


class _FlatEnvSource(EnvSettingsSource):
    """The environment as operators write it: one flat RENTAL_* variable per setting, gathered
    here into its group. (pydantic-settings reads a group only from one JSON variable or from
    delimited names such as RENTAL_SELLER__NAME; neither is the public surface.)"""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()  # the settings outside groups (home, now...)
        for name, field in self.settings_cls.model_fields.items():
            group = _group_of(field)
            if group is not None:
                data.pop(name, None)  # never RENTAL_PRIVACY & co: one variable per setting
                data[name] = self._read(group)
        return data

    def _read(self, group: type[Group]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in group.model_fields.items():
            inner = _group_of(field)
            if inner is not None:
                values[name] = self._read(inner)
                continue
            key = public_name(name, field)
            variable = self.env_prefix + key
            raw = self.env_vars.get(variable if self.case_sensitive else variable.lower())
            try:  # JSON for lists and mappings, as for any pydantic-settings field
                value = self.prepare_field_value(key, field, raw, False)
            except ValueError as exc:
                raise SettingsError(f"{variable.upper()} is not valid JSON") from exc
            if value is not None:
                values[key] = value
        return values


class _FlatDotEnvSource(_FlatEnvSource):
    """The `.env` file of the working directory, when there is one, read like the environment
    (RENTAL_* lines only: the others are left to whatever else reads the file)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if not ENV_FILE.is_file():
            return {}
        return parse_env_vars(
            dotenv_values(ENV_FILE), self.case_sensitive, False, self.env_parse_none_str
        )


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting (a key, a password) is never printed back.
    # extra="forbid" applies to arguments only (the environment source reads known names):
    # `Settings(stop_link_base=...)` fails loudly, a setting is passed within its group.
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", hide_input_in_errors=True)

    # All state of one instance lives under this directory: base snapshots, database, secrets.
    home: Path = Path("./var")
    # Starts the service clock at this instant (ISO 8601 with offset); it then runs in real time.
    now: datetime | None = None
    # The broker's own organisation: the only home of account managers and admins.
    broker_organisation: str = "Broker"

    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    eligibility: EligibilitySettings = Field(default_factory=EligibilitySettings)
    rights: RightsSettings = Field(default_factory=RightsSettings)
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings)
    messages: MessagesSettings = Field(default_factory=MessagesSettings)
    terms: TermsSettings = Field(default_factory=TermsSettings)
    seller: SellerSettings = Field(default_factory=SellerSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    carriers: CarriersSettings = Field(default_factory=CarriersSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    duckdb: DuckDBSettings = Field(default_factory=DuckDBSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)
    traces: TracingSettings = Field(default_factory=TracingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments, then the environment, then a .env file (each wins over the next); no
        # secrets directory.
        return (init_settings, _FlatEnvSource(settings_cls), _FlatDotEnvSource(settings_cls))

    @field_validator("now")
    @classmethod
    def _offset_required(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("RENTAL_NOW needs a UTC offset, e.g. 2026-12-01T09:00:00+01:00")
        return v

    @model_validator(mode="after")
    def _gates_fit_the_pool(self) -> Settings:
        a, db = self.admission, self.database
        gates = a.api_concurrency + a.quote_concurrency + a.report_concurrency
        gates += a.upload_concurrency
        names = "RENTAL_API|QUOTE|REPORT|UPLOAD_CONCURRENCY together"
        if gates > db.pool_size + db.pool_overflow:
            raise ValueError(
                f"{names} "
                f"({gates}) must not exceed RENTAL_DB_POOL_SIZE + RENTAL_DB_POOL_OVERFLOW "
                f"({db.pool_size + db.pool_overflow}): admitted requests would wait "
                "for a database connection"
            )
        if gates > SERVER_THREADS:
            raise ValueError(
                f"{names} ({gates}) must not exceed the server's {SERVER_THREADS} worker threads"
            )
        return self

    @property
    def base_dir(self) -> Path:
        return self.home / "base"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.home / 'rental.db').resolve()}"


MASK = "********"
# Never printed: the secrets, the carriers' credentials; in URLs, the password.
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY")
URL_VARIABLES = (
    "RENTAL_DATABASE_URL",
    "RENTAL_REDIS_URL",
    "RENTAL_HTTP_GATEWAY_URL",
    "RENTAL_OTLP_ENDPOINT",
)
PHONE_VARIABLES = ("RENTAL_CONTROL_NUMBERS",)  # the broker's own, but numbers all the same
_URL_PASSWORD = re.compile(r"(?<=://)([^/@:]*):[^/@]*@")


def _shown(variable: str, value: Any) -> str:
    if value is None or value == "" or value == {} or value == []:
        return ""
    if any(word in variable for word in SECRET_WORDS):
        return MASK
    if isinstance(value, (list, dict)):
        text = to_json(value).decode()
    else:
        text = str(value)
    if variable in URL_VARIABLES:
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    return redact(text) if variable in PHONE_VARIABLES else text


def _variables(model: BaseModel) -> Iterator[tuple[str, Any]]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if _group_of(field) is not None:
            yield from _variables(value)
        else:
            yield PREFIX + public_name(name, field).upper(), value


def effective(settings: Settings) -> list[tuple[str, str, str]]:
    """(variable, value with secrets masked, where it comes from) for every setting."""
    from_file = _FlatDotEnvSource(Settings).env_vars
    out = []
    for variable, value in _variables(settings):
        key = variable.lower()
        origin = (
            "environment" if variable in os.environ else ".env" if key in from_file else "default"
        )
        out.append((variable, _shown(variable, value), origin))
    return out


def variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error of `Settings` is about, from its location
    (`("carriers", "smpp", "smpp_port")` is RENTAL_SMPP_PORT); "" for the whole."""
    model: type[BaseModel] = Settings
    parts = list(loc)
    while parts and isinstance(parts[0], str) and parts[0] in model.model_fields:
        group = _group_of(model.model_fields[parts[0]])
        if group is None:
            break
        model = group
        parts.pop(0)
    return PREFIX + ".".join(map(str, parts)).upper() if parts else ""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests set the environment first, then call `reset_settings`."""
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
