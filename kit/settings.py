"""One settings object for the whole service, read from `RENTAL_*` environment variables."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVER_THREADS = 40  # anyio's default thread limiter: it runs FastAPI's sync endpoints
# Longest SMPP 3.4 bind credentials, in characters (the C-Octet String maximum less its NUL).
SMPP_LIMITS = {"smpp_system_id": 15, "smpp_password": 8, "smpp_system_type": 12}
# What names a carrier in paths, files and settings.
CARRIER_NAME = re.compile(r"[a-z0-9_-]{1,30}")


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting (a key, a password) is never printed back.
    model_config = SettingsConfigDict(
        env_prefix="RENTAL_", extra="ignore", hide_input_in_errors=True
    )

    # All state of one instance lives under this directory: base snapshots, database, secrets.
    home: Path = Path("./var")
    database_url: str | None = None  # default: SQLite file under home

    # Starts the service clock at this instant (ISO 8601 with offset); it then runs in real time.
    now: datetime | None = None

    # The broker's own organisation: the only home of account managers and admins.
    broker_organisation: str = "Broker"

    # Privacy of counts.
    min_segment_size: int = Field(default=100, ge=10)
    daily_quote_budget: int = Field(default=500, ge=1)
    quote_ttl_days: int = Field(default=14, ge=1)
    max_list_values: int = Field(default=500, ge=1)
    max_radius_km: int = Field(default=200, ge=1)

    # Idempotency-Key (rental/idempotency): how long an answer is kept, how long a retry waits
    # for the request it repeats before a 409, and after how long a request that holds its key
    # without answering is presumed dead (its key is then taken over, its work rolled back).
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    idempotency_wait_seconds: float = Field(default=10.0, ge=0, le=60)
    idempotency_lease_seconds: int = Field(default=300, ge=1)

    # Eligibility (DESIGN.md: at most 2 messages per rolling 30 days, none within 7 days).
    inactivity_years: int = Field(default=3, ge=1)
    pressure_max_messages: int = Field(default=2, ge=1)
    pressure_window_days: int = Field(default=30, ge=1)
    pressure_min_gap_days: int = Field(default=7, ge=0)

    # Messages (rental/messages): mentions appended to every message, sender rules.
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

    # Orders and invoices. The terms of sale: the deposit is due at order, every invoice on
    # receipt (0 days); a contract may set other terms later.
    payment_terms_days: int = Field(default=0, ge=0, le=90)
    min_send_delay_minutes: int = Field(default=0, ge=0)  # earliest send time after ordering
    max_send_horizon_days: int = Field(default=365, ge=1)
    volume_tolerance: Decimal = Field(default=Decimal("0.10"), ge=0, lt=1)  # the 10% promise
    seller_name: str = "Broker SAS"
    # The seller's identity on invoices (French legal mentions); demo values by default.
    seller_legal_form: str = "SAS au capital de 10 000 EUR"
    seller_address: str = "1 rue de l'Exemple, 75002 Paris, France"
    seller_siren: str = "000 000 000"
    seller_rcs: str = "RCS Paris"
    seller_vat_number: str = "FR00000000000"
    seller_bank_details: str = "IBAN FR76 0000 0000 0000 0000 0000 000 - BIC XXXXFRPP"

    # Dispatch. No Redis URL: a private server under home/redis, shared by this home's processes.
    redis_url: str | None = None
    redis_server_binary: Path | None = None
    carrier: str = "simulator"  # simulator, smpp, http
    http_gateway_url: str | None = None  # carrier "http": where batches are POSTed
    http_gateway_token: str | None = None
    # Carrier "smpp": the SMSC's address and the account it binds with (SMPP 3.4 limits their
    # lengths: see `_smpp_credential`).
    smpp_host: str | None = None
    smpp_port: int = Field(default=2775, ge=1, le=65535)
    smpp_system_id: str = ""
    smpp_password: str = ""
    smpp_system_type: str = ""
    smpp_window: int = Field(default=10, ge=1, le=1000)  # submit_sm awaiting an answer
    smpp_timeout_seconds: float = Field(default=10.0, gt=0)  # an answer that never comes
    smpp_enquire_link_seconds: float = Field(default=30.0, gt=0)  # idle bind checked first
    smpp_throttle_wait_seconds: float = Field(default=10.0, ge=0)  # then the batch backs off
    carrier_rate_per_second: int = Field(default=0, ge=0)  # 0: no cap
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    tick_seconds: float = Field(default=2.0, gt=0)
    simulator_seed: int = 1
    simulator_receipt_delay_seconds: float = Field(default=2.0, ge=0)
    simulator_down_until: datetime | None = None  # fault injection: the carrier is down
    # Control (seed) numbers, E.164: they receive every order's message, outside its volume
    # and its bill, so the broker sees what recipients see.
    control_numbers: list[str] = Field(default_factory=list)
    dispatch_reenqueue_seconds: int = Field(default=120, ge=1)  # an enqueued batch lost
    receipt_window_hours: int = Field(default=72, ge=1)
    # A running batch with no news for this long was interrupted (its worker died).
    dispatch_stale_seconds: int = Field(default=300, ge=1)

    # Legal send windows, in each recipient's local time (dispatch/windows.py): days of the
    # week (0 = Monday) and hours; public holidays are always closed.
    send_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5])
    send_window_start: time = time(8, 0)
    send_window_end: time = time(22, 0)

    # Pricing: a JSON file overriding the default grid (see sales/pricing/grid.py).
    price_grid_file: Path | None = None

    # Secrets; generated under home/secrets on first use when not given.
    noise_secret: str | None = None
    vault_key: str | None = None  # base64 AES-256 key (only datasets and dispatch read it)
    hmac_key: str | None = None  # base64 key for the HMAC of normalised numbers
    # Carriers' webhook secrets (header X-Carrier-Secret), by carrier name, e.g.
    # {"http": "..."}; without one, `rental carriers secret NAME` generates it under home/secrets.
    carrier_secrets: dict[str, str] = Field(default_factory=dict)

    # The API process under load (kit/admission.py): requests run at once per gate, beyond
    # which they wait at most `admission_max_wait_seconds` in line or get a 503 + Retry-After.
    # The gates together stay within the database pool and the server's threads.
    api_concurrency: int = Field(default=8, ge=1, le=36)  # everything but quotes and reports
    quote_concurrency: int = Field(default=3, ge=1, le=8)  # counts share one engine
    report_concurrency: int = Field(default=2, ge=1, le=8)  # reports, invoices, PDFs
    admission_max_wait_seconds: float = Field(default=0.5, gt=0, le=30)
    # A request body larger than this is refused (413) before it is read whole: the largest
    # legitimate one (criteria with long lists, a carrier's batch of receipts) is far smaller.
    max_body_bytes: int = Field(default=1_048_576, ge=65_536)
    db_pool_size: int = Field(default=32, ge=1)  # connections kept per process
    db_pool_overflow: int = Field(default=8, ge=0)  # opened beyond it when needed
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)  # then 503, never a hang

    duckdb_threads: int = Field(default=2, ge=1)
    duckdb_memory_limit: str | None = None  # e.g. "8GB"; default: DuckDB's (80% of RAM)

    @field_validator("now")
    @classmethod
    def _offset_required(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("RENTAL_NOW needs a UTC offset, e.g. 2026-12-01T09:00:00+01:00")
        return v

    @model_validator(mode="after")
    def _gates_fit_the_pool(self) -> Settings:
        gates = self.api_concurrency + self.quote_concurrency + self.report_concurrency
        if gates > self.db_pool_size + self.db_pool_overflow:
            raise ValueError(
                f"RENTAL_API_CONCURRENCY + RENTAL_QUOTE_CONCURRENCY + RENTAL_REPORT_CONCURRENCY "
                f"({gates}) must not exceed RENTAL_DB_POOL_SIZE + RENTAL_DB_POOL_OVERFLOW "
                f"({self.db_pool_size + self.db_pool_overflow}): admitted requests would wait "
                "for a database connection"
            )
        if gates > SERVER_THREADS:
            raise ValueError(
                f"RENTAL_API_CONCURRENCY + RENTAL_QUOTE_CONCURRENCY + RENTAL_REPORT_CONCURRENCY "
                f"({gates}) must not exceed the server's {SERVER_THREADS} worker threads"
            )
        return self

    @field_validator("smpp_system_id", "smpp_password", "smpp_system_type")
    @classmethod
    def _smpp_credential(cls, v: str, info: ValidationInfo) -> str:
        """SMPP 3.4 binds carry these as C-Octet Strings of at most 16, 9 and 13 octets with
        the closing NUL; smpplib silently cuts a longer value, and the bind is then refused
        with a configuration that looks right."""
        name = f"RENTAL_{str(info.field_name).upper()}"
        limit = SMPP_LIMITS[str(info.field_name)]
        if not v.isascii() or not v.isprintable():
            raise ValueError(f"{name} must be plain printable ASCII characters (SMPP 3.4)")
        if len(v) > limit:
            raise ValueError(
                f"{name} is longer than the {limit} characters SMPP 3.4 allows: ask the carrier "
                "for an account whose credentials fit"
            )
        return v

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

    @property
    def base_dir(self) -> Path:
        return self.home / "base"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rental.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests set the environment first, then call `reset_settings`."""
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
