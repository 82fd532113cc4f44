"""Standard Webhooks signatures (standardwebhooks.com): `webhook-signature: v1,<base64 of
HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>`, the secret `whsec_` + base64.
The signing itself is the `standardwebhooks` package, the spec's own implementation, so that
what receivers verify with it (or any of its ports) is what we sign."""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks import Webhook

from kit import keys

SECRET_PREFIX = "whsec_"  # noqa: S105  (the spec's prefix, not a secret)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


SEALED = "sealed:v1:"  # a secret as the database keeps it: nonce || AES-256-GCM(secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal(secret: str, endpoint_id: str) -> str:
    """The secret as stored: encrypted under kit.keys.webhook_key, bound to its endpoint (a
    sealed secret copied to another row does not open)."""
    nonce = os.urandom(12)
    box = AESGCM(keys.webhook_key()).encrypt(nonce, secret.encode(), endpoint_id.encode())
    return SEALED + base64.b64encode(nonce + box).decode()


def unseal(stored: str, endpoint_id: str) -> str:
    """The secret to sign with; one stored before secrets were sealed is its own text."""
    if not stored.startswith(SEALED):
        return stored
    raw = base64.b64decode(stored.removeprefix(SEALED))
    return AESGCM(keys.webhook_key()).decrypt(raw[:12], raw[12:], endpoint_id.encode()).decode()


def headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The headers of one attempt: `at` is the moment it is sent (receivers refuse a timestamp
    too far from their own clock: a captured request cannot be replayed later)."""
    return {
        "content-type": "application/json",
        "user-agent": "rental-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }
