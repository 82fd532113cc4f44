"""Secrets of one instance, each in its own file under RENTAL_HOME/secrets (mode 0600).

They are separate files on purpose: the API process reads only the noise secret; the vault key
that decrypts phone numbers is read by the base generator and the dispatch worker alone.
Settings (environment) take precedence over the files, as production injects them.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from kit.errors import ConfigurationError
from kit.settings import CARRIER_NAME, get_settings


def _decode(name: str, configured: str) -> bytes:
    try:
        key = base64.b64decode(configured, validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"setting for {name} is not valid base64") from exc
    if len(key) < 32:
        raise ConfigurationError(f"setting for {name} must decode to at least 32 bytes")
    return key


def _load(name: str) -> bytes | None:
    """The secret in home/secrets/{name}.key, if it was ever created."""
    path = get_settings().secrets_dir / f"{name}.key"
    if path.exists():
        return base64.b64decode(path.read_bytes().strip())
    return None


def _load_or_create(name: str, configured: str | None, size: int = 32) -> bytes:
    if configured:
        return _decode(name, configured)
    existing = _load(name)
    if existing is not None:
        return existing
    path = get_settings().secrets_dir / f"{name}.key"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = os.urandom(size)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=path.parent)  # mode 0600, unique name
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key))
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # atomic, and never overwrites a key another caller just created
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return base64.b64decode(Path(path).read_bytes().strip())


def vault_key() -> bytes:
    """AES-256-GCM key of the contacts vault."""
    return _load_or_create("vault", get_settings().secrets.vault_key)


def hmac_key() -> bytes:
    """Key of the HMAC-SHA256 of normalised E.164 numbers (opt-out matching)."""
    return _load_or_create("hmac", get_settings().secrets.hmac_key)


def webhook_key() -> bytes:
    """AES-256-GCM key sealing the webhook endpoints' signing secrets in the database, derived
    from the HMAC key (HKDF-SHA256): every API and worker process has it, no new secret to
    deploy, and a copy of the database alone cannot sign a webhook."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rental webhook secrets v1")
    return hkdf.derive(hmac_key())


def noise_secret() -> bytes:
    """Seed secret of the deterministic noise on shown counts."""
    s = get_settings().secrets.noise_secret
    if s is None:
        return _load_or_create("noise", None)
    if len(s) < 32:
        raise ConfigurationError("RENTAL_NOISE_SECRET must have at least 32 characters")
    return s.encode()


def _carrier_file(carrier: str) -> str:
    if not CARRIER_NAME.fullmatch(carrier):
        raise ConfigurationError("a carrier name is 1 to 30 characters among a-z, 0-9, - and _")
    return f"carrier-{carrier}"


def carrier_secret(carrier: str) -> str | None:
    """The shared secret a carrier presents when it posts receipts and replies (header
    `X-Carrier-Secret`): RENTAL_CARRIER_SECRETS, else the file an operator's command or the
    service's start created. None when the carrier was never given one; never creates one
    (anyone may call the webhook: what it is called with must not write to disk)."""
    configured = get_settings().secrets.carrier_secrets.get(carrier)
    if configured:
        return configured
    key = _load(_carrier_file(carrier))
    return None if key is None else base64.urlsafe_b64encode(key).decode()


def issue_carrier_secret(carrier: str) -> str:
    """The carrier's secret, generated under home/secrets when it has none yet: for the
    operator (`rental carriers secret NAME`) and for the configured carrier at start."""
    configured = get_settings().secrets.carrier_secrets.get(carrier)
    if configured:
        return configured
    return base64.urlsafe_b64encode(_load_or_create(_carrier_file(carrier), None)).decode()
