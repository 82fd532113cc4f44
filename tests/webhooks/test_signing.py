"""Signatures as the Standard Webhooks spec defines them: its own example, and the receiver's
replay protection (a timestamp too far from its clock is refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks import signing

# The example of the Standard Webhooks specification (secret, id, timestamp, body, signature).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_our_headers_sign_the_spec_example_as_the_spec_does() -> None:
    at = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    headers = signing.headers(SPEC_SECRET, SPEC_ID, at, SPEC_BODY)
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    assert headers["webhook-id"] == SPEC_ID
    assert headers["webhook-timestamp"] == str(SPEC_TIMESTAMP)


def test_a_fresh_secret_verifies_and_a_replay_later_is_refused() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert secret != signing.new_secret()
    body = b'{"type":"webhook.test"}'
    now = datetime.now(UTC)
    assert Webhook(secret).verify(body, signing.headers(secret, "msg_1", now, body))
    replayed = signing.headers(secret, "msg_1", now - timedelta(minutes=10), body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, replayed)
    tampered = signing.headers(secret, "msg_1", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"webhook.tost"}', tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, tampered)
