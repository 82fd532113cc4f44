"""Standard Webhooks signatures (standardwebhooks.com): `webhook-signature: v1,<base64 of
HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")>`, the secret `whsec_` + base64.
The signing itself is the `standardwebhooks` package, the spec's own implementation, so that
what receivers verify with it (or any of its ports) is what we sign."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  (the spec's prefix, not a secret)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


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
